//! Whole samples on both paths (issues 2 and 7), with random weights of the default config:
//! one candle forward pass, then DDPM-32 and DDIM-8 at batch 1, 8 and 64 on the CPU engine
//! (`CpuEngine`) and the GPU path (`GpuEngine`), and at batch 1 on the candle reference
//! (`CandleEngine`), each through `pipeline::job` + `Engine::run`.
//!
//! `nice cargo bench --bench sample`; reports land in target/criterion/report/index.html.
//!
//! On slow machines a case whose warm-up and ten samples would take longer than `CASE_BUDGET`
//! times only the first k steps of its plan (k a power of two; the id says so, as in
//! `ddpm32-first4/8`), and the throughput is in steps per second so per-step costs compare
//! across ids. A DDIM case that would be cut is skipped instead: its steps cost what DDPM's do.
//! A case where even one step does not fit is skipped with a note. Software adapters (lavapipe)
//! run batch 1 only. FAVICON_DIFFUSOR_BENCH_FULL=1 runs every case whole.

mod common;

use std::time::{Duration, Instant};

use candle_core::Tensor;
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use favicon_diffusor::cpu::{CandleEngine, CpuEngine};
use favicon_diffusor::gpu::GpuOptions;
use favicon_diffusor::pipeline::{job, Engine, Job, Request};
use favicon_diffusor::{Checkpoint, SamplerKind};

const BATCHES: [usize; 3] = [1, 8, 64];
const CASES: [(&str, SamplerKind, usize); 2] = [("ddpm32", SamplerKind::Ddpm, 32), ("ddim8", SamplerKind::Ddim, 8)];
/// The most one case may take: criterion's warm-up run plus ten samples.
const CASE_BUDGET: Duration = Duration::from_secs(60);
const RUNS_PER_CASE: u32 = 11;
const FULL_ENV: &str = "FAVICON_DIFFUSOR_BENCH_FULL";

fn forward(c: &mut Criterion, ck: &Checkpoint) {
    let model = ck.model().unwrap();
    let cfg = model.config();
    let mut values = vec![0f32; cfg.image_len()];
    favicon_diffusor::noise::fill_normal(3, 0, &mut values);
    let x = Tensor::from_vec(values, (1, cfg.channels, cfg.image_size, cfg.image_size), model.device()).unwrap();
    let t = (cfg.timesteps - 1) as f32;
    let mut group = c.benchmark_group("cpu_forward");
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function("batch1", |b| {
        b.iter(|| {
            let cond = model.condition(&[t], &[Vec::new()]).unwrap();
            model.forward(&x, &cond).unwrap()
        })
    });
    group.finish();
}

fn request(sampler: SamplerKind, steps: usize, batch: usize) -> Request {
    Request { batch, sampler, steps, seed: 3, ..Default::default() }
}

/// Wall time of the second of two runs of the first step of `req` (the first builds GPU plans).
fn one_step(engine: &mut dyn Engine, ck: &Checkpoint, req: &Request) -> Duration {
    let mut probe = job(ck, req).unwrap();
    probe.plan.steps.truncate(1);
    engine.run(&probe, &mut |_| {}).unwrap();
    let start = Instant::now();
    engine.run(&probe, &mut |_| {}).unwrap();
    start.elapsed()
}

/// How many steps of a case fit the budget, from a batch-1 step scaled by the batch before
/// probing the batch itself. `Err` says why none do.
fn steps_within_budget(
    engine: &mut dyn Engine,
    ck: &Checkpoint,
    req: &Request,
    total: usize,
    batch1_step: Duration,
) -> Result<(usize, Duration), String> {
    let guess = batch1_step * req.batch as u32;
    if guess * RUNS_PER_CASE > CASE_BUDGET {
        return Err(format!("one step should take about {guess:.1?} (batch 1's × {})", req.batch));
    }
    let step = if req.batch == 1 { batch1_step } else { one_step(engine, ck, req) };
    let fit = (CASE_BUDGET.as_secs_f64() / (RUNS_PER_CASE as f64 * step.as_secs_f64())) as usize;
    match fit.min(total) {
        0 => Err(format!("one step takes {step:.1?}")),
        k if k == total => Ok((total, step)),
        k => Ok((1 << k.ilog2(), step)),
    }
}

