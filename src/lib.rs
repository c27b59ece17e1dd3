//! favicon-diffusor: a small Diffusion Transformer that draws 64×64 icons.
//!
//! The candle model in [`model`] is the reference; the WGSL kernels under `wgsl/` run the
//! same computation on any WebGPU-capable device. See ARCHITECTURE.md for the data flow.
//! [`Pipeline`] samples whole images; underneath it, the model and the sampler step can be
//! driven by hand, with candle tensors (re-exported as [`candle`]) going in and out:
//!
//! ```
//! use favicon_diffusor::candle::{Device, Tensor};
//! use favicon_diffusor::sampler::{step_batch, Step};
//! use favicon_diffusor::schedule::Schedule;
//! use favicon_diffusor::{Checkpoint, Pipeline};
//!
//! # fn main() -> favicon_diffusor::Result<()> {
//! let ck = Checkpoint::open(Pipeline::default_weights())?;
//! let (cfg, model) = (&ck.config, ck.model()?);
//! // Two noisy images at their own timesteps, `[B, C, H, W]`.
//! let shape = (2, cfg.channels, cfg.image_size, cfg.image_size);
//! let x = Tensor::randn(0f32, 1.0, shape, &Device::Cpu)?;
//! let t = [31, 12];
//! // One prompt per image; `&[]` gives every image the empty prompt (all an unconditional model takes).
//! let c = model.condition(&t.map(|t| t as f32), &[ck.encode_prompt("hippo")?, Vec::new()])?;
//! let pred = model.forward(&x, &c)?; // ε, and x0 where the checkpoint has that head
//! // One DDPM step per image with noise of our own: x at t − 1.
//! let schedule = Schedule::cosine(cfg.timesteps, cfg.schedule_offset);
//! let steps = t.map(|t| Step::ddpm(&schedule, t, cfg.x0_head));
//! let z = Tensor::randn(0f32, 1.0, shape, &Device::Cpu)?;
//! let x_prev = step_batch(&steps, &x, &pred.eps, pred.x0.as_ref(), &z)?;
//! assert_eq!(x_prev.dims(), &[2, cfg.channels, cfg.image_size, cfg.image_size]);
//! # Ok(())
//! # }
//! ```

pub mod alpha;
pub mod backend;
pub mod config;
pub mod convert;
pub mod cpu;
pub mod engine;
pub mod error;
pub mod fsio;
#[cfg(feature = "gpu")]
pub mod gpu;
pub mod hub;
pub mod image;
pub mod kit;
pub mod limits;
pub mod locate;
pub mod model;
pub mod noise;
pub mod patch;
pub mod pipeline;
pub mod sampler;
pub mod schedule;
pub mod state_dict;
pub mod timings;
pub mod vocab;
#[cfg(all(target_arch = "wasm32", feature = "wasm"))]
pub mod wasm;
pub mod weights;

/// The candle crates this library's tensors come from, so a caller needs no version of its own.
pub use candle_core as candle;
pub use candle_nn;
pub use config::Config;
pub use error::{Error, Result};
pub use pipeline::{Backend, Output, Pipeline, Preview, Request, StepEvent};
pub use sampler::SamplerKind;
pub use weights::Checkpoint;
