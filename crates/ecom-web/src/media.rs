//! Serving product images: content-addressed URLs under `/media/` on the store's host,
//! cached for a year as immutable (a CDN can front them), with ETags.

use crate::error::{WebError, WebResult};
use crate::site::resolve;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use ecom_services::Site;

/// `{hash}.{ext}` (the original) or `{hash}-{width}.jpg` (a thumbnail).
fn parse(file: &str) -> Option<(&str, &str, Option<u32>)> {
    let (stem, ext) = file.rsplit_once('.')?;
    match stem.split_once('-') {
        Some((hash, width)) if ext == "jpg" => Some((hash, ext, Some(width.parse().ok()?))),
        Some(_) => None,
        None => Some((stem, ext, None)),
    }
}

pub async fn serve(
    State(state): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
    parts: Parts,
) -> WebResult<Response> {
    let Site::Store(tenant) = resolve(&state, &parts).await?.0 else { return Err(WebError::not_found()) };
    let Some((hash, ext, width)) = parse(&file) else { return Err(WebError::not_found()) };
    let etag = format!("\"{file}\"");
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let get = |ext: &'static str, width| state.media.get(tenant.id, hash, ext, width);
    let stored = |r: Result<_, ecom_media::MediaError>| r.map_err(|e| WebError::Internal(e.to_string()));
    if let Some(bytes) = stored(state.media.get(tenant.id, hash, ext, width).await)? {
        let content_type = ecom_media::content_type(if width.is_some() { "jpg" } else { ext });
        return Ok((
            [
                (header::CONTENT_TYPE, content_type.to_owned()),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable".to_owned()),
                (header::ETAG, etag),
            ],
            bytes,
        )
            .into_response());
    }
    // A thumbnail still being made: the original for now, briefly cached.
    if width.is_some() {
        for original in ["jpg", "png", "webp"] {
            if let Some(bytes) = stored(get(original, None).await)? {
                return Ok((
                    [
                        (header::CONTENT_TYPE, ecom_media::content_type(original)),
                        (header::CACHE_CONTROL, "public, max-age=60"),
                    ],
                    bytes,
                )
                    .into_response());
            }
        }
    }
    Err(WebError::not_found())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_file_names_are_parsed_strictly() {
        assert_eq!(parse("abc.png"), Some(("abc", "png", None)));
        assert_eq!(parse("abc-400.jpg"), Some(("abc", "jpg", Some(400))));
        assert_eq!(parse("abc-x.jpg"), None);
        assert_eq!(parse("abc-400.png"), None);
        assert_eq!(parse("noext"), None);
    }
}
