//! Checkpoints that draw transparency (`channels: 4`, premultiplied R·A, G·A, B·A, A, the colour
//! planes over `matte`) through the CPU pipeline to files: every file's alpha against the
//! closed-form conversion of the model's planar output, `--background` flattening, RGBA img2img
//! input, and the channel counts a config may name.

mod common;

use common::*;
use favicon_diffusor::alpha::PixelFormat;
use favicon_diffusor::image::{load, GIF_ALPHA_THRESHOLD, ICO_SIZES};
use favicon_diffusor::{Backend, Config, Output, Pipeline, Preview, Request, SamplerKind};
use image::{AnimationDecoder, RgbaImage};

/// The matte of the shipped RGBA model.
const MATTE: f32 = 0.86;

/// A small model at the favicon size: 64 px, 8 px patches, width 32; four channels are over
/// [`MATTE`].
fn tiny(channels: usize) -> Config {
    Config {
        channels,
        matte: if channels == 4 { MATTE } else { 0.0 },
        dim: 32,
        depth: 1,
        heads: 2,
        head_dim: 8,
        mlp_mult: 2,
        time_dim: 16,
        timesteps: 8,
        vocab: Some(vec!["hippo".into(), "sun".into()]),
        ..Config::default()
    }
}

fn sample(channels: usize, background: Option<[u8; 3]>) -> Output {
    let mut pipe = Pipeline::new(random_checkpoint(&tiny(channels), 41), Backend::Cpu).unwrap();
    let req = Request {
        prompt: "hippo".into(),
        seed: 5,
        steps: 4,
        sampler: SamplerKind::Ddim,
        preview: Preview::X0,
        background,
        ..Default::default()
    };
    pipe.generate(&req, |_| {}).unwrap()
}

/// The closed-form conversion, written out here independently of `src/alpha.rs`: alpha and
/// premultiplied colour in [0, 1] of pixel `i` of a planar RGBA image over [`MATTE`].
fn expected(planar: &[f32], i: usize) -> ([f32; 3], f32) {
    let plane = planar.len() / 4;
    let unit = |v: f32| (v + 1.0) / 2.0;
    let a = unit(planar[3 * plane + i]).clamp(0.0, 1.0);
    ([0, 1, 2].map(|c| (unit(planar[c * plane + i]) - MATTE * (1.0 - a)).clamp(0.0, a)), a)
}

fn save_and_read(out: &Output, name: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    out.save(&path).unwrap();
    std::fs::read(path).unwrap()
}

fn alpha_histogram(img: &RgbaImage) -> (usize, usize, usize) {
    let count = |f: &dyn Fn(u8) -> bool| img.pixels().filter(|p| f(p[3])).count();
    (count(&|a| a == 0), count(&|a| a > 0 && a < 255), count(&|a| a == 255))
}

#[test]
fn an_rgba_checkpoint_writes_a_png_with_the_models_alpha() {
    let out = sample(4, None);
    let png = image::load_from_memory(&save_and_read(&out, "icon.png")).unwrap();
    assert_eq!(png.color(), image::ColorType::Rgba8, "the PNG carries alpha");
    let png = png.to_rgba8();
    let (clear, partial, opaque) = alpha_histogram(&png);
    assert!(clear > 0 && partial > 0 && opaque > 0, "this seed draws every kind of alpha: {clear} {partial} {opaque}");
    for (i, p) in png.pixels().enumerate() {
        let (colour, a) = expected(&out.images, i);
        assert_eq!(p[3], (a * 255.0).round() as u8, "pixel {i}");
        // Straight colour times alpha gives back the premultiplied colour, to 8-bit rounding.
        for c in 0..3 {
            let back = p[c] as f32 / 255.0 * p[3] as f32 / 255.0;
            assert!((back - colour[c]).abs() <= 1.0 / 255.0, "pixel {i} channel {c}: {back} vs {}", colour[c]);
        }
    }
}

