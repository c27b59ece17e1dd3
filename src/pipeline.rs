//! The public entry point: load a checkpoint, pick a backend, generate images.

use std::path::{Path, PathBuf};

use crate::alpha::{Color, PixelFormat, Premultiplied};
use crate::error::{Error, Result};
use crate::image::{self as img, Format};
use crate::sampler::{Plan, SamplerKind};
use crate::schedule::Schedule;
use crate::timings::{Laps, Stage};
use crate::weights::Checkpoint;

pub use crate::backend::Backend;
pub use crate::engine::{Engine, Job, Preview, StepEvent, Stop};

#[derive(Debug, Clone)]
pub struct Request {
    pub prompt: String,
    /// Classifier-free guidance scale in [`crate::limits::GUIDANCE`] (0 to 20); 1 means no
    /// guidance (one forward pass per step).
    pub guidance: f32,
    pub seed: u64,
    pub steps: usize,
    pub sampler: SamplerKind,
    pub batch: usize,
    /// img2img input: one planar image in [-1, 1] of the checkpoint's channels (see
    /// [`crate::image::load`]), used for every batch item.
    pub init: Option<Vec<f32>>,
    pub strength: f32,
    pub preview: Preview,
    /// Flatten the saved pictures onto this colour (opaque icons); `None` keeps the alpha.
    pub background: Option<Color>,
}

impl Default for Request {
    fn default() -> Self {
        Request {
            prompt: String::new(),
            guidance: 3.0,
            seed: 0,
            steps: 32,
            sampler: SamplerKind::Ddpm,
            batch: 1,
            init: None,
            strength: 0.6,
            preview: Preview::None,
            background: None,
        }
    }
}

pub struct Output {
    /// `batch` planar images, `[B, channels, size, size]` in [-1, 1].
    pub images: Vec<f32>,
    /// The per-step previews, when the request asked for them.
    pub frames: Vec<Vec<f32>>,
    pub batch: usize,
    pub size: usize,
    /// How the planes encode pixels (3 channels: opaque RGB; 4: premultiplied RGBA).
    pub format: PixelFormat,
    /// The request's background: pictures are flattened onto it when set.
    pub background: Option<Color>,
}

impl Output {
    /// Image `i` of a batch of planar images, premultiplied, flattened when asked to.
    fn premultiplied(&self, batch: &[f32], i: usize) -> Result<Premultiplied> {
        let len = self.format.channels * self.size * self.size;
        let planar = batch
            .get(i * len..(i + 1) * len)
            .ok_or_else(|| Error::Request(format!("image {i} is beyond the {} values of this batch", batch.len())))?;
        let image = Premultiplied::from_planar(planar, self.format, self.size)?;
        Ok(match self.background {
            Some(color) => image.flatten(color),
            None => image,
        })
    }

    /// Image `i` as 8-bit straight RGBA (flattened onto the background when one is set).
    pub fn image(&self, i: usize) -> Result<image::RgbaImage> {
        Ok(self.premultiplied(&self.images, i)?.to_straight())
    }

    fn tiled(&self, batch: &[f32]) -> Result<image::RgbaImage> {
        let count = batch.len() / (self.format.channels * self.size * self.size).max(1);
        let tiles = (0..count).map(|i| Ok(self.premultiplied(batch, i)?.to_straight())).collect::<Result<Vec<_>>>()?;
        let gutter = self.background.map_or(image::Rgba([0; 4]), |[r, g, b]| image::Rgba([r, g, b, 255]));
        Ok(img::grid(&tiles, gutter))
    }

    /// The whole batch as one picture (a grid when batch > 1).
    pub fn picture(&self) -> Result<image::RgbaImage> {
        self.tiled(&self.images)
    }

    /// Writes PNG, ICO or GIF by the extension of `path`. A GIF needs per-step frames.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = match Format::from_path(path)? {
            Format::Png => img::png_bytes(&self.picture()?)?,
            Format::Ico => img::ico_bytes(&self.premultiplied(&self.images, 0)?)?,
            Format::Gif => {
                if self.frames.is_empty() {
                    return Err(Error::Request("a GIF needs per-step previews; request them with `preview`".into()));
                }
                let mut frames = self.frames.iter().map(|f| self.tiled(f)).collect::<Result<Vec<_>>>()?;
                frames.push(self.picture()?);
                img::gif_bytes(&frames, 80)?
            }
        };
        img::write_atomic(path, &bytes)
    }
}

/// The largest batch one request may ask for (its images alone take 48 KiB each, 64 KiB with alpha).
pub const MAX_BATCH: usize = 4096;

