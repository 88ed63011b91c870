//! Media: uploaded images are checked (format, byte size, pixel count — so a
//! decompression bomb is refused before it is decoded), stored content-addressed per
//! store through `object_store` (a local directory by default), and resized into a few
//! thumbnail widths in the background.

use bytes::Bytes;
use ecom_core::TenantId;
use image::{ImageFormat, ImageReader};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};
use std::io::Cursor;
use std::sync::Arc;

/// Uploads larger than this are refused unread.
pub const MAX_BYTES: usize = 20 * 1024 * 1024;
/// Larger images are refused before decoding: 40 megapixels, 12,000 px a side.
pub const MAX_PIXELS: u64 = 40_000_000;
pub const MAX_SIDE: u32 = 12_000;
/// The widths thumbnails are made in; pages pick one with `srcset`.
pub const THUMB_WIDTHS: [u32; 3] = [200, 400, 800];

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The upload is not an acceptable image; the message is for the merchant.
    #[error("{0}")]
    Rejected(String),
    #[error("media storage: {0}")]
    Storage(String),
}

type Job = Box<dyn FnOnce() + Send>;

/// Runs image work (decoding, resizing, drawing) on one dedicated thread. Uploads are
/// rare; what matters is that decoding megapixel images never takes both cores from
/// page serving, and that the allocator keeps image buffers in one thread's arena
/// (spread over tokio's blocking threads, a few dozen images left ~90 MiB resident).
pub async fn on_image_thread<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, MediaError> {
    static QUEUE: std::sync::OnceLock<std::sync::Mutex<std::sync::mpsc::Sender<Job>>> = std::sync::OnceLock::new();
    let queue = QUEUE.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let spawned = std::thread::Builder::new().name("ecom-images".into()).spawn(move || {
            while let Ok(job) = rx.recv() {
                job();
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the image thread");
        }
        std::sync::Mutex::new(tx)
    });
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(work());
    });
    queue
        .lock()
        .map_err(|_| MediaError::Storage("image thread poisoned".into()))?
        .send(job)
        .map_err(|_| MediaError::Storage("image thread stopped".into()))?;
    rx.await.map_err(|_| MediaError::Storage("image work failed".into()))
}

/// An image stored for a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredImage {
    /// SHA-256 of the original bytes (hex): the content address.
    pub hash: String,
    /// `jpg`, `png` or `webp`.
    pub ext: &'static str,
    pub width: u32,
    pub height: u32,
}

/// Image storage behind `object_store`.
#[derive(Clone)]
pub struct Media {
    store: Arc<dyn ObjectStore>,
}

impl std::fmt::Debug for Media {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Media").finish_non_exhaustive()
    }
}

fn ext_of(format: ImageFormat) -> Option<&'static str> {
    match format {
        ImageFormat::Jpeg => Some("jpg"),
        ImageFormat::Png => Some("png"),
        ImageFormat::WebP => Some("webp"),
        _ => None,
    }
}

/// The content type for a stored file's extension.
pub fn content_type(ext: &str) -> &'static str {
    match ext {
        "jpg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        _ => "application/octet-stream",
    }
}

fn original_key(tenant: TenantId, hash: &str, ext: &str) -> ObjectPath {
    ObjectPath::from(format!("{tenant}/originals/{hash}.{ext}"))
}

fn thumb_key(tenant: TenantId, hash: &str, width: u32) -> ObjectPath {
    ObjectPath::from(format!("{tenant}/thumbs/{hash}-{width}.jpg"))
}

/// Checks that `bytes` is a JPEG, PNG or WebP image within the limits, reading only
/// the header for the size check; then decodes it fully to be sure it is whole.
pub fn inspect(bytes: &[u8]) -> Result<(ImageFormat, u32, u32), MediaError> {
    if bytes.len() > MAX_BYTES {
        return Err(MediaError::Rejected(format!("the file is larger than {} MB", MAX_BYTES / 1024 / 1024)));
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|_| MediaError::Rejected("the file could not be read".into()))?;
    let format = reader
        .format()
        .filter(|f| ext_of(*f).is_some())
        .ok_or_else(|| MediaError::Rejected("only JPEG, PNG and WebP images can be uploaded".into()))?;
    let (w, h) = reader
        .into_dimensions()
        .map_err(|_| MediaError::Rejected("the image is damaged or not really an image".into()))?;
    if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE || u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(MediaError::Rejected(format!(
            "the image is {w}×{h} pixels; the limit is {MAX_SIDE} pixels a side and {} megapixels",
            MAX_PIXELS / 1_000_000
        )));
    }
    let mut decoder = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_PIXELS * 4 + 64 * 1024 * 1024);
    decoder.limits(limits);
    decoder.decode().map_err(|_| MediaError::Rejected("the image is damaged and cannot be decoded".into()))?;
    Ok((format, w, h))
}

fn make_thumbnail(original: &[u8], width: u32) -> Result<Vec<u8>, MediaError> {
    let img =
        image::load_from_memory(original).map_err(|e| MediaError::Storage(format!("decode for thumbnail: {e}")))?;
    let resized =
        if img.width() > width { img.resize(width, u32::MAX, image::imageops::FilterType::Triangle) } else { img };
    let mut out = Cursor::new(Vec::new());
    let rgb = resized.to_rgb8();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 82);
    rgb.write_with_encoder(encoder).map_err(|e| MediaError::Storage(format!("encode thumbnail: {e}")))?;
    Ok(out.into_inner())
}

