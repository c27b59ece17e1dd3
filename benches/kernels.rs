//! Each WGSL kernel at the default config's batch-1 shapes against the candle op it mirrors
//! (issue 7). One group per op, `kernel_<op>`, holding `wgsl` and `candle` (the sampler step's
//! twin is the shared Rust update, `cpu`).
//!
//! `nice cargo bench --bench kernels`; reports land in target/criterion/report/index.html.
//!
//! The `wgsl` side times the op's dispatch in a built plan, recorded back to back in one compute
//! pass (`gpu::profile::repeat_dispatch`), so a sample of n iterations is n dispatches and one
//! submission: the time per iteration is the kernel's plus its share of the pass. Buffers hold
//! a real step's activations. On hardware adapters AdaLN is fused into the prologue of the
//! matmul after it (`qkv`, `hidden`, `heads`), so those candle twins include `AdaLn::forward`
//! too, and the standalone `adaln.wgsl` is timed on a second engine forced onto the software
//! kernel family, where it runs on its own.

mod common;

use std::time::Instant;

use candle_core::{Device, Module, Tensor};
use candle_nn::Linear;
use criterion::{BatchSize, Bencher, Criterion, SamplingMode};
use favicon_diffusor::gpu::profile::{dispatch_names, repeat_dispatch};
use favicon_diffusor::gpu::{GpuEngine, GpuOptions};
use favicon_diffusor::model::{position_embedding, Dit};
use favicon_diffusor::patch::{patchify, unpatchify};
use favicon_diffusor::pipeline::{job, Engine, Job, Request};
use favicon_diffusor::sampler::apply_step;
use favicon_diffusor::Checkpoint;

/// Dispatches per submission: bounds the recorded pass when criterion asks for many iterations.
const CHUNK: u64 = 256;

/// A GPU engine, its batch-1 job and the plan's dispatch names.
struct Gpu {
    engine: GpuEngine,
    job: Job,
    names: Vec<String>,
}

impl Gpu {
    fn new(engine: GpuEngine, ck: &Checkpoint) -> Gpu {
        let mut engine = engine;
        let mut job = job(ck, &Request { batch: 1, seed: 3, ..Default::default() }).unwrap();
        job.plan.steps.truncate(1);
        engine.run(&job, &mut |_| {}).unwrap();
        let names = dispatch_names(&mut engine, &job);
        Gpu { engine, job, names }
    }

    fn has(&self, dispatch: &str) -> bool {
        self.names.iter().any(|n| n == dispatch)
    }
}

fn normal(shape: &[usize], stream: u32) -> Tensor {
    let mut values = vec![0f32; shape.iter().product()];
    favicon_diffusor::noise::fill_normal(7, stream, &mut values);
    Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
}

/// Times `dispatch` on the GPU (if any) and `twin` on the CPU, in group `kernel_<op>`.
fn bench_op(c: &mut Criterion, op: &str, gpu: Option<&mut Gpu>, dispatch: &str, twin: &mut dyn FnMut(&mut Bencher)) {
    let mut group = c.benchmark_group(format!("kernel_{op}"));
    group.sampling_mode(SamplingMode::Flat);
    if let Some(gpu) = gpu {
        group.bench_function("wgsl", |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                let mut left = iters;
                while left > 0 {
                    let n = left.min(CHUNK);
                    pollster::block_on(repeat_dispatch(&mut gpu.engine, &gpu.job, dispatch, n as usize)).unwrap();
                    left -= n;
                }
                start.elapsed()
            })
        });
    }
    let twin_name = if op == "sampler_step" { "cpu" } else { "candle" };
    group.bench_function(twin_name, |b| twin(b));
    group.finish();
}

