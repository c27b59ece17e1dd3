//! Transparency. A checkpoint draws planar channels in [-1, 1] (`v * 2 - 1`): three are opaque
//! RGB, four are premultiplied RGBA (R·A, G·A, B·A, A), the colour planes optionally over a grey
//! matte ([`PixelFormat`]). Both become a [`Premultiplied`] image, which resizes and flattens
//! without colour fringes (a transparent pixel carries no colour), and leaves the library as
//! 8-bit straight RGBA, the form PNG, ICO and GIF files store.

use image::imageops::FilterType;
use image::{Rgba, Rgba32FImage, RgbaImage};

use crate::config::Config;
use crate::error::{Error, Result};

/// An RGB colour to flatten onto (`--background`).
pub type Color = [u8; 3];

/// How a checkpoint's planes encode a pixel: `config.json`'s `channels` and `matte`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PixelFormat {
    /// 3: opaque RGB. 4: premultiplied RGBA.
    pub channels: usize,
    /// Four channels only: each colour plane holds c·a + matte·(1 − a) (0: plain premultiplied).
    pub matte: f32,
}

impl PixelFormat {
    pub const RGB: PixelFormat = PixelFormat { channels: 3, matte: 0.0 };
    pub const RGBA: PixelFormat = PixelFormat { channels: 4, matte: 0.0 };

    pub fn of(config: &Config) -> Self {
        PixelFormat { channels: config.channels, matte: config.matte }
    }

    /// Three or four channels, and a matte in [0, 1].
    pub fn check(&self) -> Result<()> {
        if !matches!(self.channels, 3 | 4) {
            return Err(Error::Channels { found: self.channels });
        }
        if !(0.0..=1.0).contains(&self.matte) {
            return Err(Error::Request(format!("the matte must be in [0, 1], found {}", self.matte)));
        }
        Ok(())
    }

    fn has_alpha(&self) -> bool {
        self.channels == 4
    }
}

/// Parses `#rrggbb`, `rrggbb`, `white`, `black` or `grey`/`gray` (mid-grey).
pub fn parse_color(text: &str) -> Result<Color> {
    let bad = || Error::Color { text: text.into() };
    match text.trim().to_ascii_lowercase().as_str() {
        "white" => Ok([255; 3]),
        "black" => Ok([0; 3]),
        "grey" | "gray" => Ok([128; 3]),
        hex => {
            let hex = hex.strip_prefix('#').unwrap_or(hex);
            if hex.len() != 6 || !hex.is_ascii() {
                return Err(bad());
            }
            let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| bad());
            Ok([byte(0)?, byte(2)?, byte(4)?])
        }
    }
}

/// An image as premultiplied RGBA in [0, 1], every colour at most its alpha.
#[derive(Debug, Clone, PartialEq)]
pub struct Premultiplied(Rgba32FImage);

impl Premultiplied {
    /// One planar `[channels, size, size]` model image in [-1, 1]. Values are clamped: alpha
    /// to [0, 1] and each colour (the matte taken off) to [0, alpha], so every pixel is a
    /// valid premultiplied one.
    pub fn from_planar(planar: &[f32], format: PixelFormat, size: usize) -> Result<Self> {
        format.check()?;
        let (channels, plane) = (format.channels, size * size);
        if planar.len() != channels * plane {
            return Err(Error::Request(format!(
                "a {channels}-channel {size}×{size} image has {} values, found {}",
                channels * plane,
                planar.len()
            )));
        }
        let unit = |v: f32| (v + 1.0) * 0.5;
        Ok(Premultiplied(Rgba32FImage::from_fn(size as u32, size as u32, |x, y| {
            let i = y as usize * size + x as usize;
            let a = if format.has_alpha() { unit(planar[3 * plane + i]).clamp(0.0, 1.0) } else { 1.0 };
            let matte = if format.has_alpha() { format.matte * (1.0 - a) } else { 0.0 };
            let [r, g, b] = [0, 1, 2].map(|c| (unit(planar[c * plane + i]) - matte).clamp(0.0, a));
            Rgba([r, g, b, a])
        })))
    }

