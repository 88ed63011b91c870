//! Catalog persistence: products with variants and facets, collections, categories.
//! Every function takes the tenant and runs inside the caller's tenant transaction.

use crate::entities::{category, collection, collection_product, product, product_facet, variant};
use crate::{Result, StoreError};
use chrono::{DateTime, Utc};
use ecom_core::TenantId;
use ecom_core::catalog::{CollectionRule, ProductDraft, ProductOption, ProductSort, ProductStatus};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use std::collections::HashMap;
use uuid::Uuid;

/// A stored product (prices in minor units of the store currency).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProductRecord {
    pub id: Uuid,
    pub handle: String,
    pub title: String,
    pub body_html: String,
    pub status: ProductStatus,
    pub vendor: String,
    pub product_type: String,
    pub tags: Vec<String>,
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub options: Vec<ProductOption>,
    pub price_min: i64,
    pub price_max: i64,
    pub compare_at_max: Option<i64>,
    pub total_stock: i64,
    pub category_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A stored variant.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VariantRecord {
    pub id: Uuid,
    pub position: i32,
    pub sku: Option<String>,
    pub option_values: Vec<String>,
    pub price: i64,
    pub compare_at: Option<i64>,
    pub weight_grams: Option<i32>,
    pub barcode: Option<String>,
    pub stock: i32,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct CollectionRecord {
    pub id: Uuid,
    pub handle: String,
    pub title: String,
    pub body_html: String,
    /// `None` for a manual collection.
    pub rules: Option<Vec<CollectionRule>>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct CategoryRecord {
    pub id: Uuid,
    pub parent_id: Option<Uuid>,
    pub handle: String,
    pub name: String,
}

fn corrupt(table: &'static str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt { table, detail: detail.to_string() }
}

fn product_record(m: product::Model) -> Result<ProductRecord> {
    Ok(ProductRecord {
        status: ProductStatus::parse(&m.status).ok_or_else(|| corrupt("products", format!("status {}", m.status)))?,
        tags: serde_json::from_value(m.tags).map_err(|e| corrupt("products", e))?,
        attributes: serde_json::from_value(m.attributes).map_err(|e| corrupt("products", e))?,
        options: serde_json::from_value(m.options).map_err(|e| corrupt("products", e))?,
        id: m.id,
        handle: m.handle,
        title: m.title,
        body_html: m.body_html,
        vendor: m.vendor,
        product_type: m.product_type,
        price_min: m.price_min,
        price_max: m.price_max,
        compare_at_max: m.compare_at_max,
        total_stock: m.total_stock,
        category_id: m.category_id,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

fn variant_record(m: variant::Model) -> VariantRecord {
    VariantRecord {
        id: m.id,
        position: m.position,
        sku: m.sku,
        option_values: [m.option1, m.option2, m.option3].into_iter().flatten().collect(),
        price: m.price,
        compare_at: m.compare_at,
        weight_grams: m.weight_grams,
        barcode: m.barcode,
        stock: m.stock,
    }
}

fn collection_record(m: collection::Model) -> Result<CollectionRecord> {
    Ok(CollectionRecord {
        rules: m.rules.map(serde_json::from_value).transpose().map_err(|e| corrupt("collections", e))?,
        id: m.id,
        handle: m.handle,
        title: m.title,
        body_html: m.body_html,
    })
}

fn json(value: impl serde::Serialize) -> Result<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| corrupt("products", e))
}

/// The facet rows of a product: what listings filter by.
fn facets_of(draft: &ProductDraft) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, option) in draft.options.iter().enumerate() {
        let mut values: Vec<&String> = draft.variants.iter().filter_map(|v| v.option_values.get(i)).collect();
        values.sort();
        values.dedup();
        out.extend(values.into_iter().map(|v| (format!("option:{}", option.name), v.clone())));
    }
    for (k, v) in &draft.attributes {
        if let Some(s) = v.as_str() {
            out.push((format!("attr:{k}"), s.to_owned()));
        }
    }
    out.extend(draft.tags.iter().map(|t| ("tag".to_owned(), t.to_lowercase())));
    if !draft.vendor.is_empty() {
        out.push(("vendor".into(), draft.vendor.to_lowercase()));
    }
    if !draft.product_type.is_empty() {
        out.push(("type".into(), draft.product_type.to_lowercase()));
    }
    out
}

fn product_columns(
    tenant: TenantId,
    id: Uuid,
    draft: &ProductDraft,
    category: Option<Uuid>,
    position: i32,
) -> Result<product::ActiveModel> {
    let prices = draft.variants.iter().map(|v| v.price.minor);
    let now = Utc::now();
    Ok(product::ActiveModel {
        id: Set(id),
        tenant_id: Set(tenant.0),
        handle: Set(draft.handle.as_str().to_owned()),
        title: Set(draft.title.clone()),
        body_html: Set(draft.body_html.clone()),
        status: Set(draft.status.as_str().to_owned()),
        vendor: Set(draft.vendor.clone()),
        product_type: Set(draft.product_type.clone()),
        tags: Set(json(&draft.tags)?),
        attributes: Set(json(&draft.attributes)?),
        options: Set(json(&draft.options)?),
        price_min: Set(prices.clone().min().unwrap_or(0)),
        price_max: Set(prices.max().unwrap_or(0)),
        compare_at_max: Set(draft.variants.iter().filter_map(|v| v.compare_at.map(|c| c.minor)).max()),
        total_stock: Set(draft.variants.iter().map(|v| i64::from(v.stock)).sum()),
        category_id: Set(category),
        position: Set(position),
        created_at: Set(now),
        updated_at: Set(now),
    })
}

async fn write_variants(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    product_id: Uuid,
    draft: &ProductDraft,
    skip: &[Vec<String>],
) -> Result<()> {
    let now = Utc::now();
    let variants: Vec<variant::ActiveModel> = draft
        .variants
        .iter()
        .enumerate()
        .filter(|(_, v)| !skip.contains(&v.option_values))
        .map(|(i, v)| variant::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(tenant.0),
            product_id: Set(product_id),
            position: Set(i32::try_from(i).unwrap_or(i32::MAX)),
            sku: Set(v.sku.clone().filter(|s| !s.is_empty())),
            option1: Set(v.option_values.first().cloned()),
            option2: Set(v.option_values.get(1).cloned()),
            option3: Set(v.option_values.get(2).cloned()),
            price: Set(v.price.minor),
            compare_at: Set(v.compare_at.map(|c| c.minor)),
            weight_grams: Set(v.weight_grams),
            barcode: Set(v.barcode.clone().filter(|s| !s.is_empty())),
            stock: Set(v.stock),
            created_at: Set(now),
        })
        .collect();
    if !variants.is_empty() {
        variant::Entity::insert_many(variants).exec_without_returning(txn).await?;
    }
    Ok(())
}

