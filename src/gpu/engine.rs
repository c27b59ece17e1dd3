//! The GPU backend: uploads once, plans once per batch shape, then records each step into
//! one compute pass and submits the whole loop before waiting on anything.

use std::collections::{HashMap, VecDeque};

use super::context::GpuContext;
use super::kernels::{Kernels, MAX_HEAD_DIM, MAX_SINUSOID, MAX_TOKENS};
use super::plan::{Plan, PlanStats, RequestParams, Shape, StepParams};
use super::readback::{read_f32, submit, wait};
use super::weights::GpuWeights;
use crate::config::Config;
use crate::engine::{Job, Preview, StepEvent};
use crate::error::{Error, Result};
use crate::timings::{Lap, Laps, Stage};
use crate::weights::Checkpoint;

/// Everything the engine has created, to show that sampling allocates nothing new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceCounts {
    pub plans: usize,
    pub buffers: usize,
    pub bind_groups: usize,
    pub pipelines: usize,
}

pub struct GpuEngine {
    ctx: GpuContext,
    kernels: Kernels,
    weights: GpuWeights,
    config: Config,
    plans: HashMap<Shape, Plan>,
    /// Steps submitted ahead of the one being waited on (see `set_steps_in_flight`).
    steps_in_flight: usize,
    /// The context's, then this engine's stages (upload, plans, pipelines, samples).
    laps: Laps,
    /// Where the pipeline cache is kept between runs, when it is.
    #[cfg(not(target_arch = "wasm32"))]
    disk_cache: Option<super::pipeline_cache::DiskCache>,
}

fn check_config(cfg: &Config) -> Result<()> {
    let limits = [
        ("tokens", cfg.tokens(), MAX_TOKENS),
        ("head_dim", cfg.head_dim, MAX_HEAD_DIM),
        ("time sinusoid width", crate::model::time_sinusoid_width(cfg), MAX_SINUSOID),
        ("time_dim", cfg.time_dim, MAX_SINUSOID),
    ];
    for (what, value, max) in limits {
        if value > max {
            return Err(Error::Gpu(format!("{what} = {value} exceeds the kernels' limit of {max}")));
        }
    }
    Ok(())
}

impl GpuEngine {
    pub async fn new(checkpoint: &Checkpoint) -> Result<Self> {
        Self::with_context(GpuContext::new().await?, checkpoint)
    }

    pub fn with_context(ctx: GpuContext, checkpoint: &Checkpoint) -> Result<Self> {
        check_config(&checkpoint.config)?;
        let mut laps = ctx.laps.clone();
        let weights =
            laps.time(Stage::WeightsUpload, || GpuWeights::upload(&ctx.device, checkpoint, ctx.software_kernels))?;
        let limit = ctx.limits.max_storage_buffer_binding_size;
        if let Some(largest) = weights.largest_buffer().filter(|&size| size > limit) {
            return Err(Error::Gpu(format!(
                "a weight matrix of {largest} bytes exceeds this device's storage binding limit of {limit} bytes"
            )));
        }
        #[cfg(not(target_arch = "wasm32"))]
        let (disk_cache, cache) = {
            let lap = Lap::start(Stage::CacheRead);
            let opened = super::pipeline_cache::DiskCache::open(&ctx, &mut laps);
            lap.stop(&mut laps);
            opened.map_or((None, None), |(disk, cache)| (Some(disk), Some(cache)))
        };
        #[cfg(target_arch = "wasm32")]
        let cache = None;
        let kernels = Kernels::new(&ctx.device, cache);
        ctx.check()?;
        Ok(GpuEngine {
            ctx,
            kernels,
            weights,
            config: checkpoint.config.clone(),
            plans: HashMap::new(),
            steps_in_flight: usize::MAX,
            laps,
            #[cfg(not(target_arch = "wasm32"))]
            disk_cache,
        })
    }