    /// Planar `[channels, H, W]` in [-1, 1], as the model takes it (img2img). Three channels
    /// flatten onto white first, as a three-channel model never saw transparency.
    pub fn to_planar(&self, format: PixelFormat) -> Result<Vec<f32>> {
        format.check()?;
        let image = if format.has_alpha() { self.clone() } else { self.flatten([255; 3]) };
        let (channels, plane) = (format.channels, (image.width() * image.height()) as usize);
        let mut out = vec![0.0; channels * plane];
        for (i, px) in image.0.pixels().enumerate() {
            let matte = if format.has_alpha() { format.matte * (1.0 - px[3]) } else { 0.0 };
            for c in 0..channels {
                let value = if c < 3 { px[c] + matte } else { px[c] };
                out[c * plane + i] = value * 2.0 - 1.0;
            }
        }
        Ok(out)
    }

    /// 8-bit straight RGBA, as files hold it.
    pub fn from_straight(img: &RgbaImage) -> Self {
        Premultiplied(Rgba32FImage::from_fn(img.width(), img.height(), |x, y| {
            let p = img.get_pixel(x, y);
            let a = p[3] as f32 / 255.0;
            Rgba([p[0] as f32 / 255.0 * a, p[1] as f32 / 255.0 * a, p[2] as f32 / 255.0 * a, a])
        }))
    }

    /// 8-bit straight RGBA: colour c_p / a. A pixel whose alpha rounds to 0 is stored as
    /// (0, 0, 0, 0): its colour is invisible, and zeros compress better than noise.
    pub fn to_straight(&self) -> RgbaImage {
        let byte = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
        RgbaImage::from_fn(self.width(), self.height(), |x, y| {
            let p = self.0.get_pixel(x, y);
            let alpha = byte(p[3]);
            if alpha == 0 {
                return Rgba([0; 4]);
            }
            Rgba([byte(p[0] / p[3]), byte(p[1] / p[3]), byte(p[2] / p[3]), alpha])
        })
    }

    /// Pixel (x, y): premultiplied [r, g, b, a] in [0, 1].
    pub fn pixel(&self, x: u32, y: u32) -> [f32; 4] {
        self.0.get_pixel(x, y).0
    }

    pub fn width(&self) -> u32 {
        self.0.width()
    }

    pub fn height(&self) -> u32 {
        self.0.height()
    }

    /// The opaque image over `background`.
    pub fn flatten(&self, background: Color) -> Self {
        let bg = background.map(|v| v as f32 / 255.0);
        let mut out = self.0.clone();
        for p in out.pixels_mut() {
            let clear = 1.0 - p[3];
            *p = Rgba([p[0] + clear * bg[0], p[1] + clear * bg[1], p[2] + clear * bg[2], 1.0]);
        }
        Premultiplied(out)
    }

    /// Resized by area averaging: each output pixel is the mean of the input area it covers,
    /// fractional pixels weighted by their share. Favicon sizes shrink this way without
    /// ringing; on premultiplied values a transparent neighbour adds no colour.
    pub fn resize_area(&self, width: u32, height: u32) -> Self {
        let columns = area_weights(self.width(), width);
        let rows = area_weights(self.height(), height);
        Premultiplied(Rgba32FImage::from_fn(width, height, |x, y| {
            let mut sum = [0f32; 4];
            for &(sy, wy) in &rows[y as usize] {
                for &(sx, wx) in &columns[x as usize] {
                    let p = self.0.get_pixel(sx, sy);
                    for c in 0..4 {
                        sum[c] += wy * wx * p[c];
                    }
                }
            }
            Rgba(sum)
        }))
    }

    /// Resized with Lanczos3 (img2img inputs of any size), then clamped back to valid
    /// premultiplied values, since the filter's lobes overshoot at edges.
    pub fn resize_smooth(&self, width: u32, height: u32) -> Self {
        if (width, height) == (self.width(), self.height()) {
            return self.clone();
        }
        let mut out = image::imageops::resize(&self.0, width, height, FilterType::Lanczos3);
        for p in out.pixels_mut() {
            let a = p[3].clamp(0.0, 1.0);
            *p = Rgba([p[0].clamp(0.0, a), p[1].clamp(0.0, a), p[2].clamp(0.0, a), a]);
        }
        Premultiplied(out)
    }
}

