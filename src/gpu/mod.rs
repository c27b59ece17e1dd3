//! The wgpu device layer: the whole sampling loop in the WGSL kernels of `wgsl/`.
//!
//! `context` finds a device, `kernels` compiles the pipelines a plan uses (on a thread per
//! core), `pipeline_cache` keeps the driver's compiled pipelines between runs, `weights`
//! uploads the checkpoint once, `plan` builds every buffer and bind group for one batch shape, `engine` records and
//! submits the steps, and `debug` diffs every dispatch against the candle model.

mod context;
pub mod debug;
mod engine;
pub mod kernels;
#[cfg(not(target_arch = "wasm32"))]
pub mod pipeline_cache;
mod plan;
pub mod profile;
mod readback;
mod weights;

pub use context::{GpuContext, GpuOptions};
pub use engine::{GpuEngine, ResourceCounts};
pub use plan::PlanStats;

/// Set to 1 to turn a missing GPU adapter into a test failure instead of a skip.
pub const REQUIRE_GPU_ENV: &str = "FAVICON_DIFFUSOR_REQUIRE_GPU";
