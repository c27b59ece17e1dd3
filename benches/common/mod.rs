//! What both benchmarks share: the random default-config checkpoint, a GPU engine that skips
//! loudly when no adapter exists, and criterion's settings for this project's slow cases.
#![allow(dead_code)]

use std::time::Duration;

use criterion::Criterion;
use favicon_diffusor::gpu::{GpuContext, GpuEngine, GpuOptions, REQUIRE_GPU_ENV};
use favicon_diffusor::{Checkpoint, Config};

/// Random weights of the default config: the same values as `examples/bench.rs` and
/// `train/bench_torch.py --weights random:1`.
pub fn checkpoint() -> Checkpoint {
    let cfg = Config::default();
    let tensors = favicon_diffusor::model::random_tensors(&cfg, None, 1).unwrap();
    Checkpoint::from_tensors(cfg, None, tensors).unwrap()
}

/// The adapter wgpu picks, or `None` after a loud note; a panic instead when
/// FAVICON_DIFFUSOR_REQUIRE_GPU=1.
pub fn gpu_engine(ck: &Checkpoint, options: GpuOptions, what: &str) -> Option<GpuEngine> {
    let made = pollster::block_on(GpuContext::with_options(options)).and_then(|ctx| GpuEngine::with_context(ctx, ck));
    match made {
        Ok(engine) => Some(engine),
        Err(e) if std::env::var(REQUIRE_GPU_ENV).as_deref() == Ok("1") => {
            panic!("{REQUIRE_GPU_ENV}=1 but no GPU is usable: {e}")
        }
        Err(e) => {
            eprintln!("\n*** SKIPPED the GPU {what} benchmarks: no GPU adapter ({e}). Install mesa-vulkan-drivers (lavapipe) or set {REQUIRE_GPU_ENV}=1 to fail instead. ***\n");
            None
        }
    }
}

/// False under `cargo test --benches` and `cargo bench -- --test`, which run each case once.
pub fn benchmarking() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test")
}

/// Ten samples (criterion's minimum) and fewer bootstrap resamples: the slow cases dominate.
pub fn criterion() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .nresamples(10_000)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args()
}
