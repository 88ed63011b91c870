//! The storefront: home, collections, categories, product pages, search, static
//! pages, and what search engines read (sitemap, robots, structured data). Every page
//! is complete without JavaScript.

use crate::auth::SignedIn;
use crate::csrf::CsrfToken;
use crate::error::{WebError, WebResult};
use crate::session::{self, AccountView};
use crate::site::{HostHeader, resolve};
use crate::state::AppState;
use crate::templates::{render, ser};
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::PrivateCookieJar;
use ecom_core::catalog::ProductSort;
use ecom_core::{Money, Realm, Tenant};
use ecom_services::Site;
use ecom_services::catalog::{ListingQuery, ListingView, ProductView};
use minijinja::{Value, context};

/// Rendered pages by (host, catalog generation, path and query).
pub type PageCache = moka::future::Cache<(String, u64, String), axum::body::Bytes>;

/// At most 96 MiB of pages, each kept five minutes at most (other nodes' catalog
/// writes reach this one within that time; this node's own writes at once).
pub fn new_page_cache() -> PageCache {
    moka::future::Cache::builder()
        .weigher(|_, v: &axum::body::Bytes| u32::try_from(v.len()).unwrap_or(u32::MAX))
        .max_capacity(96 * 1024 * 1024)
        .time_to_live(std::time::Duration::from_secs(300))
        .build()
}

/// Serves storefront pages to shoppers who are not signed in from a cache of
/// rendered HTML: the page only depends on the store, its catalog version and the
/// address. Signed-in shoppers (their name is in the header) always get a fresh page.
pub async fn page_cache(
    State(state): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let signed_in = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|c| c.contains("ecom_customer="));
    let path = req.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
    if req.method() != axum::http::Method::GET || signed_in || path.len() > 512 {
        return next.run(req).await;
    }
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default().to_ascii_lowercase();
    let Ok(Site::Store(tenant)) = state.directory.resolve(&host).await else { return next.run(req).await };
    if !tenant.is_open() {
        return next.run(req).await;
    }
    let key = (host, state.catalog.generation(tenant.id), path);
    if let Some(body) = state.pages.get(&key).await {
        return (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::HeaderName::from_static("x-cache"), "hit")],
            body,
        )
            .into_response();
    }
    let resp = next.run(req).await;
    let is_html = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/html"));
    if resp.status() != axum::http::StatusCode::OK || !is_html || resp.headers().contains_key(header::SET_COOKIE) {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    match axum::body::to_bytes(body, 4 * 1024 * 1024).await {
        Ok(bytes) => {
            state.pages.insert(key, bytes.clone()).await;
            Response::from_parts(parts, axum::body::Body::from(bytes))
        }
        Err(e) => WebError::Internal(format!("reading a rendered page: {e}")).into_response(),
    }
}

/// A request on an open store's host, with what every storefront page shows.
pub struct Shop {
    pub tenant: Tenant,
    pub host: HostHeader,
    csrf: String,
    customer: Option<AccountView>,
    /// The signed-in customer's account.
    pub customer_id: Option<ecom_core::AccountId>,
    /// The shopper's cart, from the cart cookie.
    pub cart: Option<uuid::Uuid>,
    /// Render with the theme's drafts (merchant preview).
    pub preview: bool,
}

impl FromRequestParts<AppState> for Shop {
    type Rejection = WebError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> WebResult<Self> {
        let (site, host) = resolve(state, parts).await?;
        let Site::Store(tenant) = site else { return Err(crate::site::unknown_host()) };
        Self::for_store(*tenant, host, parts, state).await
    }
}

impl Shop {
    /// Builds the context for a store already resolved from the host.
    pub async fn for_store(tenant: Tenant, host: HostHeader, parts: &mut Parts, state: &AppState) -> WebResult<Self> {
        if !tenant.is_open() {
            return Err(WebError::StoreClosed { store_name: tenant.name });
        }
        let csrf = parts.extensions.get::<CsrfToken>().map(|t| t.0.clone()).unwrap_or_default();
        let jar = PrivateCookieJar::<axum_extra::extract::cookie::Key>::from_request_parts(parts, state)
            .await
            .map_err(|_| WebError::Internal("cookie jar".into()))?;
        let credential = session::current(state, &jar, Realm::Customer(tenant.id)).await?;
        let customer = credential.as_ref().map(AccountView::from);
        let customer_id = credential.map(|c| c.id);
        let cart = crate::checkout::cart_cookie(&jar);
        Ok(Self { tenant, host, csrf, customer, customer_id, cart, preview: false })
    }

    /// The store's public address: its primary domain when it has one.
    pub(crate) fn base_url(&self, state: &AppState) -> String {
        crate::domains::store_base(state, &self.tenant, &self.host.0)
    }