    /// Bounds how many steps are submitted ahead of the one being waited on. By default every
    /// step is submitted before anything is awaited (the fastest); the browser bounds it, so
    /// that a Stop (`Job::stop`) waits for little queued work.
    pub fn set_steps_in_flight(&mut self, steps: usize) {
        self.steps_in_flight = steps.max(1);
    }

    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// Where this engine's time went so far, and what the pipeline cache did.
    pub fn laps(&self) -> &Laps {
        &self.laps
    }

    pub fn counts(&self) -> ResourceCounts {
        let stats = self.plan_stats();
        ResourceCounts {
            plans: self.plans.len(),
            buffers: stats.buffers,
            bind_groups: stats.bind_groups,
            pipelines: self.kernels.pipeline_count(),
        }
    }

    /// What all plans allocated so far.
    pub fn plan_stats(&self) -> PlanStats {
        self.plans.values().fold(PlanStats::default(), |acc, p| PlanStats {
            buffers: acc.buffers + p.stats.buffers,
            bind_groups: acc.bind_groups + p.stats.bind_groups,
            bytes: acc.bytes + p.stats.bytes,
        })
    }

    /// Bytes of weights on the device.
    pub fn weight_bytes(&self) -> u64 {
        self.weights.bytes()
    }

    /// Dispatches in one sampling step at this batch shape (every step records the same list;
    /// software adapters add standalone AdaLNs, a split-K matmul adds its reduce).
    pub fn dispatches_per_step(&mut self, images: usize, guided: bool) -> usize {
        self.step_dispatch_names(images, guided).len()
    }

    /// The names of one step's dispatches at this batch shape, in recording order.
    pub fn step_dispatch_names(&mut self, images: usize, guided: bool) -> Vec<String> {
        self.plan(Shape { images, guided }).step.iter().map(|d| d.name.clone()).collect()
    }

    /// The most images one run can hold within the device's buffer and dispatch limits.
    pub fn max_images(&self, guided: bool) -> usize {
        let cfg = &self.config;
        let per_image = [
            cfg.tokens() * cfg.mlp_dim(),
            cfg.tokens() * 3 * cfg.inner_dim(),
            cfg.tokens() * cfg.dim,
            2 * cfg.image_len(),
        ]
        .into_iter()
        .max()
        .unwrap_or(1) as u64
            * 4;
        let limit = self.ctx.limits.max_storage_buffer_binding_size;
        if self.fixed_bytes() > limit {
            return 0;
        }
        let by_buffer = limit / per_image;
        // Attention runs images·heads workgroups along y; the direct matmul runs one per row.
        let max_groups = self.ctx.limits.max_compute_workgroups_per_dimension as usize;
        let by_dispatch = (max_groups / cfg.heads).min(max_groups / cfg.tokens()) as u64;
        let model_images = by_buffer.min(by_dispatch) as usize;
        model_images / if guided { 2 } else { 1 }
    }

    /// The largest buffer whose size does not depend on the batch: the modulation table.
    fn fixed_bytes(&self) -> u64 {
        let cfg = &self.config;
        ((2 * cfg.timesteps * self.weights.modulation.rows + self.weights.heads_bias.len()) * 4) as u64
    }

    fn plan(&mut self, shape: Shape) -> &Plan {
        if !self.plans.contains_key(&shape) {
            let plan = self
                .laps
                .time(Stage::Plan, || Plan::build(&self.ctx, &self.kernels, &self.weights, &self.config, shape));
            if self.kernels.prepare(&self.ctx.device, &plan.kernels, &mut self.laps) > 0 {
                self.save_pipeline_cache();
            }
            self.plans.insert(shape, plan);
        }
        &self.plans[&shape]
    }

    /// Writes the pipeline cache back after new pipelines, so the next process finds them.
    #[cfg(not(target_arch = "wasm32"))]
    fn save_pipeline_cache(&mut self) {
        let (Some(disk), Some(cache)) = (&mut self.disk_cache, self.kernels.cache()) else { return };
        if let Some(note) = self.laps.time(Stage::CacheWrite, || disk.save(cache)) {
            self.laps.note(note);
        }
    }

    #[cfg(target_arch = "wasm32")]
    fn save_pipeline_cache(&mut self) {}

