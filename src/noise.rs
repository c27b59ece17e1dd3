//! Seeded Gaussian noise from a counter-based generator, so any backend can draw
//! element `i` of step `s` without drawing the ones before it.
//!
//! Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", 2011)
//! turns a 128-bit counter and a 64-bit key into four 32-bit words. Box–Muller turns
//! each pair of words into two standard normals, so one call yields four normals.
//!
//! The counter of element `i` at step tag `tag` is `(i / 4, tag, 0, 0)` and the key is
//! the seed's two 32-bit halves. `wgsl/sampler_step.wgsl` implements the same function
//! in f32; `noise_matches_closed_form_on_gpu` pins the two together.

const PHILOX_M0: u32 = 0xD251_1F53;
const PHILOX_M1: u32 = 0xCD9E_8D57;
const PHILOX_W0: u32 = 0x9E37_79B9;
const PHILOX_W1: u32 = 0xBB67_AE85;

/// The step tag of the initial noise x_T (and of the noise img2img adds to its input).
pub const INITIAL_NOISE_TAG: u32 = u32::MAX;

fn mul_hi_lo(a: u32, b: u32) -> (u32, u32) {
    let product = a as u64 * b as u64;
    ((product >> 32) as u32, product as u32)
}

/// Philox4x32 with ten rounds.
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = counter;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k[0] = k[0].wrapping_add(PHILOX_W0);
            k[1] = k[1].wrapping_add(PHILOX_W1);
        }
        let (hi0, lo0) = mul_hi_lo(PHILOX_M0, c[0]);
        let (hi1, lo1) = mul_hi_lo(PHILOX_M1, c[2]);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// A 32-bit word to a uniform in (0, 1): the top 23 bits, centred in their bucket.
/// Every value is exact in f32 and never 0 or 1, so `ln` is finite. (With 24 bits the
/// top bucket's centre, 2^24 − 0.5, would round up to 1.)
pub fn uniform_open(word: u32) -> f32 {
    ((word >> 9) as f32 + 0.5) * (1.0 / 8_388_608.0)
}

/// Box–Muller in f32, the precision the GPU uses. The angle is taken in (−π, π), where
/// WGSL's `cos` and `sin` are most accurate, and the signs flipped to compensate:
/// cos(θ − π) = −cos θ and sin(θ − π) = −sin θ.
pub fn box_muller(u1: f32, u2: f32) -> (f32, f32) {
    let radius = (-2.0 * u1.ln()).sqrt();
    let angle = std::f32::consts::TAU * u2 - std::f32::consts::PI;
    (-radius * angle.cos(), -radius * angle.sin())
}

fn key_of(seed: u64) -> [u32; 2] {
    [seed as u32, (seed >> 32) as u32]
}

/// The four normals of one Philox block.
pub fn normal_block(seed: u64, tag: u32, block: u32) -> [f32; 4] {
    let words = philox4x32_10([block, tag, 0, 0], key_of(seed));
    let (z0, z1) = box_muller(uniform_open(words[0]), uniform_open(words[1]));
    let (z2, z3) = box_muller(uniform_open(words[2]), uniform_open(words[3]));
    [z0, z1, z2, z3]
}

/// Standard normal number `index` of the stream `(seed, tag)`.
pub fn normal(seed: u64, tag: u32, index: u32) -> f32 {
    normal_block(seed, tag, index / 4)[(index % 4) as usize]
}

/// Fills `out` with normals `0..out.len()` of the stream `(seed, tag)`.
pub fn fill_normal(seed: u64, tag: u32, out: &mut [f32]) {
    for (block, chunk) in out.chunks_mut(4).enumerate() {
        let values = normal_block(seed, tag, block as u32);
        chunk.copy_from_slice(&values[..chunk.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Known-answer vectors published with Random123 (kat_vectors, philox4x32_10).
    #[test]
    fn philox_matches_random123_known_answers() {
        assert_eq!(philox4x32_10([0, 0, 0, 0], [0, 0]), [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
        assert_eq!(philox4x32_10([u32::MAX; 4], [u32::MAX; 2]), [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]);
        assert_eq!(
            philox4x32_10([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]),
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
        );
    }

    #[test]
    fn uniform_stays_inside_the_open_interval() {
        assert!(uniform_open(0) > 0.0);
        assert!(uniform_open(u32::MAX) < 1.0);
        assert_eq!(uniform_open(0), 0.5 / 8_388_608.0);
        assert_eq!(uniform_open(u32::MAX), 1.0 - 0.5 / 8_388_608.0);
    }

    #[test]
    fn box_muller_matches_closed_form() {
        // u1 = e^{-1/2} gives radius 1; u2 = 1/8 gives angle pi/4.
        let (z0, z1) = box_muller((-0.5f32).exp(), 0.125);
        let expected = std::f32::consts::FRAC_1_SQRT_2;
        assert!((z0 - expected).abs() < 1e-6 && (z1 - expected).abs() < 1e-6, "{z0} {z1}");
    }

    #[test]
    fn normals_have_unit_moments() {
        let n = 1 << 18;
        let mut v = vec![0.0; n];
        fill_normal(42, 7, &mut v);
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n as f64;
        let kurt = v.iter().map(|&x| (x as f64 - mean).powi(4)).sum::<f64>() / n as f64 / (var * var);
        let within_one = v.iter().filter(|x| x.abs() < 1.0).count() as f64 / n as f64;
        // Standard errors at n = 2^18: mean 0.002, variance 0.003, kurtosis 0.01.
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.015, "variance {var}");
        assert!((kurt - 3.0).abs() < 0.06, "kurtosis {kurt}");
        // P(|z| < 1) = erf(1/sqrt 2) = 0.682689.
        assert!((within_one - 0.682689).abs() < 0.005, "P(|z|<1) {within_one}");
    }

    #[test]
    fn streams_are_independent_of_length_and_differ_by_seed_and_tag() {
        let mut long = vec![0.0; 103];
        fill_normal(9, 3, &mut long);
        for i in [0u32, 1, 5, 77, 102] {
            assert_eq!(normal(9, 3, i).to_bits(), long[i as usize].to_bits());
        }
        assert_ne!(normal(9, 3, 0), normal(10, 3, 0));
        assert_ne!(normal(9, 3, 0), normal(9, 4, 0));
        assert_ne!(normal(1 << 32, 3, 0), normal(0, 3, 0));
    }
}