    /// Renders a storefront page with the store, navigation and signed-in customer.
    pub async fn page(&self, state: &AppState, template: &str, path: &str, extra: Value) -> WebResult<Response> {
        let nav = state.catalog.category_tree(&self.tenant).await?;
        let collections = state.catalog.collections(&self.tenant).await?;
        let collections: Vec<_> =
            collections.iter().map(|c| context! { handle => c.handle.clone(), title => c.title.clone() }).collect();
        let theme = crate::themes::store_env(state, &self.tenant, self.preview).await?;
        Ok(crate::templates::render_in(
            &theme,
            template,
            context! {
                store => ser(&self.tenant),
                site_name => self.tenant.name.clone(),
                customer => ser(&self.customer),
                csrf => self.csrf.clone(),
                nav => ser(&nav),
                nav_collections => collections,
                canonical => format!("{}{}", self.base_url(state), path),
                base_url => self.base_url(state),
                ..extra
            },
        )
        .into_response())
    }
}

pub async fn account(State(state): State<AppState>, page: SignedIn, RawQuery(q): RawQuery) -> WebResult<Response> {
    let extras = crate::channels::account_extras(&state, &page, q.as_deref()).await?;
    Ok(page.page("storefront/account.html", extras))
}

#[derive(serde::Deserialize)]
pub struct ProfileForm {
    #[serde(default)]
    name: String,
}

/// Saves the customer's profile (their name).
pub async fn save_profile(
    State(state): State<AppState>,
    page: SignedIn,
    axum::Form(f): axum::Form<ProfileForm>,
) -> WebResult<Response> {
    let session =
        ecom_services::accounts::SignedIn { realm: page.ctx.realm, id: page.me.id, auth_version: page.me.auth_version };
    match state.accounts.rename(&session, &f.name).await {
        Ok(()) => Ok(axum::response::Redirect::to("/account?saved=1").into_response()),
        Err(ecom_services::ServiceError::Invalid(e)) => {
            let extras = crate::channels::account_extras(&state, &page, None).await?;
            let mut resp = page.page("storefront/account.html", context! { error => e.to_string(), ..extras });
            *resp.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            Ok(resp)
        }
        Err(e) => Err(e.into()),
    }
}

/// The store's home page.
pub async fn home(state: &AppState, shop: Shop) -> WebResult<Response> {
    let newest = state
        .catalog
        .listing(&shop.tenant, &ListingQuery { sort: ProductSort::Newest, page: 1, ..Default::default() })
        .await?;
    let featured = state
        .catalog
        .listing(&shop.tenant, &ListingQuery { collection: Some("staff-picks".into()), page: 1, ..Default::default() })
        .await?;
    shop.page(
        state,
        "storefront/home.html",
        "/",
        context! {
            newest => ser(&newest.map(|l| l.products.iter().take(8).cloned().collect::<Vec<_>>())),
            featured => ser(&featured.map(|l| l.products.iter().take(4).cloned().collect::<Vec<_>>())),
        },
    )
    .await
}

/// Reads `?sort=&page=&min=&max=&q=&option.Color=Blue…` into a listing query.
fn listing_query(raw: Option<&str>, tenant: &Tenant) -> WebResult<ListingQuery> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or_default())
        .map_err(|_| WebError::BadRequest("The address has a malformed query string.".into()))?;
    let mut q = ListingQuery { page: 1, ..Default::default() };
    for (key, value) in pairs {
        let value = value.trim().to_owned();
        match key.as_str() {
            "sort" => q.sort = ProductSort::parse(&value),
            "page" => q.page = value.parse::<u64>().unwrap_or(1).clamp(1, 10_000),
            "q" if !value.is_empty() => q.search = Some(value.chars().take(100).collect()),
            "min" if !value.is_empty() => q.price_at_least = Some(Money::parse("min", &value, tenant.currency)?.minor),
            "max" if !value.is_empty() => q.price_at_most = Some(Money::parse("max", &value, tenant.currency)?.minor),
            k if k.starts_with("option.") && !value.is_empty() => {
                let facet = format!("option:{}", &k["option.".len()..]);
                match q.facets.iter_mut().find(|(f, _)| *f == facet) {
                    Some((_, values)) => values.push(value),
                    None => q.facets.push((facet, vec![value])),
                }
            }
            _ => {}
        }
    }
    q.facets.sort();
    Ok(q)
}

/// The query string for another page of the same listing.
fn page_links(raw: Option<&str>, view: &ListingView) -> (Option<String>, Option<String>) {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or_default()).unwrap_or_default();
    let link = |page: u64| {
        let mut p: Vec<(String, String)> = pairs.iter().filter(|(k, _)| k != "page").cloned().collect();
        if page > 1 {
            p.push(("page".into(), page.to_string()));
        }
        let qs = serde_urlencoded::to_string(&p).unwrap_or_default();
        if qs.is_empty() { "?".to_owned() } else { format!("?{qs}") }
    };
    ((view.page > 1).then(|| link(view.page - 1)), (view.page < view.pages).then(|| link(view.page + 1)))
}

