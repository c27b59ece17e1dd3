//! Colours the kit picks from the icon: its dominant colour (the manifest's theme colour) and
//! an opaque background for the apple-touch icon.

use std::collections::HashMap;

use image::RgbaImage;

use crate::error::{Error, Result};

/// An opaque colour, written `#rrggbb` or `#rgb` (the `#` optional).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Colour(pub [u8; 3]);

impl std::str::FromStr for Colour {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let digits = s.trim().trim_start_matches('#');
        let bad = || Error::Request(format!("expected a colour as #rrggbb or #rgb, found `{s}`"));
        if !digits.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let nibble = |i: usize| u8::from_str_radix(&digits[i..i + 1], 16).map_err(|_| bad());
        match digits.len() {
            3 => Ok(Colour([nibble(0)? * 17, nibble(1)? * 17, nibble(2)? * 17])),
            6 => {
                let byte = |i: usize| u8::from_str_radix(&digits[i..i + 2], 16).map_err(|_| bad());
                Ok(Colour([byte(0)?, byte(2)?, byte(4)?]))
            }
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for Colour {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let [r, g, b] = self.0;
        write!(f, "#{r:02x}{g:02x}{b:02x}")
    }
}

/// The most common colour of the icon's visible pixels: pixels are binned at 4 bits a channel,
/// weighted by alpha, and the heaviest bin's mean colour is returned. White for an icon with
/// nothing visible.
pub fn dominant(img: &RgbaImage) -> Colour {
    let mut bins: HashMap<[u8; 3], [u64; 4]> = HashMap::new();
    for p in img.pixels().filter(|p| p[3] >= 128) {
        let bin = bins.entry([p[0] >> 4, p[1] >> 4, p[2] >> 4]).or_default();
        let a = p[3] as u64;
        for c in 0..3 {
            bin[c] += p[c] as u64 * a;
        }
        bin[3] += a;
    }
    // Ties go to the lower bin, so the choice does not depend on hash order.
    let heaviest = bins.iter().max_by(|a, b| a.1[3].cmp(&b.1[3]).then(b.0.cmp(a.0)));
    match heaviest {
        Some((_, sum)) => Colour([0, 1, 2].map(|c| ((sum[c] + sum[3] / 2) / sum[3]) as u8)),
        None => Colour([255, 255, 255]),
    }
}

/// The apple-touch icon's background when none is given. An icon opaque along its edge has
/// its own background: the edge's mean colour continues it into the padding. A transparent
/// icon goes on white, or on near-black when its dominant colour is itself near white.
pub fn background(img: &RgbaImage) -> Colour {
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
        return Colour(sum.map(|s| ((s + n / 2) / n) as u8));
    }
    if luminance(dominant(img)) > 0.85 {
        Colour([0x1d, 0x1f, 0x2b])
    } else {
        Colour([255, 255, 255])
    }
}

/// Relative luminance (sRGB, WCAG), 0 for black to 1 for white.
fn luminance(Colour(rgb): Colour) -> f64 {
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
    fn colours_parse_long_short_and_without_hash() {
        assert_eq!("#ff8000".parse::<Colour>().unwrap(), Colour([255, 128, 0]));
        assert_eq!("f80".parse::<Colour>().unwrap(), Colour([255, 136, 0]));
        assert_eq!(Colour([255, 128, 0]).to_string(), "#ff8000");
        let err = "#12345".parse::<Colour>().unwrap_err().to_string();
        assert!(err.contains("#12345") && err.contains("#rrggbb"), "{err}");
        assert!("#gg0000".parse::<Colour>().is_err());
    }

    #[test]
    fn the_dominant_colour_is_the_largest_visible_area() {
        // 60% transparent, 25% blue, 15% red: blue dominates, transparency does not count.
        let img = RgbaImage::from_fn(20, 1, |x, _| match x {
            0..=11 => Rgba([255, 255, 255, 0]),
            12..=16 => Rgba([10, 20, 200, 255]),
            _ => Rgba([200, 0, 0, 255]),
        });
        assert_eq!(dominant(&img), Colour([10, 20, 200]));
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
        assert_eq!(background(&framed), Colour([240, 200, 220]));
        let floating = RgbaImage::from_fn(8, 8, |x, y| {
            if (2..6).contains(&x) && (2..6).contains(&y) {
                Rgba([0, 90, 0, 255])
            } else {
                Rgba([0, 0, 0, 0])
            }
        });
        assert_eq!(background(&floating), Colour([255, 255, 255]));
        let pale = RgbaImage::from_fn(8, 8, |x, y| {
            if (2..6).contains(&x) && (2..6).contains(&y) {
                Rgba([250, 250, 250, 255])
            } else {
                Rgba([0, 0, 0, 0])
            }
        });
        assert_eq!(background(&pale), Colour([0x1d, 0x1f, 0x2b]));
    }
}
