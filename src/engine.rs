//! What a sampling backend is: the [`Engine`] trait, the [`Job`] it runs (a request resolved
//! against a checkpoint by [`crate::pipeline::job`]) and the [`StepEvent`]s it reports.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::Result;
use crate::sampler::Plan;
use crate::timings::Laps;

/// What each step shows to the `on_step` callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preview {
    #[default]
    None,
    /// The x0 head's guess of the finished image: an icon forming.
    X0,
    /// The noisy state x_t itself.
    Xt,
}

/// Reported after every step; `preview` holds the whole batch when the request asked for one.
pub struct StepEvent<'a> {
    pub index: usize,
    pub total: usize,
    pub t: u32,
    pub preview: Option<&'a [f32]>,
}

/// Asks a running job to stop after the step in progress (the browser's Stop button); the
/// engine then returns [`crate::error::Error::Stopped`]. Clones share one flag.
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    pub fn request(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn requested(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Everything a backend needs for one run, resolved from a [`Request`].
pub struct Job {
    pub plan: Plan,
    pub seed: u64,
    pub batch: usize,
    pub prompt: Vec<u32>,
    /// Some(g) when each step runs the unconditional and conditional halves together.
    pub guidance: Option<f32>,
    pub init: Option<Vec<f32>>,
    pub preview: Preview,
    pub stop: Stop,
}

/// A sampling backend: runs a whole job and returns the batch of planar images.
pub trait Engine {
    fn name(&self) -> String;
    fn run(&mut self, job: &Job, on_step: &mut dyn FnMut(StepEvent)) -> Result<Vec<f32>>;
    /// Where the engine's time went: its set-up and every run so far.
    fn laps(&self) -> Laps;
}