async fn listing_page(
    state: &AppState,
    shop: Shop,
    path: String,
    raw: Option<String>,
    q: ListingQuery,
    title: String,
    intro: String,
) -> WebResult<Response> {
    let Some(view) = state.catalog.listing(&shop.tenant, &q).await? else {
        return Err(WebError::not_found());
    };
    let (prev, next) = page_links(raw.as_deref(), &view);
    let sorts: Vec<_> = ProductSort::ALL
        .iter()
        .map(|s| context! { value => s.as_str(), label => s.label(), selected => *s == q.sort })
        .collect();
    let money_input = |m: Option<i64>| m.map(|v| Money::new(v, shop.tenant.currency).decimal()).unwrap_or_default();
    let canonical_path = if view.page > 1 { format!("{path}?page={}", view.page) } else { path.clone() };
    shop.page(
        state,
        "storefront/listing.html",
        &canonical_path,
        context! {
            title, intro, path,
            listing => ser(&*view),
            sorts,
            search => q.search.clone().unwrap_or_default(),
            min => money_input(q.price_at_least),
            max => money_input(q.price_at_most),
            prev, next,
            filtered => !q.facets.is_empty() || q.price_at_least.is_some() || q.price_at_most.is_some(),
        },
    )
    .await
}

pub async fn collections(State(state): State<AppState>, shop: Shop) -> WebResult<Response> {
    let all = state.catalog.collections(&shop.tenant).await?;
    shop.page(&state, "storefront/collections.html", "/collections", context! { collections => ser(&*all) }).await
}

pub async fn collection(
    State(state): State<AppState>,
    shop: Shop,
    Path(handle): Path<String>,
    RawQuery(raw): RawQuery,
) -> WebResult<Response> {
    let all = state.catalog.collections(&shop.tenant).await?;
    let Some(c) = all.iter().find(|c| c.handle == handle).cloned() else { return Err(WebError::not_found()) };
    let mut q = listing_query(raw.as_deref(), &shop.tenant)?;
    q.collection = Some(handle.clone());
    listing_page(&state, shop, format!("/collections/{handle}"), raw, q, c.title, c.body_html).await
}

pub async fn category(
    State(state): State<AppState>,
    shop: Shop,
    Path(handle): Path<String>,
    RawQuery(raw): RawQuery,
) -> WebResult<Response> {
    let tree = state.catalog.category_tree(&shop.tenant).await?;
    fn find(nodes: &[ecom_services::catalog::CategoryNode], handle: &str) -> Option<String> {
        nodes.iter().find_map(|n| if n.handle == handle { Some(n.name.clone()) } else { find(&n.children, handle) })
    }
    let Some(name) = find(&tree, &handle) else { return Err(WebError::not_found()) };
    let mut q = listing_query(raw.as_deref(), &shop.tenant)?;
    q.category = Some(handle.clone());
    listing_page(&state, shop, format!("/categories/{handle}"), raw, q, name, String::new()).await
}

pub async fn all_products(State(state): State<AppState>, shop: Shop, RawQuery(raw): RawQuery) -> WebResult<Response> {
    let q = listing_query(raw.as_deref(), &shop.tenant)?;
    listing_page(&state, shop, "/products".into(), raw, q, "All products".into(), String::new()).await
}

pub async fn search(State(state): State<AppState>, shop: Shop, RawQuery(raw): RawQuery) -> WebResult<Response> {
    let q = listing_query(raw.as_deref(), &shop.tenant)?;
    let title = match &q.search {
        Some(s) => format!("Results for “{s}”"),
        None => "Search".into(),
    };
    listing_page(&state, shop, "/search".into(), raw, q, title, String::new()).await
}

/// The variant a shopper picked: by `?variant=<id>`, by option values
/// (`?Size=M&Color=Blue`), else the first one in stock.
fn selected_variant(product: &ProductView, raw: Option<&str>) -> usize {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or_default()).unwrap_or_default();
    if let Some((_, id)) = pairs.iter().find(|(k, _)| k == "variant")
        && let Some(i) = product.variants.iter().position(|v| &v.id == id)
    {
        return i;
    }
    let wanted: Vec<Option<&String>> =
        product.options.iter().map(|o| pairs.iter().find(|(k, _)| *k == o.name).map(|(_, v)| v)).collect();
    if wanted.iter().any(Option::is_some)
        && let Some(i) = product
            .variants
            .iter()
            .position(|v| v.option_values.iter().zip(&wanted).all(|(have, want)| want.is_none_or(|w| w == have)))
    {
        return i;
    }
    product.variants.iter().position(|v| v.available).unwrap_or(0)
}

