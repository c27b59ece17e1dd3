//! The benchmark's measures, each defined in docs/QUALITY.md: compositing on mid-grey, the seam
//! score, the in-between alpha fraction, the Fréchet distance and the mean pairwise distance.

use favicon_diffusor::alpha::{PixelFormat, Premultiplied};

/// Mid-grey, the background every measure composites on.
pub const GREY: f32 = 0.5;

/// A planar model image (`channels` 3: RGB; 4: colour premultiplied over `matte`, then alpha;
/// all in [-1, 1]) as RGB in [0, 1] on mid-grey, and its alpha (1 for RGB), through the
/// library's own conversion (`favicon_diffusor::alpha`).
pub fn on_grey(
    planar: &[f32],
    channels: usize,
    matte: f32,
    size: usize,
) -> favicon_diffusor::Result<(Vec<f32>, Vec<f32>)> {
    let image = Premultiplied::from_planar(planar, PixelFormat { channels, matte }, size)?;
    let plane = size * size;
    let (mut rgb, mut alpha) = (vec![0.0; 3 * plane], vec![0.0; plane]);
    for i in 0..plane {
        let px = image.pixel((i % size) as u32, (i / size) as u32);
        alpha[i] = px[3];
        for c in 0..3 {
            rgb[c * plane + i] = px[c] + GREY * (1.0 - px[3]);
        }
    }
    Ok((rgb, alpha))
}

/// Sums of absolute neighbour differences across patch boundaries and inside patches.
#[derive(Default, Clone, Copy)]
pub struct Seams {
    across: f64,
    across_n: u64,
    inside: f64,
    inside_n: u64,
}

impl Seams {
    /// Adds one planar RGB image (any scale) of side `size` cut into `patch`-wide patches.
    pub fn add(&mut self, rgb: &[f32], size: usize, patch: usize) {
        for plane in rgb.chunks(size * size) {
            for y in 0..size {
                for x in 0..size {
                    let v = plane[y * size + x];
                    for (nx, ny) in [(x + 1, y), (x, y + 1)] {
                        if nx >= size || ny >= size {
                            continue;
                        }
                        let d = (plane[ny * size + nx] - v).abs() as f64;
                        let boundary = if nx != x { nx % patch == 0 } else { ny % patch == 0 };
                        if boundary {
                            self.across += d;
                            self.across_n += 1;
                        } else {
                            self.inside += d;
                            self.inside_n += 1;
                        }
                    }
                }
            }
        }
    }

    /// Mean difference across boundaries over mean difference inside patches.
    pub fn score(&self) -> f64 {
        (self.across / self.across_n.max(1) as f64) / (self.inside / self.inside_n.max(1) as f64).max(1e-12)
    }
}

/// The share of alpha values strictly between 0.05 and 0.95.
pub fn in_between(alpha: &[f32]) -> (u64, u64) {
    (alpha.iter().filter(|&&a| a > 0.05 && a < 0.95).count() as u64, alpha.len() as u64)
}

pub fn mean_and_covariance(rows: &[Vec<f32>]) -> (Vec<f64>, Vec<f64>) {
    let (n, d) = (rows.len(), rows[0].len());
    let mut mean = vec![0.0; d];
    for r in rows {
        for (m, &v) in mean.iter_mut().zip(r) {
            *m += v as f64 / n as f64;
        }
    }
    let mut cov = vec![0.0; d * d];
    for r in rows {
        let centred: Vec<f64> = r.iter().zip(&mean).map(|(&v, m)| v as f64 - m).collect();
        for i in 0..d {
            for j in i..d {
                cov[i * d + j] += centred[i] * centred[j];
            }
        }
    }
    let norm = (n.max(2) - 1) as f64;
    for i in 0..d {
        for j in i..d {
            cov[i * d + j] /= norm;
            cov[j * d + i] = cov[i * d + j];
        }
    }
    (mean, cov)
}

