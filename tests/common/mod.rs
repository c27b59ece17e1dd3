//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use favicon_diffusor::{Checkpoint, Config};

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn load_io(case: &str) -> (HashMap<String, Tensor>, HashMap<String, String>) {
    let path = fixtures().join(case).join("io.safetensors");
    let tensors = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    (tensors, meta.metadata().clone().unwrap_or_default())
}

pub fn config(case: &str) -> Config {
    let path = fixtures().join(case).join("config.json");
    Config::from_json(&std::fs::read_to_string(&path).unwrap(), &path.display().to_string()).unwrap()
}

/// A checkpoint regenerated from the shared Philox stream (see train/fixtures.py).
pub fn regenerated(cfg: &Config, seed: u64) -> Checkpoint {
    let vocab = cfg.vocab.clone().map(|w| favicon_diffusor::vocab::Vocab::new(w).unwrap());
    let rows = vocab.as_ref().map(|v| v.len() + 1);
    let tensors = favicon_diffusor::model::random_tensors(cfg, rows, seed).unwrap();
    Checkpoint::from_tensors(cfg.clone(), vocab, tensors).unwrap()
}

pub fn random_checkpoint(cfg: &Config, seed: u64) -> Checkpoint {
    regenerated(cfg, seed)
}

/// Largest |a − b| / (atol + rtol·|b|): at most 1 means every element is within tolerance.
pub fn tolerance_ratio(a: &[f32], b: &[f32], rtol: f32, atol: f32) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter().zip(b).map(|(&x, &y)| (x - y).abs() / (atol + rtol * y.abs())).fold(0.0, f32::max)
}

pub fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_dtype(candle_core::DType::F32).unwrap().to_vec1().unwrap()
}

pub fn max_rel_err(a: &[f32], b: &[f32]) -> f32 {
    let scale = b.iter().map(|v| v.abs()).fold(0.0, f32::max).max(1e-6);
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max) / scale
}

pub fn write_dir(dir: &Path, ck: &Checkpoint) {
    ck.save(dir, candle_core::DType::F32).unwrap();
}

pub mod cli;
#[cfg(feature = "gpu")]
pub mod gpu;

/// The same checkpoint with every weight rounded to f16, as the GPU stores it: the CPU and GPU
/// paths then compute with identical weights and differ only by f32 arithmetic order.
pub fn f16_rounded(ck: &Checkpoint) -> Checkpoint {
    let tensors = ck
        .tensors
        .iter()
        .map(|(k, v)| {
            let rounded = v.to_dtype(candle_core::DType::F16).unwrap().to_dtype(candle_core::DType::F32).unwrap();
            (k.clone(), rounded)
        })
        .collect();
    Checkpoint::from_tensors(ck.config.clone(), ck.vocab.clone(), tensors).unwrap()
}

/// The smallest config worth loading: 8 px images of four 4 px patches, one block, width 8. For
/// tests about files and loading, where the numbers inside do not matter.
pub fn tiny_config() -> Config {
    Config {
        image_size: 8,
        patch_size: 4,
        dim: 8,
        depth: 1,
        heads: 2,
        head_dim: 4,
        mlp_mult: 2,
        time_dim: 4,
        timesteps: 4,
        ..Config::default()
    }
}

/// A small 64 px config that knows two words ("hippo", "sun"): for tests that run whole
/// samples through the CLI or the GPU, where the tiny config's 8 px images would not do.
pub fn small_config() -> Config {
    Config {
        dim: 32,
        depth: 1,
        heads: 2,
        head_dim: 16,
        mlp_mult: 2,
        time_dim: 16,
        timesteps: 8,
        vocab: Some(["hippo", "sun"].map(String::from).to_vec()),
        ..Config::default()
    }
}

/// A deliberately awkward config: odd patch width (27), tokens not a multiple of anything (25),
/// three heads of five, odd inner width (15).
pub fn awkward_config() -> Config {
    Config {
        image_size: 15,
        patch_size: 3,
        dim: 20,
        depth: 2,
        heads: 3,
        head_dim: 5,
        mlp_mult: 3,
        time_dim: 6,
        timesteps: 8,
        vocab: Some(["hippo", "red", "heart", "sun"].map(String::from).to_vec()),
        ..Config::default()
    }
}

/// Mean |a − b| over two images' 8-bit pixels, in levels.
pub fn mean_pixel_diff(a: &[f32], b: &[f32]) -> f32 {
    let to = favicon_diffusor::image::to_byte;
    a.iter().zip(b).map(|(&x, &y)| (to(x) as f32 - to(y) as f32).abs()).sum::<f32>() / a.len() as f32
}