/// Structured data for search engines: a Product with one Offer per variant.
fn json_ld(product: &ProductView, url: &str, store: &Tenant) -> String {
    let offers: Vec<serde_json::Value> = product
        .variants
        .iter()
        .map(|v| {
            serde_json::json!({
                "@type": "Offer",
                "sku": v.sku,
                "name": v.title,
                "price": v.price_decimal,
                "priceCurrency": product.currency,
                "availability": if v.available { "https://schema.org/InStock" } else { "https://schema.org/OutOfStock" },
                "url": format!("{url}?variant={}", v.id),
                "seller": { "@type": "Organization", "name": store.name },
            })
        })
        .collect();
    let doc = serde_json::json!({
        "@context": "https://schema.org",
        "@type": "Product",
        "name": product.title,
        "description": product.summary,
        "brand": { "@type": "Brand", "name": product.vendor },
        "category": product.product_type,
        "url": url,
        "offers": offers,
    });
    // Inside <script>, "</" would end the element early.
    doc.to_string().replace('<', "\\u003c")
}

pub async fn product(
    State(state): State<AppState>,
    shop: Shop,
    Path(handle): Path<String>,
    RawQuery(raw): RawQuery,
) -> WebResult<Response> {
    let Some(product) = state.catalog.product(&shop.tenant, &handle).await? else {
        return Err(WebError::NotFound { message: "This product is not (or no longer) in the store.".into() });
    };
    let chosen = selected_variant(&product, raw.as_deref());
    let path = format!("/products/{handle}");
    let url = format!("{}{path}", shop.base_url(&state));
    let ld = json_ld(&product, &url, &shop.tenant);
    let related = state
        .catalog
        .listing(&shop.tenant, &ListingQuery { search: None, page: 1, facets: Vec::new(), ..Default::default() })
        .await?
        .map(|l| {
            l.products
                .iter()
                .filter(|p| p.handle != handle && p.product_type == product.product_type)
                .take(4)
                .cloned()
                .collect::<Vec<_>>()
        });
    shop.page(
        &state,
        "storefront/product.html",
        &path,
        context! {
            product => ser(&*product),
            variant => ser(&product.variants.get(chosen)),
            json_ld => Value::from_safe_string(ld),
            related => ser(&related),
        },
    )
    .await
}

const PAGES: &[(&str, &str)] = &[
    ("about", "About us"),
    ("contact", "Contact"),
    ("shipping", "Shipping"),
    ("returns", "Returns"),
    ("privacy", "Privacy policy"),
    ("terms", "Terms of service"),
];

pub async fn static_page(State(state): State<AppState>, shop: Shop, Path(handle): Path<String>) -> WebResult<Response> {
    let Some((_, title)) = PAGES.iter().find(|(h, _)| *h == handle) else { return Err(WebError::not_found()) };
    shop.page(
        &state,
        &format!("storefront/pages/{handle}.html"),
        &format!("/pages/{handle}"),
        context! { title => *title },
    )
    .await
}

pub async fn robots(shop: Shop, State(state): State<AppState>) -> Response {
    let body = format!(
        "User-agent: *\nDisallow: /account\nDisallow: /merchant\nDisallow: /search\nAllow: /\n\nSitemap: {}/sitemap.xml\n",
        shop.base_url(&state)
    );
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

pub async fn sitemap(State(state): State<AppState>, shop: Shop) -> WebResult<Response> {
    let base = shop.base_url(&state);
    let mut urls: Vec<(String, Option<String>)> =
        vec![(format!("{base}/"), None), (format!("{base}/collections"), None)];
    for c in state.catalog.collections(&shop.tenant).await?.iter() {
        urls.push((format!("{base}/collections/{}", c.handle), None));
    }
    fn walk(nodes: &[ecom_services::catalog::CategoryNode], base: &str, out: &mut Vec<(String, Option<String>)>) {
        for n in nodes {
            out.push((format!("{base}/categories/{}", n.handle), None));
            walk(&n.children, base, out);
        }
    }
    walk(&state.catalog.category_tree(&shop.tenant).await?, &base, &mut urls);
    for (handle, updated) in state.catalog.sitemap_entries(&shop.tenant).await? {
        urls.push((format!("{base}/products/{handle}"), Some(updated.format("%Y-%m-%d").to_string())));
    }
    for (handle, _) in PAGES {
        urls.push((format!("{base}/pages/{handle}"), None));
    }
    let xml = render(
        "storefront/sitemap.xml",
        context! { urls => urls.iter().map(|(u, d)| context! { loc => u, lastmod => d }).collect::<Vec<_>>() },
    );
    Ok(([(header::CONTENT_TYPE, "application/xml; charset=utf-8")], xml.0).into_response())
}
