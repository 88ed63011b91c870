//! The schema, as one ordered list of migrations shared by SQLite and PostgreSQL.
//!
//! Rules: a migration that has shipped is never edited; add a new one. Table
//! definitions use the query builder so both backends get the same schema; the only
//! backend-specific statements are PostgreSQL's row-level security, which SQLite lacks.

use sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::prelude::*;

/// Every table that holds tenant data. Each has a `tenant_id` column, and on PostgreSQL
/// a row-level security policy keyed on `ecom.tenant_id`.
pub const TENANT_TABLES: &[&str] = &[
    "tenant_domains",
    "staff",
    "customers",
    "password_resets",
    "dev_mailbox",
    "products",
    "variants",
    "product_facets",
    "collections",
    "collection_products",
    "categories",
    "product_images",
    "theme_templates",
    "checkout_settings",
    "shipping_methods",
    "tax_rates",
    "discount_codes",
    "carts",
    "cart_lines",
    "orders",
    "order_lines",
    "order_events",
    "payments",
    "payment_webhooks",
    "outbox",
    "customer_addresses",
    "audit_log",
    "api_tokens",
    "bus_deliveries",
    "bus_dead_letters",
    "consumer_receipts",
    "store_activity",
    "webhook_subscriptions",
    "webhook_deliveries",
    "webhook_attempts",
    "notifications",
    "idempotency_keys",
    "push_subscriptions",
    "phone_codes",
    "inbox_items",
    "notification_preferences",
    "marketing_consents",
    "back_in_stock_requests",
    "notification_templates",
    "staff_invitations",
    "notification_bodies",
];

/// The tenant tables each migration creates (and protects with row-level security).
const FOUNDATION_TABLES: &[&str] = &["tenant_domains", "staff", "customers", "password_resets", "dev_mailbox"];
const CATALOG_TABLES: &[&str] =
    &["products", "variants", "product_facets", "collections", "collection_products", "categories"];
const MEDIA_TABLES: &[&str] = &["product_images"];
const THEME_TABLES: &[&str] = &["theme_templates"];
const ORDER_TABLES: &[&str] = &[
    "checkout_settings",
    "shipping_methods",
    "tax_rates",
    "discount_codes",
    "carts",
    "cart_lines",
    "orders",
    "order_lines",
    "order_events",
    "payments",
    "payment_webhooks",
    "outbox",
    "customer_addresses",
    "audit_log",
];
const TOKEN_TABLES: &[&str] = &["api_tokens"];
const BUS_TABLES: &[&str] = &["bus_deliveries", "bus_dead_letters", "consumer_receipts", "store_activity"];
const WEBHOOK_TABLES: &[&str] = &["webhook_subscriptions", "webhook_deliveries", "webhook_attempts"];
const NOTIFICATION_TABLES: &[&str] = &["notifications"];
const IDEMPOTENCY_TABLES: &[&str] = &["idempotency_keys"];
const CHANNEL_TABLES: &[&str] = &["push_subscriptions", "phone_codes"];
const INBOX_TABLES: &[&str] =
    &["inbox_items", "notification_preferences", "marketing_consents", "back_in_stock_requests"];
const NOTIFICATION_TEMPLATE_TABLES: &[&str] = &["notification_templates"];
const STAFF_TABLES: &[&str] = &["staff_invitations"];
const NOTIFICATION_BODY_TABLES: &[&str] = &["notification_bodies"];

mod m0018_staff;
mod m0021_node_traffic;
mod m0022_queue_indexes;
mod m0023_notification_bodies;
mod m0024_notification_lanes;

pub(crate) struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(M0001Foundation),
            Box::new(M0002Catalog),
            Box::new(M0003Media),
            Box::new(M0004Themes),
            Box::new(M0005Branding),
            Box::new(M0006Orders),
            Box::new(M0007ApiTokens),
            Box::new(M0008Bus),
            Box::new(M0009Webhooks),
            Box::new(M0010BusAmqp),
            Box::new(M0011Notifications),
            Box::new(M0012Idempotency),
            Box::new(M0013TokenPurpose),
            Box::new(M0014Retention),
            Box::new(M0015Channels),
            Box::new(M0016Inbox),
            Box::new(M0017NotificationTemplates),
            Box::new(m0018_staff::M0018Staff),
            Box::new(M0019Plans),
            Box::new(M0020DomainVerification),
            Box::new(m0021_node_traffic::M0021NodeTraffic),
            Box::new(m0022_queue_indexes::M0022QueueIndexes),
            Box::new(m0023_notification_bodies::M0023NotificationBodies),
            Box::new(m0024_notification_lanes::M0024NotificationLanes),
        ]
    }
}

fn name(s: &str) -> Alias {
    Alias::new(s)
}

fn id() -> ColumnDef {
    ColumnDef::new(name("id")).uuid().not_null().primary_key().to_owned()
}

fn created_at() -> ColumnDef {
    ColumnDef::new(name("created_at")).timestamp_with_time_zone().not_null().to_owned()
}

/// `tenant_id` referencing `tenants(id)`; nullable where platform-level rows share the
/// table (an admin's password reset, a platform email in the dev mailbox).
fn tenant_ref(table: &str, nullable: bool) -> (ColumnDef, ForeignKeyCreateStatement) {
    let mut col = ColumnDef::new(name("tenant_id")).uuid().to_owned();
    if !nullable {
        col.not_null();
    }
    let fk = ForeignKey::create()
        .name(format!("fk_{table}_tenant"))
        .from(name(table), name("tenant_id"))
        .to(name("tenants"), name("id"))
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned();
    (col, fk)
}

/// Columns shared by the three account tables.
fn account_table(table: &str, tenant_scoped: bool) -> TableCreateStatement {
    let mut t = Table::create();
    t.table(name(table)).if_not_exists().col(id());
    if tenant_scoped {
        let (col, mut fk) = tenant_ref(table, false);
        t.col(col).foreign_key(&mut fk);
    }
    t.col(ColumnDef::new(name("email")).string_len(254).not_null())
        .col(ColumnDef::new(name("name")).string_len(200).not_null().default(""))
        .col(ColumnDef::new(name("password_hash")).string_len(200).not_null())
        // Bumped on every password change; sessions carry it, so changing the
        // password signs out every other device without a server-side session store.
        .col(ColumnDef::new(name("auth_version")).integer().not_null().default(1))
        .col(created_at())
        .to_owned()
}

struct M0001Foundation;

