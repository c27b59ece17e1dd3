//! Pixels out (PNG, multi-size ICO, animated GIF, grids) and in (img2img). Model images are
//! planar `[C, H, W]` f32 in [-1, 1]: three channels are opaque RGB, four premultiplied RGBA
//! ([`crate::alpha`]). Files get 8-bit straight RGBA; a three-channel image is opaque.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use image::codecs::ico::{IcoEncoder, IcoFrame};
use image::{DynamicImage, ExtendedColorType, ImageFormat, Rgba, RgbaImage};

use crate::alpha::{PixelFormat, Premultiplied};
use crate::error::{Error, Result};

/// Sizes in a favicon `.ico`.
pub const ICO_SIZES: [u32; 4] = [16, 32, 48, 64];

/// A GIF pixel is either transparent (one palette index) or opaque: alpha below this level
/// becomes transparent, the rest opaque. Half-way keeps an icon's silhouette where its edges
/// blend, and drops the faint haze of nearly transparent pixels.
pub const GIF_ALPHA_THRESHOLD: u8 = 128;

/// The GIF palette index that marks transparency; the colours take the 255 below it.
const GIF_TRANSPARENT: u8 = 255;

fn image_err(path: &Path, message: impl ToString) -> Error {
    Error::Image { path: path.display().to_string(), message: message.to_string() }
}

/// One planar [-1, 1] model image to 8-bit straight RGBA.
pub fn to_rgba(planar: &[f32], format: PixelFormat, size: usize) -> Result<RgbaImage> {
    Ok(Premultiplied::from_planar(planar, format, size)?.to_straight())
}

pub fn to_byte(v: f32) -> u8 {
    ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8
}

/// 8-bit straight RGBA to the planar [-1, 1] input of a model drawing `format`, resized to
/// `size` (img2img): four channels keep the alpha (premultiplied), three composite on white.
/// An RGB file is opaque: alpha 1.
pub fn from_rgba(img: &RgbaImage, format: PixelFormat, size: usize) -> Result<Vec<f32>> {
    Premultiplied::from_straight(img).resize_smooth(size as u32, size as u32).to_planar(format)
}

/// The largest image file [`load`] reads.
pub const MAX_INPUT_FILE: u64 = 64 << 20;

/// Loads an image file (any format `image` reads) as img2img input; see [`from_rgba`]. Only a
/// regular file of at most [`MAX_INPUT_FILE`] bytes is read.
pub fn load(path: &Path, format: PixelFormat, size: usize) -> Result<Vec<f32>> {
    let bytes = crate::fsio::read_regular(path, MAX_INPUT_FILE)?;
    let img = image::load_from_memory(&bytes).map_err(|e| image_err(path, e))?;
    from_rgba(&img.to_rgba8(), format, size)
}

/// Decodes image bytes (for the browser and hub paths); see [`from_rgba`].
pub fn decode(bytes: &[u8], format: PixelFormat, size: usize) -> Result<Vec<f32>> {
    let img = image::load_from_memory(bytes).map_err(|e| image_err(Path::new("<bytes>"), e))?;
    from_rgba(&img.to_rgba8(), format, size)
}

/// Tiles images into a near-square grid with a 2-pixel `gutter` between them. Left
/// transparent, the gutter keeps the file as transparent as its icons (viewers draw their own
/// background there); `--background` fills it with its colour.
pub fn grid(images: &[RgbaImage], gutter: Rgba<u8>) -> RgbaImage {
    let Some(first) = images.first() else { return RgbaImage::new(0, 0) };
    let (w, h, gap) = (first.width(), first.height(), if images.len() > 1 { 2 } else { 0 });
    let cols = (images.len() as f64).sqrt().ceil() as u32;
    let rows = (images.len() as u32).div_ceil(cols);
    let mut out = RgbaImage::from_pixel(cols * (w + gap) - gap, rows * (h + gap) - gap, gutter);
    for (i, img) in images.iter().enumerate() {
        let (col, row) = (i as u32 % cols, i as u32 / cols);
        image::imageops::replace(&mut out, img, (col * (w + gap)) as i64, (row * (h + gap)) as i64);
    }
    out
}

