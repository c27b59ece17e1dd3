//! The debug mode: run one forward pass dispatch by dispatch, read back what each wrote, and
//! diff it against the candle activation of the same name, to pin a mismatch on one kernel.

use candle_core::Tensor;

use super::engine::GpuEngine;
use super::plan::Shape;
use super::readback::{read_f32, submit, wait};
use crate::engine::{Job, Preview};
use crate::error::Result;
use crate::model::Dit;
use crate::sampler::{Head, Plan as StepPlan, Start, Step};

/// How far one op's GPU output is from the candle activation.
#[derive(Debug, Clone)]
pub struct OpDiff {
    pub op: String,
    pub max_abs: f32,
    /// Largest magnitude in the candle activation, the scale for `relative`.
    pub scale: f32,
}

impl OpDiff {
    pub fn relative(&self) -> f32 {
        self.max_abs / self.scale.max(1e-6)
    }
}

fn diff(op: &str, gpu: &[f32], reference: &[f32]) -> OpDiff {
    let max_abs = gpu.iter().zip(reference).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    let nan = gpu.iter().any(|v| !v.is_finite());
    let scale = reference.iter().map(|v| v.abs()).fold(0.0, f32::max);
    OpDiff { op: op.to_string(), max_abs: if nan { f32::INFINITY } else { max_abs }, scale }
}

/// Diffs every op of one forward pass of `x` (`images` planar images) at timestep `t`.
pub async fn compare_forward(
    engine: &mut GpuEngine,
    model: &Dit,
    x: &[f32],
    t: u32,
    prompt: &[u32],
) -> Result<Vec<OpDiff>> {
    let cfg = model.config().clone();
    let images = x.len() / cfg.image_len();
    let shape = Shape { images, guided: false };
    let job = Job {
        plan: StepPlan {
            start: Start { t, signal: 0.0, noise: 1.0 },
            steps: vec![Step { t, a: 1.0, b: 0.0, c: 0.0, head: Head::Eps, alpha_bar: 1.0 }],
        },
        seed: 0,
        batch: images,
        prompt: prompt.to_vec(),
        guidance: None,
        init: None,
        preview: Preview::None,
        stop: Default::default(),
    };
    engine.write_job(shape, &job)?;

    let mut reference = std::collections::HashMap::new();
    let xt = Tensor::from_slice(x, (images, cfg.channels, cfg.image_size, cfg.image_size), model.device())?;
    let c = model.condition(&vec![t as f32; images], &vec![prompt.to_vec(); images])?;
    reference.insert("condition".to_string(), c.clone());
    model.forward_traced(&xt, &c, |name, t| {
        reference.insert(name.to_string(), t.clone());
    })?;
    let flat = |t: &Tensor| -> Result<Vec<f32>> { Ok(t.flatten_all()?.to_vec1::<f32>()?) };

    let (ctx, kernels, plan, _) = engine.parts(shape);
    ctx.queue.write_buffer(&plan.x, 0, bytemuck::cast_slice(x));
    let mut diffs = Vec::new();
    let run_one = |dispatches: &[&super::plan::Dispatch], output: &wgpu::Buffer| {
        let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("debug"),
            size: output.size(),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
            plan.record(&mut pass, kernels, dispatches, 0);
        }
        encoder.copy_buffer_to_buffer(output, 0, &staging, 0, output.size());
        (submit(ctx, encoder.finish()), staging)
    };

    let prelude: Vec<_> = plan.prelude.iter().collect();
    let (done, staging) = run_one(&prelude, &plan.cond);
    wait(ctx, done).await?;
    // Row (step 0, variant 1) is the request's prompt.
    let cond = read_f32(ctx, &staging, cfg.time_dim, cfg.time_dim).await?;
    let want = flat(&reference["condition"])?;
    diffs.push(diff("condition", &cond, &want[..cfg.time_dim]));

    for dispatch in plan.step.iter().filter(|d| d.name != "sampler_step") {
        let (done, staging) = run_one(&[dispatch], &dispatch.output);
        wait(ctx, done).await?;
        if dispatch.name == "heads" {
            let plane = images * cfg.image_len();
            // The x0 plane exists only where the checkpoint has that head (candle traces it then).
            for (i, head) in ["eps", "x0"].iter().enumerate().filter(|(_, h)| reference.contains_key(**h)) {
                let got = read_f32(ctx, &staging, i * plane, plane).await?;
                diffs.push(diff(head, &got, &flat(&reference[*head])?));
            }
        } else if let Some(want) = reference.get(&dispatch.name) {
            let want = flat(want)?;
            let got = read_f32(ctx, &staging, 0, want.len()).await?;
            diffs.push(diff(&dispatch.name, &got, &want));
        }
    }
    Ok(diffs)
}
