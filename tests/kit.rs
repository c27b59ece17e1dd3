//! The favicon kit, file by file, parsed the way a browser or OS would read it: the ICO
//! directory and its images, each PNG's size and alpha, the SVG rendered back with resvg, and
//! the manifest and HTML snippet against the files they name. References are computed here
//! independently (block averages, whole-pixel blocks), not taken from the kit's own code.

use std::collections::BTreeSet;
use std::io::{Cursor, Read};

use favicon_diffusor::kit::{self, svg::MAX_BYTES, KitFile, KitOptions};
use image::{Rgba, RgbaImage};

const NAMES: [&str; 8] = [
    "favicon.ico",
    "favicon.svg",
    "favicon-96x96.png",
    "apple-touch-icon.png",
    "web-app-manifest-192x192.png",
    "web-app-manifest-512x512.png",
    "site.webmanifest",
    "snippet.html",
];

const DISC: Rgba<u8> = Rgba([30, 120, 200, 255]);

/// Pixel art on transparency: a blue disc (the largest colour), a red square, and a ring of
/// half-transparent green.
fn pixel_art() -> RgbaImage {
    RgbaImage::from_fn(64, 64, |x, y| {
        let (dx, dy) = (x as f32 - 31.5, y as f32 - 31.5);
        let r = (dx * dx + dy * dy).sqrt();
        match r {
            _ if (20..30).contains(&x) && (20..30).contains(&y) => Rgba([220, 30, 40, 255]),
            r if r < 24.0 => DISC,
            r if r < 28.0 => Rgba([40, 200, 60, 128]),
            _ => Rgba([0, 0, 0, 0]),
        }
    })
}

/// What a sampled icon looks like to the SVG writer: every pixel a slightly different colour.
fn speckled() -> RgbaImage {
    let mut state = 12345u32;
    RgbaImage::from_fn(64, 64, |x, y| {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let noise = (state >> 16) % 9;
        let base = if (x as i32 - 32).pow(2) + (y as i32 - 32).pow(2) < 400 { [200, 40, 50] } else { [240, 225, 245] };
        Rgba([base[0] - noise as u8, base[1] + noise as u8, base[2] - noise as u8, 255])
    })
}

fn file<'a>(files: &'a [KitFile], name: &str) -> &'a [u8] {
    &files.iter().find(|f| f.name == name).unwrap_or_else(|| panic!("{name} missing")).bytes
}

/// A PNG's pixels; it carries an alpha channel exactly when some pixel is not opaque.
fn decode_png(bytes: &[u8]) -> RgbaImage {
    let img = image::load_from_memory_with_format(bytes, image::ImageFormat::Png).unwrap();
    let rgba = img.to_rgba8();
    assert_eq!(img.color().has_alpha(), rgba.pixels().any(|p| p[3] < 255), "{:?}", img.color());
    rgba
}

/// Averages `factor`×`factor` blocks with alpha weighting: the area average of a whole factor.
fn block_average(img: &RgbaImage, factor: u32) -> RgbaImage {
    RgbaImage::from_fn(img.width() / factor, img.height() / factor, |bx, by| {
        let mut sum = [0f64; 4];
        for y in by * factor..(by + 1) * factor {
            for x in bx * factor..(bx + 1) * factor {
                let p = img.get_pixel(x, y);
                for c in 0..3 {
                    sum[c] += p[c] as f64 * p[3] as f64;
                }
                sum[3] += p[3] as f64;
            }
        }
        let n = (factor * factor) as f64;
        if sum[3] == 0.0 {
            return Rgba([0, 0, 0, 0]);
        }
        let c = |i: usize| (sum[i] / sum[3]).round() as u8;
        Rgba([c(0), c(1), c(2), (sum[3] / n).round() as u8])
    })
}

fn blocks(img: &RgbaImage, factor: u32) -> RgbaImage {
    RgbaImage::from_fn(img.width() * factor, img.height() * factor, |x, y| *img.get_pixel(x / factor, y / factor))
}

/// The largest channel difference; colour is compared only where a pixel is visible.
fn max_diff(a: &RgbaImage, b: &RgbaImage) -> u8 {
    assert_eq!(a.dimensions(), b.dimensions());
    a.pixels()
        .zip(b.pixels())
        .map(|(p, q)| {
            let alpha = p[3].abs_diff(q[3]);
            let colour = if p[3] > 0 && q[3] > 0 { (0..3).map(|c| p[c].abs_diff(q[c])).max().unwrap() } else { 0 };
            alpha.max(colour)
        })
        .max()
        .unwrap()
}