    /// The two prompt vectors the condition kernel adds: the empty prompt's and the request's.
    fn prompt_vectors(&self, prompt: &[u32]) -> Result<Vec<f32>> {
        let Some(table) = &self.weights.prompt_table else { return Ok(vec![0.0; 2 * self.config.time_dim]) };
        let mut both = crate::model::prompt_vector(table, &[])?.flatten_all()?.to_vec1::<f32>()?;
        both.extend(crate::model::prompt_vector(table, prompt)?.flatten_all()?.to_vec1::<f32>()?);
        Ok(both)
    }

    /// Writes the per-request uniforms of `plan` for images `[first, first + shape.images)`.
    fn write_request(&self, plan: &Plan, job: &Job, first: usize) -> Result<()> {
        let (cfg, queue) = (&self.config, &self.ctx.queue);
        let len = plan.shape.images * cfg.image_len();
        let mut table = vec![0u8; plan.step_stride as usize * cfg.timesteps];
        let mut timesteps = vec![0f32; cfg.timesteps];
        for (slot, step) in job.plan.steps.iter().enumerate() {
            let params = StepParams {
                index: slot as u32,
                tag: step.noise_tag(),
                a: step.a,
                b: step.b,
                c: step.c,
                t: step.t as f32,
                head: step.head as u32,
                alpha_bar: step.alpha_bar,
            };
            let at = slot * plan.step_stride as usize;
            table[at..at + std::mem::size_of::<StepParams>()].copy_from_slice(bytemuck::bytes_of(&params));
            timesteps[slot] = step.t as f32;
        }
        queue.write_buffer(&plan.steps, 0, &table);
        queue.write_buffer(&plan.timesteps, 0, bytemuck::cast_slice(&timesteps));
        queue.write_buffer(&plan.prompts, 0, bytemuck::cast_slice(&self.prompt_vectors(&job.prompt)?));
        if let Some(init) = &job.init {
            let at = first * cfg.image_len();
            queue.write_buffer(&plan.init, 0, bytemuck::cast_slice(&init[at..at + len]));
        }
        let start = &job.plan.start;
        let request = RequestParams {
            seed_lo: job.seed as u32,
            seed_hi: (job.seed >> 32) as u32,
            len: len as u32,
            guided: job.guidance.is_some() as u32,
            guidance: job.guidance.unwrap_or(1.0),
            noise_offset: (first * cfg.image_len()) as u32,
            preview: match job.preview {
                Preview::None => 0,
                Preview::X0 => 1,
                Preview::Xt => 2,
            },
            has_init: job.init.is_some() as u32,
            signal: start.signal,
            noise: start.noise,
            groups_x: plan.start.workgroups[0],
            x0_head: self.weights.x0_head as u32,
        };
        queue.write_buffer(&plan.request, 0, bytemuck::bytes_of(&request));
        Ok(())
    }

    /// Runs a whole job, split into runs that fit the device's limits.
    pub async fn run_async(&mut self, job: &Job, on_step: &mut dyn FnMut(StepEvent)) -> Result<Vec<f32>> {
        job.plan.check_heads(self.weights.x0_head)?;
        let guided = job.guidance.is_some();
        let chunk = self.max_images(guided);
        if chunk == 0 {
            return Err(Error::Gpu(format!(
                "one image does not fit this device's limits (max storage binding {} bytes)",
                self.ctx.limits.max_storage_buffer_binding_size
            )));
        }
        let chunks = job.batch.div_ceil(chunk);
        let mut images = Vec::with_capacity(job.batch * self.config.image_len());
        for index in 0..chunks {
            let first = index * chunk;
            let count = chunk.min(job.batch - first);
            let mut report = |mut event: StepEvent| {
                event.total *= chunks;
                event.index += index * job.plan.steps.len();
                on_step(event)
            };
            let chunk_images = self.run_chunk(job, first, count, &mut report).await.map_err(|e| match e {
                Error::Stopped { done, total } => Error::Stopped { done: index * total + done, total: chunks * total },
                other => other,
            })?;
            images.extend(chunk_images);
        }
        Ok(images)
    }