impl MigrationName for M0001Foundation {
    fn name(&self) -> &str {
        "m0001_foundation"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0001Foundation {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(name("tenants"))
                .if_not_exists()
                .col(id())
                .col(ColumnDef::new(name("slug")).string_len(40).not_null().unique_key())
                .col(ColumnDef::new(name("name")).string_len(200).not_null())
                .col(ColumnDef::new(name("status")).string_len(20).not_null())
                .col(ColumnDef::new(name("currency")).string_len(3).not_null())
                .col(ColumnDef::new(name("locale")).string_len(20).not_null())
                .col(created_at())
                .to_owned(),
        )
        .await?;

        let (tenant_col, mut fk) = tenant_ref("tenant_domains", false);
        m.create_table(
            Table::create()
                .table(name("tenant_domains"))
                .if_not_exists()
                .col(id())
                .col(tenant_col)
                .col(ColumnDef::new(name("domain")).string_len(253).not_null().unique_key())
                .col(ColumnDef::new(name("is_primary")).boolean().not_null().default(false))
                .col(created_at())
                .foreign_key(&mut fk)
                .to_owned(),
        )
        .await?;
        m.create_index(index("tenant_domains", &["tenant_id"], false)).await?;

        m.create_table(
            account_table("platform_admins", false)
                .index(Index::create().name("uq_platform_admins_email").col(name("email")).unique())
                .to_owned(),
        )
        .await?;
        m.create_table(
            account_table("staff", true).col(ColumnDef::new(name("role")).string_len(20).not_null()).to_owned(),
        )
        .await?;
        m.create_index(index("staff", &["tenant_id", "email"], true)).await?;
        m.create_table(account_table("customers", true)).await?;
        m.create_index(index("customers", &["tenant_id", "email"], true)).await?;

        let (tenant_col, mut fk) = tenant_ref("password_resets", true);
        m.create_table(
            Table::create()
                .table(name("password_resets"))
                .if_not_exists()
                .col(id())
                .col(tenant_col)
                .col(ColumnDef::new(name("account_kind")).string_len(20).not_null())
                .col(ColumnDef::new(name("account_id")).uuid().not_null())
                .col(ColumnDef::new(name("token_hash")).string_len(64).not_null().unique_key())
                .col(ColumnDef::new(name("expires_at")).timestamp_with_time_zone().not_null())
                .col(ColumnDef::new(name("used_at")).timestamp_with_time_zone().null())
                .col(created_at())
                .foreign_key(&mut fk)
                .to_owned(),
        )
        .await?;
        m.create_index(index("password_resets", &["account_id"], false)).await?;

        let (tenant_col, mut fk) = tenant_ref("dev_mailbox", true);
        m.create_table(
            Table::create()
                .table(name("dev_mailbox"))
                .if_not_exists()
                .col(id())
                .col(tenant_col)
                .col(ColumnDef::new(name("to_addr")).string_len(254).not_null())
                .col(ColumnDef::new(name("subject")).string_len(500).not_null())
                .col(ColumnDef::new(name("body_text")).text().not_null())
                .col(created_at())
                .foreign_key(&mut fk)
                .to_owned(),
        )
        .await?;
        m.create_index(index("dev_mailbox", &["tenant_id", "created_at"], false)).await?;

        if m.get_database_backend() == DbBackend::Postgres {
            enable_row_level_security(m, FOUNDATION_TABLES).await?;
        }
        Ok(())
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("the foundation migration cannot be reverted".into()))
    }
}

/// A tenant table: id, tenant_id (referencing tenants) and the given columns.
fn tenant_table(table: &str) -> TableCreateStatement {
    let (tenant_col, mut fk) = tenant_ref(table, false);
    Table::create().table(name(table)).if_not_exists().col(id()).col(tenant_col).foreign_key(&mut fk).to_owned()
}

/// `column` referencing `target(id)`: deleted with it, or set to NULL when nullable.
fn reference(table: &str, column: &str, target: &str, nullable: bool) -> (ColumnDef, ForeignKeyCreateStatement) {
    let mut col = ColumnDef::new(name(column)).uuid().to_owned();
    if !nullable {
        col.not_null();
    }
    let fk = ForeignKey::create()
        .name(format!("fk_{table}_{column}"))
        .from(name(table), name(column))
        .to(name(target), name("id"))
        .on_delete(if nullable { ForeignKeyAction::SetNull } else { ForeignKeyAction::Cascade })
        .to_owned();
    (col, fk)
}

struct M0002Catalog;

impl MigrationName for M0002Catalog {
    fn name(&self) -> &str {
        "m0002_catalog"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0002Catalog {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let (parent, mut parent_fk) = reference("categories", "parent_id", "categories", true);
        m.create_table(
            tenant_table("categories")
                .col(parent)
                .foreign_key(&mut parent_fk)
                .col(ColumnDef::new(name("handle")).string_len(120).not_null())
                .col(ColumnDef::new(name("name")).string_len(200).not_null())
                .col(ColumnDef::new(name("position")).integer().not_null().default(0))
                .col(created_at())
                .to_owned(),
        )
        .await?;
        m.create_index(index("categories", &["tenant_id", "handle"], true)).await?;

        let (category, mut category_fk) = reference("products", "category_id", "categories", true);
        m.create_table(
            tenant_table("products")
                .col(ColumnDef::new(name("handle")).string_len(120).not_null())
                .col(ColumnDef::new(name("title")).string_len(255).not_null())
                .col(ColumnDef::new(name("body_html")).text().not_null())
                .col(ColumnDef::new(name("status")).string_len(20).not_null())
                .col(ColumnDef::new(name("vendor")).string_len(200).not_null())
                .col(ColumnDef::new(name("product_type")).string_len(200).not_null())
                .col(ColumnDef::new(name("tags")).json_binary().not_null())
                .col(ColumnDef::new(name("attributes")).json_binary().not_null())
                .col(ColumnDef::new(name("options")).json_binary().not_null())
                // Derived from the variants on every write, for sorting and filtering.
                .col(ColumnDef::new(name("price_min")).big_integer().not_null())
                .col(ColumnDef::new(name("price_max")).big_integer().not_null())
                .col(ColumnDef::new(name("compare_at_max")).big_integer().null())
                .col(ColumnDef::new(name("total_stock")).big_integer().not_null())
                .col(category)
                .foreign_key(&mut category_fk)
                .col(ColumnDef::new(name("position")).integer().not_null().default(0))
                .col(created_at())
                .col(ColumnDef::new(name("updated_at")).timestamp_with_time_zone().not_null())
                .to_owned(),
        )
        .await?;
        m.create_index(index("products", &["tenant_id", "handle"], true)).await?;
        m.create_index(index("products", &["tenant_id", "status", "price_min"], false)).await?;
        m.create_index(index("products", &["tenant_id", "status", "created_at"], false)).await?;

        let (product, mut product_fk) = reference("variants", "product_id", "products", false);
        m.create_table(
            tenant_table("variants")
                .col(product)
                .foreign_key(&mut product_fk)
                .col(ColumnDef::new(name("position")).integer().not_null())
                .col(ColumnDef::new(name("sku")).string_len(100).null())
                .col(ColumnDef::new(name("option1")).string_len(200).null())
                .col(ColumnDef::new(name("option2")).string_len(200).null())
                .col(ColumnDef::new(name("option3")).string_len(200).null())
                .col(ColumnDef::new(name("price")).big_integer().not_null())
                .col(ColumnDef::new(name("compare_at")).big_integer().null())
                .col(ColumnDef::new(name("weight_grams")).integer().null())
                .col(ColumnDef::new(name("barcode")).string_len(100).null())
                .col(ColumnDef::new(name("stock")).integer().not_null())
                .col(created_at())
                .to_owned(),
        )
        .await?;
        m.create_index(index("variants", &["tenant_id", "product_id"], false)).await?;
        m.create_index(index("variants", &["tenant_id", "sku"], false)).await?;

        // Everything a listing can be filtered by, one row per (product, facet, value):
        // option values (`option:Color`), attributes (`attr:storage`), tags, vendor and
        // type. One portable table instead of JSON queries that differ per backend.
        let (product, mut product_fk) = reference("product_facets", "product_id", "products", false);
        m.create_table(
            tenant_table("product_facets")
                .col(product)
                .foreign_key(&mut product_fk)
                .col(ColumnDef::new(name("facet")).string_len(210).not_null())
                .col(ColumnDef::new(name("value")).string_len(200).not_null())
                .to_owned(),
        )
        .await?;
        m.create_index(index("product_facets", &["tenant_id", "facet", "value"], false)).await?;
        m.create_index(index("product_facets", &["product_id"], false)).await?;

        m.create_table(
            tenant_table("collections")
                .col(ColumnDef::new(name("handle")).string_len(120).not_null())
                .col(ColumnDef::new(name("title")).string_len(255).not_null())
                .col(ColumnDef::new(name("body_html")).text().not_null())
                // NULL for a manual collection; a JSON list of rules otherwise.
                .col(ColumnDef::new(name("rules")).json_binary().null())
                .col(ColumnDef::new(name("position")).integer().not_null().default(0))
                .col(created_at())
                .to_owned(),
        )
        .await?;
        m.create_index(index("collections", &["tenant_id", "handle"], true)).await?;

        let (collection, mut collection_fk) = reference("collection_products", "collection_id", "collections", false);
        let (product, mut product_fk) = reference("collection_products", "product_id", "products", false);
        m.create_table(
            tenant_table("collection_products")
                .col(collection)
                .foreign_key(&mut collection_fk)
                .col(product)
                .foreign_key(&mut product_fk)
                .col(ColumnDef::new(name("position")).integer().not_null().default(0))
                .to_owned(),
        )
        .await?;
        m.create_index(index("collection_products", &["collection_id", "product_id"], true)).await?;
        m.create_index(index("collection_products", &["product_id"], false)).await?;

        if m.get_database_backend() == DbBackend::Postgres {
            enable_row_level_security(m, CATALOG_TABLES).await?;
        }
        Ok(())
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("the catalog migration cannot be reverted".into()))
    }
}