async fn write_facets(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    product_id: Uuid,
    draft: &ProductDraft,
) -> Result<()> {
    let facets: Vec<product_facet::ActiveModel> = facets_of(draft)
        .into_iter()
        .map(|(facet, value)| product_facet::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(tenant.0),
            product_id: Set(product_id),
            facet: Set(facet),
            value: Set(value),
        })
        .collect();
    if !facets.is_empty() {
        product_facet::Entity::insert_many(facets).exec_without_returning(txn).await?;
    }
    Ok(())
}

/// Stores a validated product with its variants; the handle must be free in the store.
pub async fn insert_product(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    draft: &ProductDraft,
    category: Option<Uuid>,
    position: i32,
) -> Result<Uuid> {
    let id = Uuid::now_v7();
    product::Entity::insert(product_columns(tenant, id, draft, category, position)?)
        .exec_without_returning(txn)
        .await
        .map_err(|e| StoreError::conflict_or_db(e, "a product with that handle"))?;
    write_variants(txn, tenant, id, draft, &[]).await?;
    write_facets(txn, tenant, id, draft).await?;
    Ok(id)
}

/// Replaces a product's fields, variants and facets. Variants whose option values are
/// unchanged keep their ids (carts and orders refer to them); others are replaced.
pub async fn update_product(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    id: Uuid,
    draft: &ProductDraft,
    category: Option<Uuid>,
) -> Result<bool> {
    let Some(existing) =
        product::Entity::find_by_id(id).filter(product::Column::TenantId.eq(tenant.0)).one(txn).await?
    else {
        return Ok(false);
    };
    let mut row = product_columns(tenant, id, draft, category, existing.position)?;
    row.created_at = Set(existing.created_at);
    product::Entity::update(row)
        .exec(txn)
        .await
        .map_err(|e| StoreError::conflict_or_db(e, "a product with that handle"))?;
    let old = variant::Entity::find()
        .filter(variant::Column::TenantId.eq(tenant.0))
        .filter(variant::Column::ProductId.eq(id))
        .all(txn)
        .await?;
    let mut keep = Vec::new();
    for (i, v) in draft.variants.iter().enumerate() {
        let matching = old.iter().find(|o| variant_record((*o).clone()).option_values == v.option_values);
        if let Some(o) = matching {
            keep.push(o.id);
            variant::Entity::update(variant::ActiveModel {
                id: Set(o.id),
                position: Set(i32::try_from(i).unwrap_or(i32::MAX)),
                sku: Set(v.sku.clone().filter(|s| !s.is_empty())),
                price: Set(v.price.minor),
                compare_at: Set(v.compare_at.map(|c| c.minor)),
                weight_grams: Set(v.weight_grams),
                barcode: Set(v.barcode.clone().filter(|s| !s.is_empty())),
                stock: Set(v.stock),
                ..Default::default()
            })
            .exec(txn)
            .await?;
        }
    }
    variant::Entity::delete_many()
        .filter(variant::Column::TenantId.eq(tenant.0))
        .filter(variant::Column::ProductId.eq(id))
        .filter(variant::Column::Id.is_not_in(keep.clone()))
        .exec(txn)
        .await?;
    product_facet::Entity::delete_many()
        .filter(product_facet::Column::TenantId.eq(tenant.0))
        .filter(product_facet::Column::ProductId.eq(id))
        .exec(txn)
        .await?;
    let kept: Vec<Vec<String>> =
        old.into_iter().filter(|o| keep.contains(&o.id)).map(|o| variant_record(o).option_values).collect();
    write_variants(txn, tenant, id, draft, &kept).await?;
    write_facets(txn, tenant, id, draft).await?;
    Ok(true)
}