fn render_svg(text: &[u8]) -> RgbaImage {
    use resvg::{tiny_skia, usvg};
    let tree = usvg::Tree::from_data(text, &usvg::Options::default()).expect("the SVG parses");
    assert_eq!((tree.size().width(), tree.size().height()), (64.0, 64.0));
    let mut pixmap = tiny_skia::Pixmap::new(64, 64).unwrap();
    resvg::render(&tree, tiny_skia::Transform::identity(), &mut pixmap.as_mut());
    RgbaImage::from_fn(64, 64, |x, y| {
        let p = pixmap.pixel(x, y).unwrap().demultiply();
        Rgba([p.red(), p.green(), p.blue(), p.alpha()])
    })
}

#[test]
fn every_file_is_there_once_and_in_order() {
    let files = kit::build(&pixel_art(), &KitOptions::default()).unwrap();
    assert_eq!(files.iter().map(|f| f.name).collect::<Vec<_>>(), NAMES);
}

#[test]
fn the_ico_holds_16_32_and_48_px_area_averages_on_premultiplied_alpha() {
    let icon = pixel_art();
    let files = kit::build(&icon, &KitOptions::default()).unwrap();
    let ico = file(&files, "favicon.ico");
    // ICONDIR: reserved 0, type 1 (icon), count; then one 16-byte entry per image.
    assert_eq!(&ico[0..4], &[0, 0, 1, 0]);
    assert_eq!(u16::from_le_bytes([ico[4], ico[5]]), 3);
    for (i, size) in [16u32, 32, 48].into_iter().enumerate() {
        let entry = &ico[6 + 16 * i..22 + 16 * i];
        assert_eq!((entry[0] as u32, entry[1] as u32), (size, size));
        let len = u32::from_le_bytes(entry[8..12].try_into().unwrap()) as usize;
        let offset = u32::from_le_bytes(entry[12..16].try_into().unwrap()) as usize;
        let image = decode_png(&ico[offset..offset + len]);
        assert_eq!(image.dimensions(), (size, size));
        // 48 px is 64 × 3/4: blow up ×3, then average 4 × 4 blocks.
        let want = match size {
            48 => block_average(&blocks(&icon, 3), 4),
            _ => block_average(&icon, 64 / size),
        };
        assert!(max_diff(&image, &want) <= 1, "{size} px differs by {}", max_diff(&image, &want));
        assert!(image.pixels().any(|p| p[3] == 0), "{size} px keeps the transparent corners");
    }
}

#[test]
fn every_png_has_its_named_size_and_the_expected_pixels() {
    let icon = pixel_art();
    let background = [250, 240, 200];
    let files = kit::build(&icon, &KitOptions { name: "disc".into(), background: Some(background) }).unwrap();

    let small = decode_png(file(&files, "favicon-96x96.png"));
    assert_eq!(small.dimensions(), (96, 96));
    // 96 = 64 × 3/2: blow up ×3, then average 2 × 2 blocks.
    let want = block_average(&blocks(&icon, 3), 2);
    assert!(max_diff(&small, &want) <= 1, "96 px differs by {}", max_diff(&small, &want));

    for (name, factor) in [("web-app-manifest-192x192.png", 3), ("web-app-manifest-512x512.png", 8)] {
        let big = decode_png(file(&files, name));
        assert_eq!(big.dimensions(), (64 * factor, 64 * factor), "{name}");
        assert_eq!(max_diff(&big, &blocks(&icon, factor)), 0, "{name} is whole-pixel blocks");
        assert_eq!(big.get_pixel(0, 0)[3], 0, "{name} keeps the transparency");
    }

    let touch = decode_png(file(&files, "apple-touch-icon.png"));
    assert_eq!(touch.dimensions(), (180, 180));
    assert!(touch.pixels().all(|p| p[3] == 255), "the apple-touch icon is opaque");
    let [r, g, b] = background;
    assert_eq!(*touch.get_pixel(0, 0), Rgba([r, g, b, 255]), "the margin is the background");
    assert_eq!(*touch.get_pixel(90, 90), DISC, "the disc's centre, ×2 and centred");
    // A half-transparent green pixel, ×2, moved by the 26 px margin, composited on the background.
    let (sx, sy, green) = icon.enumerate_pixels().find(|(_, _, p)| p[3] == 128).unwrap();
    let mix = |c: usize| ((green[c] as u32 * 128 + background[c] as u32 * 127 + 127) / 255) as u8;
    for (dx, dy) in [(0, 0), (1, 1)] {
        assert_eq!(*touch.get_pixel(26 + 2 * sx + dx, 26 + 2 * sy + dy), Rgba([mix(0), mix(1), mix(2), 255]));
    }
}