fn index(table: &str, cols: &[&str], unique: bool) -> IndexCreateStatement {
    let kind = if unique { "uq" } else { "ix" };
    let mut idx = Index::create();
    idx.name(format!("{kind}_{table}_{}", cols.join("_"))).table(name(table)).if_not_exists();
    for c in cols {
        idx.col(name(c));
    }
    if unique {
        idx.unique();
    }
    idx.to_owned()
}

/// The role the application switches to for its work (`SET LOCAL ROLE`): a plain role,
/// so row-level security binds it even when the login role owns the tables or is a
/// superuser.
pub(crate) const APP_ROLE: &str = "ecom_app";

/// Turns on row-level security for `tables`, forced so that it binds the tables' owner
/// too. A row is visible when its `tenant_id` equals the transaction's `ecom.tenant_id`,
/// or when the transaction declared platform scope (`ecom.scope = 'platform'`, used only
/// by operator paths such as host resolution and the super-admin panel).
async fn enable_row_level_security(m: &SchemaManager<'_>, tables: &[&str]) -> Result<(), DbErr> {
    let db = m.get_connection();
    db.execute_unprepared(&format!(
        "DO $$ BEGIN
           IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
             CREATE ROLE {APP_ROLE} NOLOGIN;
           END IF;
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
         END $$;
         GRANT USAGE ON SCHEMA public TO {APP_ROLE};
         GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE};
         ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {APP_ROLE};"
    ))
    .await?;
    for table in tables {
        db.execute_unprepared(&format!(
            "ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
             ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
             CREATE POLICY tenant_isolation ON {table}
               USING (tenant_id = NULLIF(current_setting('ecom.tenant_id', true), '')::uuid
                      OR current_setting('ecom.scope', true) = 'platform')
               WITH CHECK (tenant_id = NULLIF(current_setting('ecom.tenant_id', true), '')::uuid
                      OR current_setting('ecom.scope', true) = 'platform');"
        ))
        .await?;
    }
    Ok(())
}

pub(crate) async fn run(db: &sea_orm::DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// [`run`], stopping before the migration called `name`.
pub(crate) async fn run_until(db: &sea_orm::DatabaseConnection, name: &str) -> Result<(), DbErr> {
    let all = Migrator::migrations();
    let Some(at) = all.iter().position(|m| m.name() == name) else {
        return Err(DbErr::Migration(format!("there is no migration called {name}")));
    };
    let applied = Migrator::get_applied_migrations(db).await?.len();
    let steps = at.saturating_sub(applied);
    if steps == 0 {
        return Ok(());
    }
    Migrator::up(db, Some(<u32 as std::convert::TryFrom<usize>>::try_from(steps).unwrap_or(u32::MAX))).await
}

struct M0003Media;

impl MigrationName for M0003Media {
    fn name(&self) -> &str {
        "m0003_media"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0003Media {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let (product, mut product_fk) = reference("product_images", "product_id", "products", false);
        m.create_table(
            tenant_table("product_images")
                .col(product)
                .foreign_key(&mut product_fk)
                // SHA-256 of the original: the content address of the stored files.
                .col(ColumnDef::new(name("hash")).string_len(64).not_null())
                .col(ColumnDef::new(name("ext")).string_len(8).not_null())
                .col(ColumnDef::new(name("width")).integer().not_null())
                .col(ColumnDef::new(name("height")).integer().not_null())
                .col(ColumnDef::new(name("alt")).string_len(500).not_null())
                .col(ColumnDef::new(name("position")).integer().not_null())
                .col(created_at())
                .to_owned(),
        )
        .await?;
        m.create_index(index("product_images", &["tenant_id", "product_id"], false)).await?;
        if m.get_database_backend() == DbBackend::Postgres {
            enable_row_level_security(m, MEDIA_TABLES).await?;
        }
        Ok(())
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("the media migration cannot be reverted".into()))
    }
}

struct M0004Themes;

impl MigrationName for M0004Themes {
    fn name(&self) -> &str {
        "m0004_themes"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0004Themes {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            tenant_table("theme_templates")
                .col(ColumnDef::new(name("name")).string_len(200).not_null())
                // "draft" or "published": a store has at most one of each per template.
                .col(ColumnDef::new(name("status")).string_len(20).not_null())
                .col(ColumnDef::new(name("source")).text().not_null())
                .col(ColumnDef::new(name("updated_at")).timestamp_with_time_zone().not_null())
                .to_owned(),
        )
        .await?;
        m.create_index(index("theme_templates", &["tenant_id", "name", "status"], true)).await?;
        if m.get_database_backend() == DbBackend::Postgres {
            enable_row_level_security(m, THEME_TABLES).await?;
        }
        Ok(())
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("the themes migration cannot be reverted".into()))
    }
}

struct M0005Branding;

