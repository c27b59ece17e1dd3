//! Picks the engine for a [`Backend`] choice.

use crate::cpu::CpuEngine;
use crate::error::Result;
use crate::pipeline::{Backend, Engine};
use crate::weights::Checkpoint;

pub fn engine_for(checkpoint: &Checkpoint, backend: Backend) -> Result<(Box<dyn Engine>, Option<String>)> {
    let cpu = || -> Result<Box<dyn Engine>> { Ok(Box::new(CpuEngine::new(checkpoint.model()?))) };
    match backend {
        Backend::Cpu => Ok((cpu()?, None)),
        Backend::Auto => Ok((cpu()?, None)),
        Backend::Gpu => Err(crate::error::Error::Gpu("the GPU backend is not built yet".into())),
    }
}