pub async fn product_by_handle(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    handle: &str,
) -> Result<Option<(ProductRecord, Vec<VariantRecord>)>> {
    let Some(p) = product::Entity::find()
        .filter(product::Column::TenantId.eq(tenant.0))
        .filter(product::Column::Handle.eq(handle))
        .one(txn)
        .await?
    else {
        return Ok(None);
    };
    let variants = variants_of(txn, tenant, &[p.id]).await?.into_iter().map(|(_, v)| v).collect();
    Ok(Some((product_record(p)?, variants)))
}

/// Products by handle with their variants, in two queries whatever the count.
pub async fn products_by_handles(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    handles: &[String],
) -> Result<Vec<(ProductRecord, Vec<VariantRecord>)>> {
    let rows = product::Entity::find()
        .filter(product::Column::TenantId.eq(tenant.0))
        .filter(product::Column::Handle.is_in(handles.to_vec()))
        .all(txn)
        .await?;
    let ids: Vec<Uuid> = rows.iter().map(|p| p.id).collect();
    let mut variants = variants_of(txn, tenant, &ids).await?;
    rows.into_iter()
        .map(|p| {
            let mine = variants.extract_if(.., |(owner, _)| *owner == p.id).map(|(_, v)| v).collect();
            Ok((product_record(p)?, mine))
        })
        .collect()
}

/// Which hand-picked collections each product is in: `(product, collection)` pairs.
pub async fn manual_memberships(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    products: &[Uuid],
) -> Result<Vec<(Uuid, Uuid)>> {
    Ok(collection_product::Entity::find()
        .filter(collection_product::Column::TenantId.eq(tenant.0))
        .filter(collection_product::Column::ProductId.is_in(products.to_vec()))
        .all(txn)
        .await?
        .into_iter()
        .map(|m| (m.product_id, m.collection_id))
        .collect())
}

/// The variants of several products in one query, in position order.
pub async fn variants_of(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    products: &[Uuid],
) -> Result<Vec<(Uuid, VariantRecord)>> {
    Ok(variant::Entity::find()
        .filter(variant::Column::TenantId.eq(tenant.0))
        .filter(variant::Column::ProductId.is_in(products.to_vec()))
        .order_by_asc(variant::Column::ProductId)
        .order_by_asc(variant::Column::Position)
        .all(txn)
        .await?
        .into_iter()
        .map(|v| (v.product_id, variant_record(v)))
        .collect())
}

/// A variant with what a cart line shows of its product.
#[derive(Debug, Clone)]
pub struct SellableVariant {
    pub product_id: Uuid,
    pub product_title: String,
    pub product_handle: String,
    pub product_status: ProductStatus,
    pub variant: VariantRecord,
}

/// Variants by id with their products' title, handle and status; ids of other stores
/// (or unknown ids) are simply absent.
pub async fn variants_by_ids(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    ids: &[Uuid],
) -> Result<Vec<SellableVariant>> {
    let variants = variant::Entity::find()
        .filter(variant::Column::TenantId.eq(tenant.0))
        .filter(variant::Column::Id.is_in(ids.to_vec()))
        .all(txn)
        .await?;
    let product_ids: Vec<Uuid> = variants.iter().map(|v| v.product_id).collect();
    let products: HashMap<Uuid, (String, String, String)> = product::Entity::find()
        .select_only()
        .column(product::Column::Id)
        .column(product::Column::Title)
        .column(product::Column::Handle)
        .column(product::Column::Status)
        .filter(product::Column::TenantId.eq(tenant.0))
        .filter(product::Column::Id.is_in(product_ids))
        .into_tuple::<(Uuid, String, String, String)>()
        .all(txn)
        .await?
        .into_iter()
        .map(|(id, title, handle, status)| (id, (title, handle, status)))
        .collect();
    variants
        .into_iter()
        .filter_map(|v| {
            let (title, handle, status) = products.get(&v.product_id)?.clone();
            Some((v, title, handle, status))
        })
        .map(|(v, title, handle, status)| {
            let product_status = ProductStatus::parse(&status)
                .ok_or_else(|| StoreError::Corrupt { table: "products", detail: format!("status {status}") })?;
            Ok(SellableVariant {
                product_id: v.product_id,
                product_title: title,
                product_handle: handle,
                product_status,
                variant: variant_record(v),
            })
        })
        .collect()
}

