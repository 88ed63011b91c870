//! What makes the storefront and the merchant panel installable apps: a web app
//! manifest per store (and one for the panel), icons, a service worker that keeps the
//! shell and static assets and shows an offline page, and that offline page.

use crate::error::{WebError, WebResult};
use crate::site::resolve;
use crate::state::AppState;
use crate::storefront::Shop;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use ecom_core::BrandColor;
use ecom_services::Site;
use minijinja::context;
use std::sync::OnceLock;

fn manifest(name: &str, short_name: &str, start_url: &str, scope: &str, id: &str, color: BrandColor) -> Response {
    let icon = |size: u32| format!("/icons/{size}.png?v={}", &color.hex()[1..]);
    let body = serde_json::json!({
        "id": id,
        "name": name,
        "short_name": short_name.chars().take(12).collect::<String>(),
        "start_url": start_url,
        "scope": scope,
        "display": "standalone",
        "background_color": "#f7f8fa",
        "theme_color": color.hex(),
        "icons": [
            { "src": icon(192), "sizes": "192x192", "type": "image/png", "purpose": "any" },
            { "src": icon(512), "sizes": "512x512", "type": "image/png", "purpose": "any" },
            { "src": icon(512), "sizes": "512x512", "type": "image/png", "purpose": "maskable" },
        ],
    });
    ([(header::CONTENT_TYPE, "application/manifest+json")], body.to_string()).into_response()
}

/// The storefront's manifest; with a primary domain, the app opens on it.
pub async fn store_manifest(State(state): State<AppState>, shop: Shop) -> Response {
    let root = match shop.tenant.primary_domain {
        Some(_) => format!("{}/", shop.base_url(&state)),
        None => "/".to_owned(),
    };
    manifest(&shop.tenant.name, &shop.tenant.name, &root, &root, &root, shop.tenant.brand.color_or_default())
}

/// The merchant panel's manifest: a separate app, the merchant's phone app.
pub async fn merchant_manifest(site: crate::auth::AreaCtx) -> Response {
    let name = format!("{} admin", site.site_name());
    let color = site.tenant.as_ref().map(|t| t.brand.color_or_default()).unwrap_or(BrandColor::DEFAULT);
    manifest(&name, site.site_name(), "/merchant", "/merchant", "/merchant", color)
}

/// The offline page the service worker shows when the network is gone.
pub async fn offline(State(state): State<AppState>, shop: Shop) -> WebResult<Response> {
    shop.page(&state, "storefront/offline.html", "/offline", context! {}).await
}

/// Draws the app icon: a white shopping bag on the brand colour, with a safe zone so
/// it also works as a maskable icon.
fn draw_icon(size: u32, brand: BrandColor) -> Vec<u8> {
    let (brand, ink) = (brand.0, brand.ink().0);
    let s = size as f32;
    let mut rgba = Vec::with_capacity((size * size * 4) as usize);
    let (bag_l, bag_r, bag_t, bag_b) = (0.30 * s, 0.70 * s, 0.40 * s, 0.74 * s);
    let (cx, cy, r_out, r_in) = (0.5 * s, 0.40 * s, 0.12 * s, 0.085 * s);
    let radius = 0.04 * s;
    for y in 0..size {
        for x in 0..size {
            let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
            // Rounded rectangle body.
            let dx = (bag_l + radius - fx).max(fx - (bag_r - radius)).max(0.0);
            let dy = (bag_t + radius - fy).max(fy - (bag_b - radius)).max(0.0);
            let in_body =
                fx >= bag_l && fx <= bag_r && fy >= bag_t && fy <= bag_b && dx * dx + dy * dy <= radius * radius;
            // Handle: upper half of a ring above the body.
            let d = ((fx - cx).powi(2) + (fy - cy).powi(2)).sqrt();
            let in_handle = fy <= cy && d <= r_out && d >= r_in;
            let px =
                if in_body || in_handle { [ink[0], ink[1], ink[2], 255] } else { [brand[0], brand[1], brand[2], 255] };
            rgba.extend_from_slice(&px);
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, size, size);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let written = encoder.write_header().and_then(|mut w| w.write_image_data(&rgba));
    if written.is_err() {
        return Vec::new();
    }
    out
}

/// Icons by (colour, size): drawing one takes a few milliseconds, and many stores
/// share the default colour.
fn icon_bytes(size: u32, color: BrandColor) -> Bytes {
    static ICONS: OnceLock<moka::sync::Cache<(BrandColor, u32), Bytes>> = OnceLock::new();
    ICONS.get_or_init(|| moka::sync::Cache::new(2_000)).get_with((color, size), || Bytes::from(draw_icon(size, color)))
}

/// The app icon in the store's colour (the platform's on other hosts). The URL carries
/// the colour (`?v=`), so a change of colour is a new URL.
pub async fn icon(State(state): State<AppState>, Path(file): Path<String>, parts: Parts) -> WebResult<Response> {
    let size = match file.as_str() {
        "192.png" => 192,
        "512.png" => 512,
        _ => return Err(WebError::not_found()),
    };
    let color = match resolve(&state, &parts).await?.0 {
        Site::Store(t) => t.brand.color_or_default(),
        _ => BrandColor::DEFAULT,
    };
    let bytes = icon_bytes(size, color);
    if bytes.is_empty() {
        return Err(WebError::Internal("icon encoding failed".into()));
    }
    Ok(([(header::CONTENT_TYPE, "image/png"), (header::CACHE_CONTROL, "public, max-age=86400")], bytes).into_response())
}

/// The store's colours as CSS custom properties (a stylesheet, because the CSP allows
/// no inline styles). Linked as `/brand.css?v=<colour>`, so it can be cached for good.
pub async fn brand_css(shop: Shop) -> Response {
    let color = shop.tenant.brand.color_or_default();
    let body = format!(
        ":root {{ --brand: {}; --brand-ink: {}; --brand-text: {}; }}\n",
        color.hex(),
        color.ink().hex(),
        color.on_white().hex()
    );
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        body,
    )
        .into_response()
}

/// The service worker. Served from the root so its scope is the whole store; never
/// cached long, so a new version reaches browsers on their next visit.
pub async fn service_worker() -> Response {
    let mut resp =
        ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], include_str!("../static/sw.js")).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icons_are_pngs_of_the_right_size() {
        for (size, color) in [(192, BrandColor::DEFAULT), (512, BrandColor([0xff, 0xcc, 0x00]))] {
            let bytes = icon_bytes(size, color);
            let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
            let reader = decoder.read_info().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!((reader.info().width, reader.info().height), (size, size));
        }
    }
}
