//! The real icons the benchmark compares with: the file examples/dataset.rs writes, split by the
//! frozen held-out list, drawn on mid-grey like the samples.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::metrics::GREY;

/// The colours train/icons.py paints glyphs in; a real glyph here gets one by its index, so the
/// reference set shows every colour.
const PALETTE: [[f32; 3]; 10] = [
    [0.86, 0.16, 0.16],
    [0.96, 0.55, 0.10],
    [0.98, 0.82, 0.12],
    [0.20, 0.66, 0.25],
    [0.16, 0.40, 0.86],
    [0.52, 0.26, 0.74],
    [0.95, 0.45, 0.68],
    [0.55, 0.34, 0.18],
    [0.10, 0.10, 0.10],
    [0.50, 0.50, 0.50],
];

#[derive(Deserialize)]
pub struct Icon {
    pub set: String,
    pub name: String,
    /// Vocabulary rows (word i is row i + 1).
    pub words: Vec<usize>,
    #[serde(default)]
    pub mono: bool,
}

impl Icon {
    pub fn key(&self) -> String {
        format!("{}:{}", self.set, self.name)
    }
}

pub struct Icons {
    bytes: Vec<u8>,
    offset: usize,
    pub size: usize,
    pub vocab: Vec<String>,
    pub icons: Vec<Icon>,
    pub held_out: Vec<bool>,
}

impl Icons {
    pub fn load(path: &Path, heldout: &Path) -> Result<Self> {
        if path.extension().is_some_and(|e| e == "xz") {
            bail!("{}: decompress it first (xz -dk)", path.display());
        }
        let bytes = std::fs::read(path).with_context(|| {
            format!(
                "cannot read the icon set {} (train/fetch_sources.sh, then cargo run --release --example dataset)",
                path.display()
            )
        })?;
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)?;
        let meta = meta.metadata().as_ref().context("icon file has no metadata")?;
        let vocab: Vec<String> = serde_json::from_str(meta.get("vocab").context("icon file has no vocab")?)?;
        let icons: Vec<Icon> = serde_json::from_str(meta.get("icons").context("icon file has no icons")?)?;
        let (count, size, offset) = locate_pixels(&bytes)?;
        if count != icons.len() {
            bail!("icon file: {count} images for {} icons", icons.len());
        }
        let listed: HashSet<String> = std::fs::read_to_string(heldout)
            .with_context(|| format!("cannot read the held-out list {}", heldout.display()))?
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect();
        let held_out: Vec<bool> = icons.iter().map(|i| listed.contains(&i.key())).collect();
        let found = held_out.iter().filter(|&&h| h).count();
        if found != listed.len() {
            bail!(
                "{} of {} held-out icons are not in {}: another data set?",
                listed.len() - found,
                listed.len(),
                path.display()
            );
        }
        Ok(Icons { offset, bytes, size, vocab, icons, held_out })
    }

    pub fn len(&self) -> usize {
        self.icons.len()
    }

    /// Icon `k` as premultiplied RGBA in [0, 1], planar `[4, H, W]`; glyphs painted.
    pub fn rgba(&self, k: usize) -> Vec<f32> {
        let plane = self.size * self.size;
        let start = self.offset + k * plane * 4;
        let pixels = &self.bytes[start..start + plane * 4];
        let mut out = vec![0.0; 4 * plane];
        let colour = PALETTE[k % PALETTE.len()];
        for i in 0..plane {
            let a = pixels[i * 4 + 3] as f32 / 255.0;
            for c in 0..3 {
                out[c * plane + i] = if self.icons[k].mono { colour[c] * a } else { pixels[i * 4 + c] as f32 / 255.0 };
            }
            out[3 * plane + i] = a;
        }
        out
    }

    /// Icon `k` as RGB in [0, 1] on mid-grey, and its alpha.
    pub fn on_grey(&self, k: usize) -> (Vec<f32>, Vec<f32>) {
        let plane = self.size * self.size;
        let rgba = self.rgba(k);
        let alpha = rgba[3 * plane..].to_vec();
        let rgb = (0..3 * plane).map(|j| rgba[j] + GREY * (1.0 - alpha[j % plane])).collect();
        (rgb, alpha)
    }

    /// Whether icon `k` carries the vocabulary word `word`.
    pub fn has_word(&self, k: usize, word: &str) -> bool {
        self.vocab.iter().position(|w| w == word).is_some_and(|i| self.icons[k].words.contains(&(i + 1)))
    }
}

/// (images, side, byte offset) of the file's `rgba` tensor, `[N, S, S, 4]` u8.
fn locate_pixels(bytes: &[u8]) -> Result<(usize, usize, usize)> {
    let tensors = safetensors::SafeTensors::deserialize(bytes)?;
    let view = tensors.tensor("rgba").context("icon file has no `rgba` tensor")?;
    let offset = view.data().as_ptr() as usize - bytes.as_ptr() as usize;
    match view.shape() {
        [n, h, w, 4] if h == w && view.dtype() == safetensors::Dtype::U8 => Ok((*n, *h, offset)),
        shape => bail!("icon file: `rgba` is {shape:?} {:?}, expected [N, S, S, 4] u8", view.dtype()),
    }
}