/// What a listing shows.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// `Some(Active)` for shoppers; `None` for the merchant panel (all but archived
    /// unless asked).
    pub status: Option<ProductStatus>,
    /// With `status: None`: include archived products too (exports).
    pub include_archived: bool,
    pub collection: Option<CollectionRecord>,
    /// A category and its descendants.
    pub category_ids: Vec<Uuid>,
    /// (facet, any of these values); all facets must match.
    pub facets: Vec<(String, Vec<String>)>,
    pub price_at_least: Option<i64>,
    pub price_at_most: Option<i64>,
    pub search: Option<String>,
    pub sort: ProductSort,
    pub limit: u64,
    pub offset: u64,
}

fn facet_subquery(tenant: TenantId, facet: &str, values: Vec<String>) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(product_facet::Column::ProductId)
        .from(product_facet::Entity)
        .and_where(Expr::col(product_facet::Column::TenantId).eq(tenant.0))
        .and_where(Expr::col(product_facet::Column::Facet).eq(facet))
        .and_where(Expr::col(product_facet::Column::Value).is_in(values))
        .to_owned()
}

fn listing_condition(tenant: TenantId, l: &Listing) -> Condition {
    let mut c = Condition::all().add(product::Column::TenantId.eq(tenant.0));
    match l.status {
        Some(s) => c = c.add(product::Column::Status.eq(s.as_str())),
        None if l.include_archived => {}
        None => c = c.add(product::Column::Status.ne(ProductStatus::Archived.as_str())),
    }
    if let Some(col) = &l.collection {
        match &col.rules {
            None => {
                let members = Query::select()
                    .column(collection_product::Column::ProductId)
                    .from(collection_product::Entity)
                    .and_where(Expr::col(collection_product::Column::TenantId).eq(tenant.0))
                    .and_where(Expr::col(collection_product::Column::CollectionId).eq(col.id))
                    .to_owned();
                c = c.add(product::Column::Id.in_subquery(members));
            }
            Some(rules) => {
                for rule in rules {
                    c = c.add(match rule {
                        CollectionRule::Tag(t) => {
                            product::Column::Id.in_subquery(facet_subquery(tenant, "tag", vec![t.to_lowercase()]))
                        }
                        CollectionRule::ProductType(t) => {
                            product::Column::Id.in_subquery(facet_subquery(tenant, "type", vec![t.to_lowercase()]))
                        }
                        CollectionRule::Vendor(v) => {
                            product::Column::Id.in_subquery(facet_subquery(tenant, "vendor", vec![v.to_lowercase()]))
                        }
                        CollectionRule::PriceAtLeast(p) => product::Column::PriceMin.gte(*p),
                        CollectionRule::PriceAtMost(p) => product::Column::PriceMin.lte(*p),
                    });
                }
            }
        }
    }
    if !l.category_ids.is_empty() {
        c = c.add(product::Column::CategoryId.is_in(l.category_ids.clone()));
    }
    for (facet, values) in &l.facets {
        if !values.is_empty() {
            c = c.add(product::Column::Id.in_subquery(facet_subquery(tenant, facet, values.clone())));
        }
    }
    if let Some(p) = l.price_at_least {
        c = c.add(product::Column::PriceMin.gte(p));
    }
    if let Some(p) = l.price_at_most {
        c = c.add(product::Column::PriceMin.lte(p));
    }
    if let Some(q) = l.search.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        let escaped: String = q
            .to_lowercase()
            .chars()
            .flat_map(|ch| match ch {
                '%' | '_' | '\\' => vec!['\\', ch],
                other => vec![other],
            })
            .collect();
        let pattern = format!("%{escaped}%");
        let like = |col: product::Column| {
            Expr::expr(Func::lower(Expr::col(col))).like(LikeExpr::new(pattern.clone()).escape('\\'))
        };
        c = c.add(
            Condition::any()
                .add(like(product::Column::Title))
                .add(like(product::Column::Vendor))
                .add(like(product::Column::ProductType))
                .add(
                    product::Column::Id.in_subquery(
                        Query::select()
                            .column(product_facet::Column::ProductId)
                            .from(product_facet::Entity)
                            .and_where(Expr::col(product_facet::Column::TenantId).eq(tenant.0))
                            .and_where(
                                Expr::expr(Func::lower(Expr::col(product_facet::Column::Value)))
                                    .like(LikeExpr::new(pattern.clone()).escape('\\')),
                            )
                            .to_owned(),
                    ),
                ),
        );
    }
    c
}

