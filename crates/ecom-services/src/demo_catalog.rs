//! A believable demo catalog for the two demo stores: clothing for Demo Outfitters,
//! tools for Acme Hardware, each over 50 products with variants, categories and
//! collections. Generated from small tables so it stays readable.

use crate::Result;
use crate::catalog::Catalog;
use ecom_core::catalog::{CollectionRule, Handle, ProductDraft, ProductOption, ProductStatus, VariantDraft};
use ecom_core::{Money, Tenant};

struct Item {
    title: &'static str,
    kind: &'static str,
    category: &'static str,
    /// Base price in minor units.
    price: i64,
    options: &'static [(&'static str, &'static [&'static str])],
    attributes: &'static [(&'static str, &'static str)],
    blurb: &'static str,
}

const APPAREL_SIZES: &[&str] = &["XS", "S", "M", "L", "XL"];

const OUTFITTERS_MATERIALS: &[(&str, &str, &[&str])] = &[
    ("Linen", "Breathable European linen that softens with every wash.", &["Natural", "Sage", "Navy"]),
    ("Organic Cotton", "GOTS-certified organic cotton, garment-dyed for a lived-in feel.", &["White", "Black", "Rust"]),
    ("Merino", "Fine 17.5-micron merino that regulates warmth and resists odour.", &["Charcoal", "Oatmeal", "Forest"]),
    ("Heavy Flannel", "Brushed twice for a soft hand and a warm, substantial drape.", &["Red Check", "Blue Check"]),
    ("Selvedge Denim", "13 oz Japanese selvedge denim woven on vintage shuttle looms.", &["Indigo", "Black"]),
    ("Waxed Canvas", "Dry-finish waxed cotton canvas that shrugs off showers.", &["Olive", "Tan"]),
];

const OUTFITTERS_ITEMS: &[(&str, &str, &str, i64)] = &[
    ("Camp Shirt", "Shirts", "shirts", 6800),
    ("Oxford Shirt", "Shirts", "shirts", 7400),
    ("Crew Sweater", "Knitwear", "knitwear", 9800),
    ("Cardigan", "Knitwear", "knitwear", 11800),
    ("Chore Jacket", "Jackets", "jackets", 15800),
    ("Overshirt", "Jackets", "jackets", 12400),
    ("Wide Trousers", "Trousers", "trousers", 9200),
    ("Tee", "Tops", "tops", 3400),
    ("Tote Bag", "Bags", "bags", 4800),
];

