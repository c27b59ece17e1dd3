//! The bounds every input is held to, checked before anything sized by the input is allocated:
//! memory for a checkpoint's tensors, the size of small files, the guidance scale, and the
//! sampled images themselves (finite, or an error).

use std::ops::RangeInclusive;

use crate::error::{Error, Result};

/// The memory a checkpoint's f32 tensors may take unless the caller allows more.
pub const DEFAULT_MAX_MEMORY: u64 = 2 << 30;

/// `config.json` and vocabulary files: a few kilobytes in practice.
pub const MAX_SMALL_FILE: u64 = 16 << 20;

/// Classifier-free guidance scales a request may ask for. Past about 10 the samples saturate;
/// far past it the guided update overflows f32 and the image turns to a few flat colours.
pub const GUIDANCE: RangeInclusive<f32> = 0.0..=20.0;

/// How much a checkpoint may cost to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadOptions {
    /// Bytes of f32 tensors (and, for formats read whole, of the file itself).
    pub max_memory: u64,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { max_memory: DEFAULT_MAX_MEMORY }
    }
}

impl LoadOptions {
    /// Refuses `needed` bytes (None: more than 2^64) for `what` past the limit.
    pub fn check(&self, what: &str, needed: Option<u64>) -> Result<()> {
        match needed {
            Some(bytes) if bytes <= self.max_memory => Ok(()),
            _ => Err(Error::MemoryLimit {
                what: what.into(),
                needed: needed.map_or("more than 2^64".into(), |b| b.to_string()),
                limit: self.max_memory,
            }),
        }
    }
}

/// The f32 bytes of a tensor of `shape`, if they fit in a u64.
pub fn f32_bytes(shape: &[usize]) -> Option<u64> {
    shape.iter().try_fold(4u64, |acc, &d| acc.checked_mul(d as u64))
}

/// Refuses a guidance scale outside [`GUIDANCE`].
pub fn check_guidance(guidance: f32) -> Result<()> {
    if GUIDANCE.contains(&guidance) {
        return Ok(());
    }
    Err(Error::Request(format!("guidance must be in {}..={}, found {guidance}", GUIDANCE.start(), GUIDANCE.end())))
}

/// Refuses sampled images holding NaN or Inf, which would otherwise be written as black or
/// flat-coloured pixels with a success code.
pub fn check_finite_output(images: &[f32]) -> Result<()> {
    match images.iter().filter(|v| !v.is_finite()).count() {
        0 => Ok(()),
        count => Err(Error::NonFiniteOutput { count, total: images.len() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guidance_range_ends_are_inclusive_and_nan_is_refused() {
        for ok in [0.0, 1.0, 3.0, 20.0] {
            check_guidance(ok).unwrap();
        }
        for bad in [-0.5, 20.5, 1e30, f32::NAN, f32::INFINITY] {
            let err = check_guidance(bad).unwrap_err().to_string();
            assert!(err.contains("0..=20"), "{err}");
        }
    }

    #[test]
    fn memory_check_counts_overflow_as_too_much() {
        let opts = LoadOptions { max_memory: 100 };
        opts.check("x", Some(100)).unwrap();
        assert!(opts.check("x", Some(101)).is_err());
        assert!(opts.check("x", f32_bytes(&[usize::MAX, 2])).unwrap_err().to_string().contains("more than 2^64"));
        assert_eq!(f32_bytes(&[3, 5]), Some(60));
    }

    #[test]
    fn non_finite_output_is_counted() {
        check_finite_output(&[0.0, -1.0, 1.0]).unwrap();
        let err = check_finite_output(&[0.0, f32::NAN, f32::INFINITY, 2.0]).unwrap_err();
        assert!(matches!(err, Error::NonFiniteOutput { count: 2, total: 4 }), "{err}");
    }
}
