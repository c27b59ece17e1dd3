//! Checkpoints: `config.json` + `model.safetensors` (+ a vocabulary), validated tensor by tensor
//! before the model sees them. Weights are stored `[out, in]` as in PyTorch, in f32, f16 or bf16.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use safetensors::{Dtype, SafeTensors};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::fsio;
use crate::limits::{f32_bytes, LoadOptions, MAX_SMALL_FILE};
use crate::model::{position_embedding, Dit};
use crate::state_dict::PROMPT_EMBED;
use crate::vocab::Vocab;

pub use crate::state_dict::{expected_tensors, POS_EMBED_BUFFER, X0_HEAD};

mod header;

/// Named f32 tensors `(shape, values)`, as [`Checkpoint::from_raw`] takes them.
pub type RawTensors = HashMap<String, (Vec<usize>, Vec<f32>)>;

pub const CONFIG_FILE: &str = "config.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// A validated checkpoint: every tensor present, of the right shape, finite, in f32 on the CPU.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub config: Config,
    pub vocab: Option<Vocab>,
    pub tensors: HashMap<String, Tensor>,
}

/// A small file beside the weights (config, vocabulary): regular, non-empty, at most 16 MiB.
fn read_small_file(path: &Path) -> Result<Vec<u8>> {
    let bytes = fsio::read_regular(path, MAX_SMALL_FILE)?;
    if bytes.is_empty() {
        return Err(Error::EmptyFile { path: path.into() });
    }
    Ok(bytes)
}

/// Reads `config.json` from `dir`, with its vocabulary (inline or from `vocab_file`).
pub fn read_config(dir: &Path) -> Result<(Config, Option<Vocab>)> {
    let path = dir.join(CONFIG_FILE);
    let text = String::from_utf8(read_small_file(&path)?)
        .map_err(|_| Error::Config { path: path.display().to_string(), message: "not UTF-8".into() })?;
    let config = Config::from_json(&text, &path.display().to_string())?;
    let vocab = match (&config.vocab, &config.vocab_file) {
        (Some(words), _) => Some(Vocab::new(words.clone())?),
        (None, Some(file)) => {
            if Path::new(file).components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
                return Err(Error::Config {
                    path: path.display().to_string(),
                    message: format!("`vocab_file` must be a plain name beside config.json, found `{file}`"),
                });
            }
            let bytes = read_small_file(&dir.join(file))?;
            Some(Vocab::from_file_bytes(&bytes, file)?)
        }
        (None, None) => None,
    };
    Ok((config, vocab))
}

fn to_f32(name: &str, dtype: Dtype, data: &[u8]) -> Result<Vec<f32>> {
    let values: Vec<f32> = match dtype {
        Dtype::F32 => data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        Dtype::F16 => data.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        Dtype::BF16 => data.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        other => return Err(Error::BadDtype { name: name.into(), found: format!("{other:?}") }),
    };
    Ok(values)
}

/// The tensors of a safetensors image, converted to f32, under their own names. Before any
/// tensor is converted, the header alone is checked: with `expected` names, any other tensor
/// is refused; the f32 copies must fit in `options.max_memory`.
pub(crate) fn safetensors_raw(
    bytes: &[u8],
    what: &str,
    expected: Option<&HashSet<String>>,
    options: &LoadOptions,
) -> Result<RawTensors> {
    let Some(head) = bytes.first_chunk::<8>() else {
        return Err(Error::checkpoint(
            what,
            format!("truncated: {} bytes, expected an 8-byte header length first", bytes.len()),
        ));
    };
    let claimed = u64::from_le_bytes(*head);
    if claimed > (bytes.len() - 8) as u64 {
        return Err(Error::checkpoint(
            what,
            format!("the header claims {claimed} bytes, but only {} follow the length field", bytes.len() - 8),
        ));
    }
    let file = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::checkpoint(what, header::explain(bytes).unwrap_or_else(|| format!("safetensors: {e}"))))?;
    let views = file.tensors();
    if let Some(expected) = expected {
        if let Some((name, view)) = views.iter().filter(|(n, _)| !expected.contains(n)).min_by(|a, b| a.0.cmp(&b.0)) {
            return Err(Error::ExtraTensor { name: name.clone(), shape: view.shape().to_vec() });
        }
    }
    let needed = views.iter().try_fold(0u64, |sum, (_, view)| f32_bytes(view.shape())?.checked_add(sum));
    options.check(&format!("{what} (its tensors as f32)"), needed)?;
    let mut tensors = HashMap::new();
    for (name, view) in views {
        let values = to_f32(&name, view.dtype(), view.data())?;
        tensors.insert(name, (view.shape().to_vec(), values));
    }
    Ok(tensors)
}

