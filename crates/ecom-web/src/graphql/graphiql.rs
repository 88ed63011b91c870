//! GraphiQL, the in-browser GraphQL IDE, as a page of its own: [`page`] renders the
//! HTML for an endpoint and [`asset`] serves the files it loads, all embedded in the
//! binary from `static/graphiql/` (GraphiQL's UMD bundle and React 18's, vendored with
//! versions and provenance in that folder's README.md, plus our `init.js` and
//! `page.css`).
//!
//! It fits the app's CSP as it is: every script and stylesheet is a file from this
//! origin, there is no inline script or style, and the vendored CSS had its `data:`
//! fonts (which `font-src` falling back to `'self'` would block) removed. The page's
//! queries go to the endpoint as `application/json` POSTs with the session cookie on
//! same-origin requests only; the headers editor adds e.g. `Authorization: Bearer …`.
//!
//! The asset URLs carry `?v=` with a hash of every embedded file, so they are cached
//! as immutable and change whenever a file does.
//!
//! Served on `GET /graphql` and `GET /merchant/graphql` when `ECOM_GRAPHIQL` is on
//! (by default only with `--demo`).

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::LazyLock;

/// The URL prefix [`asset`] is routed under: `/static/graphiql/{file}`.
pub const ASSET_PREFIX: &str = "/static/graphiql/";

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Everything [`asset`] serves, and nothing else: name, bytes, Content-Type.
const ASSETS: &[(&str, &[u8], &str)] = &[
    ("react.production.min.js", include_bytes!("../../static/graphiql/react.production.min.js"), JS),
    ("react-dom.production.min.js", include_bytes!("../../static/graphiql/react-dom.production.min.js"), JS),
    ("graphiql.min.js", include_bytes!("../../static/graphiql/graphiql.min.js"), JS),
    ("graphiql.min.css", include_bytes!("../../static/graphiql/graphiql.min.css"), CSS),
    ("init.js", include_bytes!("../../static/graphiql/init.js"), JS),
    ("page.css", include_bytes!("../../static/graphiql/page.css"), CSS),
];

/// The first 12 hex digits of a SHA-256 over every asset's name and bytes.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    for (name, bytes, _) in ASSETS {
        hash.update(name.as_bytes());
        hash.update([0]);
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    }
    hex::encode(hash.finalize())[..12].to_owned()
});

/// The value of the assets' `?v=`.
pub fn version() -> &'static str {
    &VERSION
}

fn lookup(file: &str) -> Option<(&'static [u8], &'static str)> {
    ASSETS.iter().find(|(name, _, _)| *name == file).map(|&(_, bytes, content_type)| (bytes, content_type))
}

/// `GET /static/graphiql/{file}`: one of the embedded files, cached for a year (the
/// page links them with `?v=`); 404 for any other name.
pub async fn asset(Path(file): Path<String>) -> Response {
    match lookup(&file) {
        Some((body, content_type)) => (
            [(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=31536000, immutable")],
            body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "not found\n")
            .into_response(),
    }
}

/// The GraphiQL page for `endpoint` (e.g. `/graphql`), titled `title`, with
/// `default_query` in the first tab (GraphiQL keeps the user's tabs in localStorage
/// after that; headers typed in are not kept).
pub fn page(endpoint: &str, title: &str, default_query: &str) -> Response {
    let v = version();
    let p = ASSET_PREFIX;
    let html = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<link rel="stylesheet" href="{p}graphiql.min.css?v={v}">
<link rel="stylesheet" href="{p}page.css?v={v}">
</head>
<body>
<div id="graphiql" data-endpoint="{endpoint}" data-default-query="{default_query}">Loading GraphiQL…</div>
<noscript>GraphiQL needs JavaScript.</noscript>
<script src="{p}react.production.min.js?v={v}"></script>
<script src="{p}react-dom.production.min.js?v={v}"></script>
<script src="{p}graphiql.min.js?v={v}"></script>
<script src="{p}init.js?v={v}"></script>
</body>
</html>
"#,
        title = escape(title),
        endpoint = escape(endpoint),
        default_query = escape(default_query),
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], html).into_response()
}

/// Escapes text for an HTML element or a quoted attribute value.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(resp: Response) -> Vec<u8> {
        axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap().to_vec()
    }

    fn header_of(resp: &Response, name: header::HeaderName) -> &str {
        resp.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    #[tokio::test]
    async fn page_escapes_its_values_and_links_only_served_assets() {
        let resp = page(
            "/graphql?a=1&b=\"x\"",
            "</title><script>alert(1)</script>",
            "query Q {\n  shop { name } # it's \"<b>\" & more\n}",
        );
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(header_of(&resp, header::CONTENT_TYPE), "text/html; charset=utf-8");
        let html = String::from_utf8(body_of(resp).await).unwrap();

        assert!(html.contains("<title>&lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;</title>"), "{html}");
        assert!(html.contains(r#"data-endpoint="/graphql?a=1&amp;b=&quot;x&quot;""#), "{html}");
        assert!(
            html.contains(
                "data-default-query=\"query Q {\n  shop { name } # it&#39;s &quot;&lt;b&gt;&quot; &amp; more\n}\""
            ),
            "{html}"
        );
        assert!(!html.contains("alert(1)</script>"), "{html}");

        // Nothing the CSP would block: no inline script, no inline style.
        assert_eq!(html.matches("<script").count(), html.matches("<script src=\"/static/graphiql/").count());
        assert!(!html.contains("<style") && !html.contains(" style="), "{html}");

        // Every linked file is served, with this build's version.
        let linked: Vec<&str> = html.split(ASSET_PREFIX).skip(1).map(|rest| &rest[..rest.find('"').unwrap()]).collect();
        assert_eq!(linked.len(), ASSETS.len(), "{linked:?}");
        for url in linked {
            let (file, v) = url.split_once("?v=").unwrap();
            assert_eq!(v, version());
            assert!(lookup(file).is_some(), "{file} is linked but not served");
        }
    }

    #[tokio::test]
    async fn asset_serves_only_the_allow_list() {
        for &(name, bytes, content_type) in ASSETS {
            let resp = asset(Path(name.to_owned())).await;
            assert_eq!(resp.status(), StatusCode::OK, "{name}");
            assert_eq!(header_of(&resp, header::CONTENT_TYPE), content_type, "{name}");
            assert_eq!(header_of(&resp, header::CACHE_CONTROL), "public, max-age=31536000, immutable");
            assert_eq!(body_of(resp).await, bytes, "{name}");
        }
        assert_eq!(lookup("graphiql.min.css").map(|(_, t)| t), Some(CSS));
        assert_eq!(lookup("graphiql.min.js").map(|(_, t)| t), Some(JS));
        for name in [
            "",
            "LICENSE.graphiql",
            "README.md",
            "SHA256SUMS",
            "refresh.sh",
            "graphiql.min.js.map",
            "GRAPHIQL.MIN.JS",
            "../app.js",
            "..%2Fapp.js",
            "init.js/",
        ] {
            let resp = asset(Path(name.to_owned())).await;
            assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{name:?}");
        }
    }

    #[test]
    fn vendored_css_has_no_data_fonts_the_csp_would_block() {
        let (css, _) = lookup("graphiql.min.css").unwrap();
        let css = String::from_utf8_lossy(css);
        assert!(!css.contains("@font-face") && !css.contains("data:font"));
        assert!(css.contains(".graphiql-container"), "still GraphiQL's stylesheet");
    }

    #[test]
    fn version_is_a_short_hash() {
        assert_eq!(version().len(), 12);
        assert!(version().bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
