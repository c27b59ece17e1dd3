//! Finding a GPU for the cross-check tests: a missing adapter skips loudly, or fails when
//! FAVICON_DIFFUSOR_REQUIRE_GPU=1 (as CI sets it, with lavapipe installed).

use std::path::Path;

use favicon_diffusor::gpu::debug::compare_forward;
use favicon_diffusor::gpu::kernels::Tile;
use favicon_diffusor::gpu::{GpuContext, GpuEngine, GpuOptions, REQUIRE_GPU_ENV};
use favicon_diffusor::pipeline::{Engine, Job};
use favicon_diffusor::Checkpoint;

pub fn engine(ck: &Checkpoint) -> Option<GpuEngine> {
    engine_with(ck, GpuOptions::default())
}

/// Every kernel family, whatever the adapter: tiled (hardware, the defaults: tiles and split-K
/// picked by shape), the 32×32 tile forced to split K in three, the 128×128 `wide` tile split in
/// two, the block attention forced on, and direct (software).
pub fn kernel_families(ck: &Checkpoint) -> Vec<(&'static str, GpuEngine)> {
    let hardware = GpuOptions { software_kernels: Some(false), ..Default::default() };
    [
        ("tiled", hardware),
        ("split", GpuOptions { tile: Some(Tile::Small), splits: Some(3), ..hardware }),
        ("wide", GpuOptions { tile: Some(Tile::Wide), splits: Some(2), ..hardware }),
        ("block", GpuOptions { block_attention: Some(true), ..hardware }),
        ("direct", GpuOptions { software_kernels: Some(true), ..Default::default() }),
    ]
    .into_iter()
    .filter_map(|(name, options)| engine_with(ck, options).map(|e| (name, e)))
    .collect()
}

pub fn engine_with(ck: &Checkpoint, options: GpuOptions) -> Option<GpuEngine> {
    engine_caching_in(ck, options, None)
}

/// An engine whose pipeline cache file lives in `cache`; `None` keeps no file, as every other
/// test engine does, so that tests neither read nor write the user's cache folder.
pub fn engine_caching_in(ck: &Checkpoint, options: GpuOptions, cache: Option<&Path>) -> Option<GpuEngine> {
    let made = pollster::block_on(GpuContext::with_options(options)).and_then(|mut ctx| {
        ctx.pipeline_cache = cache.map(Path::to_path_buf);
        GpuEngine::with_context(ctx, ck)
    });
    match made {
        Ok(engine) => Some(engine),
        Err(e) if std::env::var(REQUIRE_GPU_ENV).as_deref() == Ok("1") => {
            panic!("{REQUIRE_GPU_ENV}=1 but no GPU is usable: {e}")
        }
        Err(e) => {
            eprintln!("\n*** SKIPPED: no GPU adapter ({e}). Install mesa-vulkan-drivers (lavapipe) or set {REQUIRE_GPU_ENV}=1 to fail instead. ***\n");
            None
        }
    }
}

/// Diffs every dispatch of one forward pass against candle (`gpu::debug`) and asserts each op
/// within `tol` of its scale (max |gpu − cpu| ≤ tol · max |cpu|).
pub fn check_ops(path: &str, gpu: &mut GpuEngine, ck: &Checkpoint, x: &[f32], t: u32, prompt: &str, tol: f32) {
    let model = ck.model().unwrap();
    let ids = ck.encode_prompt(prompt).unwrap();
    let images = x.len() / ck.config.image_len();
    let diffs = pollster::block_on(compare_forward(gpu, &model, x, t, &ids)).unwrap();
    // Every dispatch but the sampler's and the split-K passes (their reduce carries the name),
    // plus the condition, with the heads giving eps and, where the checkpoint has that head, x0.
    let names = gpu.step_dispatch_names(images, false);
    let expected_ops = names.iter().filter(|n| !n.ends_with("/split")).count() - 1 + 1 + ck.config.x0_head as usize;
    assert_eq!(diffs.len(), expected_ops, "{path}: every dispatch should have a candle counterpart");
    for d in &diffs {
        eprintln!("{path:<6} {:<18} max |Δ| {:.3e}  scale {:.3e}  rel {:.3e}", d.op, d.max_abs, d.scale, d.relative());
    }
    for d in &diffs {
        assert!(d.relative() <= tol, "{path}: {} differs from candle by {:.3e} relative", d.op, d.relative());
    }
}

/// Runs each job on the GPU and on candle's CPU path and asserts the finished images agree:
/// mean pixel difference ≤ `levels` (8-bit levels) and max |Δx| ≤ `max_abs`.
pub fn compare_samples_on(gpu: &mut GpuEngine, ck: &Checkpoint, jobs: &[(&str, Job)], levels: f32, max_abs: f32) {
    let mut cpu = favicon_diffusor::cpu::CandleEngine::new(ck.model().unwrap());
    for (name, job) in jobs {
        let want = cpu.run(job, &mut |_| {}).unwrap();
        let got = gpu.run(job, &mut |_| {}).unwrap();
        let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        let pixels = super::mean_pixel_diff(&got, &want);
        eprintln!("{name}: max |Δx| {worst:.3e}, mean pixel difference {pixels:.4} levels");
        assert!(pixels <= levels, "{name}: mean pixel difference {pixels} levels");
        assert!(worst <= max_abs, "{name}: max |Δx| {worst}");
    }
}
