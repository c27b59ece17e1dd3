//! The cosine noise schedule (Nichol & Dhariwal 2021) over T discrete steps.

#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub betas: Vec<f64>,
    pub alpha_bars: Vec<f64>,
}

/// β is clipped here so the last step never destroys the signal completely.
pub const MAX_BETA: f64 = 0.999;

impl Schedule {
    /// f(t) = cos²(((t/T)+s)/(1+s)·π/2) / f(0);  β_t = clip(1 − f(t+1)/f(t), 0, 0.999);  ᾱ_t = Π(1 − β).
    pub fn cosine(timesteps: usize, offset: f64) -> Self {
        let f = |t: usize| {
            let x = ((t as f64 / timesteps as f64) + offset) / (1.0 + offset) * std::f64::consts::FRAC_PI_2;
            x.cos().powi(2)
        };
        let f0 = f(0);
        let betas: Vec<f64> =
            (0..timesteps).map(|t| (1.0 - (f(t + 1) / f0) / (f(t) / f0)).clamp(0.0, MAX_BETA)).collect();
        let alpha_bars = betas
            .iter()
            .scan(1.0, |acc, beta| {
                *acc *= 1.0 - beta;
                Some(*acc)
            })
            .collect();
        Schedule { betas, alpha_bars }
    }

    pub fn len(&self) -> usize {
        self.betas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.betas.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpha_bar_matches_closed_form_before_the_clip() {
        // Without the clip the product telescopes: ᾱ_t = f(t+1)/f(0).
        let (t_max, s) = (32, 1e-4);
        let sched = Schedule::cosine(t_max, s);
        let f = |t: f64| (((t / t_max as f64) + s) / (1.0 + s) * std::f64::consts::FRAC_PI_2).cos().powi(2);
        for t in 0..t_max - 1 {
            let closed = f(t as f64 + 1.0) / f(0.0);
            assert!((sched.alpha_bars[t] - closed).abs() < 1e-12, "t={t}: {} vs {closed}", sched.alpha_bars[t]);
        }
        // f(T) = cos²(π/2) = 0, so the last β would be 1 and is clipped.
        assert_eq!(sched.betas[t_max - 1], MAX_BETA);
        let last = f(t_max as f64 - 1.0) / f(0.0) * (1.0 - MAX_BETA);
        assert!((sched.alpha_bars[t_max - 1] - last).abs() < 1e-12);
    }

    #[test]
    fn alpha_bar_decreases_from_one_to_near_zero() {
        let sched = Schedule::cosine(32, 1e-4);
        assert!(sched.alpha_bars[0] < 1.0 && sched.alpha_bars[0] > 0.99);
        assert!(sched.alpha_bars.windows(2).all(|w| w[1] < w[0]));
        assert!(sched.alpha_bars[31] < 1e-4);
        assert!(sched.betas.iter().all(|&b| (0.0..=MAX_BETA).contains(&b)));
    }
}
