//! The cooperative-matrix matmul (`Tile::Coop`: tensor cores, f16 inputs, f32 sums) against
//! candle. It needs an adapter with 16 × 16 × 16 f16 cooperative matrices: lavapipe (CI) has
//! none, so there these tests print that they did not run, and only the clear error for asking
//! anyway is checked. The GPU machine runs this binary with FAVICON_DIFFUSOR_REQUIRE_COOP=1,
//! which turns a missing capability into a failure (benches/gpu_machine.sh).
//!
//! Tolerance, per op: max |gpu − cpu| ≤ 5e-3 · max |cpu|. Staging A in f16 rounds each input by
//! up to 2⁻¹¹ ≈ 4.9e-4 relative; over a K-term dot product those errors add like a random walk,
//! as the terms do, so an output moves by about 2⁻¹² of its typical size, and each op inherits its
//! inputs' error (measured on the H200 in BENCHMARKS.md). An indexing or layout error shows as
//! O(1e-1). Whole samples: mean pixel difference ≤ 1 level, the bar of the issue for GPU vs CPU.

mod common;

use common::gpu::{check_ops, compare_samples_on, engine_with};
use common::*;
use favicon_diffusor::gpu::kernels::Tile;
use favicon_diffusor::gpu::{GpuContext, GpuEngine, GpuOptions};
use favicon_diffusor::pipeline::{job, Request};
use favicon_diffusor::{noise, Checkpoint, Config, SamplerKind};

const REQUIRE_COOP_ENV: &str = "FAVICON_DIFFUSOR_REQUIRE_COOP";
const COOP_OP_TOL: f32 = 5e-3;
const COOP_LEVELS: f32 = 1.0;
const COOP_MAX_ABS: f32 = 0.25;

/// Whether the first adapter runs cooperative matrices; `None` when there is no GPU at all (the
/// common helper then skips or fails as FAVICON_DIFFUSOR_REQUIRE_GPU says).
fn adapter_has_coop() -> Option<bool> {
    let ck = random_checkpoint(&awkward_config(), 1);
    engine_with(&ck, GpuOptions::default()).map(|e| e.context().coop)
}

/// An engine that must use `Tile::Coop` for its many-row matmuls, with `options` on top; `None`
/// (after a loud note) where the adapter has no cooperative matrices.
fn coop_engine(ck: &Checkpoint, options: GpuOptions) -> Option<GpuEngine> {
    match adapter_has_coop()? {
        true => engine_with(ck, GpuOptions { coop: Some(true), ..options }),
        false if std::env::var(REQUIRE_COOP_ENV).as_deref() == Ok("1") => {
            panic!("{REQUIRE_COOP_ENV}=1 but the adapter has no usable cooperative matrices")
        }
        false => {
            eprintln!(
                "\n*** NOT RUN: this adapter has no cooperative matrices, so Tile::Coop is never used here. ***\n"
            );
            None
        }
    }
}

fn random_images(count: usize, cfg: &Config, seed: u64) -> Vec<f32> {
    let mut x = vec![0f32; count * cfg.image_len()];
    noise::fill_normal(seed, 98, &mut x);
    x
}

#[test]
fn asking_for_cooperative_matrices_without_them_is_a_clear_error() {
    if adapter_has_coop() != Some(false) {
        return;
    }
    let made = pollster::block_on(GpuContext::with_options(GpuOptions { coop: Some(true), ..Default::default() }));
    let message =
        made.err().expect("coop: Some(true) on an adapter without cooperative matrices must fail").to_string();
    assert!(message.contains("cooperative matrices were asked for"), "{message}");
}

#[test]
fn coop_ops_match_candle() {
    // Awkward shapes: 3 images of 25 tokens, every matrix far from a multiple of 16 and inside
    // one 128-wide tile; then the model's shapes with 192 rows (one and a half row tiles).
    let awkward = f16_rounded(&random_checkpoint(&awkward_config(), 31));
    let model_cfg = Config { vocab: Some(vec!["hippo".into(), "cat".into()]), qk_norm: true, ..Config::default() };
    let model = f16_rounded(&random_checkpoint(&model_cfg, 32));
    for (ck, images, prompt) in [(&awkward, 3, "red heart"), (&model, 3, "hippo cat")] {
        let x = random_images(images, &ck.config, 7);
        // Split in two, then unsplit.
        for (name, splits) in [("coop/2", Some(2)), ("coop", None)] {
            let options = GpuOptions { tile: Some(Tile::Coop), splits, ..Default::default() };
            let Some(mut gpu) = coop_engine(ck, options) else { return };
            check_ops(name, &mut gpu, ck, &x, 13, prompt, COOP_OP_TOL);
        }
    }
}

#[test]
fn coop_samples_of_the_shipped_model_match_candle() {
    // `weights` from the working directory first: the GPU machine runs this binary from a copy of
    // the repository, away from the directory it was built in.
    let here = std::path::PathBuf::from("weights");
    let dir = if here.is_dir() { here } else { std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("weights") };
    let ck = Checkpoint::open(&dir).unwrap();
    let sample = |batch, sampler, steps| {
        let req = Request { batch, sampler, steps, seed: 11, prompt: "hippo".into(), ..Default::default() };
        job(&ck, &req).unwrap()
    };
    // Forced: batch 2 (guided, 256 rows) on the coop tile everywhere.
    let options = GpuOptions { tile: Some(Tile::Coop), ..Default::default() };
    let Some(mut gpu) = coop_engine(&ck, options) else { return };
    compare_samples_on(
        &mut gpu,
        &ck,
        &[("ddpm 32, batch 2", sample(2, SamplerKind::Ddpm, 32))],
        COOP_LEVELS,
        COOP_MAX_ABS,
    );
    // By shape, as `sample --batch 64` runs: 8192 guided rows pick the coop tile.
    let Some(mut gpu) = coop_engine(&ck, GpuOptions::default()) else { return };
    compare_samples_on(
        &mut gpu,
        &ck,
        &[("ddim 8, batch 64", sample(64, SamplerKind::Ddim, 8))],
        COOP_LEVELS,
        COOP_MAX_ABS,
    );
}