/// One page of a listing and the total number of matches.
pub async fn list_products(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    l: &Listing,
) -> Result<(Vec<ProductRecord>, u64)> {
    let cond = listing_condition(tenant, l);
    let total = product::Entity::find().filter(cond.clone()).count(txn).await?;
    let mut q = product::Entity::find().filter(cond);
    q = match l.sort {
        ProductSort::Featured => q.order_by_asc(product::Column::Position).order_by_desc(product::Column::CreatedAt),
        ProductSort::Newest => q.order_by_desc(product::Column::CreatedAt),
        ProductSort::PriceAsc => q.order_by_asc(product::Column::PriceMin),
        ProductSort::PriceDesc => q.order_by_desc(product::Column::PriceMin),
        ProductSort::TitleAsc => q.order_by_asc(product::Column::Title),
    };
    let rows = q.order_by_asc(product::Column::Id).limit(l.limit).offset(l.offset).all(txn).await?;
    Ok((rows.into_iter().map(product_record).collect::<Result<_>>()?, total))
}

/// Values of the given facets among the listing's products (ignoring its own facet
/// filters), with how many products have each: the filter sidebar.
pub async fn facet_counts(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    l: &Listing,
    facet_prefix: &str,
) -> Result<Vec<(String, String, i64)>> {
    let base = Listing { facets: Vec::new(), limit: 0, offset: 0, ..l.clone() };
    let ids = Query::select()
        .column(product::Column::Id)
        .from(product::Entity)
        .cond_where(listing_condition(tenant, &base))
        .to_owned();
    let rows = product_facet::Entity::find()
        .select_only()
        .column(product_facet::Column::Facet)
        .column(product_facet::Column::Value)
        .column_as(product_facet::Column::ProductId.count(), "n")
        .filter(product_facet::Column::TenantId.eq(tenant.0))
        .filter(product_facet::Column::Facet.starts_with(facet_prefix))
        .filter(product_facet::Column::ProductId.in_subquery(ids))
        .group_by(product_facet::Column::Facet)
        .group_by(product_facet::Column::Value)
        .order_by_asc(product_facet::Column::Facet)
        .order_by_asc(product_facet::Column::Value)
        .into_tuple::<(String, String, i64)>()
        .all(txn)
        .await?;
    Ok(rows)
}

/// Every active product's handle and last change, for `sitemap.xml`.
pub async fn active_handles(txn: &DatabaseTransaction, tenant: TenantId) -> Result<Vec<(String, DateTime<Utc>)>> {
    Ok(product::Entity::find()
        .select_only()
        .column(product::Column::Handle)
        .column(product::Column::UpdatedAt)
        .filter(product::Column::TenantId.eq(tenant.0))
        .filter(product::Column::Status.eq(ProductStatus::Active.as_str()))
        .order_by_asc(product::Column::Handle)
        .into_tuple::<(String, DateTime<Utc>)>()
        .all(txn)
        .await?)
}

/// How many of `handles` are products of the store already.
pub async fn existing_handles(txn: &DatabaseTransaction, tenant: TenantId, handles: &[String]) -> Result<usize> {
    let n = product::Entity::find()
        .filter(product::Column::TenantId.eq(tenant.0))
        .filter(product::Column::Handle.is_in(handles.iter().cloned()))
        .count(txn)
        .await?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

pub async fn count_products(txn: &DatabaseTransaction, tenant: TenantId) -> Result<u64> {
    Ok(product::Entity::find().filter(product::Column::TenantId.eq(tenant.0)).count(txn).await?)
}

pub async fn insert_collection(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    handle: &str,
    title: &str,
    body_html: &str,
    rules: Option<&[CollectionRule]>,
    position: i32,
) -> Result<Uuid> {
    let id = Uuid::now_v7();
    collection::Entity::insert(collection::ActiveModel {
        id: Set(id),
        tenant_id: Set(tenant.0),
        handle: Set(handle.to_owned()),
        title: Set(title.to_owned()),
        body_html: Set(body_html.to_owned()),
        rules: Set(rules.map(json).transpose()?),
        position: Set(position),
        created_at: Set(Utc::now()),
    })
    .exec_without_returning(txn)
    .await
    .map_err(|e| StoreError::conflict_or_db(e, "a collection with that handle"))?;
    Ok(id)
}

/// Adds products to a manual collection, after those already in it.
pub async fn add_to_collection(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    collection_id: Uuid,
    products: &[Uuid],
) -> Result<()> {
    if products.is_empty() {
        return Ok(());
    }
    let start = collection_product::Entity::find()
        .filter(collection_product::Column::TenantId.eq(tenant.0))
        .filter(collection_product::Column::CollectionId.eq(collection_id))
        .count(txn)
        .await?;
    let rows: Vec<collection_product::ActiveModel> = products
        .iter()
        .enumerate()
        .map(|(i, p)| collection_product::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(tenant.0),
            collection_id: Set(collection_id),
            product_id: Set(*p),
            position: Set(i32::try_from(start as usize + i).unwrap_or(i32::MAX)),
        })
        .collect();
    collection_product::Entity::insert_many(rows).exec_without_returning(txn).await?;
    Ok(())
}

pub async fn collection_by_handle(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    handle: &str,
) -> Result<Option<CollectionRecord>> {
    collection::Entity::find()
        .filter(collection::Column::TenantId.eq(tenant.0))
        .filter(collection::Column::Handle.eq(handle))
        .one(txn)
        .await?
        .map(collection_record)
        .transpose()
}