impl Media {
    /// Media kept under `dir` on local disk.
    pub fn local(dir: &std::path::Path) -> Result<Self, MediaError> {
        std::fs::create_dir_all(dir).map_err(|e| MediaError::Storage(format!("{}: {e}", dir.display())))?;
        let fs = LocalFileSystem::new_with_prefix(dir).map_err(|e| MediaError::Storage(e.to_string()))?;
        Ok(Self { store: Arc::new(fs) })
    }

    /// Any other `object_store` backend (S3-compatible, in memory for tests).
    pub fn with_store(store: Arc<dyn ObjectStore>) -> Self {
        Self { store }
    }

    /// Checks and stores an upload, then makes its thumbnails in the background.
    pub async fn ingest(&self, tenant: TenantId, bytes: Bytes) -> Result<StoredImage, MediaError> {
        let checked = bytes.clone();
        let (format, width, height) = on_image_thread(move || inspect(&checked)).await??;
        let ext = ext_of(format).unwrap_or("bin");
        let hash = hex::encode(Sha256::digest(&bytes));
        self.store
            .put(&original_key(tenant, &hash, ext), PutPayload::from_bytes(bytes.clone()))
            .await
            .map_err(|e| MediaError::Storage(e.to_string()))?;
        let (media, h) = (self.clone(), hash.clone());
        tokio::spawn(async move {
            if let Err(e) = media.make_thumbnails(tenant, &h, bytes).await {
                tracing::warn!(error = %e, "thumbnails failed; originals are served instead");
            }
        });
        Ok(StoredImage { hash, ext, width, height })
    }

    async fn make_thumbnails(&self, tenant: TenantId, hash: &str, original: Bytes) -> Result<(), MediaError> {
        for width in THUMB_WIDTHS {
            let src = original.clone();
            let thumb = on_image_thread(move || make_thumbnail(&src, width)).await??;
            self.store
                .put(&thumb_key(tenant, hash, width), PutPayload::from(thumb))
                .await
                .map_err(|e| MediaError::Storage(e.to_string()))?;
        }
        Ok(())
    }

    /// A stored file of a store: the original (`ext` = jpg/png/webp) or a thumbnail
    /// (`width` = one of [`THUMB_WIDTHS`]). `None` when it does not exist (yet).
    pub async fn get(
        &self,
        tenant: TenantId,
        hash: &str,
        ext: &str,
        width: Option<u32>,
    ) -> Result<Option<Bytes>, MediaError> {
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let key = match width {
            Some(w) if THUMB_WIDTHS.contains(&w) => thumb_key(tenant, hash, w),
            Some(_) => return Ok(None),
            None => original_key(tenant, hash, ext),
        };
        match self.store.get(&key).await {
            Ok(result) => Ok(Some(result.bytes().await.map_err(|e| MediaError::Storage(e.to_string()))?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(MediaError::Storage(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(w, h, image::Rgb([200, 100, 50]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).unwrap_or_else(|e| panic!("{e}"));
        out.into_inner()
    }

    /// CRC-32 as PNG chunks use it, to forge a valid header.
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    #[test]
    fn images_are_checked_before_they_are_decoded() {
        assert!(matches!(inspect(&png(30, 20)), Ok((ImageFormat::Png, 30, 20))));
        assert!(matches!(inspect(b"GIF89a....."), Err(MediaError::Rejected(_))));
        assert!(matches!(inspect(b"not an image at all"), Err(MediaError::Rejected(_))));
        // A PNG header claiming 50,000 × 50,000 pixels: refused from the header alone.
        let mut bomb = png(1, 1);
        bomb[16..20].copy_from_slice(&50_000u32.to_be_bytes());
        bomb[20..24].copy_from_slice(&50_000u32.to_be_bytes());
        let crc = crc32(&bomb[12..29]);
        bomb[29..33].copy_from_slice(&crc.to_be_bytes());
        let err = inspect(&bomb).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("50000×50000"), "{err}");
        // A truncated file is refused too.
        let whole = png(64, 64);
        assert!(matches!(inspect(&whole[..whole.len() / 2]), Err(MediaError::Rejected(_))));
    }

    #[tokio::test]
    async fn stored_images_get_thumbnails_and_stay_within_their_store() {
        let media = Media::with_store(Arc::new(object_store::memory::InMemory::new()));
        let (a, b) = (TenantId::new(), TenantId::new());
        let stored = media.ingest(a, Bytes::from(png(1000, 500))).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((stored.ext, stored.width, stored.height), ("png", 1000, 500));
        assert!(media.get(a, &stored.hash, "png", None).await.unwrap_or_default().is_some());
        assert!(
            media.get(b, &stored.hash, "png", None).await.unwrap_or_default().is_none(),
            "another store sees nothing"
        );
        let mut thumb = None;
        for _ in 0..100 {
            thumb = media.get(a, &stored.hash, "jpg", Some(400)).await.unwrap_or_default();
            if thumb.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let thumb = thumb.unwrap_or_default();
        let decoded = image::load_from_memory(&thumb).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((decoded.width(), decoded.height()), (400, 200));
    }
}
