//! Colours the kit picks from the icon: its dominant colour (the manifest's theme colour) and
//! an opaque background for the apple-touch icon.

use std::collections::HashMap;

use image::RgbaImage;

use crate::alpha::Color;

/// `#rrggbb`, as manifests and HTML take a colour.
pub fn hex([r, g, b]: Color) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// The most common colour of the icon's visible pixels: pixels are binned at 3 bits a channel (shading stays in one bin),
/// weighted by alpha, and the heaviest bin's mean colour is returned. White for an icon with
/// nothing visible.
pub fn dominant(img: &RgbaImage) -> Color {
    let mut bins: HashMap<[u8; 3], [u64; 4]> = HashMap::new();
    for p in img.pixels().filter(|p| p[3] >= 128) {
        let bin = bins.entry([p[0] >> 5, p[1] >> 5, p[2] >> 5]).or_default();
        let a = p[3] as u64;
        for c in 0..3 {
            bin[c] += p[c] as u64 * a;
        }
        bin[3] += a;
    }
    // Ties go to the lower bin, so the choice does not depend on hash order.
    let heaviest = bins.iter().max_by(|a, b| a.1[3].cmp(&b.1[3]).then(b.0.cmp(a.0)));
    match heaviest {
        Some((_, sum)) => [0, 1, 2].map(|c| ((sum[c] + sum[3] / 2) / sum[3]) as u8),
        None => [255; 3],
    }
}

/// The apple-touch icon's background when none is given. An icon opaque along its edge has
/// its own background: the edge's mean colour continues it into the padding. A transparent
/// icon goes on white, or on near-black when its dominant colour is itself near white.
pub fn background(img: &RgbaImage) -> Color {
    let (w, h) = (img.width(), img.height());
    let edge: Vec<_> =
        img.enumerate_pixels().filter(|(x, y, _)| *x == 0 || *y == 0 || *x + 1 == w || *y + 1 == h).collect();
    let opaque = edge.iter().filter(|(_, _, p)| p[3] >= 250).count();
    if !edge.is_empty() && opaque * 10 >= edge.len() * 9 {
        let mut sum = [0u64; 3];
        for (_, _, p) in &edge {
            for c in 0..3 {
                sum[c] += p[c] as u64;
            }
        }
        let n = edge.len() as u64;
        return sum.map(|s| ((s + n / 2) / n) as u8);
    }
    if luminance(dominant(img)) > 0.85 {
        [0x1d, 0x1f, 0x2b]
    } else {
        [255; 3]
    }
}

/// Relative luminance (sRGB, WCAG), 0 for black to 1 for white.
fn luminance(rgb: Color) -> f64 {
    let linear = |c: u8| {
        let v = c as f64 / 255.0;
        if v <= 0.04045 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * linear(rgb[0]) + 0.7152 * linear(rgb[1]) + 0.0722 * linear(rgb[2])
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgba;

    #[test]
    fn hex_is_two_lower_case_digits_a_channel() {
        assert_eq!(hex([255, 128, 0]), "#ff8000");
        assert_eq!(hex([1, 2, 3]), "#010203");
    }

    #[test]
    fn the_dominant_colour_is_the_largest_visible_area() {
        // 60% transparent, 25% blue, 15% red: blue dominates, transparency does not count.
        let img = RgbaImage::from_fn(20, 1, |x, _| match x {
            0..=11 => Rgba([255, 255, 255, 0]),
            12..=16 => Rgba([10, 20, 200, 255]),
            _ => Rgba([200, 0, 0, 255]),
        });
        assert_eq!(dominant(&img), [10, 20, 200]);
    }

    #[test]
    fn an_opaque_icon_keeps_its_edge_colour_and_a_transparent_one_goes_on_white() {
        let framed = RgbaImage::from_fn(8, 8, |x, y| {
            if x == 0 || y == 0 || x == 7 || y == 7 {
                Rgba([240, 200, 220, 255])
            } else {
                Rgba([0, 0, 0, 255])
            }
        });
        assert_eq!(background(&framed), [240, 200, 220]);
        let floating = RgbaImage::from_fn(8, 8, |x, y| {
            if (2..6).contains(&x) && (2..6).contains(&y) {
                Rgba([0, 90, 0, 255])
            } else {
                Rgba([0, 0, 0, 0])
            }
        });
        assert_eq!(background(&floating), [255; 3]);
        let pale = RgbaImage::from_fn(8, 8, |x, y| {
            if (2..6).contains(&x) && (2..6).contains(&y) {
                Rgba([250, 250, 250, 255])
            } else {
                Rgba([0, 0, 0, 0])
            }
        });
        assert_eq!(background(&pale), [0x1d, 0x1f, 0x2b]);
    }
}
