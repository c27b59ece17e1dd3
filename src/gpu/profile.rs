//! Per-kernel GPU time from timestamp queries: each dispatch of one step in its own pass,
//! stamped at its start and end. Separate passes add overhead, so the sum exceeds a real step;
//! the split between kernels is what this is for. `repeat_dispatch` runs one named dispatch
//! alone, for the kernel benchmarks' wall-clock timing on any adapter.

use super::engine::GpuEngine;
use super::plan::{Dispatch, Plan, Shape};
use super::readback::{read_f32, submit, wait};
use crate::engine::Job;
use crate::error::{Error, Result};

/// GPU microseconds of each dispatch of one step, in recording order.
pub async fn profile_step(engine: &mut GpuEngine, job: &Job) -> Result<Vec<(String, f64)>> {
    if !engine.context().features.contains(wgpu::Features::TIMESTAMP_QUERY) {
        return Err(Error::Gpu(format!("adapter `{}` has no timestamp queries", engine.context().info.name)));
    }
    let shape = Shape { images: job.batch, guided: job.guidance.is_some() };
    engine.write_job(shape, job)?;
    let (ctx, kernels, plan, _) = engine.parts(shape);
    let count = plan.step.len() as u32;
    let queries = ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
        label: Some("profile"),
        ty: wgpu::QueryType::Timestamp,
        count: 2 * count,
    });
    let bytes = 2 * count as u64 * 8;
    let resolve = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("profile_resolve"),
        size: bytes,
        usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("profile_staging"),
        size: bytes,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
    {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
        let prelude: Vec<_> = plan.prelude.iter().chain([&plan.start]).collect();
        plan.record(&mut pass, kernels, &prelude, 0);
    }
    for (i, dispatch) in plan.step.iter().enumerate() {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(&dispatch.name),
            timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                query_set: &queries,
                beginning_of_pass_write_index: Some(2 * i as u32),
                end_of_pass_write_index: Some(2 * i as u32 + 1),
            }),
        });
        plan.record(&mut pass, kernels, &[dispatch], 0);
    }
    encoder.resolve_query_set(&queries, 0..2 * count, &resolve, 0);
    encoder.copy_buffer_to_buffer(&resolve, 0, &staging, 0, bytes);
    wait(ctx, submit(ctx, encoder.finish())).await?;
    let words: Vec<u32> = read_f32(ctx, &staging, 0, 4 * count as usize).await?.iter().map(|f| f.to_bits()).collect();
    let period_ns = ctx.queue.get_timestamp_period() as f64;
    Ok(plan
        .step
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let stamp = |j: usize| words[2 * j] as u64 | (words[2 * j + 1] as u64) << 32;
            let ticks = stamp(2 * i + 1).saturating_sub(stamp(2 * i));
            (d.name.clone(), ticks as f64 * period_ns / 1000.0)
        })
        .collect())
}

/// The names of the dispatches a sample of `job` records: the prelude, the start, then one step's.
pub fn dispatch_names(engine: &mut GpuEngine, job: &Job) -> Vec<String> {
    let shape = Shape { images: job.batch, guided: job.guidance.is_some() };
    let (_, _, plan, _) = engine.parts(shape);
    every_dispatch(plan).map(|d| d.name.clone()).collect()
}

fn every_dispatch(plan: &Plan) -> impl Iterator<Item = &Dispatch> {
    plan.prelude.iter().chain([&plan.start]).chain(&plan.step)
}

/// Records the dispatch named `name` of `job`'s plan (with its split-K pass) `times` times in one compute pass (stepped
/// kernels read step slot 0), submits it and waits. Buffers keep whatever earlier runs left.
pub async fn repeat_dispatch(engine: &mut GpuEngine, job: &Job, name: &str, times: usize) -> Result<()> {
    let shape = Shape { images: job.batch, guided: job.guidance.is_some() };
    engine.write_job(shape, job)?;
    let (ctx, kernels, plan, _) = engine.parts(shape);
    // A split-K matmul is its `/split` pass and the reduce that carries its name.
    let split = format!("{name}/split");
    let parts: Vec<&Dispatch> = every_dispatch(plan).filter(|d| d.name == name || d.name == split).collect();
    if parts.is_empty() {
        let names: Vec<_> = every_dispatch(plan).map(|d| d.name.as_str()).collect();
        return Err(Error::Request(format!("no dispatch named `{name}` in the plan; it has {}", names.join(", "))));
    }
    let repeated: Vec<&Dispatch> = parts.iter().copied().cycle().take(times * parts.len()).collect();
    let mut encoder = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
    {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
        plan.record(&mut pass, kernels, &repeated, 0);
    }
    ctx.check()?;
    wait(ctx, submit(ctx, encoder.finish())).await
}
