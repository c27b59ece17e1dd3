//! The favicon kit: every file a site needs from one icon, as named byte buffers (the CLI
//! writes them to a folder, the browser worker zips them).
//!
//! | file | what |
//! |---|---|
//! | `favicon.ico` | 16, 32 and 48 px, area-averaged on premultiplied alpha |
//! | `favicon.svg` | the icon as pixel-art rectangles ([`svg`]) |
//! | `favicon-96x96.png` | area-weighted ×1.5, so it fills its box as a tab icon |
//! | `web-app-manifest-192x192.png`, `-512x512.png` | nearest neighbour ×3 and ×8 |
//! | `apple-touch-icon.png` | nearest ×2, centred on [`KitOptions::background`] or one from the icon |
//! | `site.webmanifest` | name, icons, theme colour (the icon's dominant colour) |
//! | `snippet.html` | the `<link>` and `<meta>` tags for the page's `<head>` |
//!
//! The icon comes in as straight-alpha RGBA (an RGB model's icons are opaque), so transparency
//! flows through every file but the apple-touch icon, which iOS wants opaque.
//!
//! Sizes by looking at the results: whole multiples stay nearest neighbour, every icon pixel a
//! sharp square. 96 px is not a multiple of 64; there nearest neighbour draws some pixels one
//! wide and some two (lines wobble in width), and a whole ×1 with padding leaves the icon a
//! third smaller in the tab, so it is area-weighted instead (each pixel spreads over one and a
//! half, with soft half-pixel edges). The 180 px touch icon is ×2 with a 26 px margin, which
//! also keeps it clear of the corners iOS rounds off.

pub mod colour;
mod scale;
pub mod svg;

use std::io::{Cursor, Write as _};

use image::{Rgba, RgbaImage};

use crate::alpha::{Color, Premultiplied};
use crate::error::{Error, Result};
use crate::image as img;

/// Sizes in the kit's `favicon.ico`.
pub const ICO_SIZES: [u32; 3] = [16, 32, 48];

/// The web-app manifest's icons and their sizes.
pub const MANIFEST_ICONS: [(&str, u32); 2] =
    [("web-app-manifest-192x192.png", 192), ("web-app-manifest-512x512.png", 512)];

/// What the kit needs beyond the icon.
#[derive(Debug, Clone, Default)]
pub struct KitOptions {
    /// The site's name in the manifest and snippet; empty means "favicon".
    pub name: String,
    /// The apple-touch icon's background; `None` picks one from the icon.
    pub background: Option<Color>,
}

/// One file of the kit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KitFile {
    pub name: &'static str,
    pub bytes: Vec<u8>,
}

fn kit_err(file: &str, message: impl ToString) -> Error {
    Error::Image { path: file.into(), message: message.to_string() }
}

/// Every file of the kit for `icon` (square, straight-alpha RGBA), in a fixed order.
pub fn build(icon: &RgbaImage, options: &KitOptions) -> Result<Vec<KitFile>> {
    if icon.width() != icon.height() || icon.width() == 0 {
        return Err(kit_err("icon", format!("expected a square image, found {}×{}", icon.width(), icon.height())));
    }
    let name = if options.name.trim().is_empty() { "favicon".to_string() } else { options.name.trim().to_string() };
    let theme = colour::dominant(icon);
    let background = options.background.unwrap_or_else(|| colour::background(icon));
    let premultiplied = Premultiplied::from_straight(icon);
    let [r, g, b] = background;
    let padded = scale::nearest_padded(icon, 180, Rgba([r, g, b, 255]));
    let clear = Rgba([0, 0, 0, 0]);
    let pngs = [
        ("favicon-96x96.png", premultiplied.resize_area(96, 96).to_straight()),
        ("apple-touch-icon.png", Premultiplied::from_straight(&padded).flatten(background).to_straight()),
        (MANIFEST_ICONS[0].0, scale::nearest_padded(icon, MANIFEST_ICONS[0].1, clear)),
        (MANIFEST_ICONS[1].0, scale::nearest_padded(icon, MANIFEST_ICONS[1].1, clear)),
    ];
    let in_file = |file: &'static str| move |e: Error| kit_err(file, e);
    let mut files = vec![
        KitFile {
            name: "favicon.ico",
            bytes: img::ico_bytes_sized(&premultiplied, &ICO_SIZES).map_err(in_file("favicon.ico"))?,
        },
        KitFile { name: "favicon.svg", bytes: svg::svg(icon).0.into_bytes() },
    ];
    for (file, image) in pngs {
        files.push(KitFile { name: file, bytes: img::png_bytes(&image).map_err(in_file(file))? });
    }
    files.push(KitFile { name: "site.webmanifest", bytes: manifest(&name, theme, background).into_bytes() });
    files.push(KitFile { name: "snippet.html", bytes: snippet(&name, theme).into_bytes() });
    Ok(files)
}

