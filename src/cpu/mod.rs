//! The CPU backends, both driven by the shared sampling plan: [`CpuEngine`], the default, runs
//! the forward pass on plain f32 buffers with packed weights and its own matmul
//! (`net.rs`, `matmul.rs`); [`CandleEngine`] runs the candle model, the reference that every
//! other path is checked against. Both take their threads from rayon's pool
//! (`RAYON_NUM_THREADS`, else one per core).

use candle_core::Tensor;

use crate::config::Config;
use crate::engine::{Engine, Job, Preview, StepEvent};
use crate::error::{Error, Result};
use crate::model::Dit;
use crate::sampler::{apply_step, guide, initial_x, x0_from_eps};
use crate::weights::Checkpoint;

mod adaln;
mod attention;
pub mod matmul;
mod net;

pub use matmul::Kernel;

/// What differs between the two engines: one guided forward pass.
trait Predict {
    fn config(&self) -> &Config;

    /// ε at `x` (`[B, C, H, W]` flat, B = `job.batch`) and timestep `t`, guided where the job
    /// is, and x0 where the checkpoint has that head.
    fn predict(&mut self, job: &Job, x: &[f32], t: u32) -> Result<(&[f32], Option<&[f32]>)>;
}

/// A run's first state: noise, or the init image noised to the first step. Refuses a plan
/// whose steps need an x0 head this checkpoint lacks.
fn start(cfg: &Config, job: &Job) -> Result<Vec<f32>> {
    job.plan.check_heads(cfg.x0_head)?;
    Ok(initial_x(&job.plan.start, job.seed, job.init.as_deref(), job.batch * cfg.image_len()))
}

fn step(
    engine: &mut impl Predict,
    job: &Job,
    index: usize,
    x: &mut [f32],
    on_step: &mut dyn FnMut(StepEvent),
) -> Result<()> {
    let step = &job.plan.steps[index];
    let (eps, x0) = engine.predict(job, x, step.t)?;
    // Without the x0 head, the preview is the x0 that ε implies at this step's x.
    let derived = match (&x0, job.preview) {
        (None, Preview::X0) => Some(x0_from_eps(step.alpha_bar, x, eps)),
        _ => None,
    };
    apply_step(step, job.seed, x, eps, x0)?;
    let preview = match job.preview {
        Preview::None => None,
        Preview::X0 => x0.or(derived.as_deref()),
        Preview::Xt => Some(&*x),
    };
    on_step(StepEvent { index, total: job.plan.steps.len(), t: step.t, preview });
    Ok(())
}

fn run(engine: &mut impl Predict, job: &Job, on_step: &mut dyn FnMut(StepEvent)) -> Result<Vec<f32>> {
    let mut x = start(engine.config(), job)?;
    let total = job.plan.steps.len();
    for index in 0..total {
        step(engine, job, index, &mut x, on_step)?;
        if job.stop.requested() && index + 1 < total {
            return Err(Error::Stopped { done: index + 1, total });
        }
    }
    Ok(x)
}

/// Guided halves `[uncond; cond]` to one batch, into `out`.
fn combine(both: &[f32], guidance: f32, out: &mut Vec<f32>) {
    let (uncond, cond) = both.split_at(both.len() / 2);
    out.clear();
    out.extend(uncond.iter().zip(cond).map(|(&u, &c)| guide(u, c, guidance)));
}

/// The default CPU engine: the candle model's computation on f32 buffers kept from step to
/// step, weights packed once for this CPU's widest kernel.
pub struct CpuEngine {
    net: net::Net,
    buffers: net::Buffers,
    /// Guided runs: the batch twice (unconditional, conditional halves), and the guided outputs.
    stacked: Vec<f32>,
    eps: Vec<f32>,
    x0: Vec<f32>,
    /// Which conditioning vector each image of the forward pass takes.
    of_image: Vec<usize>,
}

impl CpuEngine {
    pub fn new(checkpoint: &Checkpoint) -> Result<Self> {
        Self::with_kernel(checkpoint, Kernel::detect())
    }

    /// With a given kernel (the tests run each one this CPU has).
    pub fn with_kernel(checkpoint: &Checkpoint, kernel: Kernel) -> Result<Self> {
        let net = net::Net::new(&checkpoint.config, &checkpoint.tensors, kernel)?;
        Ok(CpuEngine {
            net,
            buffers: net::Buffers::default(),
            stacked: Vec::new(),
            eps: Vec::new(),
            x0: Vec::new(),
            of_image: Vec::new(),
        })
    }

    /// The matmul kernel the weights are packed for.
    pub fn kernel(&self) -> Kernel {
        self.net.kernel()
    }

