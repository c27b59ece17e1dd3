//! The WGSL path against the candle reference: every kernel, the whole forward pass and whole
//! samples. Weights are rounded to f16 on both sides (the GPU stores f16), so differences come
//! from f32 summation order and the GPU's transcendental functions only.
//!
//! Tolerance, per op: max |gpu − cpu| ≤ 2e-5 · max |cpu|. With identical weights, a K-term f32
//! dot product summed in another order differs by about √K·2⁻²⁴ ≈ 3e-6 of its terms' scale at
//! K = 2048; each op also inherits its inputs' difference. Measured on lavapipe and the H100:
//! at most 1.3e-6 per op. Any indexing or formula error shows up as O(1e-2) or more.

mod common;

use common::gpu::{check_ops, compare_samples_on, engine, kernel_families};
use common::*;
use favicon_diffusor::gpu::debug::compare_forward;
use favicon_diffusor::gpu::{GpuContext, GpuOptions};
use favicon_diffusor::pipeline::{Engine, Job, Preview};
use favicon_diffusor::sampler::{initial_x, Head, Plan, Start, Step};
use favicon_diffusor::schedule::Schedule;
use favicon_diffusor::{noise, Checkpoint, Config, SamplerKind};

const OP_TOL: f32 = 2e-5;
/// Same seed, same noise: the finished images agree to a fraction of one 8-bit level.
const SAMPLE_LEVELS: f32 = 0.25;
const SAMPLE_MAX_ABS: f32 = 2e-2;

fn random_images(count: usize, cfg: &Config, seed: u64) -> Vec<f32> {
    let mut x = vec![0f32; count * cfg.image_len()];
    noise::fill_normal(seed, 99, &mut x);
    x
}

/// Runs the debug diff on every kernel family (see `kernel_families`).
fn check_every_op(ck: &Checkpoint, images: usize, t: u32, prompt: &str) {
    let x = random_images(images, &ck.config, 5);
    for (path, mut gpu) in kernel_families(ck) {
        check_ops(path, &mut gpu, ck, &x, t, prompt, OP_TOL);
    }
}

#[test]
fn every_kernel_matches_candle_on_awkward_shapes() {
    let ck = f16_rounded(&random_checkpoint(&awkward_config(), 21));
    check_every_op(&ck, 3, 5, "red heart");
}

#[test]
fn every_kernel_matches_candle_with_power_of_two_heads() {
    let cfg = Config {
        image_size: 16,
        patch_size: 4,
        dim: 64,
        depth: 1,
        heads: 4,
        head_dim: 16,
        time_dim: 32,
        qk_norm: true,
        ..Config::default()
    };
    let ck = f16_rounded(&random_checkpoint(&cfg, 22));
    check_every_op(&ck, 2, 31, "");
}

#[test]
fn every_kernel_matches_candle_at_the_model_shapes() {
    // QK-norm on, as in the shipped model.
    let cfg = Config { vocab: Some(vec!["hippo".into(), "cat".into()]), qk_norm: true, ..Config::default() };
    let ck = f16_rounded(&random_checkpoint(&cfg, 23));
    check_every_op(&ck, 1, 17, "hippo cat");
}

/// Four channels (premultiplied RGBA): patchify reads, and unpatchify writes, a fourth plane.
#[test]
fn every_kernel_matches_candle_with_four_channels() {
    let awkward = f16_rounded(&random_checkpoint(&Config { channels: 4, ..awkward_config() }, 33));
    check_every_op(&awkward, 2, 6, "sun");
    let cfg = Config { channels: 4, vocab: Some(vec!["hippo".into()]), qk_norm: true, ..Config::default() };
    let model = f16_rounded(&random_checkpoint(&cfg, 34));
    check_every_op(&model, 1, 12, "hippo");
}

#[test]
fn f32_weights_are_judged_at_f16_tolerance() {
    // The GPU rounds f32 weights to f16 (relative step 2⁻¹¹ ≈ 4.9e-4); through a whole forward
    // pass that compounds to well under 1e-2 of the output's scale.
    let ck = random_checkpoint(&awkward_config(), 24);
    let Some(mut gpu) = engine(&ck) else { return };
    let model = ck.model().unwrap();
    let x = random_images(2, &ck.config, 6);
    let diffs = pollster::block_on(compare_forward(&mut gpu, &model, &x, 3, &[])).unwrap();
    for d in diffs.iter().filter(|d| d.op == "eps" || d.op == "x0") {
        assert!(d.relative() <= 1e-2, "{} differs by {:.3e} relative at f16 tolerance", d.op, d.relative());
        assert!(d.relative() > 0.0, "f16 rounding should be visible");
    }
}

