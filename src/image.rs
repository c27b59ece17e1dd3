//! Pixels out (PNG, multi-size ICO, animated GIF, grids) and in (img2img).
//! Images are planar `[C, H, W]` f32 in [-1, 1] with three channels.

use std::path::Path;

use image::codecs::gif::{GifEncoder, Repeat};
use image::codecs::ico::{IcoEncoder, IcoFrame};
use image::imageops::FilterType;
use image::{Delay, DynamicImage, ExtendedColorType, Frame, ImageFormat, RgbImage, RgbaImage};

use crate::error::{Error, Result};

/// Sizes in a favicon `.ico`.
pub const ICO_SIZES: [u32; 4] = [16, 32, 48, 64];

fn image_err(path: &Path, message: impl ToString) -> Error {
    Error::Image { path: path.display().to_string(), message: message.to_string() }
}

/// One planar [-1, 1] image to 8-bit RGB.
pub fn to_rgb(planar: &[f32], size: usize) -> RgbImage {
    let plane = size * size;
    RgbImage::from_fn(size as u32, size as u32, |x, y| {
        let i = y as usize * size + x as usize;
        image::Rgb([0, 1, 2].map(|c| to_byte(planar[c * plane + i])))
    })
}

pub fn to_byte(v: f32) -> u8 {
    ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8
}

/// 8-bit RGB to planar [-1, 1], resized to `size` (img2img input).
pub fn from_rgb(img: &RgbImage, size: usize) -> Vec<f32> {
    let img = if img.width() as usize != size || img.height() as usize != size {
        image::imageops::resize(img, size as u32, size as u32, FilterType::Lanczos3)
    } else {
        img.clone()
    };
    let plane = size * size;
    let mut out = vec![0.0; 3 * plane];
    for (x, y, px) in img.enumerate_pixels() {
        for c in 0..3 {
            out[c * plane + y as usize * size + x as usize] = px[c] as f32 / 127.5 - 1.0;
        }
    }
    out
}

/// The largest image file [`load`] reads.
pub const MAX_INPUT_FILE: u64 = 64 << 20;

/// Loads an image file (any format `image` reads; transparency composited on white). Only a
/// regular file of at most [`MAX_INPUT_FILE`] bytes is read.
pub fn load(path: &Path, size: usize) -> Result<Vec<f32>> {
    let bytes = crate::fsio::read_regular(path, MAX_INPUT_FILE)?;
    let img = image::load_from_memory(&bytes).map_err(|e| image_err(path, e))?;
    Ok(from_rgb(&flatten_on_white(&img.to_rgba8()), size))
}

/// Decodes image bytes (for the browser and hub paths).
pub fn decode(bytes: &[u8], size: usize) -> Result<Vec<f32>> {
    let img = image::load_from_memory(bytes).map_err(|e| image_err(Path::new("<bytes>"), e))?;
    Ok(from_rgb(&flatten_on_white(&img.to_rgba8()), size))
}

fn flatten_on_white(img: &RgbaImage) -> RgbImage {
    RgbImage::from_fn(img.width(), img.height(), |x, y| {
        let p = img.get_pixel(x, y);
        let a = p[3] as f32 / 255.0;
        image::Rgb([0, 1, 2].map(|c| (p[c] as f32 * a + 255.0 * (1.0 - a)).round() as u8))
    })
}

/// Tiles images into a near-square grid with a 2-pixel white gutter.
pub fn grid(images: &[RgbImage]) -> RgbImage {
    let Some(first) = images.first() else { return RgbImage::new(0, 0) };
    let (w, h, gap) = (first.width(), first.height(), if images.len() > 1 { 2 } else { 0 });
    let cols = (images.len() as f64).sqrt().ceil() as u32;
    let rows = (images.len() as u32).div_ceil(cols);
    let mut out = RgbImage::from_pixel(cols * (w + gap) - gap, rows * (h + gap) - gap, image::Rgb([255, 255, 255]));
    for (i, img) in images.iter().enumerate() {
        let (col, row) = (i as u32 % cols, i as u32 / cols);
        image::imageops::replace(&mut out, img, (col * (w + gap)) as i64, (row * (h + gap)) as i64);
    }
    out
}

/// PNG bytes of one image.
pub fn png_bytes(img: &RgbImage) -> Result<Vec<u8>> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png).map_err(|e| image_err(Path::new("<png>"), e))?;
    Ok(out.into_inner())
}

