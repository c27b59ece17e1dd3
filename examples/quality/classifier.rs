//! The benchmark's frozen word classifier (trained by train/classifier.py) in candle: eight 3×3
//! convolutions with ReLU, a 2×2 max pool after every second one but the last, a global mean
//! (the 256-wide features) and a linear head over the vocabulary.

use std::path::Path;

use anyhow::{ensure, Context, Result};
use candle_core::{DType, Device, Tensor, D};

const CONVS: usize = 8;

pub struct Classifier {
    convs: Vec<(Tensor, Tensor)>,
    head: (Tensor, Tensor),
    /// The words it scores; index i is logit i.
    pub vocab: Vec<String>,
}

impl Classifier {
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read the classifier {}", path.display()))?;
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)?;
        let vocab: Vec<String> = serde_json::from_str(
            meta.metadata().as_ref().and_then(|m| m.get("vocab")).context("classifier file has no `vocab` metadata")?,
        )?;
        let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)?;
        let get = |name: &str| -> Result<Tensor> {
            Ok(tensors.get(name).with_context(|| format!("classifier file has no `{name}`"))?.to_dtype(DType::F32)?)
        };
        let convs = (0..CONVS)
            .map(|i| Ok((get(&format!("conv{i}.weight"))?, get(&format!("conv{i}.bias"))?)))
            .collect::<Result<Vec<_>>>()?;
        let head = (get("head.weight")?, get("head.bias")?);
        ensure!(head.0.dim(0)? == vocab.len(), "classifier head has {} rows for {} words", head.0.dim(0)?, vocab.len());
        Ok(Classifier { convs, head, vocab })
    }

    /// Features `[N, 256]` of RGB images `[N, 3, 64, 64]` in [-1, 1].
    pub fn features(&self, images: &Tensor) -> Result<Tensor> {
        let mut x = images.clone();
        for (i, (w, b)) in self.convs.iter().enumerate() {
            x = x.conv2d(w, 1, 1, 1, 1)?.broadcast_add(&b.reshape((1, (), 1, 1))?)?.relu()?;
            if i % 2 == 1 && i < CONVS - 1 {
                x = x.max_pool2d(2)?;
            }
        }
        Ok(x.mean(D::Minus1)?.mean(D::Minus1)?)
    }

    /// Logits `[N, words]` from features.
    pub fn logits(&self, features: &Tensor) -> Result<Tensor> {
        Ok(features.matmul(&self.head.0.t()?)?.broadcast_add(&self.head.1)?)
    }

    /// Features and logits of many images, in chunks (the convolutions are memory-hungry).
    pub fn run(&self, images: &[f32], count: usize) -> Result<(Vec<Vec<f32>>, Vec<Vec<f32>>)> {
        let len = images.len() / count.max(1);
        let (mut feats, mut logits) = (Vec::with_capacity(count), Vec::with_capacity(count));
        for chunk in images.chunks(len * 64) {
            let n = chunk.len() / len;
            let x = Tensor::from_slice(chunk, (n, 3, 64, 64), &Device::Cpu)?;
            let f = self.features(&x)?;
            logits.extend(self.logits(&f)?.to_vec2::<f32>()?);
            feats.extend(f.to_vec2::<f32>()?);
        }
        Ok((feats, logits))
    }

    pub fn word(&self, word: &str) -> Option<usize> {
        self.vocab.iter().position(|w| w == word)
    }
}

/// Whether `class` is among the five largest logits.
pub fn in_top5(logits: &[f32], class: usize) -> bool {
    let score = logits[class];
    logits.iter().filter(|&&v| v > score).count() < 5
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
    }

    /// train/classifier.py wrote eight held-out icons with the PyTorch logits and features of the
    /// exported (folded, f16) weights, computed in f32: candle must reproduce them.
    #[test]
    fn classifier_matches_pytorch_on_held_out_icons() -> Result<()> {
        let classifier = Classifier::load(&root().join("train/quality/classifier.safetensors"))?;
        let io = candle_core::safetensors::load(root().join("tests/fixtures/classifier_io.safetensors"), &Device::Cpu)?;
        let f = classifier.features(&io["images"])?;
        let logits = classifier.logits(&f)?;
        for (ours, theirs) in [(&f, &io["features"]), (&logits, &io["logits"])] {
            let scale = theirs.abs()?.max_all()?.to_scalar::<f32>()?;
            let diff = (ours - theirs)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(diff <= 1e-4 * scale.max(1.0), "max difference {diff} at scale {scale}");
        }
        Ok(())
    }

    #[test]
    fn top5_counts_strictly_larger_logits() {
        let logits = [0.0, 5.0, 4.0, 3.0, 2.0, 1.0, 6.0];
        assert!(in_top5(&logits, 4)); // 2.0 is fifth
        assert!(!in_top5(&logits, 5)); // 1.0 is sixth
        assert!(!in_top5(&logits, 0));
        assert!(in_top5(&logits, 6));
    }
}
