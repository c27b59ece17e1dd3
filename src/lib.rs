//! favicon-diffusor: a small Diffusion Transformer that draws 64×64 icons.
//!
//! The candle model in [`model`] is the reference; the WGSL kernels under `wgsl/` run the
//! same computation on any WebGPU-capable device. See ARCHITECTURE.md for the data flow.

pub mod backend;
pub mod config;
pub mod convert;
pub mod cpu;
pub mod error;
pub mod fsio;
#[cfg(feature = "gpu")]
pub mod gpu;
pub mod hub;
pub mod image;
pub mod limits;
pub mod model;
pub mod noise;
pub mod patch;
pub mod pipeline;
pub mod sampler;
pub mod schedule;
pub mod vocab;
#[cfg(all(target_arch = "wasm32", feature = "wasm"))]
pub mod wasm;
pub mod weights;

pub use config::Config;
pub use error::{Error, Result};
pub use pipeline::{Backend, Output, Pipeline, Preview, Request, StepEvent};
pub use sampler::SamplerKind;
pub use weights::Checkpoint;