#[test]
fn every_ico_size_carries_the_area_averaged_alpha() {
    let out = sample(4, None);
    let bytes = save_and_read(&out, "icon.ico");
    let count = u16::from_le_bytes([bytes[4], bytes[5]]) as usize;
    assert_eq!(count, ICO_SIZES.len());
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    for (entry, &size) in ICO_SIZES.iter().enumerate() {
        let (len, offset) = (word(6 + 16 * entry + 8), word(6 + 16 * entry + 12));
        let frame = image::load_from_memory(&bytes[offset..offset + len]).unwrap().to_rgba8();
        assert_eq!(frame.dimensions(), (size, size));
        // Favicon sizes divide 64 into blocks of 4, 2, 4/3 and 1 pixels; check the integer ones.
        let block = 64 / size as usize;
        if block * size as usize != 64 {
            continue;
        }
        for (x, y, p) in frame.enumerate_pixels() {
            let (x, y) = (x as usize * block, y as usize * block);
            let mean =
                (0..block * block).map(|k| expected(&out.images, (y + k / block) * 64 + x + k % block).1).sum::<f32>()
                    / (block * block) as f32;
            assert!((p[3] as f32 - mean * 255.0).abs() <= 0.5 + 1e-3, "{size} px at ({x}, {y}): {} vs {mean}", p[3]);
        }
    }
}

#[test]
fn the_gif_marks_pixels_below_the_threshold_transparent() {
    let out = sample(4, None);
    let bytes = save_and_read(&out, "icon.gif");
    let decoder = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(bytes)).unwrap();
    let frames: Vec<RgbaImage> = decoder.into_frames().map(|f| f.unwrap().into_buffer()).collect();
    assert_eq!(frames.len(), out.frames.len() + 1, "one frame per step, then the result");
    for (i, p) in frames.last().unwrap().pixels().enumerate() {
        let a = (expected(&out.images, i).1 * 255.0).round() as u8;
        assert_eq!(p[3], if a < GIF_ALPHA_THRESHOLD { 0 } else { 255 }, "pixel {i}, alpha {a}");
    }
}

#[test]
fn a_background_flattens_every_output_onto_its_colour() {
    let out = sample(4, Some([20, 40, 200]));
    let png = image::load_from_memory(&save_and_read(&out, "icon.png")).unwrap();
    assert_eq!(png.color(), image::ColorType::Rgb8, "flattened: no alpha channel");
    let png = png.to_rgba8();
    for (i, p) in png.pixels().enumerate() {
        let (colour, a) = expected(&out.images, i);
        let over = [20.0, 40.0, 200.0].map(|v| v / 255.0);
        assert_eq!(p[3], 255);
        for c in 0..3 {
            let want = (colour[c] + (1.0 - a) * over[c]) * 255.0;
            assert!((p[c] as f32 - want).abs() <= 0.5 + 1e-3, "pixel {i}: {} vs {want}", p[c]);
        }
    }
    let ico = save_and_read(&out, "icon.ico");
    let last = image::load_from_memory(&ico).unwrap().to_rgba8();
    assert!(last.pixels().all(|p| p[3] == 255), "the ICO is opaque too");
}

#[test]
fn an_rgb_checkpoint_writes_opaque_files() {
    let out = sample(3, None);
    let png = image::load_from_memory(&save_and_read(&out, "icon.png")).unwrap();
    assert_eq!(png.color(), image::ColorType::Rgb8, "an opaque image is written as RGB");
    let png = png.to_rgba8();
    let plane = 64 * 64;
    for (i, p) in png.pixels().enumerate() {
        for c in 0..3 {
            // The same number computed in another order: equal, or one level off at a half.
            assert!(p[c].abs_diff(favicon_diffusor::image::to_byte(out.images[c * plane + i])) <= 1);
        }
    }
}

#[test]
fn a_batch_grid_keeps_a_transparent_gutter_unless_flattened() {
    let mut pipe = Pipeline::new(random_checkpoint(&tiny(4), 41), Backend::Cpu).unwrap();
    let req = Request { steps: 2, sampler: SamplerKind::Ddim, batch: 2, ..Default::default() };
    let out = pipe.generate(&req, |_| {}).unwrap();
    let grid = out.picture().unwrap();
    assert_eq!(grid.dimensions(), (64 * 2 + 2, 64));
    assert!((0..64).all(|y| grid.get_pixel(64, y)[3] == 0 && grid.get_pixel(65, y)[3] == 0));
    let flat = Output { background: Some([255; 3]), ..out }.picture().unwrap();
    assert!(flat.pixels().all(|p| p[3] == 255));
    assert_eq!(flat.get_pixel(64, 0).0, [255; 4]);
}