impl Checkpoint {
    /// Opens a checkpoint folder: `config.json`, `model.safetensors` and the vocabulary, if any.
    /// The weights file is memory-mapped and read once.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(dir, &LoadOptions::default())
    }

    /// [`Checkpoint::open`] within `options`' memory limit.
    pub fn open_with(dir: impl AsRef<Path>, options: &LoadOptions) -> Result<Self> {
        let dir = dir.as_ref();
        if !dir.exists() {
            return Err(Error::io(dir, std::io::Error::new(std::io::ErrorKind::NotFound, "no such checkpoint folder")));
        }
        if !dir.is_dir() {
            return Err(Error::Config {
                path: dir.display().to_string(),
                message: "expected a folder holding config.json and model.safetensors".into(),
            });
        }
        let (config, vocab) = read_config(dir)?;
        let weights = dir.join(WEIGHTS_FILE);
        Self::from_safetensors_file_with(config, vocab, &weights, options)
    }

    pub fn from_safetensors_file(config: Config, vocab: Option<Vocab>, path: &Path) -> Result<Self> {
        Self::from_safetensors_file_with(config, vocab, path, &LoadOptions::default())
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn from_safetensors_file_with(
        config: Config,
        vocab: Option<Vocab>,
        path: &Path,
        options: &LoadOptions,
    ) -> Result<Self> {
        // A file larger than the f32 tensors it may hold plus a header cannot pass the memory check.
        let (file, len) = fsio::open_regular(path, options.max_memory.saturating_add(MAX_SMALL_FILE))?;
        if len == 0 {
            return Err(Error::EmptyFile { path: path.into() });
        }
        // SAFETY: the map is read-only and dropped before this function returns; a file
        // truncated underneath us is the one hazard, as with any mmapped loader.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        Self::from_safetensors_bytes_with(config, vocab, &map, &path.display().to_string(), options)
    }

    #[cfg(target_arch = "wasm32")]
    fn from_safetensors_file_with(
        config: Config,
        vocab: Option<Vocab>,
        path: &Path,
        options: &LoadOptions,
    ) -> Result<Self> {
        let bytes = fsio::read_regular(path, options.max_memory.saturating_add(MAX_SMALL_FILE))?;
        Self::from_safetensors_bytes_with(config, vocab, &bytes, &path.display().to_string(), options)
    }

    /// Validates a safetensors image against `config`; `what` names the source in errors.
    pub fn from_safetensors_bytes(config: Config, vocab: Option<Vocab>, bytes: &[u8], what: &str) -> Result<Self> {
        Self::from_safetensors_bytes_with(config, vocab, bytes, what, &LoadOptions::default())
    }

    /// [`Checkpoint::from_safetensors_bytes`] within `options`' memory limit. Tensors the
    /// config does not use are refused from the header, before any is converted.
    pub fn from_safetensors_bytes_with(
        config: Config,
        vocab: Option<Vocab>,
        bytes: &[u8],
        what: &str,
        options: &LoadOptions,
    ) -> Result<Self> {
        if bytes.is_empty() {
            return Err(Error::EmptyFile { path: PathBuf::from(what) });
        }
        config.validate().map_err(|message| Error::Config { path: "config".into(), message })?;
        let mut expected: HashSet<String> = expected_tensors(&config, Some(1)).into_iter().map(|(n, _)| n).collect();
        expected.insert(POS_EMBED_BUFFER.into());
        Self::from_raw(config, vocab, safetensors_raw(bytes, what, Some(&expected), options)?)
    }

    /// Validates named f32 tensors (shape, values) against `config`.
    pub fn from_raw(
        config: Config,
        vocab: Option<Vocab>,
        mut raw: HashMap<String, (Vec<usize>, Vec<f32>)>,
    ) -> Result<Self> {
        config.validate().map_err(|message| Error::Config { path: "config".into(), message })?;
        if let Some((shape, values)) = raw.remove(POS_EMBED_BUFFER) {
            check_position_buffer(&config, &shape, &values)?;
        }
        let prompt_rows = match (raw.get(PROMPT_EMBED), &vocab) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(Error::checkpoint(
                    PROMPT_EMBED,
                    "the checkpoint is prompt-conditioned but config.json names no vocabulary",
                ))
            }
            (Some(_), Some(v)) => Some(v.len() + 1),
        };
        let expected = expected_tensors(&config, prompt_rows);
        let mut tensors = HashMap::with_capacity(expected.len());
        for (name, shape) in &expected {
            let Some((found, values)) = raw.remove(name) else {
                return Err(Error::MissingTensor { name: name.clone(), expected: shape.clone() });
            };
            if &found != shape {
                return Err(Error::ShapeMismatch { name: name.clone(), expected: shape.clone(), found });
            }
            check_finite(name, &values)?;
            tensors.insert(name.clone(), Tensor::from_vec(values, shape.as_slice(), &Device::Cpu)?);
        }
        if let Some((name, (shape, _))) = raw.into_iter().min_by(|a, b| a.0.cmp(&b.0)) {
            return Err(Error::ExtraTensor { name, shape });
        }
        let vocab = if prompt_rows.is_some() { vocab } else { None };
        Ok(Checkpoint { config, vocab, tensors })
    }

    /// Validates candle tensors (any float dtype, any device) against `config`.
    pub fn from_tensors(config: Config, vocab: Option<Vocab>, tensors: HashMap<String, Tensor>) -> Result<Self> {
        let raw = tensors
            .into_iter()
            .map(|(name, t)| {
                let values = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
                Ok((name, (t.dims().to_vec(), values)))
            })
            .collect::<Result<_>>()?;
        Self::from_raw(config, vocab, raw)
    }

    pub fn is_conditional(&self) -> bool {
        self.tensors.contains_key(PROMPT_EMBED)
    }

    pub fn parameter_count(&self) -> usize {
        self.tensors.values().map(|t| t.elem_count()).sum()
    }

    /// The candle model over these tensors.
    pub fn model(&self) -> Result<Dit> {
        let vb = VarBuilder::from_tensors(self.tensors.clone(), DType::F32, &Device::Cpu);
        let rows = self.is_conditional().then(|| self.vocab.as_ref().map_or(1, |v| v.len() + 1));
        Ok(Dit::new(&self.config, rows, vb)?)
    }

    /// Encodes a prompt to `prompt_embed` rows, refusing words the vocabulary lacks.
    pub fn encode_prompt(&self, prompt: &str) -> Result<Vec<u32>> {
        match &self.vocab {
            Some(vocab) => vocab.encode(prompt),
            None if prompt.trim().is_empty() => Ok(Vec::new()),
            None => Err(Error::PromptOnUnconditional { prompt: prompt.into() }),
        }
    }

    /// Writes `config.json` (with the vocabulary inline) and `model.safetensors` in `dtype` as a
    /// new folder that replaces `dir` whole, so a reader finds the old checkpoint or the new
    /// one, never a mix. An existing `dir` may hold only those two files.
    pub fn save(&self, dir: impl AsRef<Path>, dtype: DType) -> Result<()> {
        let dir = dir.as_ref();
        let mut config = self.config.clone();
        config.vocab = self.vocab.as_ref().map(|v| v.words().to_vec());
        config.vocab_file = None;
        let json = serde_json::to_string_pretty(&config).map_err(|e| Error::checkpoint("config", e.to_string()))?;
        let converted =
            self.tensors.iter().map(|(k, v)| Ok((k.clone(), v.to_dtype(dtype)?))).collect::<Result<HashMap<_, _>>>()?;
        let new = fsio::NewDir::beside(dir)?;
        new.write(CONFIG_FILE, (json + "\n").as_bytes())?;
        let weights = new.path_of(WEIGHTS_FILE);
        candle_core::safetensors::save(&converted, &weights).map_err(|e| match e {
            candle_core::Error::Io(io) => Error::write(dir.join(WEIGHTS_FILE), io),
            other => Error::write(dir.join(WEIGHTS_FILE), std::io::Error::other(other.to_string())),
        })?;
        new.commit(&[CONFIG_FILE, WEIGHTS_FILE])
    }
}

fn check_position_buffer(cfg: &Config, shape: &[usize], values: &[f32]) -> Result<()> {
    let expected_shape = vec![cfg.tokens(), cfg.dim];
    if shape != expected_shape.as_slice() {
        return Err(Error::ShapeMismatch {
            name: POS_EMBED_BUFFER.into(),
            expected: expected_shape,
            found: shape.to_vec(),
        });
    }
    check_finite(POS_EMBED_BUFFER, values)?;
    let computed = position_embedding(cfg);
    let worst = computed.iter().zip(values).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    // f16 storage rounds values of magnitude ≤ 1 by at most 2^-11.
    if worst > 1e-3 {
        return Err(Error::checkpoint(
            POS_EMBED_BUFFER,
            format!("differs from the computed 2-D sinusoid by up to {worst}; this checkpoint uses another position embedding"),
        ));
    }
    Ok(())
}

/// NaN or Inf weights are refused: they would silently turn every sample into NaN.
fn check_finite(name: &str, values: &[f32]) -> Result<()> {
    match values.iter().filter(|v| !v.is_finite()).count() {
        0 => Ok(()),
        count => Err(Error::NonFinite { name: name.into(), count }),
    }
}
