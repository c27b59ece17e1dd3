//! Finding a GPU for the cross-check tests: a missing adapter skips loudly, or fails when
//! FAVICON_DIFFUSOR_REQUIRE_GPU=1 (as CI sets it, with lavapipe installed).

use favicon_diffusor::gpu::kernels::Tile;
use favicon_diffusor::gpu::{GpuContext, GpuEngine, GpuOptions, REQUIRE_GPU_ENV};
use favicon_diffusor::Checkpoint;

pub fn engine(ck: &Checkpoint) -> Option<GpuEngine> {
    engine_with(ck, GpuOptions::default())
}

/// Every kernel family, whatever the adapter: tiled (hardware, tiles and split-K picked by
/// shape), the 32×32 tile forced to split K in three, the 128×128 `wide` tile split in two, and
/// direct (software).
pub fn kernel_families(ck: &Checkpoint) -> Vec<(&'static str, GpuEngine)> {
    let hardware = GpuOptions { software_kernels: Some(false), ..Default::default() };
    [
        ("tiled", hardware),
        ("split", GpuOptions { tile: Some(Tile::Small), splits: Some(3), ..hardware }),
        ("wide", GpuOptions { tile: Some(Tile::Wide), splits: Some(2), ..hardware }),
        ("wide-prefetch", GpuOptions { tile: Some(Tile::Wide), splits: Some(2), wide_prefetch: true, ..hardware }),
        ("adaln+block", GpuOptions { separate_adaln: true, block_attention: true, ..hardware }),
        ("direct", GpuOptions { software_kernels: Some(true), ..Default::default() }),
    ]
    .into_iter()
    .filter_map(|(name, options)| engine_with(ck, options).map(|e| (name, e)))
    .collect()
}

pub fn engine_with(ck: &Checkpoint, options: GpuOptions) -> Option<GpuEngine> {
    let made = pollster::block_on(GpuContext::with_options(options)).and_then(|ctx| GpuEngine::with_context(ctx, ck));
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