#[test]
fn rgba_files_become_premultiplied_init_images_and_rgb_models_see_them_on_white() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("init.png");
    // Left half transparent (its stored colour green), right half half-transparent red.
    let img = RgbaImage::from_fn(64, 64, |x, _| image::Rgba(if x < 32 { [0, 255, 0, 0] } else { [255, 0, 0, 128] }));
    img.save(&path).unwrap();
    let plane = 64 * 64;
    let a = 128.0 / 255.0;
    let rgba = load(&path, PixelFormat::RGBA, 64).unwrap();
    assert_eq!(rgba.len(), 4 * plane);
    let at = |planar: &[f32], c: usize, x: usize| planar[c * plane + 5 * 64 + x];
    for (c, left, right) in [(0, -1.0, a * 2.0 - 1.0), (1, -1.0, -1.0), (2, -1.0, -1.0), (3, -1.0, a * 2.0 - 1.0)] {
        assert!((at(&rgba, c, 3) - left).abs() < 1e-6 && (at(&rgba, c, 40) - right).abs() < 1e-6, "channel {c}");
    }
    let rgb = load(&path, PixelFormat::RGB, 64).unwrap();
    assert_eq!(rgb.len(), 3 * plane);
    for (c, left, right) in [(0, 1.0, 1.0), (1, 1.0, (1.0 - a) * 2.0 - 1.0), (2, 1.0, (1.0 - a) * 2.0 - 1.0)] {
        assert!((at(&rgb, c, 3) - left).abs() < 1e-6 && (at(&rgb, c, 40) - right).abs() < 1e-6, "channel {c}");
    }
    // An RGB file is opaque: alpha 1 everywhere.
    let opaque = dir.path().join("opaque.png");
    image::RgbImage::from_pixel(20, 20, image::Rgb([9, 9, 9])).save(&opaque).unwrap();
    assert!(load(&opaque, PixelFormat::RGBA, 64).unwrap()[3 * plane..].iter().all(|&v| (v - 1.0).abs() < 1e-6));
    // Over a matte, the transparent half's colour planes hold the matte.
    let matted = load(&path, PixelFormat { channels: 4, matte: MATTE }, 64).unwrap();
    assert!((at(&matted, 1, 3) - (MATTE * 2.0 - 1.0)).abs() < 1e-6);
    assert!((at(&matted, 1, 40) - (MATTE * (1.0 - a) * 2.0 - 1.0)).abs() < 1e-6);
}

#[test]
fn an_rgba_init_image_runs_img2img_on_a_four_channel_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("init.png");
    RgbaImage::from_fn(64, 64, |x, y| image::Rgba([200, 10, 10, if (x / 8 + y / 8) % 2 == 0 { 255 } else { 0 }]))
        .save(&path)
        .unwrap();
    let init = load(&path, PixelFormat::of(&tiny(4)), 64).unwrap();
    let mut pipe = Pipeline::new(random_checkpoint(&tiny(4), 42), Backend::Cpu).unwrap();
    let req =
        Request { init: Some(init.clone()), strength: 0.1, steps: 8, sampler: SamplerKind::Ddim, ..Default::default() };
    let near = pipe.generate(&req, |_| {}).unwrap().images;
    let far = pipe.generate(&Request { init: None, ..req }, |_| {}).unwrap().images;
    let alpha = |x: &[f32]| x[3 * 4096..].to_vec();
    let dist = |x: &[f32]| alpha(x).iter().zip(alpha(&init)).map(|(a, b)| (a - b).abs()).sum::<f32>() / 4096.0;
    assert!(dist(&near) < dist(&far) / 2.0, "the alpha plane follows the input: {} vs {}", dist(&near), dist(&far));
}

#[test]
fn configs_with_other_channel_counts_are_refused_at_load() {
    for channels in [1, 2, 5] {
        let json = format!(r#"{{"channels": {channels}}}"#);
        let err = Config::from_json(&json, "config.json").unwrap_err().to_string();
        assert!(err.contains("channels") && err.contains("3 (RGB) or 4"), "{channels}: {err}");
        assert!(err.contains(&format!("found {channels}")), "{err}");
    }
    for channels in [3, 4] {
        Config::from_json(&format!(r#"{{"channels": {channels}}}"#), "config.json").unwrap();
    }
}
