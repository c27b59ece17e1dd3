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
//! model whose heads agree, and multiplies the x0 head's error by at most 1. So a step whose ε
//! coefficient exceeds `X0_HEAD_ABOVE` reads the x0 head instead; with the default schedule that
//! is only the step from t = T−1.

use crate::error::{Error, Result};
use crate::noise;
use crate::schedule::Schedule;

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

/// The model output a step's update reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Head {
    #[default]
    Eps = 0,
    X0 = 1,
}

/// A step reads the x0 head when the ε form's coefficient on ε is larger than this (see the
/// module documentation).
pub const X0_HEAD_ABOVE: f64 = 2.0;

/// One denoising step: the model sees timestep `t`, then `x ← a·x + b·p + c·z` with p the guided
/// output of `head`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    pub t: u32,
    pub a: f32,
    pub b: f32,
    pub c: f32,
    pub head: Head,
}

impl Step {
    /// The noise stream this step draws z from.
    pub fn noise_tag(&self) -> u32 {
        self.t
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
    /// `strength` in (0, 1] starts from an image noised to `round(strength·(T−1))` instead of pure noise.
    pub fn new(schedule: &Schedule, kind: SamplerKind, steps: usize, strength: Option<f32>) -> Result<Self> {
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
        let ab = &schedule.alpha_bars;
        let steps = ts
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                // (a, b) of the ε form, (a, b) of the x0 form, and c.
                let (eps_form, x0_form, c) = match kind {
                    SamplerKind::Ddpm => {
                        let beta = schedule.betas[t];
                        let prev = if t > 0 { ab[t - 1] } else { 1.0 };
                        let eps_form =
                            (1.0 / (1.0 - beta).sqrt(), -beta / ((1.0 - ab[t]).sqrt() * (1.0 - beta).sqrt()));
                        let x0_form =
                            ((1.0 - beta).sqrt() * (1.0 - prev) / (1.0 - ab[t]), prev.sqrt() * beta / (1.0 - ab[t]));
                        (eps_form, x0_form, if t > 0 { beta.sqrt() } else { 0.0 })
                    }
                    SamplerKind::Ddim => {
                        let prev = ts.get(i + 1).map_or(1.0, |&p| ab[p]);
                        let eps_form =
                            ((prev / ab[t]).sqrt(), (1.0 - prev).sqrt() - (prev * (1.0 - ab[t]) / ab[t]).sqrt());
                        let x0_form = (
                            ((1.0 - prev) / (1.0 - ab[t])).sqrt(),
                            prev.sqrt() - ((1.0 - prev) * ab[t] / (1.0 - ab[t])).sqrt(),
                        );
                        (eps_form, x0_form, 0.0)
                    }
                };
                let ((a, b), head) =
                    if eps_form.1.abs() > X0_HEAD_ABOVE { (x0_form, Head::X0) } else { (eps_form, Head::Eps) };
                Step { t: t as u32, a: a as f32, b: b as f32, c: c as f32, head }
            })
            .collect();
        let start =
            Start { t: t_start as u32, signal: ab[t_start].sqrt() as f32, noise: (1.0 - ab[t_start]).sqrt() as f32 };
        Ok(Plan { start, steps })
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

/// `x ← a·x + b·p + c·z` with p the step's head (`eps` or `x0`) and z drawn from the step's own
/// noise stream.
pub fn apply_step(step: &Step, seed: u64, x: &mut [f32], eps: &[f32], x0: &[f32]) {
    let p = match step.head {
        Head::Eps => eps,
        Head::X0 => x0,
    };
    if step.c == 0.0 {
        for (xi, &e) in x.iter_mut().zip(p) {
            *xi = step.a * *xi + step.b * e;
        }
        return;
    }
    let mut z = vec![0.0; x.len()];
    noise::fill_normal(seed, step.noise_tag(), &mut z);
    for ((xi, &e), &zi) in x.iter_mut().zip(p).zip(&z) {
        *xi = step.a * *xi + step.b * e + step.c * zi;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched() -> Schedule {
        Schedule::cosine(32, 1e-4)
    }

    #[test]
    fn ddpm_step_matches_the_seed_formula() {
        // x ← (x − β/√(1−ᾱ)·ε)/√(1−β) + √β·z, evaluated directly in f64.
        let s = sched();
        let plan = Plan::new(&s, SamplerKind::Ddpm, 32, None).unwrap();
        assert_eq!(plan.steps.len(), 32);
        let (x, eps, z) = (0.3f64, -0.7f64, 0.2f64);
        for step in &plan.steps {
            let t = step.t as usize;
            let (beta, ab) = (s.betas[t], s.alpha_bars[t]);
            let noise = if t > 0 { beta.sqrt() * z } else { 0.0 };
            let expected = (x - beta / (1.0 - ab).sqrt() * eps) / (1.0 - beta).sqrt() + noise;
            let got = step.a as f64 * x + step.b as f64 * head_value(step, &s, x, eps) + step.c as f64 * z;
            assert!((got - expected).abs() < 1e-4 * expected.abs().max(1.0), "t={t}: {got} vs {expected}");
        }
        assert_eq!(plan.steps.last().unwrap().c, 0.0);
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
            let plan = Plan::new(&s, kind, steps, None).unwrap();
            let heads: Vec<Head> = plan.steps.iter().map(|st| st.head).collect();
            assert_eq!(heads[0], Head::X0, "{kind:?} {steps}");
            assert!(heads[1..].iter().all(|&h| h == Head::Eps), "{kind:?} {steps}: {heads:?}");
            // Neither head's error is multiplied by more than the threshold.
            assert!(plan.steps.iter().all(|st| (st.b as f64).abs() <= X0_HEAD_ABOVE), "{kind:?} {steps}");
        }
        // Img2img from t = 16 never needs it.
        let plan = Plan::new(&s, SamplerKind::Ddpm, 32, Some(0.5)).unwrap();
        assert!(plan.steps.iter().all(|st| st.head == Head::Eps));
    }

    #[test]
    fn ddim_step_recovers_x0_exactly_when_eps_is_right() {
        // If x_t = √ᾱ x0 + √(1−ᾱ) ε and the model predicts that ε, DDIM lands on x_prev built from the same x0 and ε.
        let s = sched();
        let plan = Plan::new(&s, SamplerKind::Ddim, 8, None).unwrap();
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
        let plan = Plan::new(&s, SamplerKind::Ddpm, 32, Some(0.5)).unwrap();
        assert_eq!(plan.start.t, 16);
        assert_eq!(plan.steps.len(), 17);
        let ab = s.alpha_bars[16];
        assert!((plan.start.signal as f64 - ab.sqrt()).abs() < 1e-6);
        assert!((plan.start.signal.powi(2) + plan.start.noise.powi(2) - 1.0).abs() < 1e-5);
        let ddim = Plan::new(&s, SamplerKind::Ddim, 8, Some(0.5)).unwrap();
        assert_eq!(ddim.steps.len(), 4);
        assert_eq!(ddim.steps[0].t, 16);
    }

    #[test]
    fn bad_step_counts_and_strengths_are_refused() {
        let s = sched();
        assert!(Plan::new(&s, SamplerKind::Ddim, 0, None).is_err());
        assert!(Plan::new(&s, SamplerKind::Ddim, 33, None).is_err());
        assert!(Plan::new(&s, SamplerKind::Ddpm, 8, None).is_err());
        assert!(Plan::new(&s, SamplerKind::Ddpm, 32, Some(0.0)).is_err());
        assert!(Plan::new(&s, SamplerKind::Ddpm, 32, Some(1.5)).is_err());
        assert!(Plan::new(&s, SamplerKind::Ddpm, 32, Some(f32::NAN)).is_err());
        assert!("euler".parse::<SamplerKind>().is_err());
    }

    #[test]
    fn guidance_is_linear_interpolation() {
        assert_eq!(guide(1.0, 3.0, 0.0), 1.0);
        assert_eq!(guide(1.0, 3.0, 1.0), 3.0);
        assert_eq!(guide(1.0, 3.0, 2.5), 6.0);
    }
}