fn main() {
    let mut c = common::criterion();
    let ck = common::checkpoint();
    let cfg = ck.config.clone();
    let model: Dit = ck.model().unwrap();

    let mut gpu = common::gpu_engine(&ck, GpuOptions::default(), "kernel").map(|e| Gpu::new(e, &ck));
    // The standalone AdaLN kernel runs only in the software family's plans.
    let fused = gpu.as_ref().is_some_and(|g| !g.has("blocks.0.norm1"));
    let mut software = match fused {
        true => common::gpu_engine(&ck, GpuOptions { software_kernels: Some(true), ..Default::default() }, "AdaLN")
            .map(|e| Gpu::new(e, &ck)),
        false => None,
    };
    if let Some(g) = &mut gpu {
        let adapter = g.engine.context().describe();
        let family =
            if fused { "tiled kernels, AdaLN fused into the next matmul" } else { "direct (software) kernels" };
        println!("GPU: {adapter}; {family}; {} dispatches per step", g.engine.dispatches_per_step(1, false));
    }

    let linear = |name: &str| {
        let weight = ck.tensors[&format!("{name}.weight")].clone();
        Linear::new(weight, ck.tensors.get(&format!("{name}.bias")).cloned())
    };
    let (tokens, dim, inner) = (cfg.tokens(), cfg.dim, cfg.inner_dim());
    let x = normal(&[1, cfg.channels, cfg.image_size, cfg.image_size], 0);
    let h = normal(&[1, tokens, dim], 1);
    let (q, k, v) = (normal(&[1, tokens, inner], 2), normal(&[1, tokens, inner], 3), normal(&[1, tokens, inner], 4));
    let mixed = normal(&[1, tokens, inner], 5);
    let hidden = normal(&[1, tokens, cfg.mlp_dim()], 6);
    let t_max = (cfg.timesteps - 1) as f32;
    let cond = model.condition(&[t_max], &[Vec::new()]).unwrap();
    let block = &model.blocks[0];
    // AdaLN before a matmul, when the GPU kernel it is compared with does it in its prologue.
    let norm = |t: &Tensor| if fused { block.norm1.forward(t, &cond).unwrap() } else { t.clone() };

    // The whole table of conditions, as the condition kernel makes it: every timestep, both prompts.
    let timesteps: Vec<f32> = (0..2 * cfg.timesteps).map(|i| (i % cfg.timesteps) as f32).collect();
    let prompts = vec![Vec::new(); timesteps.len()];
    bench_op(&mut c, "condition", gpu.as_mut(), "condition", &mut |b| {
        b.iter(|| {
            model.condition(&timesteps, &prompts).unwrap();
        })
    });

    let mut projections = Vec::new();
    for i in 0..cfg.depth {
        for n in ["norm1", "norm2"] {
            projections.push(format!("blocks.{i}.{n}"));
        }
    }
    projections.push("final_norm".into());
    let weights: Vec<Tensor> = projections
        .iter()
        .flat_map(|p| ["scale_proj", "shift_proj"].map(|w| ck.tensors[&format!("{p}.{w}.weight")].clone()))
        .collect();
    let modulation = Linear::new(Tensor::cat(&weights, 0).unwrap(), None);
    let table = model.condition(&timesteps, &prompts).unwrap();
    bench_op(&mut c, "modulation", gpu.as_mut(), "modulation", &mut |b| {
        b.iter(|| {
            modulation.forward(&table).unwrap();
        })
    });

    let (patch_embed, pos) =
        (linear("patch_embed"), Tensor::from_vec(position_embedding(&cfg), (tokens, dim), &Device::Cpu).unwrap());
    bench_op(&mut c, "embed", gpu.as_mut(), "embed", &mut |b| {
        b.iter(|| {
            patch_embed.forward(&patchify(&x, cfg.patch_size).unwrap()).unwrap().broadcast_add(&pos).unwrap();
        })
    });

    let adaln_gpu = if fused { software.as_mut() } else { gpu.as_mut() };
    bench_op(&mut c, "adaln", adaln_gpu, "blocks.0.norm1", &mut |b| {
        b.iter(|| {
            block.norm1.forward(&h, &cond).unwrap();
        })
    });

    let (to_q, to_k, to_v) = (linear("blocks.0.attn.to_q"), linear("blocks.0.attn.to_k"), linear("blocks.0.attn.to_v"));
    bench_op(&mut c, "qkv", gpu.as_mut(), "blocks.0.qkv", &mut |b| {
        b.iter(|| {
            let normed = norm(&h);
            for projection in [&to_q, &to_k, &to_v] {
                projection.forward(&normed).unwrap();
            }
        })
    });

    bench_op(&mut c, "attention_core", gpu.as_mut(), "blocks.0.core", &mut |b| {
        b.iter(|| {
            block.attn.core(&q, &k, &v).unwrap();
        })
    });

    let to_out = linear("blocks.0.attn.to_out");
    bench_op(&mut c, "attn_out", gpu.as_mut(), "blocks.0.attn", &mut |b| {
        b.iter(|| {
            (&h + to_out.forward(&mixed).unwrap()).unwrap();
        })
    });

    let up = linear("blocks.0.ff.net.0");
    bench_op(&mut c, "hidden", gpu.as_mut(), "blocks.0.hidden", &mut |b| {
        b.iter(|| {
            up.forward(&norm(&h)).unwrap().silu().unwrap();
        })
    });

    let down = linear("blocks.0.ff.net.2");
    bench_op(&mut c, "ff", gpu.as_mut(), "blocks.0.ff", &mut |b| {
        b.iter(|| {
            (&h + down.forward(&hidden).unwrap()).unwrap();
        })
    });

    let (to_pixels, proj_fin) = (linear("to_pixels"), linear("proj_fin"));
    bench_op(&mut c, "heads", gpu.as_mut(), "heads", &mut |b| {
        b.iter(|| {
            let normed = norm(&h);
            for head in [&to_pixels, &proj_fin] {
                unpatchify(&head.forward(&normed).unwrap(), cfg.patch_size, cfg.channels).unwrap();
            }
        })
    });

    // Last: repeating the step on the GPU compounds x, which the dispatches above read.
    let step = job(&ck, &Request::default()).unwrap().plan.steps[0];
    let eps: Vec<f32> = normal(&[cfg.image_len()], 8).to_vec1().unwrap();
    let start: Vec<f32> = normal(&[cfg.image_len()], 9).to_vec1().unwrap();
    bench_op(&mut c, "sampler_step", gpu.as_mut(), "sampler_step", &mut |b| {
        b.iter_batched_ref(|| start.clone(), |x| apply_step(&step, 3, x, &eps, Some(&eps)), BatchSize::SmallInput)
    });
    c.final_summary();
}