pub async fn list_collections(txn: &DatabaseTransaction, tenant: TenantId) -> Result<Vec<CollectionRecord>> {
    collection::Entity::find()
        .filter(collection::Column::TenantId.eq(tenant.0))
        .order_by_asc(collection::Column::Position)
        .order_by_asc(collection::Column::Title)
        .all(txn)
        .await?
        .into_iter()
        .map(collection_record)
        .collect()
}

pub async fn insert_category(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    parent: Option<Uuid>,
    handle: &str,
    name: &str,
    position: i32,
) -> Result<Uuid> {
    let id = Uuid::now_v7();
    category::Entity::insert(category::ActiveModel {
        id: Set(id),
        tenant_id: Set(tenant.0),
        parent_id: Set(parent),
        handle: Set(handle.to_owned()),
        name: Set(name.to_owned()),
        position: Set(position),
        created_at: Set(Utc::now()),
    })
    .exec_without_returning(txn)
    .await
    .map_err(|e| StoreError::conflict_or_db(e, "a category with that handle"))?;
    Ok(id)
}

/// The whole category tree of a store, parents before children.
pub async fn list_categories(txn: &DatabaseTransaction, tenant: TenantId) -> Result<Vec<CategoryRecord>> {
    Ok(category::Entity::find()
        .filter(category::Column::TenantId.eq(tenant.0))
        .order_by_asc(category::Column::Position)
        .order_by_asc(category::Column::Name)
        .all(txn)
        .await?
        .into_iter()
        .map(|c| CategoryRecord { id: c.id, parent_id: c.parent_id, handle: c.handle, name: c.name })
        .collect())
}

pub async fn product_by_id(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    id: Uuid,
) -> Result<Option<(ProductRecord, Vec<VariantRecord>)>> {
    let Some(p) = product::Entity::find_by_id(id).filter(product::Column::TenantId.eq(tenant.0)).one(txn).await? else {
        return Ok(None);
    };
    let variants = variants_of(txn, tenant, &[p.id]).await?.into_iter().map(|(_, v)| v).collect();
    Ok(Some((product_record(p)?, variants)))
}

pub async fn set_product_status(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    id: Uuid,
    status: ProductStatus,
) -> Result<bool> {
    let res = product::Entity::update_many()
        .col_expr(product::Column::Status, Expr::value(status.as_str()))
        .col_expr(product::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(product::Column::TenantId.eq(tenant.0))
        .filter(product::Column::Id.eq(id))
        .exec(txn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// A price and stock change to one variant.
#[derive(Debug, Clone, Copy)]
pub struct VariantChange {
    pub variant: Uuid,
    pub price: i64,
    pub stock: i32,
}

/// Applies price and stock changes, then recomputes the derived columns of the
/// products touched. Returns how many variants changed; ids of other stores are
/// ignored (they match no row).
pub async fn update_variants(txn: &DatabaseTransaction, tenant: TenantId, changes: &[VariantChange]) -> Result<u64> {
    let mut changed = 0;
    for c in changes {
        let res = variant::Entity::update_many()
            .col_expr(variant::Column::Price, Expr::value(c.price))
            .col_expr(variant::Column::Stock, Expr::value(c.stock))
            .filter(variant::Column::TenantId.eq(tenant.0))
            .filter(variant::Column::Id.eq(c.variant))
            .exec(txn)
            .await?;
        changed += res.rows_affected;
    }
    let ids: Vec<Uuid> = variant::Entity::find()
        .select_only()
        .column(variant::Column::ProductId)
        .filter(variant::Column::TenantId.eq(tenant.0))
        .filter(variant::Column::Id.is_in(changes.iter().map(|c| c.variant).collect::<Vec<_>>()))
        .distinct()
        .into_tuple::<Uuid>()
        .all(txn)
        .await?;
    refresh_aggregates(txn, tenant, &ids).await?;
    Ok(changed)
}

/// Why a stock adjustment was not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StockRefused {
    /// No variant with this id in the store.
    Missing(Uuid),
    /// The variant has `available` units: the change would take it below zero.
    BelowZero { variant: Uuid, available: i32, delta: i32 },
}

/// Adds `delta` to each variant's stock in SQL (`stock = stock + delta`, so concurrent
/// checkouts and adjustments never lose each other's changes), refusing a change that
/// would leave less than zero. Returns the stock after each change, in order; on a
/// refusal the caller rolls the transaction back, so nothing changes.
pub async fn adjust_stock(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    changes: &[(Uuid, i32)],
) -> Result<std::result::Result<Vec<i32>, StockRefused>> {
    let mut after = Vec::with_capacity(changes.len());
    for &(id, delta) in changes {
        let res = variant::Entity::update_many()
            .col_expr(variant::Column::Stock, Expr::col(variant::Column::Stock).add(delta))
            .filter(variant::Column::TenantId.eq(tenant.0))
            .filter(variant::Column::Id.eq(id))
            .filter(Expr::col(variant::Column::Stock).add(delta).gte(0))
            .exec(txn)
            .await?;
        let now: Option<i32> = variant::Entity::find()
            .select_only()
            .column(variant::Column::Stock)
            .filter(variant::Column::TenantId.eq(tenant.0))
            .filter(variant::Column::Id.eq(id))
            .into_tuple()
            .one(txn)
            .await?;
        match (res.rows_affected, now) {
            (_, None) => return Ok(Err(StockRefused::Missing(id))),
            (0, Some(available)) => return Ok(Err(StockRefused::BelowZero { variant: id, available, delta })),
            (_, Some(stock)) => after.push(stock),
        }
    }
    let ids: Vec<Uuid> = variant::Entity::find()
        .select_only()
        .column(variant::Column::ProductId)
        .filter(variant::Column::TenantId.eq(tenant.0))
        .filter(variant::Column::Id.is_in(changes.iter().map(|c| c.0).collect::<Vec<_>>()))
        .distinct()
        .into_tuple::<Uuid>()
        .all(txn)
        .await?;
    refresh_aggregates(txn, tenant, &ids).await?;
    Ok(Ok(after))
}

/// A variant's stock before and after [`set_stock_by_sku`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockLevel {
    pub variant: Uuid,
    pub sku: String,
    pub before: i32,
    pub after: i32,
}

/// Why stock levels given by SKU were not set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkuRefused {
    /// No variant of the store has these SKUs.
    Unknown(Vec<String>),
    /// Each of these SKUs names more than one variant.
    Ambiguous(Vec<String>),
}

