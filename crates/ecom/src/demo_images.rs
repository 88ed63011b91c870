//! Product pictures for the demo stores, drawn rather than shipped: a garment or tool
//! silhouette in the product's first colour on a studio-grey background. They go
//! through the same upload path as a merchant's images (checks, storage,
//! thumbnails), in the background after start-up so the server is ready at once.

use ecom_core::Tenant;
use ecom_media::Media;
use ecom_services::Catalog;
use image::{Rgb, RgbImage};

const W: u32 = 640;
const H: u32 = 800;

fn colour(name: &str) -> [u8; 3] {
    match name {
        "Natural" => [216, 203, 176],
        "Sage" => [156, 175, 136],
        "Navy" => [43, 58, 85],
        "White" => [246, 245, 240],
        "Black" => [34, 34, 36],
        "Rust" => [181, 83, 44],
        "Charcoal" => [68, 71, 77],
        "Oatmeal" => [217, 205, 180],
        "Forest" => [47, 79, 58],
        "Red Check" => [168, 50, 45],
        "Blue Check" => [59, 92, 140],
        "Indigo" => [46, 58, 110],
        "Olive" => [107, 107, 58],
        "Tan" => [184, 148, 106],
        _ => [224, 122, 31],
    }
}

type Shape = &'static [(f32, f32)];

const TEE: Shape = &[
    (0.30, 0.18),
    (0.42, 0.14),
    (0.50, 0.19),
    (0.58, 0.14),
    (0.70, 0.18),
    (0.88, 0.32),
    (0.80, 0.43),
    (0.72, 0.37),
    (0.72, 0.86),
    (0.28, 0.86),
    (0.28, 0.37),
    (0.20, 0.43),
    (0.12, 0.32),
];
const LONG_SLEEVE: Shape = &[
    (0.30, 0.16),
    (0.42, 0.13),
    (0.50, 0.18),
    (0.58, 0.13),
    (0.70, 0.16),
    (0.86, 0.30),
    (0.93, 0.78),
    (0.82, 0.80),
    (0.74, 0.42),
    (0.74, 0.86),
    (0.26, 0.86),
    (0.26, 0.42),
    (0.18, 0.80),
    (0.07, 0.78),
    (0.14, 0.30),
];
const TROUSERS: Shape =
    &[(0.32, 0.12), (0.68, 0.12), (0.73, 0.88), (0.56, 0.88), (0.50, 0.40), (0.44, 0.88), (0.27, 0.88)];
const BAG: Shape = &[(0.24, 0.40), (0.76, 0.40), (0.80, 0.86), (0.20, 0.86)];
const HAMMER: Shape = &[
    (0.30, 0.18),
    (0.72, 0.18),
    (0.76, 0.24),
    (0.72, 0.30),
    (0.54, 0.30),
    (0.54, 0.86),
    (0.46, 0.86),
    (0.46, 0.30),
    (0.30, 0.30),
];
const DRIVER: Shape =
    &[(0.44, 0.14), (0.56, 0.14), (0.57, 0.46), (0.51, 0.48), (0.51, 0.88), (0.49, 0.88), (0.49, 0.48), (0.43, 0.46)];
const TOOLBOX: Shape = &[(0.18, 0.42), (0.82, 0.42), (0.82, 0.80), (0.18, 0.80)];

fn shape_for(kind: &str) -> (Shape, bool) {
    let k = kind.to_lowercase();
    match () {
        _ if k.contains("trouser") => (TROUSERS, false),
        _ if k.contains("knit") || k.contains("jacket") || k.contains("sweater") => (LONG_SLEEVE, false),
        _ if k.contains("shirt") || k.contains("top") || k.contains("tee") => (TEE, false),
        _ if k.contains("bag") => (BAG, true),
        _ if k.contains("hammer") => (HAMMER, false),
        _ if k.contains("screwdriver") => (DRIVER, false),
        _ => (TOOLBOX, true),
    }
}

fn inside(poly: Shape, x: f32, y: f32) -> bool {
    let mut c = false;
    let mut j = poly.len() - 1;
    for i in 0..poly.len() {
        let ((xi, yi), (xj, yj)) = (poly[i], poly[j]);
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            c = !c;
        }
        j = i;
    }
    c
}

/// Draws one product picture as a PNG.
pub fn draw(kind: &str, colour_name: &str) -> Vec<u8> {
    let (shape, handle) = shape_for(kind);
    let fill = colour(colour_name);
    let img = RgbImage::from_fn(W, H, |px, py| {
        let (x, y) = ((px as f32 + 0.5) / W as f32, (py as f32 + 0.5) / H as f32);
        // Studio background: light at the top, a touch darker below, soft floor shadow.
        let bg = 236.0 - 18.0 * y;
        let shadow = {
            let (dx, dy) = ((x - 0.5) / 0.32, (y - 0.90) / 0.03);
            (1.0 - (dx * dx + dy * dy)).max(0.0) * 28.0
        };
        let mut px_col = [bg - shadow, bg - 2.0 - shadow, bg - 6.0 - shadow];
        let ring = {
            let d = ((x - 0.5).powi(2) + ((y - 0.40) * 0.8).powi(2)).sqrt();
            handle && y < 0.42 && (0.10..0.135).contains(&d)
        };
        if inside(shape, x, y) || ring {
            // Light from the top left.
            let shade = 1.08 - 0.22 * y - 0.10 * (x - 0.3).abs();
            px_col = fill.map(|c| f32::from(c) * shade);
        }
        Rgb(px_col.map(|c| c.clamp(0.0, 255.0) as u8))
    });
    let mut out = std::io::Cursor::new(Vec::new());
    if img.write_to(&mut out, image::ImageFormat::Png).is_err() {
        return Vec::new();
    }
    out.into_inner()
}

/// Gives every product of a demo store without images a drawn picture.
pub async fn add(catalog: &Catalog, media: &Media, tenant: &Tenant) -> anyhow::Result<usize> {
    let products = catalog.export_products(tenant).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut added = 0;
    for (p, variants) in products {
        if !catalog.images(tenant, p.id).await.map_err(|e| anyhow::anyhow!("{e}"))?.is_empty() {
            continue;
        }
        let colour_idx = p.options.iter().position(|o| o.name == "Color");
        let colour_name =
            colour_idx.and_then(|i| variants.first().and_then(|v| v.option_values.get(i).cloned())).unwrap_or_default();
        let kind = p.product_type.clone();
        let bytes = ecom_media::on_image_thread({
            let colour_name = colour_name.clone();
            move || draw(&kind, &colour_name)
        })
        .await?;
        let size = bytes.len() as u64;
        let stored = media.ingest(tenant.id, bytes.into()).await?;
        let alt = if colour_name.is_empty() {
            p.title.clone()
        } else {
            format!("{} in {}", p.title, colour_name.to_lowercase())
        };
        catalog
            .add_image(tenant, p.id, &stored.hash, stored.ext, (stored.width, stored.height), &alt, size)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        added += 1;
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drawn_pictures_pass_the_upload_checks() {
        for (kind, colour) in [("Shirts", "Navy"), ("Bags", "Tan"), ("Hammers", ""), ("Trousers", "Black")] {
            let png = draw(kind, colour);
            let checked = ecom_media::inspect(&png).map(|(_, w, h)| (w, h)).map_err(|e| e.to_string());
            assert_eq!(checked, Ok((W, H)), "{kind}");
        }
        assert!(inside(TOOLBOX, 0.5, 0.6) && !inside(TOOLBOX, 0.05, 0.05));
    }
}
