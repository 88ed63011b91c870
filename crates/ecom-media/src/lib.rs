//! Media: uploaded images are checked (format, byte size, pixel count — so a
//! decompression bomb is refused before it is decoded), stored content-addressed per
//! store through `object_store` (a local directory by default, or any S3-compatible
//! object store), and resized into a few thumbnail widths in the background.

use bytes::Bytes;
use ecom_core::TenantId;
use image::{ImageFormat, ImageReader};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};
use sha2::{Digest, Sha256};
use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

/// The `object_store` this crate is built on, for callers that need a second client
/// to the same store (tests, tools) without a version mismatch.
pub use object_store;

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
    backend: Arc<Backend>,
}

/// Where media lives, for messages and the readiness probe (never holds a secret).
#[derive(Debug)]
enum Backend {
    Local(std::path::PathBuf),
    S3 { bucket: String, endpoint: String },
    Other,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local(dir) => write!(f, "local directory {}", dir.display()),
            Self::S3 { bucket, endpoint } => write!(f, "S3 bucket {bucket} at {endpoint}"),
            Self::Other => f.write_str("object store"),
        }
    }
}

impl std::fmt::Debug for Media {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Media").field("backend", &self.backend.to_string()).finish_non_exhaustive()
    }
}

/// Settings for an S3-compatible object store (AWS S3, MinIO, Ceph, Garage, R2, moto…).
#[derive(Clone, Default)]
pub struct S3Settings {
    pub bucket: String,
    /// `None` (or empty) for AWS itself; else the store's URL, e.g. `http://127.0.0.1:9000`,
    /// addressed path-style (`<endpoint>/<bucket>/<key>`).
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Allow a plain `http://` endpoint (a store on the same host or private network).
    pub allow_http: bool,
    /// Keys are stored under this prefix (`<prefix>/<store id>/…`), to share a bucket.
    pub prefix: Option<String>,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"(redacted)")
            .field("allow_http", &self.allow_http)
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// How long an S3 request may take to connect, to finish, and with its retries: an
/// upload fails with an error in seconds rather than hanging when the store is down.
const S3_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const S3_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const S3_RETRY_TIMEOUT: Duration = Duration::from_secs(20);
const S3_MAX_RETRIES: usize = 3;
/// The readiness probe gives up after this long.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

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
        Ok(Self { store: Arc::new(fs), backend: Arc::new(Backend::Local(dir.to_path_buf())) })
    }

    /// Media kept in an S3-compatible bucket. Builds the client only: nothing is sent
    /// until the first upload or [`Media::check`].
    pub fn s3(settings: S3Settings) -> Result<Self, MediaError> {
        let S3Settings { bucket, endpoint, region, access_key_id, secret_access_key, allow_http, prefix } = settings;
        let invalid = |what: String| MediaError::Storage(format!("S3 settings: {what}"));
        if bucket.is_empty() {
            return Err(invalid("a bucket name is required".into()));
        }
        if access_key_id.is_empty() || secret_access_key.is_empty() {
            return Err(invalid("an access key id and a secret access key are required".into()));
        }
        let endpoint = endpoint.map(|e| e.trim_end_matches('/').to_owned()).filter(|e| !e.is_empty());
        if let Some(url) = &endpoint {
            if url.starts_with("http://") && !allow_http {
                return Err(invalid(format!("the endpoint {url} is plain http, and http is not allowed")));
            }
            if !url.starts_with("http://") && !url.starts_with("https://") {
                return Err(invalid(format!("the endpoint {url} is not an http:// or https:// URL")));
            }
        }
        let region = if region.is_empty() { "us-east-1".to_owned() } else { region };
        let shown = endpoint.clone().unwrap_or_else(|| format!("AWS {region}"));
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&bucket)
            .with_region(&region)
            .with_access_key_id(access_key_id)
            .with_secret_access_key(secret_access_key)
            .with_client_options(
                ClientOptions::new()
                    .with_allow_http(allow_http)
                    .with_connect_timeout(S3_CONNECT_TIMEOUT)
                    .with_timeout(S3_REQUEST_TIMEOUT),
            )
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: S3_MAX_RETRIES,
                retry_timeout: S3_RETRY_TIMEOUT,
            });
        builder = match &endpoint {
            // Self-hosted stores rarely have a DNS name per bucket: path-style.
            Some(url) => builder.with_endpoint(url).with_virtual_hosted_style_request(false),
            // AWS itself prefers virtual-hosted-style (`<bucket>.s3.<region>.amazonaws.com`).
            None => builder.with_virtual_hosted_style_request(true),
        };
        let s3 = builder.build().map_err(|e| invalid(e.to_string()))?;
        let prefix = prefix.map(|p| p.trim_matches('/').to_owned()).filter(|p| !p.is_empty());
        let store: Arc<dyn ObjectStore> = match prefix {
            Some(p) => {
                let path = ObjectPath::parse(&p).map_err(|e| invalid(format!("the key prefix {p:?}: {e}")))?;
                Arc::new(PrefixStore::new(s3, path))
            }
            None => Arc::new(s3),
        };
        Ok(Self { store, backend: Arc::new(Backend::S3 { bucket, endpoint: shown }) })
    }

    /// Any other `object_store` backend (in memory for tests, say).
    pub fn with_store(store: Arc<dyn ObjectStore>) -> Self {
        Self { store, backend: Arc::new(Backend::Other) }
    }

    /// Where media is kept, for the start-up log (holds no secret).
    pub fn describe(&self) -> String {
        self.backend.to_string()
    }

    /// Readiness probe: whether the store answers (directory present; bucket reachable
    /// with these credentials), within a few seconds. Reads only: cheap enough for
    /// `/readyz` on every scrape.
    pub async fn check(&self) -> Result<(), MediaError> {
        if let Backend::Local(dir) = &*self.backend {
            let meta = tokio::fs::metadata(dir).await.map_err(|e| self.storage_error(e))?;
            if !meta.is_dir() {
                return Err(self.storage_error("not a directory"));
            }
        }
        // A listing under a prefix nothing is stored in: one small request, which
        // fails on a missing bucket or bad credentials (unlike a HEAD, where both are
        // a plain 404).
        let probe = ObjectPath::from("readyz");
        match tokio::time::timeout(CHECK_TIMEOUT, self.store.list_with_delimiter(Some(&probe))).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(self.storage_error(e)),
            Err(_) => Err(self.storage_error(format!("no answer within {} s", CHECK_TIMEOUT.as_secs()))),
        }
    }

    fn storage_error(&self, e: impl std::fmt::Display) -> MediaError {
        MediaError::Storage(format!("{}: {e}", self.backend))
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
            .map_err(|e| self.storage_error(e))?;
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
                .map_err(|e| self.storage_error(e))?;
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
            Ok(result) => Ok(Some(result.bytes().await.map_err(|e| self.storage_error(e))?)),
            // A missing key (S3: 404, local: no file) is "not there", served as a 404.
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.storage_error(e)),
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

    fn s3_settings() -> S3Settings {
        S3Settings {
            bucket: "media".into(),
            endpoint: Some("http://127.0.0.1:9000/".into()),
            region: String::new(),
            access_key_id: "id".into(),
            secret_access_key: "very-secret".into(),
            allow_http: true,
            prefix: None,
        }
    }

    #[test]
    fn s3_settings_are_checked_when_the_client_is_built() {
        let media = Media::s3(s3_settings()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(media.describe(), "S3 bucket media at http://127.0.0.1:9000");
        assert!(!format!("{:?} {media:?}", s3_settings()).contains("very-secret"), "the secret never prints");
        let aws = Media::s3(S3Settings { endpoint: Some(String::new()), allow_http: false, ..s3_settings() });
        assert_eq!(aws.map(|m| m.describe()).ok().as_deref(), Some("S3 bucket media at AWS us-east-1"));
        let refused = |settings: S3Settings| Media::s3(settings).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(refused(S3Settings { allow_http: false, ..s3_settings() }).contains("http is not allowed"));
        assert!(refused(S3Settings { bucket: String::new(), ..s3_settings() }).contains("bucket"));
        assert!(refused(S3Settings { secret_access_key: String::new(), ..s3_settings() }).contains("secret"));
        assert!(refused(S3Settings { endpoint: Some("ftp://x".into()), ..s3_settings() }).contains("ftp://x"));
        assert!(refused(S3Settings { prefix: Some("a/../b".into()), ..s3_settings() }).contains("prefix"));
        assert!(Media::s3(S3Settings { prefix: Some("/shops/media/".into()), ..s3_settings() }).is_ok());
    }

    #[tokio::test]
    async fn the_readiness_probe_answers_for_local_and_in_memory_stores() {
        let memory = Media::with_store(Arc::new(object_store::memory::InMemory::new()));
        assert!(memory.check().await.is_ok());
        let dir = std::env::temp_dir().join(format!("ecom-media-check-{}", std::process::id()));
        let local = Media::local(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert!(local.check().await.is_ok());
        std::fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let err = local.check().await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("local directory"), "{err}");
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
