//! Finding a GPU for the cross-check tests: a missing adapter skips loudly, or fails when
//! FAVICON_DIFFUSOR_REQUIRE_GPU=1 (as CI sets it, with lavapipe installed).

use favicon_diffusor::gpu::{GpuEngine, REQUIRE_GPU_ENV};
use favicon_diffusor::Checkpoint;

pub fn engine(ck: &Checkpoint) -> Option<GpuEngine> {
    match pollster::block_on(GpuEngine::new(ck)) {
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
