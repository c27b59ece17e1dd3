//! Where sampling runs ([`Backend`]), and the engine each choice picks.

use crate::cpu::{CandleEngine, CpuEngine};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::weights::Checkpoint;

/// Where sampling runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// The GPU where an adapter exists, else the CPU (with a one-line note).
    #[default]
    Auto,
    /// The CPU engine (`cpu::CpuEngine`).
    Cpu,
    Gpu,
    /// The candle model on the CPU: the reference, slower than `Cpu`.
    Candle,
}

impl std::str::FromStr for Backend {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Backend::Auto),
            "cpu" => Ok(Backend::Cpu),
            "gpu" => Ok(Backend::Gpu),
            "candle" => Ok(Backend::Candle),
            other => Err(Error::Request(format!("unknown backend `{other}`, expected auto, cpu, gpu or candle"))),
        }
    }
}

/// The engine for `backend`, and a note when `Auto` fell back to the CPU.
#[cfg(not(target_arch = "wasm32"))]
pub fn engine_for(checkpoint: &Checkpoint, backend: Backend) -> Result<(Box<dyn Engine>, Option<String>)> {
    let cpu = || -> Result<Box<dyn Engine>> { Ok(Box::new(CpuEngine::new(checkpoint)?)) };
    match backend {
        Backend::Cpu => Ok((cpu()?, None)),
        Backend::Candle => Ok((Box::new(CandleEngine::load(checkpoint)?), None)),
        #[cfg(feature = "gpu")]
        Backend::Gpu => Ok((Box::new(pollster::block_on(crate::gpu::GpuEngine::new(checkpoint))?), None)),
        #[cfg(feature = "gpu")]
        Backend::Auto => match pollster::block_on(crate::gpu::GpuEngine::new(checkpoint)) {
            // A software rasteriser (lavapipe, SwiftShader) is correct but slower than the CPU engine.
            Ok(engine) if engine.context().is_software() => Ok((
                cpu()?,
                Some(format!(
                    "the only GPU adapter is the software `{}`, slower than the CPU path; running on the CPU (--backend gpu forces it)",
                    engine.context().info.name
                )),
            )),
            Ok(engine) => Ok((Box::new(engine), None)),
            Err(e) => Ok((cpu()?, Some(format!("{e}; running on the CPU instead")))),
        },
        #[cfg(not(feature = "gpu"))]
        Backend::Gpu => Err(crate::error::Error::Gpu("this build has no GPU support (feature `gpu`)".into())),
        #[cfg(not(feature = "gpu"))]
        Backend::Auto => Ok((cpu()?, Some("this build has no GPU support; running on the CPU".into()))),
    }
}

/// In the browser a GPU device can only be awaited; the wasm front end builds it and hands it over.
#[cfg(target_arch = "wasm32")]
pub fn engine_for(checkpoint: &Checkpoint, backend: Backend) -> Result<(Box<dyn Engine>, Option<String>)> {
    match backend {
        Backend::Gpu => {
            Err(crate::error::Error::Gpu("in the browser, create the GPU engine with GpuEngine::new(..).await".into()))
        }
        Backend::Candle => Ok((Box::new(CandleEngine::load(checkpoint)?), None)),
        _ => Ok((Box::new(CpuEngine::new(checkpoint)?), None)),
    }
}