/// Sets the stock of the variants with these SKUs to the given levels, all or none (an
/// inventory system reporting what is on its shelves). Each SKU must name exactly one
/// of the store's variants.
pub async fn set_stock_by_sku(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    levels: &[(String, i32)],
) -> Result<std::result::Result<Vec<StockLevel>, SkuRefused>> {
    let skus: Vec<&str> = levels.iter().map(|(s, _)| s.as_str()).collect();
    // (variant, product, sku, stock)
    type Found = (Uuid, Uuid, Option<String>, i32);
    let found: Vec<Found> = variant::Entity::find()
        .select_only()
        .columns([variant::Column::Id, variant::Column::ProductId, variant::Column::Sku, variant::Column::Stock])
        .filter(variant::Column::TenantId.eq(tenant.0))
        .filter(variant::Column::Sku.is_in(skus.clone()))
        .into_tuple()
        .all(txn)
        .await?;
    let mut by_sku: HashMap<&str, Vec<&Found>> = HashMap::new();
    for v in &found {
        if let Some(sku) = v.2.as_deref() {
            by_sku.entry(sku).or_default().push(v);
        }
    }
    let unknown: Vec<String> = skus.iter().filter(|s| !by_sku.contains_key(*s)).map(|s| (*s).to_owned()).collect();
    if !unknown.is_empty() {
        return Ok(Err(SkuRefused::Unknown(unknown)));
    }
    let ambiguous: Vec<String> =
        skus.iter().filter(|s| by_sku.get(*s).is_some_and(|v| v.len() > 1)).map(|s| (*s).to_owned()).collect();
    if !ambiguous.is_empty() {
        return Ok(Err(SkuRefused::Ambiguous(ambiguous)));
    }
    let mut set = Vec::with_capacity(levels.len());
    let mut products = Vec::new();
    for (sku, level) in levels {
        let Some(&&(id, product, _, before)) = by_sku.get(sku.as_str()).and_then(|v| v.first()) else { continue };
        variant::Entity::update_many()
            .col_expr(variant::Column::Stock, Expr::value(*level))
            .filter(variant::Column::TenantId.eq(tenant.0))
            .filter(variant::Column::Id.eq(id))
            .exec(txn)
            .await?;
        products.push(product);
        set.push(StockLevel { variant: id, sku: sku.clone(), before, after: *level });
    }
    products.sort_unstable();
    products.dedup();
    refresh_aggregates(txn, tenant, &products).await?;
    Ok(Ok(set))
}

/// Recomputes price range, compare-at and total stock of products from their variants.
async fn refresh_aggregates(txn: &DatabaseTransaction, tenant: TenantId, products: &[Uuid]) -> Result<()> {
    let all = variants_of(txn, tenant, products).await?;
    for id in products {
        let vs: Vec<&VariantRecord> = all.iter().filter(|(p, _)| p == id).map(|(_, v)| v).collect();
        product::Entity::update_many()
            .col_expr(product::Column::PriceMin, Expr::value(vs.iter().map(|v| v.price).min().unwrap_or(0)))
            .col_expr(product::Column::PriceMax, Expr::value(vs.iter().map(|v| v.price).max().unwrap_or(0)))
            .col_expr(product::Column::CompareAtMax, Expr::value(vs.iter().filter_map(|v| v.compare_at).max()))
            .col_expr(product::Column::TotalStock, Expr::value(vs.iter().map(|v| i64::from(v.stock)).sum::<i64>()))
            .col_expr(product::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(product::Column::TenantId.eq(tenant.0))
            .filter(product::Column::Id.eq(*id))
            .exec(txn)
            .await?;
    }
    Ok(())
}

/// A product image (the files live in media storage, addressed by `hash`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImageRecord {
    pub id: Uuid,
    pub product_id: Uuid,
    pub hash: String,
    pub ext: String,
    pub width: i32,
    pub height: i32,
    pub alt: String,
}