fn job(ck: &Checkpoint, kind: SamplerKind, steps: usize, guidance: Option<f32>, batch: usize, prompt: &str) -> Job {
    let sched = Schedule::cosine(ck.config.timesteps, ck.config.schedule_offset);
    Job {
        plan: Plan::new(&sched, kind, steps, None, ck.config.x0_head).unwrap(),
        seed: 77,
        batch,
        prompt: ck.encode_prompt(prompt).unwrap(),
        guidance,
        init: None,
        preview: Preview::None,
        stop: Default::default(),
    }
}

fn compare_samples(ck: &Checkpoint, jobs: &[(&str, Job)]) {
    let Some(mut gpu) = engine(ck) else { return };
    compare_samples_on(&mut gpu, ck, jobs, SAMPLE_LEVELS, SAMPLE_MAX_ABS);
}

#[test]
fn whole_samples_match_candle_for_the_same_seed() {
    let ck = f16_rounded(&random_checkpoint(&awkward_config(), 25));
    let jobs = [
        ("ddpm", job(&ck, SamplerKind::Ddpm, 8, None, 2, "")),
        ("ddpm guided", job(&ck, SamplerKind::Ddpm, 8, Some(3.0), 2, "red heart")),
        ("ddim", job(&ck, SamplerKind::Ddim, 4, None, 3, "sun")),
        ("ddim guided", job(&ck, SamplerKind::Ddim, 4, Some(2.0), 1, "hippo")),
    ];
    for (_, mut gpu) in kernel_families(&ck) {
        compare_samples_on(&mut gpu, &ck, &jobs, SAMPLE_LEVELS, SAMPLE_MAX_ABS);
    }
}

#[test]
fn full_config_32_step_samples_match_candle() {
    let cfg = Config { vocab: Some(vec!["hippo".into()]), ..Config::default() };
    let ck = f16_rounded(&random_checkpoint(&cfg, 26));
    compare_samples(
        &ck,
        &[
            ("ddpm 32", job(&ck, SamplerKind::Ddpm, 32, None, 1, "hippo")),
            ("ddim 32 guided", job(&ck, SamplerKind::Ddim, 32, Some(3.0), 1, "hippo")),
        ],
    );
}

#[test]
fn four_channel_samples_match_candle_for_the_same_seed() {
    let cfg = Config { channels: 4, vocab: Some(vec!["hippo".into()]), qk_norm: true, ..Config::default() };
    let ck = f16_rounded(&random_checkpoint(&cfg, 35));
    let mut img2img = job(&ck, SamplerKind::Ddim, 4, Some(3.0), 1, "hippo");
    let sched = Schedule::cosine(ck.config.timesteps, ck.config.schedule_offset);
    img2img.plan = Plan::new(&sched, SamplerKind::Ddim, 4, Some(0.6), true).unwrap();
    img2img.init = Some((0..ck.config.image_len()).map(|i| ((i % 13) as f32 / 6.0) - 1.0).collect());
    compare_samples(
        &ck,
        &[("rgba ddim 4 guided", job(&ck, SamplerKind::Ddim, 4, Some(3.0), 1, "hippo")), ("rgba img2img", img2img)],
    );
}

#[test]
fn gpu_noise_is_the_cpu_noise() {
    let ck = random_checkpoint(&awkward_config(), 27);
    let Some(mut gpu) = engine(&ck) else { return };
    let mut base = job(&ck, SamplerKind::Ddpm, 8, None, 3, "");
    // a = 1, b = c = 0 leaves the initial noise; a = b = 0, c = 1 leaves the step's own noise.
    base.plan = Plan {
        start: Start { t: 7, signal: 0.0, noise: 1.0 },
        steps: vec![Step { t: 0, a: 1.0, b: 0.0, c: 0.0, head: Head::Eps, alpha_bar: 1.0 }],
    };
    let initial = gpu.run(&base, &mut |_| {}).unwrap();
    let want = initial_x(&base.plan.start, base.seed, None, initial.len());
    let worst = initial.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(worst < 1e-4, "initial noise differs by {worst}");
    base.plan.steps = vec![Step { t: 5, a: 0.0, b: 0.0, c: 1.0, head: Head::Eps, alpha_bar: 1.0 }];
    let stepped = gpu.run(&base, &mut |_| {}).unwrap();
    let mut z = vec![0f32; stepped.len()];
    noise::fill_normal(base.seed, 5, &mut z);
    let worst = stepped.iter().zip(&z).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(worst < 1e-4, "step noise differs by {worst}");
}