/// A favicon `.ico` holding every size in [`ICO_SIZES`].
pub fn ico_bytes(img: &RgbImage) -> Result<Vec<u8>> {
    let rgba = DynamicImage::ImageRgb8(img.clone()).to_rgba8();
    let frames = ICO_SIZES
        .iter()
        .map(|&s| {
            let resized = image::imageops::resize(&rgba, s, s, FilterType::Lanczos3);
            IcoFrame::as_png(resized.as_raw(), s, s, ExtendedColorType::Rgba8)
        })
        .collect::<image::ImageResult<Vec<_>>>()
        .map_err(|e| image_err(Path::new("<ico>"), e))?;
    let mut out = Vec::new();
    IcoEncoder::new(&mut out).encode_images(&frames).map_err(|e| image_err(Path::new("<ico>"), e))?;
    Ok(out)
}

/// An animated GIF, one frame per step, looping, with the last frame held longer.
pub fn gif_bytes(frames: &[RgbImage], frame_ms: u32) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new_with_speed(&mut out, 10);
        encoder.set_repeat(Repeat::Infinite).map_err(|e| image_err(Path::new("<gif>"), e))?;
        for (i, img) in frames.iter().enumerate() {
            let hold = if i + 1 == frames.len() { 10 } else { 1 };
            let rgba = DynamicImage::ImageRgb8(img.clone()).to_rgba8();
            let frame = Frame::from_parts(rgba, 0, 0, Delay::from_numer_denom_ms(frame_ms * hold, 1));
            encoder.encode_frame(frame).map_err(|e| image_err(Path::new("<gif>"), e))?;
        }
    }
    Ok(out)
}

/// The output formats `save` picks from the file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Png,
    Ico,
    Gif,
}

impl Format {
    pub fn from_path(path: &Path) -> Result<Self> {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("png") => Ok(Format::Png),
            Some("ico") => Ok(Format::Ico),
            Some("gif") => Ok(Format::Gif),
            other => {
                Err(image_err(path, format!("unsupported extension {:?}; use .png, .ico or .gif", other.unwrap_or(""))))
            }
        }
    }
}

/// Writes bytes to `path` through a temporary file of its own ([`crate::fsio::write_atomic`]),
/// so a failure or a concurrent writer never leaves half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::fsio::write_atomic(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_conversion_hits_the_ends_and_the_middle() {
        assert_eq!(to_byte(-1.0), 0);
        assert_eq!(to_byte(1.0), 255);
        assert_eq!(to_byte(3.0), 255);
        assert_eq!(to_byte(0.0), 128);
    }

    #[test]
    fn rgb_round_trip_is_within_half_a_level() {
        let planar: Vec<f32> = (0..3 * 16).map(|i| (i as f32 / 47.0) * 2.0 - 1.0).collect();
        let back = from_rgb(&to_rgb(&planar, 4), 4);
        for (a, b) in planar.iter().zip(&back) {
            assert!((a - b).abs() <= 1.0 / 255.0 + 1e-6);
        }
    }

    #[test]
    fn ico_holds_every_favicon_size() {
        let img = RgbImage::from_pixel(64, 64, image::Rgb([200, 10, 10]));
        let bytes = ico_bytes(&img).unwrap();
        // ICONDIR: reserved 0, type 1, count; then 16-byte entries whose first byte is the width.
        assert_eq!(&bytes[0..4], &[0, 0, 1, 0]);
        assert_eq!(u16::from_le_bytes([bytes[4], bytes[5]]), 4);
        let widths: Vec<u8> = (0..4).map(|i| bytes[6 + 16 * i]).collect();
        assert_eq!(widths, vec![16, 32, 48, 64]);
    }

    #[test]
    fn gif_has_one_frame_per_step() {
        let frames: Vec<RgbImage> = (0..5).map(|i| RgbImage::from_pixel(8, 8, image::Rgb([i * 50, 0, 0]))).collect();
        let bytes = gif_bytes(&frames, 60).unwrap();
        let decoder = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(bytes)).unwrap();
        use image::AnimationDecoder;
        assert_eq!(decoder.into_frames().count(), 5);
    }

    #[test]
    fn grid_places_tiles_row_major() {
        let tiles: Vec<RgbImage> = (0..3).map(|i| RgbImage::from_pixel(4, 4, image::Rgb([i * 100, 0, 0]))).collect();
        let g = grid(&tiles);
        assert_eq!((g.width(), g.height()), (10, 10));
        assert_eq!(g.get_pixel(6, 0)[0], 100);
        assert_eq!(g.get_pixel(0, 6)[0], 200);
        assert_eq!(g.get_pixel(4, 0)[0], 255);
    }

    #[test]
    fn unknown_extension_is_named() {
        let err = Format::from_path(Path::new("out.jpg")).unwrap_err().to_string();
        assert!(err.contains("jpg") && err.contains(".png"), "{err}");
    }
}