    async fn run_chunk(
        &mut self,
        job: &Job,
        first: usize,
        count: usize,
        on_step: &mut dyn FnMut(StepEvent),
    ) -> Result<Vec<f32>> {
        let shape = Shape { images: count, guided: job.guidance.is_some() };
        self.plan(shape);
        let lap = Lap::start(Stage::Sample);
        let images = self.sample(shape, job, first, count, on_step).await;
        lap.stop(&mut self.laps);
        images
    }

    /// One run of `shape`'s plan, built already.
    async fn sample(
        &self,
        shape: Shape,
        job: &Job,
        first: usize,
        count: usize,
        on_step: &mut dyn FnMut(StepEvent),
    ) -> Result<Vec<f32>> {
        let plan = &self.plans[&shape];
        self.write_request(plan, job, first)?;
        let (ctx, kernels) = (&self.ctx, &self.kernels);
        let len = count * self.config.image_len();
        let new_encoder = || ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });

        let mut encoder = new_encoder();
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
            let prelude: Vec<_> = plan.prelude.iter().chain([&plan.start]).collect();
            plan.record(&mut pass, kernels, &prelude, 0);
        }
        let prelude = submit(ctx, encoder.finish());
        let steps = &job.plan.steps;
        let dispatches: Vec<_> = plan.step.iter().collect();
        let record = |slot: usize| {
            let mut encoder = new_encoder();
            {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
                plan.record(&mut pass, kernels, &dispatches, slot);
            }
            if job.preview != Preview::None {
                encoder.copy_buffer_to_buffer(&plan.preview, 0, &plan.preview_staging[slot], 0, (len * 4) as u64);
            }
            if slot + 1 == steps.len() {
                encoder.copy_buffer_to_buffer(&plan.x, 0, &plan.readback, 0, (len * 4) as u64);
            }
            submit(ctx, encoder.finish())
        };
        let ahead = steps.len().min(self.steps_in_flight.max(1));
        let mut pending: VecDeque<_> = (0..ahead).map(record).collect();
        ctx.check()?;
        wait(ctx, prelude).await?;
        for slot in 0..steps.len() {
            let Some(done) = pending.pop_front() else { break };
            wait(ctx, done).await?;
            let preview = match job.preview {
                Preview::None => None,
                _ => Some(read_f32(ctx, &plan.preview_staging[slot], 0, len).await?),
            };
            on_step(StepEvent { index: slot, total: steps.len(), t: steps[slot].t, preview: preview.as_deref() });
            if job.stop.requested() && slot + 1 < steps.len() {
                // What was submitted still runs; wait for it, so the next job starts on an idle queue.
                for rest in pending {
                    wait(ctx, rest).await?;
                }
                return Err(Error::Stopped { done: slot + 1, total: steps.len() });
            }
            let next = slot + pending.len() + 1;
            if next < steps.len() {
                pending.push_back(record(next));
            }
        }
        read_f32(ctx, &plan.readback, 0, len).await
    }

    /// For the debug mode: the plan of `shape`, built if needed, with the context and kernels.
    pub(super) fn parts(&mut self, shape: Shape) -> (&GpuContext, &Kernels, &Plan, &Config) {
        self.plan(shape);
        (&self.ctx, &self.kernels, &self.plans[&shape], &self.config)
    }

    pub(super) fn write_job(&mut self, shape: Shape, job: &Job) -> Result<()> {
        self.plan(shape);
        self.write_request(&self.plans[&shape], job, 0)
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl crate::engine::Engine for GpuEngine {
    fn name(&self) -> String {
        format!("gpu: {}", self.ctx.describe())
    }

    fn run(&mut self, job: &Job, on_step: &mut dyn FnMut(StepEvent)) -> Result<Vec<f32>> {
        pollster::block_on(self.run_async(job, on_step))
    }

    fn laps(&self) -> Laps {
        self.laps.clone()
    }
}