const ACME_ITEMS: &[Item] = &[
    Item {
        title: "Claw Hammer",
        kind: "Hammers",
        category: "hand-tools",
        price: 2490,
        options: &[("Weight", &["16 oz", "20 oz"])],
        attributes: &[("head", "forged steel"), ("handle", "fibreglass")],
        blurb: "A balanced, drop-forged claw hammer with a shock-absorbing fibreglass handle.",
    },
    Item {
        title: "Tack Hammer",
        kind: "Hammers",
        category: "hand-tools",
        price: 1290,
        options: &[],
        attributes: &[("head", "magnetic steel")],
        blurb: "A light hammer with a magnetic face for starting small nails one-handed.",
    },
    Item {
        title: "Rubber Mallet",
        kind: "Hammers",
        category: "hand-tools",
        price: 1490,
        options: &[("Weight", &["16 oz", "32 oz"])],
        attributes: &[("head", "rubber")],
        blurb: "Non-marring rubber head for tiles, joinery and stubborn hub caps.",
    },
    Item {
        title: "Slotted Screwdriver",
        kind: "Screwdrivers",
        category: "hand-tools",
        price: 690,
        options: &[("Size", &["3 mm", "5 mm", "8 mm"])],
        attributes: &[("tip", "hardened chrome-vanadium")],
        blurb: "Precision-ground tip and a two-component grip that does not slip.",
    },
    Item {
        title: "Phillips Screwdriver",
        kind: "Screwdrivers",
        category: "hand-tools",
        price: 690,
        options: &[("Size", &["PH0", "PH1", "PH2", "PH3"])],
        attributes: &[("tip", "hardened chrome-vanadium")],
        blurb: "Cross-head driver with a tip that seats deep and resists cam-out.",
    },
    Item {
        title: "Screwdriver Set",
        kind: "Screwdrivers",
        category: "hand-tools",
        price: 3490,
        options: &[("Pieces", &["6", "12"])],
        attributes: &[("case", "roll-up canvas")],
        blurb: "Every driver you reach for, in a roll-up canvas case.",
    },
    Item {
        title: "Adjustable Wrench",
        kind: "Wrenches",
        category: "hand-tools",
        price: 1890,
        options: &[("Length", &["150 mm", "250 mm", "300 mm"])],
        attributes: &[("jaw", "laser-etched scale")],
        blurb: "Smooth worm gear and a laser-etched scale on the jaw.",
    },
    Item {
        title: "Combination Wrench Set",
        kind: "Wrenches",
        category: "hand-tools",
        price: 4590,
        options: &[("Pieces", &["8", "14"])],
        attributes: &[("finish", "satin chrome")],
        blurb: "Open and ring ends in metric sizes, in a fold-out rack.",
    },
    Item {
        title: "Needle-nose Pliers",
        kind: "Pliers",
        category: "hand-tools",
        price: 1590,
        options: &[],
        attributes: &[("length", "200 mm")],
        blurb: "Long, fine jaws for electronics and tight corners, with a side cutter.",
    },
    Item {
        title: "Wire Stripper",
        kind: "Pliers",
        category: "hand-tools",
        price: 1990,
        options: &[],
        attributes: &[("range", "0.2–6 mm²")],
        blurb: "Self-adjusting stripper that takes the insulation and leaves the copper.",
    },
    Item {
        title: "Locking Pliers",
        kind: "Pliers",
        category: "hand-tools",
        price: 1790,
        options: &[("Length", &["180 mm", "250 mm"])],
        attributes: &[("jaw", "curved")],
        blurb: "Clamps on and stays on: a third hand for welding and rounded bolts.",
    },
    Item {
        title: "Tape Measure",
        kind: "Measuring",
        category: "measuring",
        price: 1290,
        options: &[("Length", &["5 m", "8 m"])],
        attributes: &[("blade", "25 mm nylon-coated")],
        blurb: "Wide, stiff blade that stands out to 3 m, with a magnetic hook.",
    },
    Item {
        title: "Spirit Level",
        kind: "Measuring",
        category: "measuring",
        price: 2290,
        options: &[("Length", &["60 cm", "120 cm"])],
        attributes: &[("accuracy", "0.5 mm/m")],
        blurb: "Milled aluminium with three shock-proof vials.",
    },
    Item {
        title: "Laser Distance Meter",
        kind: "Measuring",
        category: "measuring",
        price: 5990,
        options: &[],
        attributes: &[("range", "40 m")],
        blurb: "Point, click, read: room areas and volumes calculated for you.",
    },
    Item {
        title: "Combination Square",
        kind: "Measuring",
        category: "measuring",
        price: 1890,
        options: &[],
        attributes: &[("blade", "300 mm stainless")],
        blurb: "Square, mitre and depth gauge in one stainless blade.",
    },
    Item {
        title: "Utility Knife",
        kind: "Cutting",
        category: "hand-tools",
        price: 990,
        options: &[],
        attributes: &[("blades", "5 spare")],
        blurb: "Tool-free blade change and five spare blades in the handle.",
    },
    Item {
        title: "Hand Saw",
        kind: "Saws",
        category: "hand-tools",
        price: 2190,
        options: &[("Length", &["400 mm", "550 mm"])],
        attributes: &[("teeth", "7 TPI induction-hardened")],
        blurb: "Triple-ground teeth that cut on the push stroke, fast and clean.",
    },
    Item {
        title: "Hacksaw",
        kind: "Saws",
        category: "hand-tools",
        price: 1690,
        options: &[],
        attributes: &[("blade", "300 mm bi-metal")],
        blurb: "Rigid frame, high blade tension, straight cuts in steel.",
    },
    Item {
        title: "Wood Chisel Set",
        kind: "Cutting",
        category: "hand-tools",
        price: 3990,
        options: &[("Pieces", &["4", "6"])],
        attributes: &[("steel", "Cr-V, 60 HRC")],
        blurb: "Bevel-edge chisels, honed and ready, with strike caps.",
    },
    Item {
        title: "Cordless Drill",
        kind: "Drills",
        category: "power-tools",
        price: 8990,
        options: &[("Battery", &["2 Ah", "4 Ah"])],
        attributes: &[("voltage", "18 V"), ("torque", "55 Nm")],
        blurb: "Brushless 18 V drill with a 13 mm metal chuck and two speeds.",
    },
    Item {
        title: "Impact Driver",
        kind: "Drills",
        category: "power-tools",
        price: 9990,
        options: &[("Battery", &["2 Ah", "4 Ah"])],
        attributes: &[("voltage", "18 V"), ("torque", "180 Nm")],
        blurb: "Drives long screws without pre-drilling; compact enough for cabinets.",
    },
    Item {
        title: "Hammer Drill",
        kind: "Drills",
        category: "power-tools",
        price: 12990,
        options: &[],
        attributes: &[("power", "850 W")],
        blurb: "Mains hammer drill for masonry, with depth stop and side handle.",
    },
    Item {
        title: "Orbital Sander",
        kind: "Sanders",
        category: "power-tools",
        price: 6490,
        options: &[],
        attributes: &[("pad", "125 mm")],
        blurb: "Random-orbit action for a swirl-free finish, with dust bag.",
    },
    Item {
        title: "Detail Sander",
        kind: "Sanders",
        category: "power-tools",
        price: 4490,
        options: &[],
        attributes: &[("pad", "delta 100 mm")],
        blurb: "Triangular pad reaches into corners and along mouldings.",
    },
    Item {
        title: "Circular Saw",
        kind: "Saws",
        category: "power-tools",
        price: 11990,
        options: &[("Blade", &["165 mm", "190 mm"])],
        attributes: &[("power", "1400 W")],
        blurb: "Bevels to 50°, with a laser guide and riving knife.",
    },
    Item {
        title: "Jigsaw",
        kind: "Saws",
        category: "power-tools",
        price: 7990,
        options: &[],
        attributes: &[("power", "650 W")],
        blurb: "Pendulum action for fast cuts, off for clean curves.",
    },
    Item {
        title: "Angle Grinder",
        kind: "Grinders",
        category: "power-tools",
        price: 6990,
        options: &[("Disc", &["115 mm", "125 mm"])],
        attributes: &[("power", "900 W")],
        blurb: "Slim grip, restart protection and a tool-free guard.",
    },
    Item {
        title: "Heat Gun",
        kind: "Heat tools",
        category: "power-tools",
        price: 3990,
        options: &[],
        attributes: &[("temperature", "50–600 °C")],
        blurb: "Strips paint, shrinks tubing, thaws pipes.",
    },
    Item {
        title: "Wood Screws",
        kind: "Screws",
        category: "fasteners",
        price: 590,
        options: &[("Size", &["3.5×30", "4×40", "5×60"]), ("Pack", &["100", "500"])],
        attributes: &[("drive", "Torx T20")],
        blurb: "Yellow-zinc wood screws with a cutting tip and Torx drive.",
    },
    Item {
        title: "Drywall Screws",
        kind: "Screws",
        category: "fasteners",
        price: 490,
        options: &[("Size", &["3.5×25", "3.5×35"]), ("Pack", &["200", "1000"])],
        attributes: &[("thread", "coarse")],
        blurb: "Bugle-head screws that sit flush without tearing the paper.",
    },
    Item {
        title: "Wall Plugs",
        kind: "Anchors",
        category: "fasteners",
        price: 390,
        options: &[("Size", &["6 mm", "8 mm", "10 mm"])],
        attributes: &[("material", "nylon")],
        blurb: "Universal nylon plugs for brick, concrete and plasterboard.",
    },
    Item {
        title: "Hex Bolts",
        kind: "Bolts",
        category: "fasteners",
        price: 690,
        options: &[("Size", &["M6×40", "M8×50", "M10×60"])],
        attributes: &[("grade", "8.8 zinc")],
        blurb: "Grade 8.8 zinc-plated bolts with nuts and washers.",
    },
    Item {
        title: "Assorted Washers",
        kind: "Bolts",
        category: "fasteners",
        price: 490,
        options: &[],
        attributes: &[("pieces", "350")],
        blurb: "Flat, spring and penny washers in a sorted case.",
    },
    Item {
        title: "Cable Ties",
        kind: "Anchors",
        category: "fasteners",
        price: 390,
        options: &[("Length", &["150 mm", "300 mm"])],
        attributes: &[("colour", "black UV-stable")],
        blurb: "UV-stable nylon ties, 100 to a bag.",
    },
    Item {
        title: "Garden Hose",
        kind: "Watering",
        category: "garden",
        price: 2990,
        options: &[("Length", &["15 m", "25 m", "50 m"])],
        attributes: &[("diameter", "1/2 in")],
        blurb: "Kink-resistant, five-layer hose that stays supple in the cold.",
    },
    Item {
        title: "Hose Reel",
        kind: "Watering",
        category: "garden",
        price: 4990,
        options: &[],
        attributes: &[("capacity", "50 m")],
        blurb: "Wall-mounted reel with a guide that winds the hose evenly.",
    },
    Item {
        title: "Spray Gun",
        kind: "Watering",
        category: "garden",
        price: 1290,
        options: &[],
        attributes: &[("patterns", "7")],
        blurb: "Seven spray patterns and a lock for long watering sessions.",
    },
    Item {
        title: "Pruning Shears",
        kind: "Cutting",
        category: "garden",
        price: 2490,
        options: &[],
        attributes: &[("cut", "20 mm bypass")],
        blurb: "Bypass secateurs with a sap groove and replaceable blade.",
    },
    Item {
        title: "Hedge Trimmer",
        kind: "Garden power",
        category: "garden",
        price: 8990,
        options: &[],
        attributes: &[("blade", "55 cm")],
        blurb: "Dual-action blades cut clean in both directions.",
    },
    Item {
        title: "Leaf Rake",
        kind: "Hand tools",
        category: "garden",
        price: 1990,
        options: &[],
        attributes: &[("width", "55 cm")],
        blurb: "Flexible tines gather leaves without scarring the lawn.",
    },
    Item {
        title: "Hand Trowel",
        kind: "Hand tools",
        category: "garden",
        price: 990,
        options: &[],
        attributes: &[("blade", "stainless")],
        blurb: "One-piece stainless trowel with a depth scale.",
    },
    Item {
        title: "Garden Spade",
        kind: "Hand tools",
        category: "garden",
        price: 3490,
        options: &[],
        attributes: &[("shaft", "ash")],
        blurb: "Tread-top spade with an ash shaft and a forged blade.",
    },
    Item {
        title: "Wheelbarrow",
        kind: "Hand tools",
        category: "garden",
        price: 8990,
        options: &[],
        attributes: &[("capacity", "100 l")],
        blurb: "Puncture-proof tyre and a deep galvanised tray.",
    },
    Item {
        title: "Work Gloves",
        kind: "Safety",
        category: "safety",
        price: 890,
        options: &[("Size", &["M", "L", "XL"])],
        attributes: &[("palm", "nitrile")],
        blurb: "Nitrile-dipped gloves with grip in wet and oily work.",
    },
    Item {
        title: "Safety Glasses",
        kind: "Safety",
        category: "safety",
        price: 790,
        options: &[],
        attributes: &[("lens", "anti-fog")],
        blurb: "Wraparound anti-fog lenses, EN 166 rated.",
    },
    Item {
        title: "Ear Defenders",
        kind: "Safety",
        category: "safety",
        price: 1890,
        options: &[],
        attributes: &[("SNR", "30 dB")],
        blurb: "Padded, folding ear defenders for loud tools.",
    },
    Item {
        title: "Dust Masks",
        kind: "Safety",
        category: "safety",
        price: 1290,
        options: &[("Pack", &["5", "20"])],
        attributes: &[("rating", "FFP2")],
        blurb: "FFP2 masks with a valve for sanding and demolition.",
    },
    Item {
        title: "Knee Pads",
        kind: "Safety",
        category: "safety",
        price: 1990,
        options: &[],
        attributes: &[("shell", "hard cap")],
        blurb: "Gel-cushioned knee pads with a hard shell for rough floors.",
    },
    Item {
        title: "Tool Box",
        kind: "Storage",
        category: "storage",
        price: 2990,
        options: &[("Size", &["40 cm", "55 cm"])],
        attributes: &[("latches", "metal")],
        blurb: "Deep box with a lift-out tray and metal latches.",
    },
    Item {
        title: "Tool Bag",
        kind: "Storage",
        category: "storage",
        price: 3490,
        options: &[],
        attributes: &[("pockets", "22")],
        blurb: "Wide-mouth bag that stands open, with 22 pockets.",
    },
    Item {
        title: "Parts Organiser",
        kind: "Storage",
        category: "storage",
        price: 1590,
        options: &[],
        attributes: &[("compartments", "24")],
        blurb: "Removable bins keep screws and fittings sorted.",
    },
    Item {
        title: "Workbench",
        kind: "Storage",
        category: "storage",
        price: 14990,
        options: &[],
        attributes: &[("top", "beech 120 cm")],
        blurb: "Solid beech top with a vice and a pegboard back.",
    },
    Item {
        title: "LED Work Light",
        kind: "Lighting",
        category: "power-tools",
        price: 3990,
        options: &[],
        attributes: &[("output", "2000 lm")],
        blurb: "Bright, cool-running LED flood on a folding stand.",
    },
];

