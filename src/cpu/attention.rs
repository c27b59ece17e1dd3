//! The attention core for a few dozen tokens: per query row and head, the scores against every
//! key of its image, a softmax and the weighted sum of values, with no score matrix in memory.
//! Mirrors candle's `Attention::core` (QK-norm included).

use rayon::prelude::*;

use super::adaln::lanes_sum;
use super::matmul::PARALLEL_FROM;
use crate::model::QK_NORM_EPS;

/// The model's attention shape.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub tokens: usize,
    pub heads: usize,
    pub head_dim: usize,
    pub qk_norm: bool,
}

impl Shape {
    fn inner(&self) -> usize {
        self.heads * self.head_dim
    }
}

/// `qkv` holds each row's q | k | v (`[rows, 3·inner]`, rows image-major); writes each row's
/// heads side by side into `out` (`[rows, inner]`). With QK-norm, q and k are normalised in place.
pub fn attention(qkv: &mut [f32], shape: Shape, out: &mut [f32]) {
    let (inner, d) = (shape.inner(), shape.head_dim);
    if shape.qk_norm {
        for row in qkv.chunks_exact_mut(3 * inner) {
            row[..2 * inner].chunks_exact_mut(d).for_each(rms_normalize);
        }
    }
    let qkv = &*qkv;
    let one = |(r, dst): (usize, &mut [f32])| query_row(qkv, shape, r, dst);
    let work = out.len() / inner * shape.tokens * inner * 2;
    if work >= PARALLEL_FROM && rayon::current_num_threads() > 1 {
        out.par_chunks_mut(inner).enumerate().with_min_len(4).for_each(one);
    } else {
        out.chunks_mut(inner).enumerate().for_each(one);
    }
}

/// Row `r`'s output, every head.
fn query_row(qkv: &[f32], shape: Shape, r: usize, dst: &mut [f32]) {
    let (inner, d, tokens) = (shape.inner(), shape.head_dim, shape.tokens);
    let first = r / tokens * tokens;
    let keys = &qkv[first * 3 * inner..(first + tokens) * 3 * inner];
    let scale = 1.0 / (d as f32).sqrt();
    // Config::validate bounds tokens by MAX_TOKENS, so the scores fit on the stack.
    let mut scores = [0f32; crate::config::MAX_TOKENS];
    let scores = &mut scores[..tokens];
    for (h, head_out) in dst.chunks_exact_mut(d).enumerate() {
        let q = &qkv[r * 3 * inner + h * d..][..d];
        for (s, key_row) in scores.iter_mut().zip(keys.chunks_exact(3 * inner)) {
            *s = dot(q, &key_row[inner + h * d..][..d]) * scale;
        }
        let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        scores.iter_mut().for_each(|s| *s = (*s - max).exp());
        let total: f32 = scores.iter().sum();
        head_out.fill(0.0);
        for (&p, value_row) in scores.iter().zip(keys.chunks_exact(3 * inner)) {
            let (p, v) = (p / total, &value_row[2 * inner + h * d..][..d]);
            for (o, &x) in head_out.iter_mut().zip(v) {
                *o += p * x;
            }
        }
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (ca, ra) = a.as_chunks::<8>();
    let (cb, rb) = b.as_chunks::<8>();
    let mut lanes = [0f32; 8];
    for (x, y) in ca.iter().zip(cb) {
        for ((l, &u), &v) in lanes.iter_mut().zip(x).zip(y) {
            *l += u * v;
        }
    }
    lanes.iter().sum::<f32>() + ra.iter().zip(rb).map(|(&u, &v)| u * v).sum::<f32>()
}

/// `t / sqrt(mean(t²) + eps)`, one head's q or k.
fn rms_normalize(t: &mut [f32]) {
    let mean = lanes_sum(t, |v| v * v) / t.len() as f32;
    let inv = 1.0 / (mean + QK_NORM_EPS as f32).sqrt();
    t.iter_mut().for_each(|v| *v *= inv);
}