pub struct Pipeline {
    checkpoint: Checkpoint,
    engine: Box<dyn Engine>,
    note: Option<String>,
    /// The checkpoint's read, when this pipeline read it.
    laps: Laps,
}

impl Pipeline {
    /// Loads the checkpoint folder and sets up the backend.
    pub fn load(dir: impl AsRef<Path>, backend: Backend) -> Result<Self> {
        let mut laps = Laps::default();
        let checkpoint = laps.time(Stage::WeightsRead, || Checkpoint::open(dir))?;
        let mut pipe = Self::new(checkpoint, backend)?;
        pipe.laps = laps;
        Ok(pipe)
    }

    pub fn new(checkpoint: Checkpoint, backend: Backend) -> Result<Self> {
        let (engine, note) = crate::backend::engine_for(&checkpoint, backend)?;
        Ok(Self::with_engine(checkpoint, engine, note))
    }

    /// A pipeline over an engine built elsewhere (the browser builds its GPU engine asynchronously).
    pub fn with_engine(checkpoint: Checkpoint, engine: Box<dyn Engine>, note: Option<String>) -> Self {
        Pipeline { checkpoint, engine, note, laps: Laps::default() }
    }

    /// The default checkpoint folder: `FAVICON_DIFFUSOR_WEIGHTS`, else `weights` beside the
    /// executable, else the source tree's (see [`crate::locate`]).
    pub fn default_weights() -> PathBuf {
        crate::locate::find(None).unwrap_or_else(|_| crate::locate::compiled_in())
    }

    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    pub fn backend_name(&self) -> String {
        self.engine.name()
    }

    /// Where the time went so far, stage by stage: reading the checkpoint (when [`Pipeline::load`]
    /// read it), setting up the engine, and every `generate` (the GPU's plans and pipelines on
    /// first use of a batch shape, then the samples).
    pub fn laps(&self) -> Laps {
        self.laps.merged(&self.engine.laps())
    }

    /// Why `Backend::Auto` fell back to the CPU, if it did.
    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    /// Resolves a request against this checkpoint: prompt words, plan, guidance.
    pub fn job(&self, req: &Request) -> Result<Job> {
        job(&self.checkpoint, req)
    }

    pub fn generate(&mut self, req: &Request, mut on_step: impl FnMut(StepEvent)) -> Result<Output> {
        let job = self.job(req)?;
        let mut frames = Vec::new();
        let keep = req.preview != Preview::None;
        let images = self.engine.run(&job, &mut |event: StepEvent| {
            if let (true, Some(p)) = (keep, event.preview) {
                frames.push(p.to_vec());
            }
            on_step(event)
        })?;
        crate::limits::check_finite_output(&images)?;
        let cfg = &self.checkpoint.config;
        Ok(Output {
            images,
            frames,
            batch: req.batch,
            size: cfg.image_size,
            format: PixelFormat::of(cfg),
            background: req.background,
        })
    }
}

/// Resolves a request against a checkpoint: prompt words, sampling plan, guidance. Every
/// backend runs the `Job` this returns.
pub fn job(checkpoint: &Checkpoint, req: &Request) -> Result<Job> {
    let cfg = &checkpoint.config;
    if req.batch == 0 || req.batch > MAX_BATCH {
        return Err(Error::Request(format!("batch must be in 1..={MAX_BATCH}, found {}", req.batch)));
    }
    crate::limits::check_guidance(req.guidance)?;
    let prompt = checkpoint.encode_prompt(&req.prompt)?;
    let schedule = Schedule::cosine(cfg.timesteps, cfg.schedule_offset);
    let strength = req.init.as_ref().map(|_| req.strength);
    let plan = Plan::new(&schedule, req.sampler, req.steps, strength, cfg.x0_head)?;
    let init = match &req.init {
        Some(image) if image.len() != cfg.image_len() => {
            return Err(Error::Request(format!(
                "init image has {} values, expected {} ({}×{}×{})",
                image.len(),
                cfg.image_len(),
                cfg.channels,
                cfg.image_size,
                cfg.image_size
            )))
        }
        Some(image) => Some(image.repeat(req.batch)),
        None => None,
    };
    let guided = checkpoint.is_conditional() && !prompt.is_empty() && req.guidance != 1.0;
    Ok(Job {
        plan,
        seed: req.seed,
        batch: req.batch,
        prompt,
        guidance: guided.then_some(req.guidance),
        init,
        preview: req.preview,
        stop: Stop::default(),
    })
}