fn variants(base: i64, options: &[ProductOption], currency: ecom_core::Currency, seed: usize) -> Vec<VariantDraft> {
    let combos = ecom_core::catalog::option_combinations(options);
    combos
        .into_iter()
        .enumerate()
        .map(|(i, values)| {
            // Larger sizes and packs cost a little more; a few variants are sold out.
            let step = values
                .iter()
                .map(|v| options.iter().find_map(|o| o.values.iter().position(|x| x == v)).unwrap_or(0) as i64)
                .sum::<i64>();
            let price = base + step * (base / 20).max(50);
            let on_sale = seed.is_multiple_of(5);
            VariantDraft {
                sku: Some(format!("SKU-{seed:03}-{i:02}")),
                option_values: values,
                price: Money::new(price, currency),
                compare_at: on_sale.then(|| Money::new((price * 5 / 4 + 99) / 100 * 100, currency)),
                weight_grams: Some(300 + 50 * i32::try_from(i).unwrap_or(0)),
                barcode: None,
                stock: if (seed + i) % 7 == 3 { 0 } else { 3 + i32::try_from((seed * 7 + i * 3) % 40).unwrap_or(0) },
            }
        })
        .collect()
}

/// What differs between demo products.
struct Spec<'a> {
    title: &'a str,
    kind: &'a str,
    vendor: &'a str,
    tags: Vec<String>,
    body: String,
    options: Vec<ProductOption>,
    attributes: &'a [(&'a str, &'a str)],
    /// Base price in minor units.
    base: i64,
    /// Varies stock and sales from product to product.
    seed: usize,
}

