//! One sampler step, `x ← a·x + b·p + c·z`: its coefficients for any timestep
//! ([`Step::ddpm`], [`Step::ddim`]) and applying it with the pipeline's noise or the caller's.
//! Which head p is comes from the module documentation of [`crate::sampler`].

use candle_core::{DType, Tensor};

use crate::error::{Error, Result};
use crate::noise;
use crate::schedule::Schedule;

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
    /// ᾱ at `t`, from which a checkpoint without the x0 head derives its x0 preview.
    pub alpha_bar: f32,
}

impl Step {
    /// The noise stream this step draws z from.
    pub fn noise_tag(&self) -> u32 {
        self.t
    }

    /// The DDPM step from `t` to t − 1, the seed's ancestral update
    /// `x ← (x − β/√(1−ᾱ)·ε)/√(1−β) + √β·z` (no noise at t = 0). With `x0_head`, a step whose
    /// ε coefficient exceeds `X0_HEAD_ABOVE` is written through x0 instead (module docs).
    pub fn ddpm(schedule: &Schedule, t: usize, x0_head: bool) -> Step {
        let (ab, beta) = (schedule.alpha_bars[t], schedule.betas[t]);
        let prev = if t > 0 { schedule.alpha_bars[t - 1] } else { 1.0 };
        let eps_form = (1.0 / (1.0 - beta).sqrt(), -beta / ((1.0 - ab).sqrt() * (1.0 - beta).sqrt()));
        let x0_form = ((1.0 - beta).sqrt() * (1.0 - prev) / (1.0 - ab), prev.sqrt() * beta / (1.0 - ab));
        let c = if t > 0 { beta.sqrt() } else { 0.0 };
        Step::pick(t, ab, eps_form, x0_form, c, x0_head)
    }

    /// The DDIM (η = 0) step from `t` to timestep `prev`, or to the clean image when `prev` is
    /// None; the head is chosen as for [`Step::ddpm`].
    pub fn ddim(schedule: &Schedule, t: usize, prev: Option<usize>, x0_head: bool) -> Step {
        let ab = schedule.alpha_bars[t];
        let prev = prev.map_or(1.0, |p| schedule.alpha_bars[p]);
        let eps_form = ((prev / ab).sqrt(), (1.0 - prev).sqrt() - (prev * (1.0 - ab) / ab).sqrt());
        let x0_form = (((1.0 - prev) / (1.0 - ab)).sqrt(), prev.sqrt() - ((1.0 - prev) * ab / (1.0 - ab)).sqrt());
        Step::pick(t, ab, eps_form, x0_form, 0.0, x0_head)
    }

    /// The step through ε, or through x0 where the checkpoint has that head and ε's
    /// coefficient is too large; each form is `(a, b)`.
    fn pick(t: usize, ab: f64, eps_form: (f64, f64), x0_form: (f64, f64), c: f64, x0_head: bool) -> Step {
        let ((a, b), head) = match x0_head && eps_form.1.abs() > X0_HEAD_ABOVE {
            true => (x0_form, Head::X0),
            false => (eps_form, Head::Eps),
        };
        Step { t: t as u32, a: a as f32, b: b as f32, c: c as f32, head, alpha_bar: ab as f32 }
    }

    /// `x ← a·x + b·p + c·z` with p the step's head (`eps`, or `x0`, which only a step with
    /// `head: X0` reads) and `z` the caller's noise (read only where c ≠ 0).
    pub fn apply(&self, x: &mut [f32], eps: &[f32], x0: Option<&[f32]>, z: &[f32]) -> Result<()> {
        let p = match (self.head, x0) {
            (Head::Eps, _) => eps,
            (Head::X0, Some(x0)) => x0,
            (Head::X0, None) => {
                return Err(Error::Request(format!("the step at t = {} reads the x0 head, but none was given", self.t)))
            }
        };
        let noisy = self.c != 0.0;
        if p.len() != x.len() || (noisy && z.len() != x.len()) {
            return Err(Error::Request(format!(
                "sampler step: x has {} values, the prediction {} and the noise {}",
                x.len(),
                p.len(),
                z.len()
            )));
        }
        if !noisy {
            for (xi, &pi) in x.iter_mut().zip(p) {
                *xi = self.a * *xi + self.b * pi;
            }
            return Ok(());
        }
        for ((xi, &pi), &zi) in x.iter_mut().zip(p).zip(z) {
            *xi = self.a * *xi + self.b * pi + self.c * zi;
        }
        Ok(())
    }
}

/// [`Step::apply`] with z drawn from the step's own noise stream of `seed`.
pub fn apply_step(step: &Step, seed: u64, x: &mut [f32], eps: &[f32], x0: Option<&[f32]>) -> Result<()> {
    let mut z = Vec::new();
    if step.c != 0.0 {
        z.resize(x.len(), 0.0);
        noise::fill_normal(seed, step.noise_tag(), &mut z);
    }
    step.apply(x, eps, x0, &z)
}