/// PNG bytes of one image: RGBA, or RGB when every pixel is opaque (a three-channel model's,
/// or a flattened one), which is smaller and says there is no transparency.
pub fn png_bytes(img: &RgbaImage) -> Result<Vec<u8>> {
    let mut out = std::io::Cursor::new(Vec::new());
    let written = if img.pixels().all(|p| p[3] == 255) {
        DynamicImage::ImageRgba8(img.clone()).to_rgb8().write_to(&mut out, ImageFormat::Png)
    } else {
        img.write_to(&mut out, ImageFormat::Png)
    };
    written.map_err(|e| image_err(Path::new("<png>"), e))?;
    Ok(out.into_inner())
}

/// A favicon `.ico` holding every size in [`ICO_SIZES`], each with its alpha, shrunk by area
/// averaging on premultiplied values (no ringing, no fringes from transparent pixels).
pub fn ico_bytes(img: &Premultiplied) -> Result<Vec<u8>> {
    ico_bytes_sized(img, &ICO_SIZES)
}

/// A `.ico` holding `sizes`, made as [`ico_bytes`] makes its own.
pub fn ico_bytes_sized(img: &Premultiplied, sizes: &[u32]) -> Result<Vec<u8>> {
    let frames = sizes
        .iter()
        .map(|&s| {
            let resized = img.resize_area(s, s).to_straight();
            IcoFrame::as_png(resized.as_raw(), s, s, ExtendedColorType::Rgba8)
        })
        .collect::<image::ImageResult<Vec<_>>>()
        .map_err(|e| image_err(Path::new("<ico>"), e))?;
    let mut out = Vec::new();
    IcoEncoder::new(&mut out).encode_images(&frames).map_err(|e| image_err(Path::new("<ico>"), e))?;
    Ok(out)
}

/// An animated GIF, one frame per step, looping, with the last frame held longer. Alpha
/// becomes the transparent index by [`GIF_ALPHA_THRESHOLD`]; each frame replaces the last.
pub fn gif_bytes(frames: &[RgbaImage], frame_ms: u32) -> Result<Vec<u8>> {
    let err = |e: gif::EncodingError| image_err(Path::new("<gif>"), e);
    let Some(first) = frames.first() else { return Err(image_err(Path::new("<gif>"), "no frames to encode")) };
    let side =
        |v: u32| u16::try_from(v).map_err(|_| image_err(Path::new("<gif>"), format!("{v} px is beyond GIF's 65535")));
    let (width, height) = (side(first.width())?, side(first.height())?);
    let mut out = Vec::new();
    {
        let mut encoder = gif::Encoder::new(&mut out, width, height, &[]).map_err(err)?;
        encoder.set_repeat(gif::Repeat::Infinite).map_err(err)?;
        for (i, img) in frames.iter().enumerate() {
            if img.dimensions() != first.dimensions() {
                return Err(image_err(Path::new("<gif>"), "frames differ in size"));
            }
            let hold = if i + 1 == frames.len() { 10 } else { 1 };
            let mut frame = indexed(img, width, height);
            // GIF delays count hundredths of a second.
            frame.delay = u16::try_from(frame_ms * hold / 10).unwrap_or(u16::MAX);
            frame.dispose = gif::DisposalMethod::Background;
            encoder.write_frame(&frame).map_err(err)?;
        }
    }
    Ok(out)
}

/// One frame as palette indices: transparent pixels take [`GIF_TRANSPARENT`], opaque ones one
/// of at most 255 colours, so no colour index is ever shared with transparency.
fn indexed(img: &RgbaImage, width: u16, height: u16) -> gif::Frame<'static> {
    let opaque = |p: &Rgba<u8>| p[3] >= GIF_ALPHA_THRESHOLD;
    let colours = Colours::of(img.pixels().filter(|p| opaque(p)).map(|p| [p[0], p[1], p[2]]));
    let buffer =
        img.pixels().map(|p| if opaque(p) { colours.index([p[0], p[1], p[2]]) } else { GIF_TRANSPARENT }).collect();
    gif::Frame {
        width,
        height,
        buffer: Cow::Owned(buffer),
        palette: Some(colours.palette()),
        transparent: Some(GIF_TRANSPARENT),
        ..gif::Frame::default()
    }
}

