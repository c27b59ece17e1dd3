//! Copying: each sample's distance to its nearest training icon, as the RMSE in 8-bit levels of
//! the two drawn on mid-grey. A glyph (drawn in any one colour) is compared in the flat colour
//! that fits the sample best, in closed form: with u_c = sample_c − grey and a the glyph's alpha,
//! ‖u_c − k_c a‖² is smallest at k_c = ⟨u_c, a⟩ / ‖a‖², clamped to a valid colour. Mirror images
//! are not searched.

use anyhow::Result;
use candle_core::{Device, Tensor};

use crate::icons::Icons;
use crate::metrics::GREY;

/// Training icons as matrices: emoji on grey `[E, 3P]`, glyph alphas `[G, P]`.
pub struct TrainingSet {
    emoji: Tensor,
    emoji_sq: Vec<f32>,
    glyphs: Tensor,
    glyph_sq: Vec<f32>,
    /// Dataset index of each emoji and glyph row.
    pub emoji_index: Vec<usize>,
    pub glyph_index: Vec<usize>,
    plane: usize,
}

impl TrainingSet {
    pub fn new(icons: &Icons) -> Result<Self> {
        let plane = icons.size * icons.size;
        let (mut emoji, mut glyphs, mut emoji_index, mut glyph_index) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for k in (0..icons.len()).filter(|&k| !icons.held_out[k]) {
            let (rgb, alpha) = icons.on_grey(k);
            if icons.icons[k].mono {
                glyphs.extend(alpha);
                glyph_index.push(k);
            } else {
                emoji.extend(rgb);
                emoji_index.push(k);
            }
        }
        let sq = |rows: &[f32], width: usize| -> Vec<f32> {
            rows.chunks(width).map(|r| r.iter().map(|v| v * v).sum()).collect()
        };
        Ok(TrainingSet {
            emoji_sq: sq(&emoji, 3 * plane),
            glyph_sq: sq(&glyphs, plane),
            emoji: Tensor::from_vec(emoji, (emoji_index.len(), 3 * plane), &Device::Cpu)?,
            glyphs: Tensor::from_vec(glyphs, (glyph_index.len(), plane), &Device::Cpu)?,
            emoji_index,
            glyph_index,
            plane,
        })
    }

    /// For each sample (RGB on grey in [0, 1], `[3P]`), the nearest training icon's dataset
    /// index and RMSE in 8-bit levels; `skip` leaves out one dataset index per sample (itself).
    pub fn nearest(&self, samples: &[Vec<f32>], skip: &[Option<usize>]) -> Result<Vec<(usize, f32)>> {
        let p = self.plane;
        let mut best = vec![(usize::MAX, f32::INFINITY); samples.len()];
        for (chunk_no, chunk) in samples.chunks(256).enumerate() {
            let base = chunk_no * 256;
            let flat: Vec<f32> = chunk.iter().flatten().copied().collect();
            let s = Tensor::from_vec(flat, (chunk.len(), 3 * p), &Device::Cpu)?;
            if !self.emoji_index.is_empty() {
                let dots = s.matmul(&self.emoji.t()?)?.to_vec2::<f32>()?;
                for (i, row) in dots.iter().enumerate() {
                    let s_sq: f32 = chunk[i].iter().map(|v| v * v).sum();
                    for (j, &dot) in row.iter().enumerate() {
                        let k = self.emoji_index[j];
                        let d2 = (s_sq + self.emoji_sq[j] - 2.0 * dot).max(0.0);
                        if d2 < best[base + i].1 && skip[base + i] != Some(k) {
                            best[base + i] = (k, d2);
                        }
                    }
                }
            }
            if !self.glyph_index.is_empty() {
                let u = (s - GREY as f64)?;
                let mut dots = Vec::new();
                for c in 0..3 {
                    dots.push(u.narrow(1, c * p, p)?.matmul(&self.glyphs.t()?)?.to_vec2::<f32>()?);
                }
                for i in 0..chunk.len() {
                    let u_sq: f32 = chunk[i].iter().map(|v| (v - GREY).powi(2)).sum();
                    for (j, &a_sq) in self.glyph_sq.iter().enumerate() {
                        let k = self.glyph_index[j];
                        let mut d2 = u_sq;
                        for dot in &dots {
                            let colour = if a_sq > 0.0 { (dot[i][j] / a_sq).clamp(-GREY, 1.0 - GREY) } else { 0.0 };
                            d2 += -2.0 * colour * dot[i][j] + colour * colour * a_sq;
                        }
                        if d2 < best[base + i].1 && skip[base + i] != Some(k) {
                            best[base + i] = (k, d2.max(0.0));
                        }
                    }
                }
            }
        }
        Ok(best.into_iter().map(|(k, d2)| (k, (d2 / (3 * p) as f32).sqrt() * 255.0)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(emoji: Vec<Vec<f32>>, glyphs: Vec<Vec<f32>>, plane: usize) -> TrainingSet {
        let sq = |rows: &[Vec<f32>]| -> Vec<f32> { rows.iter().map(|r| r.iter().map(|v| v * v).sum()).collect() };
        TrainingSet {
            emoji_sq: sq(&emoji),
            glyph_sq: sq(&glyphs),
            emoji_index: (0..emoji.len()).collect(),
            glyph_index: (emoji.len()..emoji.len() + glyphs.len()).collect(),
            emoji: Tensor::from_vec(emoji.concat(), (emoji.len(), 3 * plane), &Device::Cpu).unwrap(),
            glyphs: Tensor::from_vec(glyphs.concat(), (glyphs.len(), plane), &Device::Cpu).unwrap(),
            plane,
        }
    }

    #[test]
    fn nearest_finds_an_exact_emoji_and_a_recoloured_glyph() -> Result<()> {
        // Two pixels. Emoji 0 is black, emoji 1 white; glyph 2 covers pixel 0 only.
        let training = set(vec![vec![0.0; 6], vec![1.0; 6]], vec![vec![1.0, 0.0]], 2);
        // A white sample is emoji 1 exactly.
        let white = training.nearest(&[vec![1.0; 6]], &[None])?;
        assert_eq!(white[0].0, 1);
        assert!(white[0].1 < 1e-3);
        // The glyph painted pure red on grey: pixel 0 red, pixel 1 grey; distance 0 in that colour.
        let red_glyph = vec![1.0, GREY, 0.0, GREY, 0.0, GREY];
        let found = training.nearest(&[red_glyph.clone()], &[None])?;
        assert_eq!(found[0].0, 2);
        assert!(found[0].1 < 1e-3, "{}", found[0].1);
        // Skipping the glyph falls back to the nearer emoji, by the plain RMSE.
        let found = training.nearest(&[red_glyph.clone()], &[Some(2)])?;
        let rmse = |e: f32| (red_glyph.iter().map(|v| (v - e).powi(2)).sum::<f32>() / 6.0).sqrt() * 255.0;
        let expected = rmse(0.0).min(rmse(1.0));
        assert!((found[0].1 - expected).abs() < 1e-2, "{} vs {expected}", found[0].1);
        Ok(())
    }
}