    /// A run's first state (see [`CpuEngine::step`]).
    pub fn start(&self, job: &Job) -> Result<Vec<f32>> {
        start(self.net.config(), job)
    }

    /// Step `index` of `job` on `x`, reported to `on_step`. The browser calls it one step at a
    /// time, so its event loop can run (and take a Stop) in between.
    pub fn step(&mut self, job: &Job, index: usize, x: &mut [f32], on_step: &mut dyn FnMut(StepEvent)) -> Result<()> {
        step(self, job, index, x, on_step)
    }

    /// One guided forward pass, as [`CandleEngine::predict`].
    pub fn predict(&mut self, job: &Job, x: &[f32], t: u32) -> Result<(&[f32], Option<&[f32]>)> {
        Predict::predict(self, job, x, t)
    }
}

impl Predict for CpuEngine {
    fn config(&self) -> &Config {
        self.net.config()
    }

    fn predict(&mut self, job: &Job, x: &[f32], t: u32) -> Result<(&[f32], Option<&[f32]>)> {
        let b = job.batch;
        let has_x0 = self.net.config().x0_head;
        let buf = &mut self.buffers;
        self.of_image.clear();
        match job.guidance {
            // The unconditional and conditional halves run as one batch of 2B images.
            Some(g) => {
                let prompts: [&[u32]; 2] = [&[], &job.prompt];
                self.net.condition(t as f32, &prompts, buf)?;
                self.of_image.extend((0..2 * b).map(|i| i / b));
                self.stacked.clear();
                self.stacked.extend_from_slice(x);
                self.stacked.extend_from_slice(x);
                self.net.forward(&self.stacked, 2 * b, &self.of_image, buf);
                combine(&buf.eps, g, &mut self.eps);
                if has_x0 {
                    combine(&buf.x0, g, &mut self.x0);
                }
                Ok((&self.eps, has_x0.then_some(&self.x0[..])))
            }
            None => {
                self.net.condition(t as f32, &[job.prompt.as_slice()], buf)?;
                self.of_image.resize(b, 0);
                self.net.forward(x, b, &self.of_image, buf);
                Ok((&buf.eps, has_x0.then_some(&buf.x0[..])))
            }
        }
    }
}

impl Engine for CpuEngine {
    fn name(&self) -> String {
        format!("cpu ({}, {} threads)", self.net.kernel().name(), rayon::current_num_threads())
    }

    fn run(&mut self, job: &Job, on_step: &mut dyn FnMut(StepEvent)) -> Result<Vec<f32>> {
        run(self, job, on_step)
    }
}

/// The candle model as an engine: the reference the fast engine is tested against.
pub struct CandleEngine {
    model: Dit,
    eps: Vec<f32>,
    x0: Option<Vec<f32>>,
}

impl CandleEngine {
    pub fn new(model: Dit) -> Self {
        CandleEngine { model, eps: Vec::new(), x0: None }
    }

    /// One guided forward pass on `x` (`[B, C, H, W]` flat) at timestep `t`: returns ε, and x0
    /// where the checkpoint has that head.
    pub fn predict(&mut self, job: &Job, x: &[f32], t: u32) -> Result<(&[f32], Option<&[f32]>)> {
        Predict::predict(self, job, x, t)
    }

    /// A run's first state (see [`CandleEngine::step`]).
    pub fn start(&self, job: &Job) -> Result<Vec<f32>> {
        start(self.model.config(), job)
    }

    /// Step `index` of `job` on `x`, reported to `on_step`.
    pub fn step(&mut self, job: &Job, index: usize, x: &mut [f32], on_step: &mut dyn FnMut(StepEvent)) -> Result<()> {
        step(self, job, index, x, on_step)
    }
}

impl Predict for CandleEngine {
    fn config(&self) -> &Config {
        self.model.config()
    }

    fn predict(&mut self, job: &Job, x: &[f32], t: u32) -> Result<(&[f32], Option<&[f32]>)> {
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
        match job.guidance {
            Some(g) => {
                combine(&eps, g, &mut self.eps);
                self.x0 = x0.map(|x0| {
                    let mut out = Vec::new();
                    combine(&x0, g, &mut out);
                    out
                });
            }
            None => (self.eps, self.x0) = (eps, x0),
        }
        Ok((&self.eps, self.x0.as_deref()))
    }
}

impl Engine for CandleEngine {
    fn name(&self) -> String {
        "cpu (candle)".into()
    }

    fn run(&mut self, job: &Job, on_step: &mut dyn FnMut(StepEvent)) -> Result<Vec<f32>> {
        run(self, job, on_step)
    }
}