/// For each of `output` pixels along one axis, the input pixels it covers and their weights
/// (summing to 1).
fn area_weights(input: u32, output: u32) -> Vec<Vec<(u32, f32)>> {
    let scale = input as f64 / output as f64;
    (0..output)
        .map(|o| {
            let (lo, hi) = (o as f64 * scale, (o + 1) as f64 * scale);
            (lo.floor() as u32..(hi.ceil() as u32).min(input))
                .map(|i| {
                    let covered = hi.min(i as f64 + 1.0) - lo.max(i as f64);
                    (i, (covered / scale) as f32)
                })
                .filter(|&(_, w)| w > 0.0)
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planar_rgba(pixels: &[[f32; 4]]) -> Vec<f32> {
        (0..4).flat_map(|c| pixels.iter().map(move |p| p[c])).collect()
    }

    #[test]
    fn premultiplied_planar_becomes_straight_rgba() {
        // Half-transparent red (R·A = 0.5), a transparent pixel, opaque white, and a colour
        // above its alpha (clamped to it: full-intensity green at alpha 0.25).
        let planar = planar_rgba(&[[0.0, -1.0, -1.0, 0.0], [0.3, 0.2, -0.4, -1.0], [1.0; 4], [-1.0, 0.0, -1.0, -0.5]]);
        let rgba = Premultiplied::from_planar(&planar, PixelFormat::RGBA, 2).unwrap().to_straight();
        assert_eq!(rgba.get_pixel(0, 0).0, [255, 0, 0, 128]);
        assert_eq!(rgba.get_pixel(1, 0).0, [0, 0, 0, 0]);
        assert_eq!(rgba.get_pixel(0, 1).0, [255, 255, 255, 255]);
        assert_eq!(rgba.get_pixel(1, 1).0, [0, 255, 0, 64]);
    }

    #[test]
    fn three_channels_are_opaque() {
        let planar: Vec<f32> = (0..12).map(|i| i as f32 / 5.5 - 1.0).collect();
        let rgba = Premultiplied::from_planar(&planar, PixelFormat::RGB, 2).unwrap().to_straight();
        assert!(rgba.pixels().all(|p| p[3] == 255));
        // Pixel 3 of each plane: -5/11, 3/11 and 1 in [-1, 1].
        assert_eq!(rgba.get_pixel(1, 1).0, [70, 162, 255, 255]);
    }

    #[test]
    fn other_channel_counts_are_refused_by_name() {
        for channels in [1, 2, 5] {
            let err = Premultiplied::from_planar(&vec![0.0; channels * 4], PixelFormat { channels, matte: 0.0 }, 2)
                .unwrap_err()
                .to_string();
            assert!(err.contains(&format!("{channels} channels")) && err.contains("3") && err.contains("4"), "{err}");
        }
        let err = Premultiplied::from_planar(&[0.0; 15], PixelFormat::RGBA, 2).unwrap_err().to_string();
        assert!(err.contains("16") && err.contains("15"), "{err}");
    }

    #[test]
    fn planar_round_trip_through_8_bit_straight_is_within_a_level_of_premultiplied() {
        let pixels: Vec<[f32; 4]> = (0..64)
            .map(|i| {
                let a = (i % 8) as f32 / 7.0;
                [0.9 * a, 0.4 * a, (i / 8) as f32 / 7.0 * a, a].map(|v| v * 2.0 - 1.0)
            })
            .collect();
        let planar = planar_rgba(&pixels);
        let straight = Premultiplied::from_planar(&planar, PixelFormat::RGBA, 8).unwrap().to_straight();
        let back = Premultiplied::from_straight(&straight).to_planar(PixelFormat::RGBA).unwrap();
        for (a, b) in planar.iter().zip(&back) {
            // One 8-bit level of colour or alpha, in [-1, 1] units (2 / 255), plus rounding.
            assert!((a - b).abs() <= 2.0 / 255.0 + 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn a_matte_is_taken_off_the_colour_planes_and_put_back_for_img2img() {
        let format = PixelFormat { channels: 4, matte: 0.86 };
        // Transparent (the colour planes hold the matte), opaque red, half-transparent red (0.5
        // premultiplied red plus half the matte) and quarter-transparent green.
        let (half, quarter) = (0.86 * 0.5, 0.86 * 0.75);
        let pixels = [[0.86; 3], [1.0, 0.0, 0.0], [0.5 + half, half, half], [quarter, 0.25 + quarter, quarter]];
        let pixels: Vec<[f32; 4]> =
            pixels.iter().zip([0.0, 1.0, 0.5, 0.25]).map(|(c, a)| [c[0], c[1], c[2], a]).collect();
        let planar = planar_rgba(&pixels.iter().map(|p| p.map(|v| v * 2.0 - 1.0)).collect::<Vec<_>>());
        let image = Premultiplied::from_planar(&planar, format, 2).unwrap();
        let rgba = image.to_straight();
        assert_eq!(rgba.get_pixel(0, 0).0, [0, 0, 0, 0]);
        assert_eq!(rgba.get_pixel(1, 0).0, [255, 0, 0, 255]);
        assert_eq!(rgba.get_pixel(0, 1).0, [255, 0, 0, 128]);
        assert_eq!(rgba.get_pixel(1, 1).0, [0, 255, 0, 64]);
        let back = image.to_planar(format).unwrap();
        for (a, b) in planar.iter().zip(&back) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        let err = PixelFormat { channels: 4, matte: 1.5 }.check().unwrap_err().to_string();
        assert!(err.contains("matte") && err.contains("1.5"), "{err}");
    }

    #[test]
    fn three_channel_input_is_flattened_on_white() {
        let img = RgbaImage::from_fn(2, 1, |x, _| if x == 0 { Rgba([0, 0, 0, 0]) } else { Rgba([0, 0, 0, 255]) });
        let planar = Premultiplied::from_straight(&img).to_planar(PixelFormat::RGB).unwrap();
        assert_eq!(planar, vec![1.0, -1.0, 1.0, -1.0, 1.0, -1.0]);
        let rgba = Premultiplied::from_straight(&img).to_planar(PixelFormat::RGBA).unwrap();
        assert_eq!(rgba, vec![-1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, 1.0]);
    }

    #[test]
    fn area_downscale_adds_no_colour_from_transparent_pixels() {
        // Opaque red beside a transparent pixel whose stored (invisible) colour is green.
        let img = RgbaImage::from_fn(2, 2, |x, _| if x == 0 { Rgba([255, 0, 0, 255]) } else { Rgba([0, 255, 0, 0]) });
        let one = Premultiplied::from_straight(&img).resize_area(1, 1).to_straight();
        // Averaging straight values would give (128, 128, 0, 128), a green fringe.
        assert_eq!(one.get_pixel(0, 0).0, [255, 0, 0, 128]);
    }

    #[test]
    fn area_downscale_is_the_mean_of_the_covered_area() {
        let img = RgbaImage::from_fn(64, 64, |x, y| Rgba([(x * 4) as u8, (y * 4) as u8, 7, ((x + y) * 2) as u8]));
        let full = Premultiplied::from_straight(&img);
        let half = full.resize_area(32, 32);
        let want = |c: usize| (0..4).map(|i| full.0.get_pixel(10 + i % 2, 20 + i / 2)[c]).sum::<f32>() / 4.0;
        for c in 0..4 {
            assert!((half.0.get_pixel(5, 10)[c] - want(c)).abs() < 1e-6);
        }
        // 64 → 48 px: each output pixel covers 4/3 input pixels; the image's total is kept.
        let three_quarters = full.resize_area(48, 48);
        let total = |p: &Premultiplied, c: usize| p.0.pixels().map(|px| px[c] as f64).sum::<f64>() / p.0.len() as f64;
        for c in 0..4 {
            assert!((total(&three_quarters, c) - total(&full, c)).abs() < 1e-5);
        }
    }

    #[test]
    fn flattening_composites_over_the_colour() {
        let transparent = [-1.0; 4];
        let planar = planar_rgba(&[[0.0, -1.0, -1.0, 0.0], transparent, transparent, [1.0; 4]]);
        let flat =
            Premultiplied::from_planar(&planar, PixelFormat::RGBA, 2).unwrap().flatten([0, 0, 255]).to_straight();
        assert_eq!(flat.get_pixel(0, 0).0, [128, 0, 128, 255], "half red over blue");
        assert_eq!(flat.get_pixel(1, 0).0, [0, 0, 255, 255], "transparent shows the colour");
        assert_eq!(flat.get_pixel(1, 1).0, [255; 4], "opaque stays");
    }

    #[test]
    fn colours_parse_in_every_documented_form() {
        assert_eq!(parse_color("#ff8000").unwrap(), [255, 128, 0]);
        assert_eq!(parse_color("FF8000").unwrap(), [255, 128, 0]);
        assert_eq!(parse_color("White").unwrap(), [255; 3]);
        assert_eq!(parse_color("black").unwrap(), [0; 3]);
        for bad in ["#ff80", "purple", "#gg0000", "#ff80001", "ÿÿÿ"] {
            let err = parse_color(bad).unwrap_err().to_string();
            assert!(err.contains(bad) && err.contains("#rrggbb"), "{err}");
        }
    }
}
