//! The sampling plan, written once for every backend.
//!
//! DDPM and DDIM (η = 0) both reduce to one affine update per step,
//! `x ← a·x + b·p + c·z`, where p is the guided prediction of one of the model's heads (ε, or x0
//! where that is safer, below) and z is fresh noise from `noise::normal(seed, t, i)`. The CPU
//! path applies it with `apply_step`; `wgsl/sampler_step.wgsl` applies the same coefficients on
//! the GPU.
//!
//! Which head: the seed writes every update through ε. At the first step of the cosine schedule
//! (β clipped to 0.999) that form multiplies the ε head's error by 31.6 for DDPM and by ~80 for
//! DDIM, so an ε error of 0.05 puts 1.6–4 standard deviations of garbage into x. The same update
//! written through x0 (substituting ε = (x_t − √ᾱ·x0)/√(1−ᾱ)) is the identical function for a
//! model whose heads agree, and multiplies the x0 head's error by at most 1. So where the
//! checkpoint has an x0 head (`Config::x0_head`), a step whose ε coefficient exceeds
//! `X0_HEAD_ABOVE` reads it instead; with the default schedule that is only the step from
//! t = T−1. A checkpoint without one (the seed's WTS1 export) takes the seed's ε update at every
//! step, and its x0 previews are the x0 that ε implies ([`x0_from_eps`]).
//!
//! Outside the pipeline, [`Step::ddpm`] and [`Step::ddim`] give one step's coefficients for any
//! timestep, and [`Step::apply`] / [`step_batch`] apply them with the caller's noise, so a loop
//! written elsewhere (PyTorch, a paper's pseudo-code) can be reproduced step by step.

use crate::error::{Error, Result};
use crate::noise;
use crate::schedule::Schedule;

mod step;
pub use step::{apply_step, step_batch, x0_from_eps, Head, Step, X0_HEAD_ABOVE};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SamplerKind {
    #[default]
    Ddpm,
    Ddim,
}

impl std::str::FromStr for SamplerKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "ddpm" => Ok(SamplerKind::Ddpm),
            "ddim" => Ok(SamplerKind::Ddim),
            other => Err(Error::Request(format!("unknown sampler `{other}`, expected `ddpm` or `ddim`"))),
        }
    }
}

/// How the sample starts: pure noise, or an image noised to timestep `t`
/// (`x_t = √ᾱ_t·x_init + √(1−ᾱ_t)·z`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Start {
    pub t: u32,
    pub signal: f32,
    pub noise: f32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub start: Start,
    pub steps: Vec<Step>,
}

/// The timesteps a run visits, from `t_start` down to 0: every one for DDPM,
/// `count` evenly spaced ones for DDIM.
fn timesteps(kind: SamplerKind, t_start: usize, count: usize) -> Vec<usize> {
    match kind {
        SamplerKind::Ddpm => (0..=t_start).rev().collect(),
        SamplerKind::Ddim if count <= 1 => vec![t_start],
        SamplerKind::Ddim => (0..count).map(|i| t_start * (count - 1 - i) / (count - 1)).collect(),
    }
}

impl Plan {
    /// `steps` is the DDIM step count (DDPM always visits every timestep it covers);
    /// `strength` in (0, 1] starts from an image noised to `round(strength·(T−1))` instead of pure
    /// noise; `x0_head` says whether the checkpoint has that head (`Config::x0_head`).
    pub fn new(
        schedule: &Schedule,
        kind: SamplerKind,
        steps: usize,
        strength: Option<f32>,
        x0_head: bool,
    ) -> Result<Self> {
        let t_max = schedule.len();
        if steps == 0 || steps > t_max {
            return Err(Error::Request(format!("steps must be in 1..={t_max}, found {steps}")));
        }
        if kind == SamplerKind::Ddpm && steps != t_max && strength.is_none() {
            return Err(Error::Request(format!(
                "DDPM visits every timestep, so steps must be {t_max} (found {steps}); use `ddim` for fewer steps"
            )));
        }
        let t_start = match strength {
            None => t_max - 1,
            Some(s) if s > 0.0 && s <= 1.0 => ((s as f64) * (t_max - 1) as f64).round() as usize,
            Some(s) => return Err(Error::Request(format!("strength must be in (0, 1], found {s}"))),
        };
        let count = match strength {
            Some(s) => ((steps as f64 * s as f64).round() as usize).clamp(1, t_start + 1),
            None => steps,
        };
        let ts = timesteps(kind, t_start, count);
        let steps = ts
            .iter()
            .enumerate()
            .map(|(i, &t)| match kind {
                SamplerKind::Ddpm => Step::ddpm(schedule, t, x0_head),
                SamplerKind::Ddim => Step::ddim(schedule, t, ts.get(i + 1).copied(), x0_head),
            })
            .collect();
        let ab = schedule.alpha_bars[t_start];
        let start = Start { t: t_start as u32, signal: ab.sqrt() as f32, noise: (1.0 - ab).sqrt() as f32 };
        Ok(Plan { start, steps })
    }