/// The opaque colours of a GIF frame: exact when they fit in 255 entries, else quantised with
/// NeuQuant, trained on the opaque pixels only.
enum Colours {
    Exact(BTreeMap<[u8; 3], u8>),
    Quantised(color_quant::NeuQuant),
}

impl Colours {
    fn of(opaque: impl Iterator<Item = [u8; 3]> + Clone) -> Self {
        let mut exact = BTreeMap::new();
        for rgb in opaque.clone() {
            exact.insert(rgb, 0);
            if exact.len() > GIF_TRANSPARENT as usize {
                let rgba: Vec<u8> = opaque.flat_map(|[r, g, b]| [r, g, b, 255]).collect();
                return Colours::Quantised(color_quant::NeuQuant::new(10, GIF_TRANSPARENT as usize, &rgba));
            }
        }
        for (i, slot) in exact.values_mut().enumerate() {
            *slot = i as u8;
        }
        Colours::Exact(exact)
    }

    /// The palette index of an opaque colour (every one was seen by [`Colours::of`]).
    fn index(&self, rgb: [u8; 3]) -> u8 {
        match self {
            Colours::Exact(map) => map.get(&rgb).copied().unwrap_or(0),
            Colours::Quantised(quant) => quant.index_of(&[rgb[0], rgb[1], rgb[2], 255]) as u8,
        }
    }