fn draft(spec: Spec<'_>, tenant: &Tenant) -> Result<ProductDraft> {
    Ok(ProductDraft {
        handle: Handle::from_title(spec.title)?,
        title: spec.title.to_owned(),
        body_html: spec.body,
        status: ProductStatus::Active,
        vendor: spec.vendor.to_owned(),
        product_type: spec.kind.to_owned(),
        tags: spec.tags,
        attributes: spec
            .attributes
            .iter()
            .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String((*v).to_owned())))
            .collect(),
        variants: variants(spec.base, &spec.options, tenant.currency, spec.seed),
        options: spec.options,
    })
}

/// Fills a demo store's catalog. Only called for the demo stores on first start.
pub async fn seed(catalog: &Catalog, tenant: &Tenant) -> Result<()> {
    match tenant.slug.as_str() {
        "demo" => seed_outfitters(catalog, tenant).await,
        "acme" => seed_acme(catalog, tenant).await,
        _ => Ok(()),
    }
}

async fn seed_outfitters(catalog: &Catalog, tenant: &Tenant) -> Result<()> {
    let men = catalog.create_category(tenant, None, "Clothing").await?;
    for (name, _) in [("Shirts", ()), ("Knitwear", ()), ("Jackets", ()), ("Trousers", ()), ("Tops", ())] {
        catalog.create_category(tenant, Some(men), name).await?;
    }
    let acc = catalog.create_category(tenant, None, "Accessories").await?;
    catalog.create_category(tenant, Some(acc), "Bags").await?;
    let mut ids = Vec::new();
    let mut seed = 0;
    for (material, about, colours) in OUTFITTERS_MATERIALS {
        for (item, kind, category, price) in OUTFITTERS_ITEMS {
            seed += 1;
            let title = format!("{material} {item}");
            let mut options =
                vec![ProductOption { name: "Color".into(), values: colours.iter().map(|c| (*c).to_owned()).collect() }];
            if *kind != "Bags" {
                options.insert(
                    0,
                    ProductOption {
                        name: "Size".into(),
                        values: APPAREL_SIZES.iter().map(|s| (*s).to_owned()).collect(),
                    },
                );
            }
            let mut tags = vec![material.to_lowercase()];
            if seed % 4 == 0 {
                tags.push("new".into());
            }
            if seed % 5 == 0 {
                tags.push("sale".into());
            }
            let body = format!(
                "<p>{about}</p><p>Our {item_l} is cut for an easy, relaxed fit and finished with care: \
                 flat-felled seams, corozo buttons where there are buttons, and a label that will not itch.</p>\
                 <ul><li>{material}</li><li>Made in Portugal</li><li>Machine wash cold, line dry</li></ul>",
                item_l = item.to_lowercase()
            );
            let attrs: &[(&str, &str)] = &[("material", material), ("origin", "Portugal")];
            let spec = Spec {
                title: &title,
                kind,
                vendor: "Demo Outfitters",
                tags,
                body,
                options,
                attributes: attrs,
                base: price + (seed as i64 % 3) * 400,
                seed,
            };
            let d = draft(spec, tenant)?;
            ids.push(catalog.create_product(tenant, d, Some(category)).await?);
        }
    }
    for (title, intro, rules) in [
        ("New arrivals", "<p>Just in for the season.</p>", vec![CollectionRule::Tag("new".into())]),
        ("Sale", "<p>Last chance, good prices.</p>", vec![CollectionRule::Tag("sale".into())]),
        ("Knitwear", "<p>Merino and more for cold days.</p>", vec![CollectionRule::ProductType("Knitwear".into())]),
        ("Under $50", "<p>Small treats.</p>", vec![CollectionRule::PriceAtMost(5000)]),
    ] {
        catalog.create_collection(tenant, title, intro, Some(rules), &[]).await?;
    }
    let picks: Vec<_> = ids.iter().step_by(7).copied().collect();
    catalog.create_collection(tenant, "Staff picks", "<p>What we wear ourselves.</p>", None, &picks).await?;
    Ok(())
}