    /// Refuses a plan with a step that reads the x0 head when the checkpoint has none.
    pub fn check_heads(&self, x0_head: bool) -> Result<()> {
        match self.steps.iter().find(|s| s.head == Head::X0) {
            Some(step) if !x0_head => Err(Error::Request(format!(
                "the step at t = {} reads the x0 head, but this checkpoint has none (`x0_head: false`)",
                step.t
            ))),
            _ => Ok(()),
        }
    }
}

/// The initial x: pure noise, or `init` noised per `start`. `init` holds the whole batch.
pub fn initial_x(start: &Start, seed: u64, init: Option<&[f32]>, len: usize) -> Vec<f32> {
    let mut x = vec![0.0; len];
    noise::fill_normal(seed, noise::INITIAL_NOISE_TAG, &mut x);
    if let Some(init) = init {
        for (xi, &v) in x.iter_mut().zip(init) {
            *xi = start.signal * v + start.noise * *xi;
        }
    }
    x
}

/// Classifier-free guidance: ε = ε_u + g·(ε_c − ε_u).
pub fn guide(uncond: f32, cond: f32, guidance: f32) -> f32 {
    uncond + guidance * (cond - uncond)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched() -> Schedule {
        Schedule::cosine(32, 1e-4)
    }

    #[test]
    fn ddpm_step_matches_the_seed_formula_with_and_without_the_x0_head() {
        // x ← (x − β/√(1−ᾱ)·ε)/√(1−β) + √β·z, evaluated directly in f64.
        let s = sched();
        for x0_head in [true, false] {
            let plan = Plan::new(&s, SamplerKind::Ddpm, 32, None, x0_head).unwrap();
            assert_eq!(plan.steps.len(), 32);
            let (x, eps, z) = (0.3f64, -0.7f64, 0.2f64);
            for step in &plan.steps {
                let t = step.t as usize;
                let (beta, ab) = (s.betas[t], s.alpha_bars[t]);
                assert_eq!(step.alpha_bar, ab as f32);
                let noise = if t > 0 { beta.sqrt() * z } else { 0.0 };
                let expected = (x - beta / (1.0 - ab).sqrt() * eps) / (1.0 - beta).sqrt() + noise;
                let got = step.a as f64 * x + step.b as f64 * head_value(step, &s, x, eps) + step.c as f64 * z;
                assert!((got - expected).abs() < 1e-4 * expected.abs().max(1.0), "t={t}: {got} vs {expected}");
            }
            assert_eq!(plan.steps.last().unwrap().c, 0.0);
        }
    }

    #[test]
    fn without_the_x0_head_every_step_reads_eps_even_from_t_max() {
        let s = sched();
        for (kind, steps) in [(SamplerKind::Ddpm, 32), (SamplerKind::Ddim, 8)] {
            let plan = Plan::new(&s, kind, steps, None, false).unwrap();
            assert!(plan.steps.iter().all(|st| st.head == Head::Eps), "{kind:?}");
            assert!(plan.check_heads(false).is_ok());
        }
        // The seed's first step, t = 31 with β = 0.999: ε enters with weight β/(√(1−ᾱ)·√(1−β)).
        let first = Step::ddpm(&s, 31, false);
        let (beta, ab) = (s.betas[31], s.alpha_bars[31]);
        assert_eq!(first.b, (-beta / ((1.0 - ab).sqrt() * (1.0 - beta).sqrt())) as f32);
        assert!(first.b < -31.0);
        // A plan made for a checkpoint with the head is refused by one without it.
        let with_head = Plan::new(&s, SamplerKind::Ddpm, 32, None, true).unwrap();
        assert!(with_head.check_heads(false).unwrap_err().to_string().contains("t = 31"));
        let mut x = vec![0.0; 4];
        assert!(with_head.steps[0].apply(&mut x, &[0.0; 4], None, &[0.0; 4]).is_err());
    }

    /// What a model whose heads agree predicts for the step's head, given its ε at `x`.
    fn head_value(step: &Step, s: &Schedule, x: f64, eps: f64) -> f64 {
        let ab = s.alpha_bars[step.t as usize];
        match step.head {
            Head::Eps => eps,
            Head::X0 => (x - (1.0 - ab).sqrt() * eps) / ab.sqrt(),
        }
    }

    #[test]
    fn only_the_first_step_of_the_cosine_schedule_reads_the_x0_head() {
        let s = sched();
        for (kind, steps) in [(SamplerKind::Ddpm, 32), (SamplerKind::Ddim, 8), (SamplerKind::Ddim, 32)] {
            let plan = Plan::new(&s, kind, steps, None, true).unwrap();
            let heads: Vec<Head> = plan.steps.iter().map(|st| st.head).collect();
            assert_eq!(heads[0], Head::X0, "{kind:?} {steps}");
            assert!(heads[1..].iter().all(|&h| h == Head::Eps), "{kind:?} {steps}: {heads:?}");
            // Neither head's error is multiplied by more than the threshold.
            assert!(plan.steps.iter().all(|st| (st.b as f64).abs() <= X0_HEAD_ABOVE), "{kind:?} {steps}");
        }
        // Img2img from t = 16 never needs it.
        let plan = Plan::new(&s, SamplerKind::Ddpm, 32, Some(0.5), true).unwrap();
        assert!(plan.steps.iter().all(|st| st.head == Head::Eps));
    }

    #[test]
    fn ddim_step_recovers_x0_exactly_when_eps_is_right() {
        // If x_t = √ᾱ x0 + √(1−ᾱ) ε and the model predicts that ε, DDIM lands on x_prev built from the same x0 and ε.
        let s = sched();
        let plan = Plan::new(&s, SamplerKind::Ddim, 8, None, true).unwrap();
        let ts: Vec<u32> = plan.steps.iter().map(|st| st.t).collect();
        assert_eq!(ts, vec![31, 26, 22, 17, 13, 8, 4, 0]);
        let (x0, eps) = (0.4f64, -1.3f64);
        for (i, step) in plan.steps.iter().enumerate() {
            let ab = s.alpha_bars[step.t as usize];
            let prev = plan.steps.get(i + 1).map_or(1.0, |p| s.alpha_bars[p.t as usize]);
            let xt = ab.sqrt() * x0 + (1.0 - ab).sqrt() * eps;
            let expected = prev.sqrt() * x0 + (1.0 - prev).sqrt() * eps;
            let got = step.a as f64 * xt + step.b as f64 * head_value(step, &s, xt, eps);
            assert!((got - expected).abs() < 1e-3, "t={}: {got} vs {expected}", step.t);
        }
    }

    #[test]
    fn img2img_starts_part_way_and_mixes_signal_and_noise() {
        let s = sched();
        let plan = Plan::new(&s, SamplerKind::Ddpm, 32, Some(0.5), true).unwrap();
        assert_eq!(plan.start.t, 16);
        assert_eq!(plan.steps.len(), 17);
        let ab = s.alpha_bars[16];
        assert!((plan.start.signal as f64 - ab.sqrt()).abs() < 1e-6);
        assert!((plan.start.signal.powi(2) + plan.start.noise.powi(2) - 1.0).abs() < 1e-5);
        let ddim = Plan::new(&s, SamplerKind::Ddim, 8, Some(0.5), true).unwrap();
        assert_eq!(ddim.steps.len(), 4);
        assert_eq!(ddim.steps[0].t, 16);
    }

    #[test]
    fn bad_step_counts_and_strengths_are_refused() {
        let s = sched();
        assert!(Plan::new(&s, SamplerKind::Ddim, 0, None, true).is_err());
        assert!(Plan::new(&s, SamplerKind::Ddim, 33, None, true).is_err());
        assert!(Plan::new(&s, SamplerKind::Ddpm, 8, None, true).is_err());
        assert!(Plan::new(&s, SamplerKind::Ddpm, 32, Some(0.0), true).is_err());
        assert!(Plan::new(&s, SamplerKind::Ddpm, 32, Some(1.5), true).is_err());
        assert!(Plan::new(&s, SamplerKind::Ddpm, 32, Some(f32::NAN), true).is_err());
        assert!("euler".parse::<SamplerKind>().is_err());
    }

    #[test]
    fn guidance_is_linear_interpolation() {
        assert_eq!(guide(1.0, 3.0, 0.0), 1.0);
        assert_eq!(guide(1.0, 3.0, 1.0), 3.0);
        assert_eq!(guide(1.0, 3.0, 2.5), 6.0);
    }
}
