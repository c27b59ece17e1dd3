//! The CPU backend: the candle model driven by the shared sampling plan.

use candle_core::Tensor;

use crate::engine::{Engine, Job, Preview, StepEvent};
use crate::error::{Error, Result};
use crate::model::Dit;
use crate::sampler::{apply_step, guide, initial_x, x0_from_eps};
use crate::timings::{Laps, Stage};
use crate::weights::Checkpoint;

pub struct CpuEngine {
    model: Dit,
    laps: Laps,
}

impl CpuEngine {
    pub fn new(model: Dit) -> Self {
        CpuEngine { model, laps: Laps::default() }
    }

    /// The candle model of `checkpoint`, its build timed.
    pub fn load(checkpoint: &Checkpoint) -> Result<Self> {
        let mut laps = Laps::default();
        let model = laps.time(Stage::Model, || checkpoint.model())?;
        Ok(CpuEngine { model, laps })
    }

    /// One guided forward pass on `x` (`[B, C, H, W]` flat) at timestep `t`: returns ε, and x0
    /// where the checkpoint has that head.
    pub fn predict(&self, job: &Job, x: &[f32], t: u32) -> Result<(Vec<f32>, Option<Vec<f32>>)> {
        let cfg = self.model.config();
        let b = job.batch;
        let shape = (b, cfg.channels, cfg.image_size, cfg.image_size);
        let xt = Tensor::from_slice(x, shape, self.model.device())?;
        let (input, prompts) = match job.guidance {
            Some(_) => {
                let prompts = std::iter::repeat_n(Vec::new(), b).chain(std::iter::repeat_n(job.prompt.clone(), b));
                (Tensor::cat(&[&xt, &xt], 0)?, prompts.collect::<Vec<_>>())
            }
            None => (xt, vec![job.prompt.clone(); b]),
        };
        let c = self.model.condition(&vec![t as f32; prompts.len()], &prompts)?;
        let pred = self.model.forward(&input, &c)?;
        let flat = |t: Tensor| -> Result<Vec<f32>> { Ok(t.flatten_all()?.to_vec1::<f32>()?) };
        let (eps, x0) = (flat(pred.eps)?, pred.x0.map(flat).transpose()?);
        Ok(match job.guidance {
            Some(g) => (combine(&eps, g), x0.map(|x0| combine(&x0, g))),
            None => (eps, x0),
        })
    }
}

/// Guided halves `[uncond; cond]` to one batch.
fn combine(both: &[f32], guidance: f32) -> Vec<f32> {
    let (uncond, cond) = both.split_at(both.len() / 2);
    uncond.iter().zip(cond).map(|(&u, &c)| guide(u, c, guidance)).collect()
}

impl CpuEngine {
    /// A run's first state: noise, or the init image noised to the first step. Refuses a plan
    /// whose steps need an x0 head this checkpoint lacks.
    pub fn start(&self, job: &Job) -> Result<Vec<f32>> {
        job.plan.check_heads(self.model.config().x0_head)?;
        let len = job.batch * self.model.config().image_len();
        Ok(initial_x(&job.plan.start, job.seed, job.init.as_deref(), len))
    }

    /// Step `index` of `job` on `x`, reported to `on_step`. The browser calls it one step at a
    /// time, so its event loop can run (and take a Stop) in between.
    pub fn step(&self, job: &Job, index: usize, x: &mut [f32], on_step: &mut dyn FnMut(StepEvent)) -> Result<()> {
        let step = &job.plan.steps[index];
        let (eps, x0) = self.predict(job, x, step.t)?;
        // Without the x0 head, the preview is the x0 that ε implies at this step's x.
        let derived = match (&x0, job.preview) {
            (None, Preview::X0) => Some(x0_from_eps(step.alpha_bar, x, &eps)),
            _ => None,
        };
        apply_step(step, job.seed, x, &eps, x0.as_deref())?;
        let preview = match job.preview {
            Preview::None => None,
            Preview::X0 => x0.as_deref().or(derived.as_deref()),
            Preview::Xt => Some(&*x),
        };
        on_step(StepEvent { index, total: job.plan.steps.len(), t: step.t, preview });
        Ok(())
    }
}

impl Engine for CpuEngine {
    fn name(&self) -> String {
        "cpu (candle)".into()
    }

    fn run(&mut self, job: &Job, on_step: &mut dyn FnMut(StepEvent)) -> Result<Vec<f32>> {
        let mut laps = std::mem::take(&mut self.laps);
        let images = laps.time(Stage::Sample, || self.sample(job, on_step));
        self.laps = laps;
        images
    }

    fn laps(&self) -> Laps {
        self.laps.clone()
    }
}

impl CpuEngine {
    fn sample(&self, job: &Job, on_step: &mut dyn FnMut(StepEvent)) -> Result<Vec<f32>> {
        let mut x = self.start(job)?;
        let total = job.plan.steps.len();
        for index in 0..total {
            self.step(job, index, &mut x, on_step)?;
            if job.stop.requested() && index + 1 < total {
                return Err(Error::Stopped { done: index + 1, total });
            }
        }
        Ok(x)
    }
}