impl MigrationName for M0005Branding {
    fn name(&self) -> &str {
        "m0005_branding"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0005Branding {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one column at a time.
        for col in [
            ColumnDef::new(name("brand_color")).string_len(7).null().to_owned(),
            ColumnDef::new(name("logo")).string_len(200).null().to_owned(),
        ] {
            m.alter_table(Table::alter().table(name("tenants")).add_column(col).to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("the branding migration cannot be reverted".into()))
    }
}

struct M0006Orders;

impl MigrationName for M0006Orders {
    fn name(&self) -> &str {
        "m0006_orders"
    }
}

fn money(col: &str) -> ColumnDef {
    ColumnDef::new(name(col)).big_integer().not_null().default(0).to_owned()
}

fn text(col: &str, len: u32) -> ColumnDef {
    ColumnDef::new(name(col)).string_len(len).not_null().default("").to_owned()
}

fn at(col: &str, nullable: bool) -> ColumnDef {
    let mut c = ColumnDef::new(name(col)).timestamp_with_time_zone().to_owned();
    if nullable {
        c.null()
    } else {
        c.not_null()
    };
    c
}

#[async_trait::async_trait]
impl MigrationTrait for M0006Orders {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One row per store, made on first use; also hands out order numbers.
        m.create_table(
            tenant_table("checkout_settings")
                .col(ColumnDef::new(name("prices_include_tax")).boolean().not_null().default(false))
                .col(ColumnDef::new(name("order_expiry_minutes")).integer().not_null().default(60))
                .col(ColumnDef::new(name("auto_capture")).boolean().not_null().default(true))
                .col(ColumnDef::new(name("manual_instructions")).text().not_null().default(""))
                .col(ColumnDef::new(name("next_order_number")).big_integer().not_null().default(1001))
                .to_owned(),
        )
        .await?;
        m.create_index(index("checkout_settings", &["tenant_id"], true)).await?;

        m.create_table(
            tenant_table("shipping_methods")
                .col(text("code", 60))
                .col(text("title", 200))
                .col(money("base"))
                .col(money("per_kg"))
                .col(ColumnDef::new(name("free_over")).big_integer().null())
                .col(text("countries", 1000))
                .col(ColumnDef::new(name("position")).integer().not_null().default(0))
                .to_owned(),
        )
        .await?;
        m.create_index(index("shipping_methods", &["tenant_id", "code"], true)).await?;

        m.create_table(
            tenant_table("tax_rates")
                .col(text("country", 2))
                .col(text("region", 100))
                .col(text("name", 100))
                .col(ColumnDef::new(name("basis_points")).integer().not_null())
                .to_owned(),
        )
        .await?;
        m.create_index(index("tax_rates", &["tenant_id", "country", "region"], true)).await?;

        m.create_table(
            tenant_table("discount_codes")
                .col(text("code", 60))
                .col(text("kind", 20))
                .col(money("value"))
                .col(money("min_subtotal"))
                .col(ColumnDef::new(name("usage_limit")).big_integer().null())
                .col(money("used"))
                .col(at("expires_at", true))
                .col(ColumnDef::new(name("active")).boolean().not_null().default(true))
                .col(created_at())
                .to_owned(),
        )
        .await?;
        m.create_index(index("discount_codes", &["tenant_id", "code"], true)).await?;

        let (customer, mut customer_fk) = reference("carts", "customer_id", "customers", true);
        m.create_table(
            tenant_table("carts")
                .col(customer)
                .foreign_key(&mut customer_fk)
                .col(text("email", 254))
                .col(text("phone", 40))
                .col(ColumnDef::new(name("address")).json_binary().null())
                .col(text("shipping_code", 60))
                .col(text("discount_code", 60))
                .col(created_at())
                .col(at("updated_at", false))
                .to_owned(),
        )
        .await?;
        m.create_index(index("carts", &["tenant_id", "customer_id"], false)).await?;

        let (cart, mut cart_fk) = reference("cart_lines", "cart_id", "carts", false);
        let (variant, mut variant_fk) = reference("cart_lines", "variant_id", "variants", false);
        m.create_table(
            tenant_table("cart_lines")
                .col(cart)
                .foreign_key(&mut cart_fk)
                .col(variant)
                .foreign_key(&mut variant_fk)
                .col(ColumnDef::new(name("quantity")).integer().not_null())
                .col(created_at())
                .to_owned(),
        )
        .await?;
        m.create_index(index("cart_lines", &["cart_id", "variant_id"], true)).await?;

        let (customer, mut customer_fk) = reference("orders", "customer_id", "customers", true);
        m.create_table(
            tenant_table("orders")
                .col(ColumnDef::new(name("number")).big_integer().not_null())
                // The cart it came from: placing the same cart twice finds this order.
                .col(ColumnDef::new(name("cart_id")).uuid().not_null())
                // A secret for the guest's order page.
                .col(text("access_token", 64))
                .col(customer)
                .foreign_key(&mut customer_fk)
                .col(text("email", 254))
                .col(text("phone", 40))
                .col(ColumnDef::new(name("address")).json_binary().not_null())
                .col(text("shipping_code", 60))
                .col(text("shipping_title", 200))
                .col(text("currency", 3))
                .col(money("subtotal"))
                .col(money("discount"))
                .col(money("shipping"))
                .col(money("tax"))
                .col(ColumnDef::new(name("taxes_included")).boolean().not_null().default(false))
                .col(money("total"))
                .col(money("refunded"))
                .col(text("discount_code", 60))
                .col(text("status", 30))
                .col(text("payment_status", 30))
                .col(text("return_status", 30))
                .col(text("payment_provider", 30))
                .col(text("carrier", 100))
                .col(text("tracking_number", 100))
                .col(at("placed_at", false))
                .col(at("expires_at", true))
                .col(at("updated_at", false))
                .to_owned(),
        )
        .await?;
        m.create_index(index("orders", &["tenant_id", "number"], true)).await?;
        m.create_index(index("orders", &["tenant_id", "cart_id"], true)).await?;
        m.create_index(index("orders", &["access_token"], true)).await?;
        m.create_index(index("orders", &["tenant_id", "customer_id"], false)).await?;
        m.create_index(index("orders", &["tenant_id", "status", "placed_at"], false)).await?;
        m.create_index(index("orders", &["status", "expires_at"], false)).await?;

        let (order, mut order_fk) = reference("order_lines", "order_id", "orders", false);
        m.create_table(
            tenant_table("order_lines")
                .col(order)
                .foreign_key(&mut order_fk)
                // Snapshots: the order keeps what was bought even if the product goes.
                .col(ColumnDef::new(name("product_id")).uuid().null())
                .col(ColumnDef::new(name("variant_id")).uuid().null())
                .col(text("title", 255))
                .col(text("variant_title", 255))
                .col(text("sku", 100))
                .col(money("unit_price"))
                .col(ColumnDef::new(name("quantity")).integer().not_null())
                .col(ColumnDef::new(name("fulfilled")).integer().not_null().default(0))
                .col(ColumnDef::new(name("weight_grams")).integer().not_null().default(0))
                .col(ColumnDef::new(name("position")).integer().not_null().default(0))
                .to_owned(),
        )
        .await?;
        m.create_index(index("order_lines", &["tenant_id", "order_id"], false)).await?;

        let (order, mut order_fk) = reference("order_events", "order_id", "orders", false);
        m.create_table(
            tenant_table("order_events")
                .col(order)
                .foreign_key(&mut order_fk)
                .col(text("kind", 60))
                .col(text("message", 1000))
                .col(text("actor", 300))
                .col(created_at())
                .to_owned(),
        )
        .await?;
        m.create_index(index("order_events", &["tenant_id", "order_id"], false)).await?;

        let (order, mut order_fk) = reference("payments", "order_id", "orders", false);
        m.create_table(
            tenant_table("payments")
                .col(order)
                .foreign_key(&mut order_fk)
                .col(text("provider", 30))
                .col(text("kind", 20))
                .col(money("amount"))
                .col(text("status", 20))
                .col(text("reference", 200))
                .col(text("idempotency_key", 200))
                .col(text("error", 500))
                .col(created_at())
                .to_owned(),
        )
        .await?;
        m.create_index(index("payments", &["tenant_id", "idempotency_key"], true)).await?;
        m.create_index(index("payments", &["tenant_id", "order_id"], false)).await?;

        // Provider events already applied: a replayed webhook finds its id here.
        m.create_table(
            tenant_table("payment_webhooks")
                .col(text("provider", 30))
                .col(text("event_id", 200))
                .col(created_at())
                .to_owned(),
        )
        .await?;
        m.create_index(index("payment_webhooks", &["tenant_id", "provider", "event_id"], true)).await?;

        m.create_table(
            tenant_table("outbox")
                .col(text("topic", 100))
                .col(ColumnDef::new(name("payload")).json_binary().not_null())
                .col(created_at())
                .col(at("published_at", true))
                .to_owned(),
        )
        .await?;
        m.create_index(index("outbox", &["published_at", "created_at"], false)).await?;

        let (customer, mut customer_fk) = reference("customer_addresses", "customer_id", "customers", false);
        m.create_table(
            tenant_table("customer_addresses")
                .col(customer)
                .foreign_key(&mut customer_fk)
                .col(ColumnDef::new(name("address")).json_binary().not_null())
                .col(ColumnDef::new(name("is_default")).boolean().not_null().default(false))
                .col(created_at())
                .to_owned(),
        )
        .await?;
        m.create_index(index("customer_addresses", &["tenant_id", "customer_id"], false)).await?;

        m.create_table(
            tenant_table("audit_log")
                .col(text("actor", 300))
                .col(text("action", 100))
                .col(text("target", 300))
                .col(text("detail", 2000))
                .col(created_at())
                .to_owned(),
        )
        .await?;
        m.create_index(index("audit_log", &["tenant_id", "created_at"], false)).await?;
        if m.get_database_backend() == DbBackend::Postgres {
            enable_row_level_security(m, ORDER_TABLES).await?;
        }
        Ok(())
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("the orders migration cannot be reverted".into()))
    }
}