/// The clean image that ε implies at `alpha_bar`, `(x − √(1−ᾱ)·ε)/√ᾱ`, in f32 as
/// `wgsl/sampler_step.wgsl` computes it: the x0 preview of a checkpoint without the x0 head.
pub fn x0_from_eps(alpha_bar: f32, x: &[f32], eps: &[f32]) -> Vec<f32> {
    let (noise, signal) = ((1.0 - alpha_bar).sqrt(), alpha_bar.sqrt());
    x.iter().zip(eps).map(|(&xi, &e)| (xi - noise * e) / signal).collect()
}

/// One step per batch item of `[B, C, H, W]` tensors, item i taking `steps[i]` (items may sit at
/// different timesteps), with the caller's noise `z`; `x0` is needed only by steps that read it.
/// Returns the next x.
pub fn step_batch(steps: &[Step], x: &Tensor, eps: &Tensor, x0: Option<&Tensor>, z: &Tensor) -> Result<Tensor> {
    let batch = x.dim(0)?;
    if steps.len() != batch {
        return Err(Error::Request(format!("{} steps for a batch of {batch}", steps.len())));
    }
    if batch == 0 {
        return Ok(x.clone());
    }
    let flat = |name: &str, t: &Tensor| -> Result<Vec<f32>> {
        if t.dims() != x.dims() {
            return Err(Error::Request(format!("sampler step: {name} has shape {:?}, x {:?}", t.dims(), x.dims())));
        }
        Ok(t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?)
    };
    let (mut next, eps, z) = (flat("x", x)?, flat("eps", eps)?, flat("z", z)?);
    let x0 = x0.map(|t| flat("x0", t)).transpose()?;
    let len = next.len() / batch;
    for (i, (step, item)) in steps.iter().zip(next.chunks_mut(len)).enumerate() {
        let at = i * len..(i + 1) * len;
        step.apply(item, &eps[at.clone()], x0.as_ref().map(|v| &v[at.clone()]), &z[at])?;
    }
    Ok(Tensor::from_vec(next, x.dims(), x.device())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched() -> Schedule {
        Schedule::cosine(32, 1e-4)
    }

    #[test]
    fn x0_from_eps_inverts_the_noising() {
        let s = sched();
        for t in [0, 9, 30] {
            let ab = s.alpha_bars[t] as f32;
            let (x0, eps) = ([0.25f32, -0.8, 0.6], [1.1f32, -0.3, 0.05]);
            let xt: Vec<f32> = x0.iter().zip(&eps).map(|(a, e)| ab.sqrt() * a + (1.0 - ab).sqrt() * e).collect();
            let got = x0_from_eps(ab, &xt, &eps);
            for (g, w) in got.iter().zip(&x0) {
                assert!((g - w).abs() < 1e-4, "t={t}: {g} vs {w}");
            }
        }
    }

    #[test]
    fn a_batch_step_applies_each_items_own_step_and_noise() {
        let s = sched();
        let steps = [Step::ddpm(&s, 31, false), Step::ddpm(&s, 4, false)];
        let x = Tensor::new(&[[0.5f32, -1.0], [2.0, 0.25]], &candle_core::Device::Cpu).unwrap();
        let eps = Tensor::new(&[[0.1f32, 0.2], [-0.3, 0.4]], &candle_core::Device::Cpu).unwrap();
        let z = Tensor::new(&[[1.0f32, -1.0], [0.5, 2.0]], &candle_core::Device::Cpu).unwrap();
        let got = step_batch(&steps, &x, &eps, None, &z).unwrap().to_vec2::<f32>().unwrap();
        let (xs, es, zs) = (x.to_vec2::<f32>().unwrap(), eps.to_vec2::<f32>().unwrap(), z.to_vec2::<f32>().unwrap());
        for (i, step) in steps.iter().enumerate() {
            let t = step.t as usize;
            let (beta, ab) = (s.betas[t], s.alpha_bars[t]);
            for j in 0..2 {
                let (x, e, z) = (xs[i][j] as f64, es[i][j] as f64, zs[i][j] as f64);
                let want = (x - beta / (1.0 - ab).sqrt() * e) / (1.0 - beta).sqrt() + beta.sqrt() * z;
                assert!(
                    (got[i][j] as f64 - want).abs() < 1e-4 * want.abs().max(1.0),
                    "item {i}: {} vs {want}",
                    got[i][j]
                );
            }
        }
        assert!(step_batch(&steps[..1], &x, &eps, None, &z).is_err(), "one step per item");
    }
}