async fn seed_acme(catalog: &Catalog, tenant: &Tenant) -> Result<()> {
    let tools = catalog.create_category(tenant, None, "Tools").await?;
    for name in ["Hand tools", "Power tools", "Measuring"] {
        catalog.create_category(tenant, Some(tools), name).await?;
    }
    for name in ["Fasteners", "Garden", "Safety", "Storage"] {
        catalog.create_category(tenant, None, name).await?;
    }
    let mut ids = Vec::new();
    for (seed, item) in ACME_ITEMS.iter().enumerate() {
        let options: Vec<ProductOption> = item
            .options
            .iter()
            .map(|(n, vs)| ProductOption {
                name: (*n).to_owned(),
                values: vs.iter().map(|v| (*v).to_owned()).collect(),
            })
            .collect();
        let mut tags = vec![item.kind.to_lowercase()];
        if seed % 4 == 1 {
            tags.push("new".into());
        }
        if seed % 5 == 0 {
            tags.push("sale".into());
        }
        let body = format!(
            "<p>{}</p><p>Backed by Acme's 5-year guarantee: if it breaks in normal use, we replace it.</p>",
            item.blurb
        );
        let spec = Spec {
            title: item.title,
            kind: item.kind,
            vendor: "Acme",
            tags,
            body,
            options,
            attributes: item.attributes,
            base: item.price,
            seed,
        };
        let d = draft(spec, tenant)?;
        ids.push(catalog.create_product(tenant, d, Some(item.category)).await?);
    }
    for (title, intro, rules) in [
        ("New arrivals", "<p>Fresh on the shelves.</p>", vec![CollectionRule::Tag("new".into())]),
        ("Deals", "<p>Good tools, lower prices.</p>", vec![CollectionRule::Tag("sale".into())]),
        (
            "Cordless range",
            "<p>One battery, every job.</p>",
            vec![CollectionRule::PriceAtLeast(8000), CollectionRule::Vendor("Acme".into())],
        ),
    ] {
        catalog.create_collection(tenant, title, intro, Some(rules), &[]).await?;
    }
    let picks: Vec<_> = ids.iter().step_by(5).copied().collect();
    catalog.create_collection(tenant, "Workshop essentials", "<p>Start here.</p>", None, &picks).await?;
    Ok(())
}