/// Adds an image after the product's others; `None` when the product is not the store's.
#[expect(clippy::too_many_arguments, reason = "an image row's fields, each a plain value")]
pub async fn insert_image(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    product_id: Uuid,
    hash: &str,
    ext: &str,
    (width, height): (u32, u32),
    alt: &str,
    bytes: u64,
) -> Result<Option<Uuid>> {
    use crate::entities::product_image;
    if product::Entity::find_by_id(product_id).filter(product::Column::TenantId.eq(tenant.0)).one(txn).await?.is_none()
    {
        return Ok(None);
    }
    let position = product_image::Entity::find()
        .filter(product_image::Column::TenantId.eq(tenant.0))
        .filter(product_image::Column::ProductId.eq(product_id))
        .count(txn)
        .await?;
    let id = Uuid::now_v7();
    product_image::Entity::insert(product_image::ActiveModel {
        id: Set(id),
        tenant_id: Set(tenant.0),
        product_id: Set(product_id),
        hash: Set(hash.to_owned()),
        ext: Set(ext.to_owned()),
        width: Set(i32::try_from(width).unwrap_or(i32::MAX)),
        height: Set(i32::try_from(height).unwrap_or(i32::MAX)),
        alt: Set(alt.to_owned()),
        position: Set(i32::try_from(position).unwrap_or(i32::MAX)),
        created_at: Set(Utc::now()),
        bytes: Set(i64::try_from(bytes).unwrap_or(i64::MAX)),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(Some(id))
}

fn image_record(m: crate::entities::product_image::Model) -> ImageRecord {
    ImageRecord {
        id: m.id,
        product_id: m.product_id,
        hash: m.hash,
        ext: m.ext,
        width: m.width,
        height: m.height,
        alt: m.alt,
    }
}

/// The images of several products in one query, in position order.
pub async fn images_of(txn: &DatabaseTransaction, tenant: TenantId, products: &[Uuid]) -> Result<Vec<ImageRecord>> {
    use crate::entities::product_image;
    Ok(product_image::Entity::find()
        .filter(product_image::Column::TenantId.eq(tenant.0))
        .filter(product_image::Column::ProductId.is_in(products.to_vec()))
        .order_by_asc(product_image::Column::ProductId)
        .order_by_asc(product_image::Column::Position)
        .all(txn)
        .await?
        .into_iter()
        .map(image_record)
        .collect())
}

/// Every image of a store in one query, by product and position: for a whole-catalog
/// export or import, without a list of ids as long as the catalog.
pub async fn images_of_store(txn: &DatabaseTransaction, tenant: TenantId) -> Result<Vec<ImageRecord>> {
    use crate::entities::product_image;
    Ok(product_image::Entity::find()
        .filter(product_image::Column::TenantId.eq(tenant.0))
        .order_by_asc(product_image::Column::ProductId)
        .order_by_asc(product_image::Column::Position)
        .all(txn)
        .await?
        .into_iter()
        .map(image_record)
        .collect())
}

/// Replaces an image's alt text; `false` when the image is not the store's.
pub async fn set_image_alt(txn: &DatabaseTransaction, tenant: TenantId, image: Uuid, alt: &str) -> Result<bool> {
    use crate::entities::product_image;
    let res = product_image::Entity::update_many()
        .col_expr(product_image::Column::Alt, Expr::value(alt))
        .filter(product_image::Column::TenantId.eq(tenant.0))
        .filter(product_image::Column::Id.eq(image))
        .exec(txn)
        .await?;
    Ok(res.rows_affected == 1)
}

pub async fn delete_image(txn: &DatabaseTransaction, tenant: TenantId, product_id: Uuid, image: Uuid) -> Result<bool> {
    use crate::entities::product_image;
    let res = product_image::Entity::delete_many()
        .filter(product_image::Column::TenantId.eq(tenant.0))
        .filter(product_image::Column::ProductId.eq(product_id))
        .filter(product_image::Column::Id.eq(image))
        .exec(txn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// (handle, id) of the store's products with these handles.
pub async fn ids_by_handles(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    handles: &[String],
) -> Result<Vec<(String, Uuid)>> {
    Ok(product::Entity::find()
        .select_only()
        .column(product::Column::Handle)
        .column(product::Column::Id)
        .filter(product::Column::TenantId.eq(tenant.0))
        .filter(product::Column::Handle.is_in(handles.to_vec()))
        .into_tuple::<(String, Uuid)>()
        .all(txn)
        .await?)
}