/// At most 12 characters (what a home screen shows), cut at a space where there is one.
fn short_name(name: &str) -> String {
    if name.chars().count() <= 12 {
        return name.to_string();
    }
    let head: String = name.chars().take(13).collect();
    match head.rfind(' ') {
        Some(cut) if cut > 0 => head[..cut].to_string(),
        _ => name.chars().take(12).collect(),
    }
}

fn manifest(name: &str, theme: Color, background: Color) -> String {
    let icons: Vec<_> = MANIFEST_ICONS
        .iter()
        .map(|(file, size)| {
            serde_json::json!({ "src": file, "sizes": format!("{size}x{size}"), "type": "image/png", "purpose": "any" })
        })
        .collect();
    let manifest = serde_json::json!({
        "name": name,
        "short_name": short_name(name),
        "icons": icons,
        "theme_color": colour::hex(theme),
        "background_color": colour::hex(background),
        "display": "standalone",
    });
    // Serialising a json! value cannot fail.
    serde_json::to_string_pretty(&manifest).unwrap_or_default() + "\n"
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn snippet(name: &str, theme: Color) -> String {
    format!(
        r#"<!-- favicon-diffusor kit: put the files at the site's root and these tags in <head>. -->
<link rel="icon" type="image/png" href="/favicon-96x96.png" sizes="96x96">
<link rel="icon" type="image/svg+xml" href="/favicon.svg">
<link rel="shortcut icon" href="/favicon.ico">
<link rel="apple-touch-icon" sizes="180x180" href="/apple-touch-icon.png">
<meta name="apple-mobile-web-app-title" content="{name}">
<link rel="manifest" href="/site.webmanifest">
<meta name="theme-color" content="{theme}">
"#,
        name = escape_html(name),
        theme = colour::hex(theme)
    )
}

/// The files as one zip archive (stored, not compressed: PNGs are compressed already), with a
/// fixed date, so one kit always gives the same bytes.
pub fn archive(files: &[KitFile]) -> Result<Vec<u8>> {
    let err = |e: &dyn std::fmt::Display| kit_err("favicon-kit.zip", e);
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default());
    for file in files {
        writer.start_file(file.name, options).map_err(|e| err(&e))?;
        writer.write_all(&file.bytes).map_err(|e| err(&e))?;
    }
    Ok(writer.finish().map_err(|e| err(&e))?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_cut_at_a_word() {
        assert_eq!(short_name("hippo"), "hippo");
        assert_eq!(short_name("red heart rocket"), "red heart");
        assert_eq!(short_name("grinningfaceemoji"), "grinningface");
    }

    #[test]
    fn the_snippet_escapes_the_name() {
        let html = snippet("a \"b\" <c> & d", [1, 2, 3]);
        assert!(html.contains("content=\"a &quot;b&quot; &lt;c&gt; &amp; d\""), "{html}");
        assert!(html.contains("content=\"#010203\""), "{html}");
    }

    #[test]
    fn a_non_square_icon_is_refused_with_its_size() {
        let err = build(&RgbaImage::new(64, 32), &KitOptions::default()).unwrap_err().to_string();
        assert!(err.contains("64×32"), "{err}");
    }
}
