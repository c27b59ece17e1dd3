//! A checkpoint in the seed's browser format (WTS1, no x0 head), converted, samples with the
//! seed's ε update on every path. The reference is train/seed_fixtures.py: the PyTorch twin
//! runs the seed's ε-only DDPM loop on the same WTS1 weights in float64 with the crate's
//! Philox noise. The weights are f16 values, so the GPU (which stores f16) holds them exactly
//! and every path is held to the reference tests' tolerance, 1e-4 of the largest magnitude.

mod common;

use candle_core::Tensor;
use common::*;
use favicon_diffusor::convert::{self, Hints};
use favicon_diffusor::pipeline::{self, Engine, Preview, Request};
use favicon_diffusor::Checkpoint;

/// Relative to the largest magnitude of the reference, as tests/reference.rs.
const REL_TOL: f32 = 1e-4;

struct Reference {
    checkpoint: Checkpoint,
    io: std::collections::HashMap<String, Tensor>,
    seed: u64,
}

/// The fixture's WTS1 file through the converter, with the hints the fixture script used.
fn reference() -> Reference {
    let (io, meta) = load_io("seed_eps");
    let hints: serde_json::Value = serde_json::from_str(&meta["hints"]).unwrap();
    let size = |key: &str| hints[key].as_u64().map(|v| v as usize);
    let hints = Hints {
        heads: size("heads"),
        image_size: size("image_size"),
        timesteps: size("timesteps"),
        schedule_offset: hints["schedule_offset"].as_f64(),
        ..Hints::default()
    };
    let imported = convert::import(&fixtures().join("seed_eps/model.wts1"), &hints).unwrap();
    assert!(!imported.checkpoint.config.x0_head);
    Reference { checkpoint: imported.checkpoint, io, seed: meta["seed"].parse().unwrap() }
}

impl Reference {
    /// The seed's loop as the pipeline runs it: DDPM over every timestep, unconditional.
    fn job(&self, preview: Preview) -> pipeline::Job {
        let cfg = &self.checkpoint.config;
        let request = Request { seed: self.seed, steps: cfg.timesteps, preview, ..Request::default() };
        pipeline::job(&self.checkpoint, &request).unwrap()
    }

    /// Runs the job on `engine` and checks the result, and each step's preview, against the twin:
    /// x0 previews against the x0 it derived from ε, x_t previews against its x after the step.
    fn check(&self, path: &str, engine: &mut dyn Engine) {
        let steps = self.checkpoint.config.timesteps;
        let want_final = flat(&self.io["x_final"]);
        let x0_previews = flat(&self.io["x0_previews"]);
        let xs = flat(&self.io["xs"]);
        let len = want_final.len();
        for preview in [Preview::X0, Preview::Xt] {
            let mut frames = Vec::new();
            let got = engine.run(&self.job(preview), &mut |e| frames.push(e.preview.unwrap().to_vec())).unwrap();
            let err = max_rel_err(&got, &want_final);
            eprintln!("{path} ({preview:?} previews): final x within {err:.2e} of the twin's");
            assert!(err <= REL_TOL, "{path}: the final image differs from the seed's loop by {err:e}");
            assert_eq!(frames.len(), steps);
            for (i, frame) in frames.iter().enumerate() {
                let want = match preview {
                    Preview::X0 => &x0_previews[i * len..(i + 1) * len],
                    _ if i + 1 < steps => &xs[(i + 1) * len..(i + 2) * len],
                    _ => want_final.as_slice(),
                };
                let err = max_rel_err(frame, want);
                assert!(err <= REL_TOL, "{path}: {preview:?} preview of step {i} differs by {err:e}");
            }
        }
    }
}

#[test]
fn converted_wts1_samples_with_the_seed_update_on_the_cpu() {
    let reference = reference();
    let cfg = &reference.checkpoint.config;
    assert_eq!((cfg.schedule_offset, cfg.timesteps, cfg.image_size), (3e-5, 8, 16), "the hints reach the config");
    let mut candle = favicon_diffusor::cpu::CandleEngine::new(reference.checkpoint.model().unwrap());
    reference.check("candle", &mut candle);
    let mut cpu = favicon_diffusor::cpu::CpuEngine::new(&reference.checkpoint).unwrap();
    reference.check("cpu", &mut cpu);
}

#[test]
fn the_seed_loop_reproduced_step_by_step_through_the_public_api() {
    // What someone reproducing a reference loop writes: the model forward, then one step per
    // timestep with noise they supply (here the Philox stream the twin drew from).
    use favicon_diffusor::sampler::{step_batch, Step};
    use favicon_diffusor::schedule::Schedule;
    let reference = reference();
    let cfg = &reference.checkpoint.config;
    let model = reference.checkpoint.model().unwrap();
    let schedule = Schedule::cosine(cfg.timesteps, cfg.schedule_offset);
    let mut x = reference.io["xs"].get(0).unwrap();
    for t in (0..cfg.timesteps).rev() {
        let pred = model.forward(&x, &model.condition(&[t as f32], &[]).unwrap()).unwrap();
        let step = Step::ddpm(&schedule, t, cfg.x0_head);
        let mut z = vec![0f32; x.elem_count()];
        favicon_diffusor::noise::fill_normal(reference.seed, step.noise_tag(), &mut z);
        let z = Tensor::from_vec(z, x.dims(), x.device()).unwrap();
        x = step_batch(&[step], &x, &pred.eps, pred.x0.as_ref(), &z).unwrap();
    }
    let err = max_rel_err(&flat(&x), &flat(&reference.io["x_final"]));
    assert!(err <= REL_TOL, "the hand-written loop differs from the twin's by {err:e}");
}

#[cfg(feature = "gpu")]
mod gpu {
    use super::*;
    use common::gpu::{check_ops, engine, kernel_families};

    #[test]
    fn converted_wts1_samples_with_the_seed_update_on_the_gpu() {
        let reference = reference();
        let Some(mut gpu) = engine(&reference.checkpoint) else { return };
        reference.check("gpu", &mut gpu);
    }

    #[test]
    fn every_kernel_matches_candle_without_the_x0_head() {
        let ck = reference().checkpoint;
        let mut x = vec![0f32; ck.config.image_len()];
        favicon_diffusor::noise::fill_normal(3, 9, &mut x);
        for (path, mut gpu) in kernel_families(&ck) {
            check_ops(path, &mut gpu, &ck, &x, 7, "", 2e-5);
        }
    }
}