struct M0007ApiTokens;

impl MigrationName for M0007ApiTokens {
    fn name(&self) -> &str {
        "m0007_api_tokens"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0007ApiTokens {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Bearer tokens for the GraphQL APIs: a merchant's app tokens (with scopes) and
        // customers' access tokens. Only a SHA-256 of each token is stored.
        let (customer, mut customer_fk) = reference("api_tokens", "customer_id", "customers", true);
        m.create_table(
            tenant_table("api_tokens")
                .col(text("kind", 20))
                .col(text("name", 200))
                .col(text("token_hash", 64))
                .col(text("scopes", 1000))
                .col(customer)
                .foreign_key(&mut customer_fk)
                // The customer's auth_version when issued: a password change revokes.
                .col(ColumnDef::new(name("auth_version")).integer().not_null().default(0))
                .col(text("created_by", 300))
                .col(created_at())
                .col(at("expires_at", true))
                .col(at("last_used_at", true))
                .col(at("revoked_at", true))
                .to_owned(),
        )
        .await?;
        m.create_index(index("api_tokens", &["tenant_id", "token_hash"], true)).await?;
        m.create_index(index("api_tokens", &["tenant_id", "kind", "created_at"], false)).await?;
        if m.get_database_backend() == DbBackend::Postgres {
            enable_row_level_security(m, TOKEN_TABLES).await?;
        }
        Ok(())
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("the API tokens migration cannot be reverted".into()))
    }
}

struct M0008Bus;

impl MigrationName for M0008Bus {
    fn name(&self) -> &str {
        "m0008_bus"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0008Bus {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // The relay fans each outbox event out to its consumers once (`dispatched_at`);
        // `version` is the event's schema version in the catalogue.
        m.alter_table(Table::alter().table(name("outbox")).add_column(at("dispatched_at", true)).to_owned()).await?;
        m.alter_table(
            Table::alter()
                .table(name("outbox"))
                .add_column(ColumnDef::new(name("version")).integer().not_null().default(1))
                .to_owned(),
        )
        .await?;
        m.create_index(index("outbox", &["dispatched_at", "created_at"], false)).await?;

        // One row per event and consumer: its own attempts and schedule, so a failing
        // consumer neither holds back nor re-runs the others. A relay claims a row with
        // a lease (`claimed_by`, `claimed_until`) taken by a conditional update.
        let (event, mut event_fk) = reference("bus_deliveries", "event_id", "outbox", false);
        m.create_table(
            tenant_table("bus_deliveries")
                .col(event)
                .foreign_key(&mut event_fk)
                .col(text("consumer", 100))
                .col(text("topic", 100))
                .col(text("status", 20))
                .col(ColumnDef::new(name("attempts")).integer().not_null().default(0))
                .col(at("next_attempt_at", false))
                .col(text("claimed_by", 100))
                .col(at("claimed_until", true))
                .col(ColumnDef::new(name("last_error")).text().not_null().default(""))
                .col(at("delivered_at", true))
                .col(created_at())
                .to_owned(),
        )
        .await?;
        m.create_index(index("bus_deliveries", &["event_id", "consumer"], true)).await?;
        m.create_index(index("bus_deliveries", &["status", "next_attempt_at"], false)).await?;

        let (delivery, mut delivery_fk) = reference("bus_dead_letters", "delivery_id", "bus_deliveries", false);
        m.create_table(
            tenant_table("bus_dead_letters")
                .col(delivery)
                .foreign_key(&mut delivery_fk)
                .col(ColumnDef::new(name("event_id")).uuid().not_null())
                .col(text("consumer", 100))
                .col(text("topic", 100))
                .col(ColumnDef::new(name("error")).text().not_null().default(""))
                .col(ColumnDef::new(name("attempts")).integer().not_null().default(0))
                .col(ColumnDef::new(name("payload")).json_binary().not_null())
                .col(at("dead_at", false))
                .to_owned(),
        )
        .await?;
        m.create_index(index("bus_dead_letters", &["delivery_id"], true)).await?;
        m.create_index(index("bus_dead_letters", &["tenant_id", "dead_at"], false)).await?;
        m.create_index(index("bus_dead_letters", &["dead_at"], false)).await?;

        // Events a consumer has applied, written in the same transaction as its effect:
        // a redelivered event finds its receipt and changes nothing.
        m.create_table(
            tenant_table("consumer_receipts")
                .col(text("consumer", 100))
                .col(ColumnDef::new(name("event_id")).uuid().not_null())
                .col(created_at())
                .to_owned(),
        )
        .await?;
        m.create_index(index("consumer_receipts", &["consumer", "event_id"], true)).await?;

        // The activity consumer's counters: events per store, day and topic.
        m.create_table(
            tenant_table("store_activity")
                .col(text("day", 10))
                .col(text("topic", 100))
                .col(ColumnDef::new(name("count")).big_integer().not_null().default(0))
                .to_owned(),
        )
        .await?;
        m.create_index(index("store_activity", &["tenant_id", "day", "topic"], true)).await?;
        if m.get_database_backend() == DbBackend::Postgres {
            enable_row_level_security(m, BUS_TABLES).await?;
        }
        Ok(())
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("the bus migration cannot be reverted".into()))
    }
}

struct M0009Webhooks;