    /// 256 RGB entries; the last, [`GIF_TRANSPARENT`], is never a colour.
    fn palette(&self) -> Vec<u8> {
        let mut palette = match self {
            Colours::Exact(map) => map.keys().flatten().copied().collect(),
            Colours::Quantised(quant) => quant.color_map_rgb(),
        };
        palette.resize(3 * 256, 0);
        palette
    }
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
        let back = from_rgba(&to_rgba(&planar, PixelFormat::RGB, 4).unwrap(), PixelFormat::RGB, 4).unwrap();
        for (a, b) in planar.iter().zip(&back) {
            assert!((a - b).abs() <= 1.0 / 255.0 + 1e-6);
        }
    }

    /// The PNG of each ICO directory entry, decoded (ICONDIR, then 16-byte entries whose
    /// bytes 8..12 are the image's length and 12..16 its offset).
    fn ico_images(bytes: &[u8]) -> Vec<RgbaImage> {
        let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let count = u16::from_le_bytes([bytes[4], bytes[5]]) as usize;
        (0..count)
            .map(|i| {
                let (len, offset) = (word(6 + 16 * i + 8), word(6 + 16 * i + 12));
                image::load_from_memory(&bytes[offset..offset + len]).unwrap().to_rgba8()
            })
            .collect()
    }

    #[test]
    fn ico_holds_every_favicon_size_with_its_alpha() {
        // Left half transparent, right half opaque red, its bottom quarter half-transparent blue.
        let img = RgbaImage::from_fn(64, 64, |x, y| match (x < 32, y < 48) {
            (true, _) => Rgba([0, 255, 0, 0]),
            (false, true) => Rgba([200, 10, 10, 255]),
            (false, false) => Rgba([0, 0, 255, 128]),
        });
        let bytes = ico_bytes(&Premultiplied::from_straight(&img)).unwrap();
        assert_eq!(&bytes[0..4], &[0, 0, 1, 0]);
        let images = ico_images(&bytes);
        let sizes: Vec<u32> = images.iter().map(|i| i.width()).collect();
        assert_eq!(sizes, ICO_SIZES);
        for small in &images {
            let s = small.width();
            assert_eq!(small.get_pixel(0, 0).0, [0, 0, 0, 0], "{s} px: transparent stays transparent");
            assert_eq!(small.get_pixel(s - 1, 0).0, [200, 10, 10, 255], "{s} px: opaque stays opaque");
            assert_eq!(small.get_pixel(s - 1, s - 1).0, [0, 0, 255, 128], "{s} px: partial alpha kept");
            // The red edge lands on a pixel boundary at every size.
            assert_eq!(small.get_pixel(s / 2 - 1, 0).0, [0, 0, 0, 0], "{s} px: left of the edge");
            assert_eq!(small.get_pixel(s / 2, 0).0, [200, 10, 10, 255], "{s} px: right of the edge");
        }
    }

    #[test]
    fn gif_has_one_frame_per_step() {
        let frames: Vec<RgbaImage> = (0..5).map(|i| RgbaImage::from_pixel(8, 8, Rgba([i * 50, 0, 0, 255]))).collect();
        let bytes = gif_bytes(&frames, 60).unwrap();
        let decoder = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(bytes)).unwrap();
        use image::AnimationDecoder;
        assert_eq!(decoder.into_frames().count(), 5);
    }

    fn decoded_gif(frames: &[RgbaImage]) -> Vec<RgbaImage> {
        use image::AnimationDecoder;
        let bytes = gif_bytes(frames, 60).unwrap();
        let decoder = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(bytes)).unwrap();
        decoder.into_frames().map(|f| f.unwrap().into_buffer()).collect()
    }

    #[test]
    fn gif_alpha_becomes_the_transparent_index_at_the_threshold() {
        let alphas = [0, GIF_ALPHA_THRESHOLD - 1, GIF_ALPHA_THRESHOLD, 255];
        let img = RgbaImage::from_fn(4, 1, |x, _| Rgba([10, 20 * x as u8, 30, alphas[x as usize]]));
        // A second, fully opaque frame: the first's transparent pixels must not show through.
        let opaque = RgbaImage::from_pixel(4, 1, Rgba([1, 2, 3, 255]));
        let frames = decoded_gif(&[img, opaque.clone()]);
        assert_eq!(frames[0].get_pixel(0, 0)[3], 0);
        assert_eq!(frames[0].get_pixel(1, 0)[3], 0);
        assert_eq!(frames[0].get_pixel(2, 0).0, [10, 40, 30, 255]);
        assert_eq!(frames[0].get_pixel(3, 0).0, [10, 60, 30, 255]);
        assert_eq!(frames[1], opaque);
        let back = decoded_gif(&[opaque.clone(), RgbaImage::new(4, 1)]);
        assert!(back[1].pixels().all(|p| p[3] == 0), "each frame replaces the last");
    }

    #[test]
    fn gif_with_many_colours_never_shares_an_index_with_transparency() {
        // 64×64 distinct opaque colours (NeuQuant), a transparent border, a black pixel.
        let img = RgbaImage::from_fn(64, 64, |x, y| match (x, y) {
            (0, _) | (_, 0) => Rgba([0, 0, 0, 0]),
            (1, 1) => Rgba([0, 0, 0, 255]),
            _ => Rgba([(x * 4) as u8, (y * 4) as u8, ((x + y) * 2) as u8, 255]),
        });
        let back = &decoded_gif(std::slice::from_ref(&img))[0];
        for (want, got) in img.pixels().zip(back.pixels()) {
            assert_eq!(got[3], want[3], "alpha survives quantisation");
            if want[3] == 255 {
                let error = (0..3).map(|c| (got[c] as i32 - want[c] as i32).abs()).max().unwrap();
                assert!(error <= 48, "quantised {want:?} to {got:?}");
            }
        }
    }

    #[test]
    fn grid_places_tiles_row_major_with_a_transparent_gutter() {
        let tiles: Vec<RgbaImage> = (0..3).map(|i| RgbaImage::from_pixel(4, 4, Rgba([i * 100, 0, 0, 255]))).collect();
        let g = grid(&tiles, Rgba([0; 4]));
        assert_eq!((g.width(), g.height()), (10, 10));
        assert_eq!(g.get_pixel(6, 0)[0], 100);
        assert_eq!(g.get_pixel(0, 6)[0], 200);
        assert_eq!(g.get_pixel(4, 0)[3], 0);
        assert_eq!(g.get_pixel(9, 9)[3], 0, "the empty fourth cell");
        assert_eq!(grid(&tiles, Rgba([9, 9, 9, 255])).get_pixel(4, 0).0, [9, 9, 9, 255]);
    }

    #[test]
    fn unknown_extension_is_named() {
        let err = Format::from_path(Path::new("out.jpg")).unwrap_err().to_string();
        assert!(err.contains("jpg") && err.contains(".png"), "{err}");
    }
}
