//! Attaching the images a product import names, once its products are saved.
//!
//! A CSV names images by URL. One that points at this store's own media
//! (`…/media/{hash}.{ext}`, on any host: an export of this store, re-imported) is
//! attached as it is, unfetched, when the store's media holds that file: an export
//! and re-import gives back the same images. Any other `http(s)` URL is downloaded
//! through [`Outbound`] (public addresses only, size-capped, a few at a time),
//! checked and stored by [`Media::ingest`], then attached.
//!
//! Each distinct URL is resolved once however many products name it, and an image
//! whose content a product already has is not added twice (its alt text follows the
//! file). An image that cannot be had — missing, not an image, refused address, too
//! slow — does not undo the import: it is reported against its line.

use crate::catalog_csv::{ImageRef, LineError};
use crate::outbound::Outbound;
use crate::{Catalog, Result};
use ecom_core::Tenant;
use ecom_media::{Media, MediaError};
use ecom_store::StoreError;
use ecom_store::catalog as repo;
use futures_util::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Downloads in flight at once during an import.
pub const MAX_CONCURRENT_DOWNLOADS: usize = 4;
/// Past this many, problems are counted but not listed.
const MAX_LISTED_PROBLEMS: usize = 200;

/// A saved product and the images its rows named, in position order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingImages {
    pub product: uuid::Uuid,
    pub images: Vec<ImageRef>,
}

/// What attaching the images of an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImageReport {
    /// Images newly attached to a product.
    pub added: usize,
    /// Images the product had already (same content), whose alt text changed.
    pub updated: usize,
    /// Images the product had already, unchanged.
    pub unchanged: usize,
    /// Images that could not be attached; the first of them listed in `problems`.
    pub failed: usize,
    /// "line 7: image https://… was not added: the server answered 404 Not Found",
    /// in line order.
    pub problems: Vec<LineError>,
}

/// An image ready to attach: stored in the store's media.
#[derive(Debug, Clone)]
struct Found {
    hash: String,
    ext: String,
    size: (u32, u32),
    /// Size of the original, counted against the plan's storage.
    bytes: u64,
}

/// `/media/{64 hex}.{jpg|png|webp}`: the path of an original in a store's media.
fn own_media_path(path: &str) -> Option<(String, String)> {
    let file = path.strip_prefix("/media/")?;
    let (hash, ext) = file.split_once('.')?;
    let ext = ext.to_ascii_lowercase();
    (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) && matches!(ext.as_str(), "jpg" | "png" | "webp"))
        .then(|| (hash.to_ascii_lowercase(), ext))
}

/// The absolute URL to fetch for a file's `Image Src` (`//cdn…` means https), or
/// `None` for a bare path.
fn absolute(src: &str) -> Option<String> {
    let src = src.trim();
    if let Some(rest) = src.strip_prefix("//") {
        return Some(format!("https://{rest}"));
    }
    (!src.starts_with('/')).then(|| src.to_owned())
}

/// The hash and extension of a source that names a file of a store's media.
fn media_file_named(src: &str) -> Option<(String, String)> {
    match absolute(src) {
        Some(url) => own_media_path(url::Url::parse(&url).ok()?.path()),
        None => own_media_path(src.trim().split(['?', '#']).next().unwrap_or_default()),
    }
}

fn storage_failed(e: &MediaError) -> String {
    tracing::warn!(error = %e, "media storage failed while attaching an imported image");
    "media storage is not available; import the file again later".into()
}

fn refused(e: MediaError) -> String {
    match e {
        MediaError::Rejected(why) => why,
        other => storage_failed(&other),
    }
}

/// Known image files of the store: hash → (ext, size), from its image records.
type Known = HashMap<String, (String, (u32, u32))>;

/// Finds or fetches one source and has it stored in the store's media.
async fn resolve(
    tenant: &Tenant,
    media: &Media,
    outbound: &Outbound,
    known: &Known,
    src: &str,
) -> Result<Found, String> {
    if let Some((hash, ext)) = media_file_named(src) {
        match media.get(tenant.id, &hash, &ext, None).await {
            Ok(Some(bytes)) => {
                let len = bytes.len() as u64;
                if let Some((known_ext, size)) = known.get(&hash)
                    && *known_ext == ext
                {
                    return Ok(Found { hash, ext, size: *size, bytes: len });
                }
                // A file no product shows any more: its size from the file itself.
                let (_, w, h) = ecom_media::on_image_thread(move || ecom_media::inspect(&bytes))
                    .await
                    .and_then(|r| r)
                    .map_err(refused)?;
                return Ok(Found { hash, ext, size: (w, h), bytes: len });
            }
            // Not this store's (another store's export, say): fetched like any URL.
            Ok(None) => {}
            Err(e) => return Err(storage_failed(&e)),
        }
    }
    let Some(url) = absolute(src) else {
        return Err("it is not an http:// or https:// address, nor an image of this store".into());
    };
    let bytes = outbound.fetch(&url, ecom_media::MAX_BYTES).await.map_err(|e| e.to_string())?;
    let hash = hex::encode(Sha256::digest(&bytes));
    let len = bytes.len() as u64;
    if let Some((ext, size)) = known.get(&hash) {
        // Stored already (an earlier import of the same file): nothing to store again.
        return Ok(Found { hash, ext: ext.clone(), size: *size, bytes: len });
    }
    let stored = media.ingest(tenant.id, bytes).await.map_err(refused)?;
    Ok(Found { hash: stored.hash, ext: stored.ext.to_owned(), size: (stored.width, stored.height), bytes: len })
}