impl MigrationName for M0009Webhooks {
    fn name(&self) -> &str {
        "m0009_webhooks"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0009Webhooks {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // A merchant's subscription of a URL to topics. The signing secret is kept
        // encrypted (AES-256-GCM under a key derived from the platform secret): the
        // sender needs it in clear to sign, so it cannot be a hash like API tokens.
        m.create_table(
            tenant_table("webhook_subscriptions")
                .col(text("callback_url", 2000))
                .col(text("topics", 2000))
                .col(text("secret_sealed", 300))
                .col(text("status", 20))
                .col(at("failing_since", true))
                .col(text("disabled_reason", 500))
                .col(at("last_attempt_at", true))
                .col(text("last_result", 300))
                .col(text("created_by", 300))
                .col(created_at())
                .to_owned(),
        )
        .await?;
        m.create_index(index("webhook_subscriptions", &["tenant_id", "created_at"], false)).await?;

        // One row per subscription and event (unique), leased to one sender at a time
        // like the bus relay's deliveries; `body` is the exact JSON that is signed
        // and sent on every attempt.
        let (sub, mut sub_fk) = reference("webhook_deliveries", "subscription_id", "webhook_subscriptions", false);
        m.create_table(
            tenant_table("webhook_deliveries")
                .col(sub)
                .foreign_key(&mut sub_fk)
                .col(ColumnDef::new(name("event_id")).uuid().not_null())
                .col(text("topic", 100))
                .col(ColumnDef::new(name("body")).text().not_null())
                .col(text("status", 20))
                .col(ColumnDef::new(name("attempts")).integer().not_null().default(0))
                .col(at("next_attempt_at", false))
                .col(text("claimed_by", 100))
                .col(at("claimed_until", true))
                .col(ColumnDef::new(name("last_status_code")).integer().null())
                .col(ColumnDef::new(name("last_error")).text().not_null().default(""))
                .col(at("delivered_at", true))
                .col(created_at())
                .to_owned(),
        )
        .await?;
        m.create_index(index("webhook_deliveries", &["subscription_id", "event_id"], true)).await?;
        m.create_index(index("webhook_deliveries", &["status", "next_attempt_at"], false)).await?;
        m.create_index(index("webhook_deliveries", &["tenant_id", "subscription_id", "created_at"], false)).await?;

        // Every attempt: the answer's status (or the network error), latency and the
        // first kilobyte of the answer, for the merchant's delivery log.
        let (delivery, mut delivery_fk) = reference("webhook_attempts", "delivery_id", "webhook_deliveries", false);
        m.create_table(
            tenant_table("webhook_attempts")
                .col(delivery)
                .foreign_key(&mut delivery_fk)
                .col(at("at", false))
                .col(ColumnDef::new(name("status_code")).integer().null())
                .col(ColumnDef::new(name("error")).text().not_null().default(""))
                .col(ColumnDef::new(name("latency_ms")).integer().not_null().default(0))
                .col(ColumnDef::new(name("response_excerpt")).text().not_null().default(""))
                .to_owned(),
        )
        .await?;
        m.create_index(index("webhook_attempts", &["delivery_id", "at"], false)).await?;
        if m.get_database_backend() == DbBackend::Postgres {
            enable_row_level_security(m, WEBHOOK_TABLES).await?;
        }
        Ok(())
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("the webhooks migration cannot be reverted".into()))
    }
}

struct M0010BusAmqp;

impl MigrationName for M0010BusAmqp {
    fn name(&self) -> &str {
        "m0010_bus_amqp"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0010BusAmqp {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // RabbitMQ mode: a relay leases the outbox events it is publishing (a
        // conditional update, the same on both backends), so two relays do not publish
        // the same event, and one that dies mid-publish loses its lease to another.
        // One column per statement: SQLite alters one at a time.
        m.alter_table(Table::alter().table(name("outbox")).add_column(text("claimed_by", 100)).to_owned()).await?;
        m.alter_table(Table::alter().table(name("outbox")).add_column(at("claimed_until", true)).to_owned()).await?;
        Ok(())
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("the RabbitMQ bus migration cannot be reverted".into()))
    }
}

struct M0011Notifications;

impl MigrationName for M0011Notifications {
    fn name(&self) -> &str {
        "m0011_notifications"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0011Notifications {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // The notification queue and delivery log in one table: a row is written in the
        // transaction of the change it tells about, then a dispatcher leases it
        // (`claimed_by`, `claimed_until`, by a conditional update, like the bus relay),
        // sends it and records the outcome on the row. `tenant_id` is NULL for platform
        // mail (an operator's password reset); such rows, like the dev mailbox's, are
        // visible only in platform scope under row-level security.
        let (tenant_col, mut fk) = tenant_ref("notifications", true);
        m.create_table(
            Table::create()
                .table(name("notifications"))
                .if_not_exists()
                .col(id())
                .col(tenant_col)
                .foreign_key(&mut fk)
                .col(text("channel", 20))
                .col(text("recipient", 254))
                .col(text("template", 100))
                .col(ColumnDef::new(name("event_id")).uuid().null())
                .col(text("subject", 500))
                .col(ColumnDef::new(name("body_text")).text().not_null().default(""))
                .col(ColumnDef::new(name("body_html")).text().not_null().default(""))
                .col(text("status", 20))
                .col(ColumnDef::new(name("attempts")).integer().not_null().default(0))
                .col(at("next_attempt_at", false))
                .col(text("claimed_by", 100))
                .col(at("claimed_until", true))
                .col(text("provider_id", 500))
                .col(ColumnDef::new(name("last_error")).text().not_null().default(""))
                .col(at("sent_at", true))
                .col(created_at())
                .to_owned(),
        )
        .await?;
        m.create_index(index("notifications", &["status", "next_attempt_at"], false)).await?;
        m.create_index(index("notifications", &["tenant_id", "created_at"], false)).await?;
        m.create_index(index("notifications", &["created_at"], false)).await?;
        if m.get_database_backend() == DbBackend::Postgres {
            enable_row_level_security(m, NOTIFICATION_TABLES).await?;
        }
        Ok(())
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("the notifications migration cannot be reverted".into()))
    }
}

struct M0012Idempotency;

impl MigrationName for M0012Idempotency {
    fn name(&self) -> &str {
        "m0012_idempotency"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0012Idempotency {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Idempotency keys of mutating API requests: a client's key, a fingerprint of the
        // request it came with, and the answer once there is one (`status` 0 while the
        // request runs), so a retried request gets the first answer instead of a second
        // effect.
        m.create_table(
            tenant_table("idempotency_keys")
                .col(text("client", 100))
                .col(text("key", 255))
                .col(text("fingerprint", 64))
                .col(ColumnDef::new(name("status")).integer().not_null().default(0))
                .col(ColumnDef::new(name("response")).text().not_null().default(""))
                .col(created_at())
                .col(at("completed_at", true))
                .to_owned(),
        )
        .await?;
        m.create_index(index("idempotency_keys", &["tenant_id", "client", "key"], true)).await?;
        m.create_index(index("idempotency_keys", &["created_at"], false)).await?;
        if m.get_database_backend() == DbBackend::Postgres {
            enable_row_level_security(m, IDEMPOTENCY_TABLES).await?;
        }
        Ok(())
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("the idempotency migration cannot be reverted".into()))
    }
}

struct M0013TokenPurpose;