/// Eigenvalues and eigenvectors (columns of the returned row-major matrix) of a symmetric
/// matrix, by cyclic Jacobi rotations.
pub fn symmetric_eigen(matrix: &[f64], d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = matrix.to_vec();
    let mut v = vec![0.0; d * d];
    for i in 0..d {
        v[i * d + i] = 1.0;
    }
    for _sweep in 0..60 {
        let off: f64 = (0..d)
            .flat_map(|i| (0..d).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * d + j].powi(2))
            .sum();
        let diag: f64 = (0..d).map(|i| a[i * d + i].powi(2)).sum();
        if off <= 1e-24 * diag.max(1e-300) {
            break;
        }
        for p in 0..d {
            for q in p + 1..d {
                let apq = a[p * d + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * d + q] - a[p * d + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let (c, s) = (1.0 / (t * t + 1.0).sqrt(), t / (t * t + 1.0).sqrt());
                for k in 0..d {
                    let (akp, akq) = (a[k * d + p], a[k * d + q]);
                    a[k * d + p] = c * akp - s * akq;
                    a[k * d + q] = s * akp + c * akq;
                }
                for k in 0..d {
                    let (apk, aqk) = (a[p * d + k], a[q * d + k]);
                    a[p * d + k] = c * apk - s * aqk;
                    a[q * d + k] = s * apk + c * aqk;
                }
                for k in 0..d {
                    let (vkp, vkq) = (v[k * d + p], v[k * d + q]);
                    v[k * d + p] = c * vkp - s * vkq;
                    v[k * d + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..d).map(|i| a[i * d + i]).collect(), v)
}

fn matmul(a: &[f64], b: &[f64], d: usize) -> Vec<f64> {
    let mut out = vec![0.0; d * d];
    for i in 0..d {
        for k in 0..d {
            let aik = a[i * d + k];
            for j in 0..d {
                out[i * d + j] += aik * b[k * d + j];
            }
        }
    }
    out
}

/// ‖μ1 − μ2‖² + tr(Σ1 + Σ2 − 2 (Σ1^½ Σ2 Σ1^½)^½).
pub fn frechet_from_stats(mu1: &[f64], s1: &[f64], mu2: &[f64], s2: &[f64]) -> f64 {
    let d = mu1.len();
    let (values, vectors) = symmetric_eigen(s1, d);
    let mut root = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..d {
            root[i * d + j] = (0..d).map(|k| vectors[i * d + k] * values[k].max(0.0).sqrt() * vectors[j * d + k]).sum();
        }
    }
    let inner = matmul(&matmul(&root, s2, d), &root, d);
    let sym: Vec<f64> = (0..d * d).map(|k| (inner[k] + inner[(k % d) * d + k / d]) / 2.0).collect();
    let (inner_values, _) = symmetric_eigen(&sym, d);
    let mean: f64 = mu1.iter().zip(mu2).map(|(a, b)| (a - b).powi(2)).sum();
    let traces: f64 = (0..d).map(|i| s1[i * d + i] + s2[i * d + i]).sum();
    mean + traces - 2.0 * inner_values.iter().map(|v| v.max(0.0).sqrt()).sum::<f64>()
}

pub fn frechet(a: &[Vec<f32>], b: &[Vec<f32>]) -> f64 {
    let (m1, s1) = mean_and_covariance(a);
    let (m2, s2) = mean_and_covariance(b);
    frechet_from_stats(&m1, &s1, &m2, &s2)
}

/// Mean Euclidean distance over all pairs.
pub fn mean_pairwise(rows: &[Vec<f32>]) -> f64 {
    let (mut sum, mut n) = (0.0, 0u64);
    for i in 0..rows.len() {
        for j in i + 1..rows.len() {
            sum += rows[i].iter().zip(&rows[j]).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>().sqrt();
            n += 1;
        }
    }
    sum / n.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seam_score_is_one_on_a_smooth_ramp_and_counts_patch_steps() {
        let size = 16;
        let ramp: Vec<f32> = (0..size * size).map(|i| (i % size + i / size) as f32).collect();
        let mut seams = Seams::default();
        seams.add(&ramp, size, 8);
        assert!((seams.score() - 1.0).abs() < 1e-12);
        // Add 3 to the right-hand patches: horizontal steps across x = 8 become 4 instead of 1.
        let stepped: Vec<f32> =
            ramp.iter().enumerate().map(|(i, &v)| v + if i % size >= 8 { 3.0 } else { 0.0 }).collect();
        let mut seams = Seams::default();
        seams.add(&stepped, size, 8);
        // Across: 16 horizontal pairs of 4 and 16 vertical pairs (y 7→8) of 1; inside: all 1.
        assert!((seams.score() - (16.0 * 4.0 + 16.0) / 32.0).abs() < 1e-12);
    }

    #[test]
    fn frechet_matches_the_closed_form_for_commuting_covariances() {
        // Σ1 = Q diag(a) Qᵀ and Σ2 = Q diag(b) Qᵀ commute: FD = ‖μ1 − μ2‖² + Σ (√a − √b)².
        let d = 4;
        let (a, b) = ([4.0, 1.0, 0.25, 9.0], [1.0, 1.0, 1.0, 4.0]);
        let angle: f64 = 0.3;
        let mut q = vec![0.0; d * d];
        for i in 0..d {
            q[i * d + i] = 1.0;
        }
        q[0] = angle.cos();
        q[1] = -angle.sin();
        q[d] = angle.sin();
        q[d + 1] = angle.cos();
        let build = |diag: &[f64]| -> Vec<f64> {
            (0..d * d).map(|k| (0..d).map(|m| q[(k / d) * d + m] * diag[m] * q[(k % d) * d + m]).sum()).collect()
        };
        let (mu1, mu2) = ([1.0, 0.0, 2.0, 0.0], [0.0, 0.0, 0.0, 1.0]);
        let expected =
            1.0 + 4.0 + 1.0 + a.iter().zip(&b).map(|(x, y): (&f64, &f64)| (x.sqrt() - y.sqrt()).powi(2)).sum::<f64>();
        let got = frechet_from_stats(&mu1, &build(&a), &mu2, &build(&b));
        assert!((got - expected).abs() < 1e-9, "{got} vs {expected}");
    }

    #[test]
    fn premultiplied_pixels_composite_on_grey() {
        // Four pixels: opaque red, half-transparent white (premultiplied 0.5), transparent, and a
        // red above its alpha (clamped to it). Planes R, G, B, A in [-1, 1].
        let planar = [1.0, 0.0, -1.0, 1.0, -1.0, 0.0, -1.0, -1.0, -1.0, 0.0, -1.0, -1.0, 1.0, 0.0, -1.0, 0.0];
        let (rgb, alpha) = on_grey(&planar, 4, 0.0, 2).unwrap();
        assert_eq!(alpha, vec![1.0, 0.5, 0.0, 0.5]);
        assert_eq!(&rgb[0..4], &[1.0, 0.75, 0.5, 0.75]);
        assert_eq!(&rgb[4..8], &[0.0, 0.75, 0.5, 0.25]);
        // Over a matte of 0.5 the same colours read 0.25 higher where alpha is 0.5, 0.5 where it is 0.
        let matted: Vec<f32> = planar
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let a = (planar[12 + i % 4] + 1.0) / 2.0;
                if i < 12 {
                    v + 2.0 * 0.5 * (1.0 - a)
                } else {
                    v
                }
            })
            .collect();
        let (again, _) = on_grey(&matted, 4, 0.5, 2).unwrap();
        for (x, y) in again.iter().zip(&rgb) {
            assert!((x - y).abs() < 1e-6, "{again:?} vs {rgb:?}");
        }
    }
}