#[test]
fn without_a_background_an_opaque_icon_continues_its_own_edge() {
    let icon = RgbaImage::from_fn(64, 64, |x, y| {
        if (8..56).contains(&x) && (8..56).contains(&y) {
            DISC
        } else {
            Rgba([250, 230, 240, 255])
        }
    });
    let files = kit::build(&icon, &KitOptions::default()).unwrap();
    let touch = decode_png(file(&files, "apple-touch-icon.png"));
    assert_eq!(*touch.get_pixel(3, 3), Rgba([250, 230, 240, 255]));
}

#[test]
fn the_svg_renders_back_to_the_same_64px_pixels() {
    let icon = pixel_art();
    let files = kit::build(&icon, &KitOptions::default()).unwrap();
    let text = file(&files, "favicon.svg");
    let rendered = render_svg(text);
    // Alpha blending in the renderer may round the half-transparent ring by a level.
    assert!(max_diff(&rendered, &icon) <= 1, "the SVG is {} levels off", max_diff(&rendered, &icon));
    let rects = String::from_utf8_lossy(text).matches('M').count();
    assert!(rects < 150, "runs are merged: {rects} rectangles");
}

#[test]
fn a_speckled_icon_is_quantised_into_a_small_svg_that_still_looks_the_same() {
    let icon = speckled();
    let files = kit::build(&icon, &KitOptions::default()).unwrap();
    let text = file(&files, "favicon.svg");
    assert!(text.len() <= MAX_BYTES, "{} bytes", text.len());
    let rendered = render_svg(text);
    let mean = rendered
        .pixels()
        .zip(icon.pixels())
        .map(|(a, b)| (0..3).map(|c| a[c].abs_diff(b[c]) as f64).sum::<f64>())
        .sum::<f64>()
        / (3.0 * 4096.0);
    assert!(mean <= 4.0, "mean error {mean:.2} levels");
    assert!(rendered.pixels().all(|p| p[3] == 255), "an opaque icon stays opaque");
}

#[test]
fn the_manifest_names_the_site_and_describes_files_that_exist() {
    let files = kit::build(&pixel_art(), &KitOptions { name: "Acme \"Peaks\" & co".into(), background: None }).unwrap();
    let names: BTreeSet<_> = files.iter().map(|f| f.name).collect();
    let manifest: serde_json::Value = serde_json::from_slice(file(&files, "site.webmanifest")).unwrap();
    assert_eq!(manifest["name"], "Acme \"Peaks\" & co");
    assert_eq!(manifest["short_name"], "Acme \"Peaks\"");
    assert_eq!(manifest["theme_color"], "#1e78c8", "the disc is the dominant colour");
    assert_eq!(manifest["display"], "standalone");
    let icons = manifest["icons"].as_array().unwrap();
    assert_eq!(icons.len(), 2);
    for icon in icons {
        let src = icon["src"].as_str().unwrap();
        assert!(names.contains(src), "{src} is in the kit");
        let png = decode_png(file(&files, src));
        assert_eq!(icon["sizes"], format!("{}x{}", png.width(), png.height()));
        assert_eq!(icon["type"], "image/png");
    }
    let background = manifest["background_color"].as_str().unwrap();
    assert!(favicon_diffusor::alpha::parse_color(background).is_ok(), "{background}");
}

#[test]
fn the_snippet_links_every_file_and_the_theme_colour() {
    let files = kit::build(&pixel_art(), &KitOptions { name: "hippo".into(), background: None }).unwrap();
    let html = String::from_utf8(file(&files, "snippet.html").to_vec()).unwrap();
    let linked: BTreeSet<_> = html.split("href=\"/").skip(1).map(|rest| &rest[..rest.find('"').unwrap()]).collect();
    let images: BTreeSet<_> =
        NAMES.iter().copied().filter(|n| *n != "snippet.html" && !n.starts_with("web-app")).collect();
    assert_eq!(linked, images, "every page-level file is linked, and nothing else");
    assert!(html.contains("<meta name=\"theme-color\" content=\"#1e78c8\">"), "{html}");
    assert!(html.contains("content=\"hippo\""), "{html}");
}

#[test]
fn the_zip_holds_the_same_files_byte_for_byte() {
    let files = kit::build(&pixel_art(), &KitOptions::default()).unwrap();
    let bytes = kit::archive(&files).unwrap();
    assert_eq!(kit::archive(&files).unwrap(), bytes, "one kit, one archive");
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    assert_eq!(archive.len(), files.len());
    for f in &files {
        let mut entry = archive.by_name(f.name).unwrap();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        assert_eq!(content, f.bytes, "{}", f.name);
    }
}