impl MigrationName for M0013TokenPurpose {
    fn name(&self) -> &str {
        "m0013_token_purpose"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0013TokenPurpose {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One-time tokens now also verify emails and sign people in; each works only for
        // its purpose. Existing rows are password tokens.
        m.alter_table(
            Table::alter()
                .table(name("password_resets"))
                .add_column(ColumnDef::new(name("purpose")).string_len(20).not_null().default("password"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("password_resets", &["account_id", "purpose"], false)).await?;
        Ok(())
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("the token purpose migration cannot be reverted".into()))
    }
}

struct M0015Channels;

impl MigrationName for M0015Channels {
    fn name(&self) -> &str {
        "m0015_channels"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0015Channels {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Web Push subscriptions of customers and staff: the browser's push service
        // endpoint and the keys (RFC 8291) its messages are encrypted to. A 404/410
        // from the endpoint deletes the row.
        m.create_table(
            tenant_table("push_subscriptions")
                .col(text("owner_kind", 10))
                .col(ColumnDef::new(name("account_id")).uuid().not_null())
                .col(ColumnDef::new(name("endpoint")).string_len(2000).not_null())
                .col(text("p256dh", 200))
                .col(text("auth", 100))
                .col(created_at())
                .col(at("last_used_at", true))
                .to_owned(),
        )
        .await?;
        m.create_index(index("push_subscriptions", &["tenant_id", "endpoint"], true)).await?;
        m.create_index(index("push_subscriptions", &["tenant_id", "owner_kind", "account_id"], false)).await?;
        // One-time phone verification codes, hashed; a code lives ten minutes and
        // takes five wrong tries.
        let (customer_col, mut customer_fk) = reference("phone_codes", "customer_id", "customers", false);
        m.create_table(
            tenant_table("phone_codes")
                .col(customer_col)
                .foreign_key(&mut customer_fk)
                .col(text("phone", 20))
                .col(text("code_hash", 64))
                .col(ColumnDef::new(name("attempts")).integer().not_null().default(0))
                .col(at("expires_at", false))
                .col(created_at())
                .to_owned(),
        )
        .await?;
        m.create_index(index("phone_codes", &["tenant_id", "customer_id", "created_at"], false)).await?;
        // A customer's phone: set when they ask for a code, verified when they enter it.
        // SQLite alters one column per statement.
        for col in [ColumnDef::new(name("phone")).string_len(20).null().to_owned(), at("phone_verified_at", true)] {
            m.alter_table(Table::alter().table(name("customers")).add_column(col).to_owned()).await?;
        }
        // Platform-level key material the platform makes for itself (the Web Push
        // VAPID key pair when none is configured), shared by every node.
        m.create_table(
            Table::create()
                .table(name("platform_keys"))
                .if_not_exists()
                .col(ColumnDef::new(name("name")).string_len(50).not_null().primary_key())
                .col(ColumnDef::new(name("value")).text().not_null())
                .col(created_at())
                .to_owned(),
        )
        .await?;
        if m.get_database_backend() == DbBackend::Postgres {
            enable_row_level_security(m, CHANNEL_TABLES).await?;
        }
        Ok(())
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("the channels migration cannot be reverted".into()))
    }
}

struct M0017NotificationTemplates;

impl MigrationName for M0017NotificationTemplates {
    fn name(&self) -> &str {
        "m0017_notification_templates"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0017NotificationTemplates {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // A store's own wording of a message, per template and channel; messages without
        // a row are written by the built-in templates.
        m.create_table(
            tenant_table("notification_templates")
                .col(text("name", 100))
                .col(text("channel", 20))
                .col(ColumnDef::new(name("subject")).text().not_null().default(""))
                .col(ColumnDef::new(name("body_text")).text().not_null().default(""))
                .col(ColumnDef::new(name("body_html")).text().not_null().default(""))
                .col(text("updated_by", 254))
                .col(at("updated_at", false))
                .to_owned(),
        )
        .await?;
        m.create_index(index("notification_templates", &["tenant_id", "name", "channel"], true)).await?;
        if m.get_database_backend() == DbBackend::Postgres {
            enable_row_level_security(m, NOTIFICATION_TEMPLATE_TABLES).await?;
        }
        Ok(())
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("the notification templates migration cannot be reverted".into()))
    }
}

struct M0020DomainVerification;

impl MigrationName for M0020DomainVerification {
    fn name(&self) -> &str {
        "m0020_domain_verification"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0020DomainVerification {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // A custom domain now routes only once verified. Domains that existed before
        // this migration were routing already, so they start verified; new ones are
        // written `pending` with a token the merchant publishes (DNS TXT or HTTP file).
        // `next_check_at` drives the leased background re-check, `claimed_*` the lease.
        // One column per statement: SQLite alters one at a time.
        let domains = || Table::alter().table(name("tenant_domains")).to_owned();
        for col in [
            ColumnDef::new(name("status")).string_len(20).not_null().default("verified").to_owned(),
            text("token", 64),
            at("verified_at", true),
            at("last_checked_at", true),
            at("next_check_at", true),
            ColumnDef::new(name("check_attempts")).integer().not_null().default(0).to_owned(),
            ColumnDef::new(name("last_error")).text().not_null().default("").to_owned(),
            text("claimed_by", 100),
            at("claimed_until", true),
        ] {
            m.alter_table(domains().add_column(col).to_owned()).await?;
        }
        m.create_index(index("tenant_domains", &["status", "next_check_at"], false)).await?;
        m.create_index(index("tenant_domains", &["token"], false)).await?;
        // The primary domain, copied onto the store so every lookup of a store (host
        // resolution, links in messages) has it without a second query.
        m.alter_table(
            Table::alter()
                .table(name("tenants"))
                .add_column(ColumnDef::new(name("primary_domain")).string_len(253).null())
                .to_owned(),
        )
        .await?;
        m.get_connection()
            .execute_unprepared(
                "UPDATE tenants SET primary_domain = (SELECT d.domain FROM tenant_domains d \
                 WHERE d.tenant_id = tenants.id AND d.is_primary = TRUE)",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("the domain verification migration cannot be reverted".into()))
    }
}

struct M0019Plans;

impl MigrationName for M0019Plans {
    fn name(&self) -> &str {
        "m0019_plans"
    }
}

/// A plan limit: NULL is unlimited.
fn limit(col: &str) -> ColumnDef {
    ColumnDef::new(name(col)).big_integer().null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for M0019Plans {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Plans are the platform's, not a tenant's: no tenant_id, no row-level security.
        m.create_table(
            Table::create()
                .table(name("plans"))
                .if_not_exists()
                .col(id())
                .col(ColumnDef::new(name("code")).string_len(40).not_null())
                .col(ColumnDef::new(name("name")).string_len(100).not_null())
                .col(text("price", 100))
                .col(limit("max_products"))
                .col(limit("max_staff"))
                .col(limit("api_per_minute"))
                .col(limit("max_storage_bytes"))
                .col(ColumnDef::new(name("is_default")).boolean().not_null().default(false))
                .col(created_at())
                .to_owned(),
        )
        .await?;
        m.create_index(index("plans", &["code"], true)).await?;
        // Operator actions that concern no single store (plans); actions on a store go
        // to that store's audit log, where the merchant sees them too.
        m.create_table(
            Table::create()
                .table(name("operator_log"))
                .if_not_exists()
                .col(id())
                .col(text("actor", 300))
                .col(text("action", 100))
                .col(text("target", 300))
                .col(text("detail", 1000))
                .col(created_at())
                .to_owned(),
        )
        .await?;
        m.create_index(index("operator_log", &["created_at"], false)).await?;
        // No foreign key: SQLite cannot add one to an existing table; the plan of a store
        // is checked when it is set, and a plan in use is never deleted.
        m.alter_table(
            Table::alter().table(name("tenants")).add_column(ColumnDef::new(name("plan_id")).uuid().null()).to_owned(),
        )
        .await?;
        m.create_index(index("tenants", &["plan_id"], false)).await?;
        // The size of each stored original, for the plan's storage limit. Images stored
        // before this count as 0 bytes.
        m.alter_table(
            Table::alter()
                .table(name("product_images"))
                .add_column(ColumnDef::new(name("bytes")).big_integer().not_null().default(0))
                .to_owned(),
        )
        .await?;
        let now = chrono::Utc::now();
        let starter = uuid::Uuid::now_v7();
        let unlimited = uuid::Uuid::now_v7();
        let mut insert = Query::insert();
        insert.into_table(name("plans")).columns(
            [
                "id",
                "code",
                "name",
                "price",
                "max_products",
                "max_staff",
                "api_per_minute",
                "max_storage_bytes",
                "is_default",
                "created_at",
            ]
            .map(name),
        );
        insert.values_panic([
            starter.into(),
            "starter".into(),
            "Starter".into(),
            "Free".into(),
            Some(100i64).into(),
            Some(3i64).into(),
            Some(600i64).into(),
            Some(500_000_000i64).into(),
            true.into(),
            now.into(),
        ]);
        insert.values_panic([
            unlimited.into(),
            "unlimited".into(),
            "Unlimited".into(),
            "Ask us".into(),
            None::<i64>.into(),
            None::<i64>.into(),
            None::<i64>.into(),
            None::<i64>.into(),
            false.into(),
            now.into(),
        ]);
        m.exec_stmt(insert).await?;
        // Stores opened before plans existed keep working as they did: no limits.
        m.exec_stmt(
            Query::update()
                .table(name("tenants"))
                .value(name("plan_id"), unlimited)
                .and_where(Expr::col(name("plan_id")).is_null())
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("the plans migration cannot be reverted".into()))
    }
}

struct M0016Inbox;

impl MigrationName for M0016Inbox {
    fn name(&self) -> &str {
        "m0016_inbox"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0016Inbox {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // The in-app channel's inbox: one row per message to one customer or staff
        // account. `notification_id` is the queue row it was sent for, unique, so a
        // dispatcher that sends a message twice (a lost lease) files it once.
        m.create_table(
            tenant_table("inbox_items")
                .col(text("recipient_kind", 10))
                .col(ColumnDef::new(name("recipient_id")).uuid().not_null())
                .col(ColumnDef::new(name("notification_id")).uuid().null())
                .col(text("title", 500))
                .col(ColumnDef::new(name("body")).text().not_null().default(""))
                .col(text("link", 1000))
                .col(at("read_at", true))
                .col(created_at())
                .to_owned(),
        )
        .await?;
        m.create_index(index("inbox_items", &["tenant_id", "recipient_kind", "recipient_id", "created_at"], false))
            .await?;
        m.create_index(index("inbox_items", &["notification_id"], true)).await?;
        // What a customer wants, per message kind and channel; no row = the default.
        let (customer, mut customer_fk) = reference("notification_preferences", "customer_id", "customers", false);
        m.create_table(
            tenant_table("notification_preferences")
                .col(customer)
                .foreign_key(&mut customer_fk)
                .col(text("kind", 30))
                .col(text("channel", 20))
                .col(ColumnDef::new(name("enabled")).boolean().not_null())
                .col(at("updated_at", false))
                .to_owned(),
        )
        .await?;
        m.create_index(index("notification_preferences", &["tenant_id", "customer_id", "kind", "channel"], true))
            .await?;
        // Marketing consent per address in a store: when and how it was given, and
        // when and how it was withdrawn (the unsubscribe link, the account page).
        m.create_table(
            tenant_table("marketing_consents")
                .col(text("email", 254))
                .col(at("granted_at", true))
                .col(text("granted_via", 50))
                .col(at("withdrawn_at", true))
                .col(text("withdrawn_via", 50))
                .col(at("updated_at", false))
                .to_owned(),
        )
        .await?;
        m.create_index(index("marketing_consents", &["tenant_id", "email"], true)).await?;
        // "Email me when it is back": open until the message about it is queued.
        let (variant, mut variant_fk) = reference("back_in_stock_requests", "variant_id", "variants", false);
        m.create_table(
            tenant_table("back_in_stock_requests")
                .col(variant)
                .foreign_key(&mut variant_fk)
                .col(ColumnDef::new(name("customer_id")).uuid().null())
                .col(text("email", 254))
                .col(at("confirmed_at", true))
                .col(at("notified_at", true))
                .col(created_at())
                .to_owned(),
        )
        .await?;
        m.create_index(index("back_in_stock_requests", &["tenant_id", "variant_id", "notified_at"], false)).await?;
        m.create_index(index("back_in_stock_requests", &["notified_at", "confirmed_at"], false)).await?;
        // One abandoned-cart reminder per cart; marked in the transaction that queues it.
        m.alter_table(Table::alter().table(name("carts")).add_column(at("reminded_at", true)).to_owned()).await?;
        // Extra mail headers (JSON object; List-Unsubscribe on marketing mail) and the
        // link an in-app item points at, carried from the queue to the channel.
        m.alter_table(
            Table::alter()
                .table(name("notifications"))
                .add_column(ColumnDef::new(name("headers")).text().not_null().default(""))
                .to_owned(),
        )
        .await?;
        m.alter_table(Table::alter().table(name("notifications")).add_column(text("link", 1000)).to_owned()).await?;
        if m.get_database_backend() == DbBackend::Postgres {
            enable_row_level_security(m, INBOX_TABLES).await?;
        }
        Ok(())
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("the inbox migration cannot be reverted".into()))
    }
}

struct M0014Retention;

impl MigrationName for M0014Retention {
    fn name(&self) -> &str {
        "m0014_retention"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0014Retention {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Leases on platform jobs that one node at a time should run (the retention
        // pruner): a row per job, taken by a conditional update. Not tenant data.
        m.create_table(
            Table::create()
                .table(name("job_leases"))
                .if_not_exists()
                .col(ColumnDef::new(name("name")).string_len(100).not_null().primary_key())
                .col(text("holder", 100))
                .col(at("held_until", true))
                .to_owned(),
        )
        .await?;
        // What the pruner looks for: old rows that are done.
        m.create_index(index("bus_deliveries", &["status", "delivered_at"], false)).await?;
        m.create_index(index("consumer_receipts", &["created_at"], false)).await?;
        m.create_index(index("webhook_deliveries", &["status", "delivered_at"], false)).await?;
        m.create_index(index("notifications", &["status", "sent_at"], false)).await?;
        m.create_index(index("dev_mailbox", &["created_at"], false)).await?;
        Ok(())
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("the retention migration cannot be reverted".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tenant_table_is_protected_by_exactly_one_migration() {
        let protected: Vec<&str> = FOUNDATION_TABLES
            .iter()
            .chain(CATALOG_TABLES)
            .chain(MEDIA_TABLES)
            .chain(THEME_TABLES)
            .chain(ORDER_TABLES)
            .chain(TOKEN_TABLES)
            .chain(BUS_TABLES)
            .chain(WEBHOOK_TABLES)
            .chain(NOTIFICATION_TABLES)
            .chain(IDEMPOTENCY_TABLES)
            .chain(CHANNEL_TABLES)
            .chain(INBOX_TABLES)
            .chain(NOTIFICATION_TEMPLATE_TABLES)
            .chain(STAFF_TABLES)
            .chain(NOTIFICATION_BODY_TABLES)
            .copied()
            .collect();
        assert_eq!(protected, TENANT_TABLES);
    }
}