#[test]
fn a_hundred_samples_create_no_new_gpu_resources() {
    let ck = random_checkpoint(&awkward_config(), 28);
    let Some(mut gpu) = engine(&ck) else { return };
    let job = job(&ck, SamplerKind::Ddim, 2, Some(2.0), 2, "sun");
    gpu.run(&job, &mut |_| {}).unwrap();
    let after_first = gpu.counts();
    assert_eq!(after_first.plans, 1);
    assert!(after_first.buffers > 0 && after_first.bind_groups > 0 && after_first.pipelines > 0);
    for _ in 0..100 {
        gpu.run(&job, &mut |_| {}).unwrap();
    }
    assert_eq!(gpu.counts(), after_first, "sampling must reuse the plan's buffers, bind groups and pipelines");
}

#[test]
fn a_batch_beyond_the_device_limits_is_split_and_still_matches() {
    let ck = f16_rounded(&random_checkpoint(&awkward_config(), 29));
    let cfg = &ck.config;
    // Cap bindings so only three model images fit: the largest per-image buffer is the FF hidden one.
    let per_image = (cfg.tokens() * cfg.mlp_dim() * 4) as u64;
    let options = GpuOptions { max_binding: Some(3 * per_image + 4), ..Default::default() };
    let Ok(ctx) = pollster::block_on(GpuContext::with_options(options)) else {
        assert!(engine(&ck).is_none());
        return;
    };
    let mut gpu = favicon_diffusor::gpu::GpuEngine::with_context(ctx, &ck).unwrap();
    assert_eq!(gpu.max_images(false), 3);
    let job = job(&ck, SamplerKind::Ddpm, 8, None, 5, "");
    let mut events = 0;
    let got = gpu.run(&job, &mut |_| events += 1).unwrap();
    assert_eq!(gpu.counts().plans, 2, "runs of 3 and of 2 images");
    assert_eq!(events, 2 * 8, "both runs report every step");
    let want = favicon_diffusor::cpu::CandleEngine::new(ck.model().unwrap()).run(&job, &mut |_| {}).unwrap();
    assert!(mean_pixel_diff(&got, &want) <= 0.25);
}

#[test]
fn previews_arrive_every_step_and_end_at_the_result() {
    let ck = f16_rounded(&random_checkpoint(&awkward_config(), 30));
    let Some(mut gpu) = engine(&ck) else { return };
    let mut job = job(&ck, SamplerKind::Ddpm, 8, None, 1, "");
    job.preview = Preview::Xt;
    let mut frames = Vec::new();
    let result = gpu.run(&job, &mut |e| frames.push(e.preview.unwrap().to_vec())).unwrap();
    assert_eq!(frames.len(), 8);
    assert_eq!(frames.last().unwrap(), &result, "the last x_t preview is the result");
    job.preview = Preview::X0;
    let mut cpu_frames = Vec::new();
    favicon_diffusor::cpu::CandleEngine::new(ck.model().unwrap())
        .run(&job, &mut |e| cpu_frames.push(e.preview.unwrap().to_vec()))
        .unwrap();
    let mut gpu_frames = Vec::new();
    gpu.run(&job, &mut |e| gpu_frames.push(e.preview.unwrap().to_vec())).unwrap();
    for (g, c) in gpu_frames.iter().zip(&cpu_frames) {
        assert!(mean_pixel_diff(g, c) <= 0.25, "x0 previews agree");
    }
}

#[test]
fn the_pipeline_picks_the_gpu_unless_the_adapter_is_a_software_rasteriser() {
    let ck = random_checkpoint(&awkward_config(), 31);
    let Some(gpu) = engine(&ck) else { return };
    let software = gpu.context().is_software();
    let pipe = favicon_diffusor::Pipeline::new(ck.clone(), favicon_diffusor::Backend::Auto).unwrap();
    if software {
        assert!(pipe.backend_name().starts_with("cpu"), "{}", pipe.backend_name());
        assert!(pipe.note().unwrap().contains("software"), "the fallback says why");
    } else {
        assert!(pipe.backend_name().starts_with("gpu"), "{}", pipe.backend_name());
        assert!(pipe.note().is_none());
    }
    let forced = favicon_diffusor::Pipeline::new(ck, favicon_diffusor::Backend::Gpu).unwrap();
    assert!(forced.backend_name().starts_with("gpu"), "--backend gpu always takes the adapter");
}

#[test]
fn img2img_on_the_gpu_matches_the_cpu() {
    let ck = f16_rounded(&random_checkpoint(&awkward_config(), 32));
    let len = ck.config.image_len();
    let init: Vec<f32> = (0..2 * len).map(|i| ((i % 11) as f32 / 5.0) - 1.0).collect();
    let sched = Schedule::cosine(ck.config.timesteps, ck.config.schedule_offset);
    let mut job = job(&ck, SamplerKind::Ddpm, 8, Some(2.0), 2, "heart");
    job.plan = Plan::new(&sched, SamplerKind::Ddpm, 8, Some(0.5), true).unwrap();
    job.init = Some(init);
    compare_samples(&ck, &[("img2img", job)]);
}
