//! AdaLN in one pass per row: `(x − mean)/(std + eps)·(1 + scale) + shift`, the statistics,
//! normalisation and modulation fused (candle's `AdaLn::forward` takes six tensor ops).

use crate::model::ADALN_EPS;

/// Every AdaLN's scale and shift for each distinct conditioning vector (`Modulation::forward`
/// in the candle model), and which of those vectors each image takes.
pub struct Modulation<'a> {
    /// `[vectors, width]`: per AdaLN `i`, its scale at `2·i·dim`, its shift at `(2·i + 1)·dim`.
    pub values: &'a [f32],
    pub width: usize,
    /// Image `b` is modulated by vector `of_image[b]`.
    pub of_image: &'a [usize],
}

/// Normalises each `dim`-wide row of `x` into `out` with AdaLN number `index`; row `r` belongs
/// to image `r / tokens`.
pub fn adaln(x: &[f32], dim: usize, tokens: usize, mods: &Modulation, index: usize, out: &mut [f32]) {
    for (r, (row, dst)) in x.chunks_exact(dim).zip(out.chunks_exact_mut(dim)).enumerate() {
        let vector = &mods.values[mods.of_image[r / tokens] * mods.width..][..mods.width];
        let (scale, shift) = vector[2 * index * dim..].split_at(dim);
        let mean = lanes_sum(row, |v| v) / dim as f32;
        let var = lanes_sum(row, |v| (v - mean) * (v - mean)) / (dim as f32 - 1.0);
        let inv = 1.0 / (var.sqrt() + ADALN_EPS as f32);
        for (((d, &v), &s), &b) in dst.iter_mut().zip(row).zip(scale).zip(shift) {
            *d = (v - mean) * inv * (1.0 + s) + b;
        }
    }
}

/// `Σ f(v)` in eight lanes, so it vectorises.
pub fn lanes_sum(values: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let (chunks, rest) = values.as_chunks::<8>();
    let mut lanes = [0f32; 8];
    for chunk in chunks {
        for (l, &v) in lanes.iter_mut().zip(chunk) {
            *l += f(v);
        }
    }
    lanes.iter().sum::<f32>() + rest.iter().map(|&v| f(v)).sum::<f32>()
}