impl ImageReport {
    fn problem(&mut self, line: usize, message: String) {
        self.failed += 1;
        if self.problems.len() < MAX_LISTED_PROBLEMS {
            self.problems.push(LineError { line, message });
        }
    }
}

impl Catalog {
    /// Attaches the images of an import ([`crate::catalog::ImportSummary::pending_images`])
    /// to their products, in file order after the images they have. Downloads run
    /// [`MAX_CONCURRENT_DOWNLOADS`] at a time; `progress(done, total)` counts distinct
    /// sources. An image that fails is reported, not an error: only the database
    /// failing is.
    pub async fn attach_imported_images(
        &self,
        tenant: &Tenant,
        media: &Media,
        outbound: &Outbound,
        pending: Vec<PendingImages>,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<ImageReport> {
        let mut report = ImageReport::default();
        if pending.iter().all(|p| p.images.is_empty()) {
            return Ok(report);
        }
        // What the store has: by product (not to add one twice) and by content (not to
        // store a known file again).
        let txn = self.db.tenant_txn(tenant.id).await?;
        let existing = repo::images_of_store(&txn, tenant.id).await?;
        txn.commit().await.map_err(StoreError::from)?;
        let size = |w: i32, h: i32| (u32::try_from(w).unwrap_or(0), u32::try_from(h).unwrap_or(0));
        let known: Known =
            existing.iter().map(|i| (i.hash.clone(), (i.ext.clone(), size(i.width, i.height)))).collect();

        let mut seen = HashSet::new();
        let sources: Vec<String> = pending
            .iter()
            .flat_map(|p| &p.images)
            .filter(|i| seen.insert(i.src.as_str()))
            .map(|i| i.src.clone())
            .collect();
        let total = sources.len();
        let done = AtomicUsize::new(0);
        progress(0, total);
        let found: HashMap<String, Result<Found, String>> = futures_util::stream::iter(sources)
            .map(|src| {
                let (known, done) = (&known, &done);
                async move {
                    let result = resolve(tenant, media, outbound, known, &src).await;
                    progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
                    (src, result)
                }
            })
            .buffer_unordered(MAX_CONCURRENT_DOWNLOADS)
            .collect()
            .await;

        // (image id, hash, alt) of each product's images, kept current as images are added.
        let mut attached: HashMap<uuid::Uuid, Vec<(uuid::Uuid, String, String)>> = HashMap::new();
        for image in existing {
            attached.entry(image.product_id).or_default().push((image.id, image.hash, image.alt));
        }
        // (product, hash) attached or updated by this import: a second URL with the same
        // content in the same product is the same image, already handled.
        let mut touched: HashSet<(uuid::Uuid, String)> = HashSet::new();
        let txn = self.db.tenant_txn(tenant.id).await?;
        // The plan's storage: images past it are reported, not attached.
        let plan = ecom_store::plans::of_tenant(&txn, tenant.id).await?;
        let room = plan.as_ref().and_then(|p| p.max_storage_bytes);
        let mut used = ecom_store::plans::storage_bytes(&txn, tenant.id).await?;
        for product in pending {
            for image in product.images {
                let not_added = |why: &str| format!("image {} was not added: {why}", image.src);
                let found = match found.get(&image.src) {
                    Some(Ok(found)) => found,
                    Some(Err(why)) => {
                        report.problem(image.line, not_added(why));
                        continue;
                    }
                    None => continue,
                };
                let alt = image.alt.trim();
                if !touched.insert((product.product, found.hash.clone())) {
                    report.unchanged += 1;
                    continue;
                }
                let mine = attached.entry(product.product).or_default();
                if let Some((id, _, old_alt)) = mine.iter_mut().find(|(_, hash, _)| *hash == found.hash) {
                    if old_alt.as_str() == alt {
                        report.unchanged += 1;
                    } else {
                        repo::set_image_alt(&txn, tenant.id, *id, alt).await?;
                        *old_alt = alt.to_owned();
                        report.updated += 1;
                    }
                    continue;
                }
                if let (Some(plan), Some(room)) = (plan.as_ref(), room)
                    && used.saturating_add(found.bytes) > room
                {
                    let why = crate::plans::refusal(plan, crate::plans::Limit::Storage, room).to_string();
                    report.problem(image.line, not_added(&why));
                    continue;
                }
                match repo::insert_image(
                    &txn,
                    tenant.id,
                    product.product,
                    &found.hash,
                    &found.ext,
                    found.size,
                    alt,
                    found.bytes,
                )
                .await?
                {
                    Some(id) => {
                        mine.push((id, found.hash.clone(), alt.to_owned()));
                        used = used.saturating_add(found.bytes);
                        report.added += 1;
                    }
                    None => report.problem(image.line, not_added("the product is no longer in the store")),
                }
            }
        }
        txn.commit().await.map_err(StoreError::from)?;
        if report.added + report.updated > 0 {
            self.invalidate(tenant.id);
        }
        report.problems.sort_by_key(|p| p.line);
        Ok(report)
    }
}

impl Catalog {
    /// Fetches images by URL (through [`Outbound`], as imports do; an image of this
    /// store's own media is taken as it is) and attaches them to a product, all or
    /// none: `Ok(Err((index, why)))` names the first that could not be had, and then
    /// nothing is attached. `NotFound` when the product is not the store's.
    pub async fn attach_images_from_urls(
        &self,
        tenant: &Tenant,
        media: &Media,
        outbound: &Outbound,
        product: uuid::Uuid,
        images: &[(String, String)],
    ) -> Result<Result<Vec<uuid::Uuid>, (usize, String)>> {
        if let Some(i) = images.iter().position(|(_, alt)| alt.trim().chars().count() > crate::catalog::MAX_ALT_CHARS) {
            return Ok(Err((i, format!("use at most {} characters of alt text", crate::catalog::MAX_ALT_CHARS))));
        }
        let txn = self.db.tenant_txn(tenant.id).await?;
        let exists = repo::product_by_id(&txn, tenant.id, product).await?.is_some();
        let existing = repo::images_of_store(&txn, tenant.id).await?;
        txn.commit().await.map_err(StoreError::from)?;
        if !exists {
            return Err(crate::ServiceError::NotFound);
        }
        let size = |w: i32, h: i32| (u32::try_from(w).unwrap_or(0), u32::try_from(h).unwrap_or(0));
        let known: Known =
            existing.iter().map(|i| (i.hash.clone(), (i.ext.clone(), size(i.width, i.height)))).collect();
        let sources: Vec<String> = images.iter().map(|(src, _)| src.clone()).collect();
        let found: Vec<Result<Found, String>> = futures_util::stream::iter(sources)
            .map(|src| {
                let known = &known;
                async move { resolve(tenant, media, outbound, known, &src).await }
            })
            .buffered(MAX_CONCURRENT_DOWNLOADS)
            .collect()
            .await;
        let mut ready = Vec::with_capacity(found.len());
        for (i, f) in found.into_iter().enumerate() {
            match f {
                Ok(f) => ready.push(f),
                Err(why) => return Ok(Err((i, why))),
            }
        }
        let txn = self.db.tenant_txn(tenant.id).await?;
        crate::plans::take_turn(&txn, tenant.id, crate::plans::Limit::Storage).await?;
        let used = ecom_store::plans::storage_bytes(&txn, tenant.id).await?;
        let adding = ready.iter().map(|f| f.bytes).fold(0u64, u64::saturating_add);
        crate::plans::ensure_within_txn(&txn, tenant.id, crate::plans::Limit::Storage, used.saturating_add(adding))
            .await?;
        let mut ids = Vec::with_capacity(ready.len());
        for (f, (_, alt)) in ready.iter().zip(images) {
            let id = repo::insert_image(&txn, tenant.id, product, &f.hash, &f.ext, f.size, alt.trim(), f.bytes)
                .await?
                .ok_or(crate::ServiceError::NotFound)?;
            ids.push(id);
        }
        txn.commit().await.map_err(StoreError::from)?;
        self.invalidate(tenant.id);
        Ok(Ok(ids))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_media_urls_are_recognised_on_any_host() {
        let hash = "ab".repeat(32);
        let expect = Some((hash.clone(), "png".to_owned()));
        assert_eq!(media_file_named(&format!("https://demo.example.com/media/{hash}.png")), expect);
        assert_eq!(media_file_named(&format!("http://shop.other.test:8080/media/{hash}.png?v=2")), expect);
        assert_eq!(media_file_named(&format!("/media/{hash}.png")), expect);
        assert_eq!(media_file_named(&format!("//cdn.example.com/media/{}.PNG", hash.to_uppercase())), expect);
        assert_eq!(media_file_named(&format!("https://x.test/media/{hash}-400.jpg")), None, "a thumbnail");
        assert_eq!(media_file_named(&format!("https://x.test/media/{hash}.gif")), None);
        assert_eq!(media_file_named(&format!("https://x.test/files/{hash}.png")), None);
        assert_eq!(media_file_named("https://x.test/media/abc.png"), None);
        assert_eq!(absolute("//cdn.shopify.com/a.jpg").as_deref(), Some("https://cdn.shopify.com/a.jpg"));
        assert_eq!(absolute("/media/x.png"), None);
    }
}