/// Every case of one engine at the batches it can afford.
fn samples(c: &mut Criterion, name: &str, engine: &mut dyn Engine, ck: &Checkpoint, batches: &[usize]) {
    let full = std::env::var(FULL_ENV).as_deref() == Ok("1");
    let benchmarking = common::benchmarking();
    let batch1_step = (benchmarking && !full).then(|| one_step(engine, ck, &request(SamplerKind::Ddpm, 32, 1)));
    let mut group = c.benchmark_group(name);
    group.sampling_mode(SamplingMode::Flat);
    for (label, sampler, steps) in CASES {
        for &batch in batches {
            let req = request(sampler, steps, batch);
            let mut job: Job = job(ck, &req).unwrap();
            let total = job.plan.steps.len();
            let (k, step) = match batch1_step {
                None => (if benchmarking { total } else { 1 }, None),
                Some(b1) => match steps_within_budget(engine, ck, &req, total, b1) {
                    Ok((k, _)) if k < total && sampler == SamplerKind::Ddim => {
                        println!("NOTE: {name}/{label}/{batch} skipped: only {k} of its {total} steps fit the {CASE_BUDGET:?} budget, and those time what ddpm32 at batch {batch} does. {FULL_ENV}=1 runs it whole.");
                        continue;
                    }
                    Ok((k, step)) => (k, Some(step)),
                    Err(why) => {
                        println!("NOTE: {name}/{label}/{batch} skipped: {why}, and {RUNS_PER_CASE} runs would pass the {CASE_BUDGET:?} budget. {FULL_ENV}=1 runs it.");
                        continue;
                    }
                },
            };
            job.plan.steps.truncate(k);
            let id = match k == total || !benchmarking {
                true => BenchmarkId::new(label, batch),
                false => {
                    println!("NOTE: {name}/{label}/{batch} times the first {k} of its {total} steps to fit the {CASE_BUDGET:?} budget (throughput is steps per second). {FULL_ENV}=1 runs it whole.");
                    BenchmarkId::new(format!("{label}-first{k}"), batch)
                }
            };
            // One run per sample when the runs are slow; criterion fills the time otherwise.
            let run = step.map_or(Duration::ZERO, |s| s * k as u32);
            group.measurement_time((run * 10).max(Duration::from_secs(2)));
            group.throughput(Throughput::Elements(k as u64));
            group.bench_with_input(id, &job, |b, job| b.iter(|| engine.run(job, &mut |_| {}).unwrap()));
        }
    }
    group.finish();
}

fn main() {
    let mut c = common::criterion();
    let ck = common::checkpoint();
    forward(&mut c, &ck);
    let mut cpu = CpuEngine::new(&ck).unwrap();
    samples(&mut c, "sample_cpu", &mut cpu, &ck, &BATCHES);
    let mut candle = CandleEngine::new(ck.model().unwrap());
    samples(&mut c, "sample_candle", &mut candle, &ck, &BATCHES[..1]);
    if let Some(mut gpu) = common::gpu_engine(&ck, GpuOptions::default(), "sample") {
        let adapter = gpu.context().describe();
        let batches: &[usize] = if gpu.context().is_software() {
            println!("NOTE: `{adapter}` is a software adapter: sample_gpu runs batch 1 only.");
            &BATCHES[..1]
        } else {
            println!("GPU: {adapter}");
            &BATCHES
        };
        samples(&mut c, "sample_gpu", &mut gpu, &ck, batches);
    }
    c.final_summary();
}
