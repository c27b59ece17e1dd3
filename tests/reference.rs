//! The candle reference against the PyTorch twin (train/model.py) through the fixtures that
//! train/fixtures.py wrote: same weights, same inputs, outputs within 1e-4 relative error.

mod common;

use candle_core::Device;
use common::*;
use favicon_diffusor::sampler::{apply_step, step_batch, Head, Step};
use favicon_diffusor::schedule::Schedule;
use favicon_diffusor::{noise, Checkpoint};

/// Relative to the largest magnitude of the reference output.
const REL_TOL: f32 = 1e-4;

fn check_case(case: &str, ck: &Checkpoint) {
    let (io, meta) = load_io(case);
    let model = ck.model().unwrap();
    let prompts: Vec<String> = serde_json::from_str(&meta["prompts"]).unwrap();
    let ids: Vec<Vec<u32>> = prompts.iter().map(|p| ck.encode_prompt(p).unwrap()).collect();
    let t = flat(&io["t"]);
    let c = model.condition(&t, &ids).unwrap();
    let pred = model.forward(&io["x"], &c).unwrap();
    let x0 = pred.x0.as_ref().expect("the fixtures have the x0 head");
    for (name, got) in [("eps", &pred.eps), ("x0", x0)] {
        let err = max_rel_err(&flat(got), &flat(&io[name]));
        assert!(err <= REL_TOL, "{case}: {name} differs from PyTorch by {err:e} (relative)");
    }
    // One DDPM step with the fixture's z, each batch row at its own t (the twin's ddpm_step
    // picks the same head: x0 at t = T−1).
    let cfg = &ck.config;
    let sched = Schedule::cosine(cfg.timesteps, cfg.schedule_offset);
    let steps: Vec<Step> = t.iter().map(|&ti| Step::ddpm(&sched, ti as usize, cfg.x0_head)).collect();
    let next = flat(&step_batch(&steps, &io["x"], &pred.eps, Some(x0), &io["z"]).unwrap());
    let want = flat(&io["x_next"]);
    let n = cfg.image_len();
    for (row, ti) in t.iter().enumerate() {
        let r = row * n..(row + 1) * n;
        let err = max_rel_err(&next[r.clone()], &want[r]);
        assert!(err <= REL_TOL, "{case}: DDPM step at t={ti} differs by {err:e}");
    }
}

#[test]
fn tiny_unconditional_checkpoint_written_by_pytorch_matches() {
    let ck = Checkpoint::open(fixtures().join("tiny_uncond")).unwrap();
    assert!(!ck.is_conditional());
    check_case("tiny_uncond", &ck);
}

#[test]
fn tiny_prompt_conditioned_checkpoint_written_by_pytorch_matches() {
    let ck = Checkpoint::open(fixtures().join("tiny_cond")).unwrap();
    assert!(ck.is_conditional());
    check_case("tiny_cond", &ck);
}

#[test]
fn full_config_unconditional_matches_pytorch() {
    let cfg = config("full_uncond");
    assert_eq!(cfg, favicon_diffusor::Config::default());
    check_case("full_uncond", &regenerated(&cfg, 13));
}

#[test]
fn full_config_with_prompt_matches_pytorch() {
    check_case("full_cond", &regenerated(&config("full_cond"), 14));
}

#[test]
fn qk_norm_checkpoint_written_by_pytorch_matches() {
    let ck = Checkpoint::open(fixtures().join("tiny_qk_norm")).unwrap();
    assert!(ck.config.qk_norm);
    check_case("tiny_qk_norm", &ck);
}

#[test]
fn full_config_with_qk_norm_matches_pytorch() {
    let cfg = config("full_qk_norm");
    assert!(cfg.qk_norm);
    check_case("full_qk_norm", &regenerated(&cfg, 16));
}

#[test]
fn rgba_checkpoint_written_by_pytorch_matches() {
    let ck = Checkpoint::open(fixtures().join("tiny_rgba")).unwrap();
    assert_eq!(ck.config.channels, 4);
    check_case("tiny_rgba", &ck);
}

#[test]
fn full_config_with_four_channels_matches_pytorch() {
    let cfg = config("full_rgba");
    assert_eq!((cfg.channels, cfg.patch_dim()), (4, 256));
    check_case("full_rgba", &regenerated(&cfg, 18));
}

#[test]
fn noise_matches_the_numpy_twin() {
    let path = fixtures().join("noise_schedule.safetensors");
    let io = candle_core::safetensors::load(path, &Device::Cpu).unwrap();
    let mut ours = vec![0f32; 4099];
    noise::fill_normal(12345, 7, &mut ours);
    let theirs = flat(&io["normals_seed12345_tag7"]);
    let worst = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    // Same bits in, f32 log/cos from two libms out: a few ulps apart at most.
    assert!(worst < 1e-5, "numpy and Rust normals differ by {worst}");
    let mut tail = vec![0f32; 64];
    noise::fill_normal((1 << 40) + 3, noise::INITIAL_NOISE_TAG, &mut tail);
    let worst = tail
        .iter()
        .zip(flat(&io["normals_seed2pow40plus3_tag4294967295"]))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(worst < 1e-5);
}

#[test]
fn schedule_matches_the_pytorch_twin() {
    let io = candle_core::safetensors::load(fixtures().join("noise_schedule.safetensors"), &Device::Cpu).unwrap();
    let sched = Schedule::cosine(32, 1e-4);
    for (ours, name) in [(&sched.betas, "betas"), (&sched.alpha_bars, "alpha_bars")] {
        let theirs = flat(&io[name]);
        for (a, b) in ours.iter().zip(&theirs) {
            assert!((*a as f32 - b).abs() <= 1e-6 * b.abs().max(1e-3), "{name}: {a} vs {b}");
        }
    }
}

#[test]
fn applying_a_step_uses_the_steps_own_noise_stream() {
    let step = Step { t: 5, a: 1.0, b: 0.0, c: 1.0, head: Head::Eps, alpha_bar: 0.5 };
    let mut x = vec![0f32; 10];
    apply_step(&step, 3, &mut x, &[0.0; 10], None).unwrap();
    let mut z = vec![0f32; 10];
    noise::fill_normal(3, 5, &mut z);
    assert_eq!(x, z);
}
