//! The config a set of tensors implies. Shapes fix most fields; the rest (how `inner` splits
//! into heads, how `patch_dim` splits into channels and patch size without a position buffer,
//! the schedule) are not in any shape, so they come from [`Hints`] or the seed's defaults, and
//! every such guess is reported as a note.

use super::RawTensors;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::weights::X0_HEAD;

/// The cosine schedule offset s the seed's `train_hippos.py` trains with; its browser sampler,
/// like [`Config::default`], samples with 1e-4.
pub const SEED_TRAINING_OFFSET: f64 = 3e-5;

/// What the caller knows that the shapes do not say.
#[derive(Debug, Clone, Default)]
pub struct Hints {
    pub heads: Option<usize>,
    pub channels: Option<usize>,
    pub image_size: Option<usize>,
    pub timesteps: Option<usize>,
    pub schedule_offset: Option<f64>,
    /// The prompt words, in `prompt_embed` row order (row 0 is the empty prompt).
    pub vocab: Option<Vec<String>>,
}

/// An inferred config and the guesses that went into it.
#[derive(Debug, Clone)]
pub struct Inferred {
    pub config: Config,
    pub notes: Vec<String>,
}

fn shape<'a>(tensors: &'a RawTensors, name: &str, rank: usize) -> Result<&'a [usize]> {
    match tensors.get(name) {
        Some((shape, _)) if shape.len() == rank => Ok(shape),
        Some((shape, _)) => {
            Err(Error::checkpoint(name, format!("expected a rank-{rank} tensor, found shape {shape:?}")))
        }
        None => Err(Error::checkpoint(name, "missing; the config cannot be inferred without it")),
    }
}

fn exact_root(value: usize) -> Option<usize> {
    let root = (value as f64).sqrt().round() as usize;
    (root.checked_mul(root) == Some(value)).then_some(root)
}

/// Infers the config of `tensors` (named as in our state dict).
pub fn infer_config(tensors: &RawTensors, hints: &Hints) -> Result<Inferred> {
    let defaults = Config::default();
    let mut notes = Vec::new();
    let embed = shape(tensors, "patch_embed.weight", 2)?;
    let (dim, patch_dim) = (embed[0], embed[1]);
    let time_dim = shape(tensors, "time_mlp.3.weight", 2)?[0];

    let mut depth = 0;
    while tensors.contains_key(&format!("blocks.{depth}.attn.to_q.weight")) {
        depth += 1;
    }
    if depth == 0 {
        return Err(Error::checkpoint("blocks.0.attn.to_q.weight", "missing; no transformer blocks found"));
    }
    let inner = shape(tensors, "blocks.0.attn.to_q.weight", 2)?[0];
    let mlp = shape(tensors, "blocks.0.ff.net.0.weight", 2)?[0];
    if dim == 0 || mlp % dim != 0 {
        return Err(Error::checkpoint(
            "blocks.0.ff.net.0.weight",
            format!("the MLP width {mlp} is not a multiple of dim {dim}"),
        ));
    }

    let heads = match hints.heads {
        Some(h) => h,
        None => {
            notes.push(format!(
                "heads: the shapes give heads × head_dim = {inner} but not the split; assumed 1 head (pass the real count)"
            ));
            1
        }
    };
    if heads == 0 || inner % heads != 0 {
        return Err(Error::Config {
            path: "inferred".into(),
            message: format!("heads = {heads} does not divide the attention width {inner}"),
        });
    }

    // 3·p² = 4·q² has no solution, so at most one of RGB and RGBA splits the patch width.
    let channels = hints.channels.unwrap_or_else(|| {
        let rgba = patch_dim % 3 != 0 && patch_dim % 4 == 0 && exact_root(patch_dim / 4).is_some();
        let (channels, what) = if rgba { (4, "premultiplied RGBA") } else { (defaults.channels, "RGB") };
        notes.push(format!("channels: {channels} ({what}), from the patch width {patch_dim}"));
        channels
    });
    let patch_size = match (patch_dim % channels == 0).then(|| exact_root(patch_dim / channels)).flatten() {
        Some(p) => p,
        None => {
            return Err(Error::checkpoint(
                "patch_embed.weight",
                format!("patch width {patch_dim} is not channels ({channels}) × a square patch"),
            ))
        }
    };
    let grid = match tensors.get(crate::weights::POS_EMBED_BUFFER) {
        Some((shape, _)) if shape.len() == 2 => Some(exact_root(shape[0]).ok_or_else(|| {
            Error::checkpoint(crate::weights::POS_EMBED_BUFFER, format!("{} tokens is not a square grid", shape[0]))
        })?),
        _ => None,
    };
    let image_size = match (hints.image_size, grid) {
        (Some(size), Some(g)) if size != g * patch_size => {
            return Err(Error::Config {
                path: "inferred".into(),
                message: format!("image size {size} given, but the position buffer implies {}", g * patch_size),
            })
        }
        (Some(size), _) => size,
        (None, Some(g)) => g * patch_size,
        (None, None) => {
            notes.push(format!("image_size: no position buffer to read it from; assumed {}", defaults.image_size));
            defaults.image_size
        }
    };
    let timesteps = hints.timesteps.unwrap_or_else(|| {
        notes.push(format!("timesteps: assumed the seed's {}", defaults.timesteps));
        defaults.timesteps
    });
    let schedule_offset = hints.schedule_offset.unwrap_or_else(|| {
        notes.push(format!(
            "schedule_offset: assumed {:e}, the seed's browser sampler's and this library's default; the seed \
             trains with {SEED_TRAINING_OFFSET:e} (train_hippos.py). Set `schedule_offset` in config.json (or \
             the converter's --schedule-offset) to the value the checkpoint was trained with",
            defaults.schedule_offset
        ));
        defaults.schedule_offset
    });
    let x0_head = tensors.contains_key(X0_HEAD[0]);
    if !x0_head {
        notes.push(format!(
            "x0_head: false, the file has no `{}`: every sampler step takes the seed's ε update, and x0 \
             previews are derived from ε",
            X0_HEAD[0]
        ));
    }

    let vocab = match (tensors.get("prompt_embed.weight"), &hints.vocab) {
        (None, _) => None,
        (Some((shape, _)), Some(words)) if shape.first() == Some(&(words.len() + 1)) => Some(words.clone()),
        (Some((shape, _)), Some(words)) => {
            return Err(Error::checkpoint(
                "prompt_embed.weight",
                format!(
                    "has {:?} rows, so a vocabulary of {} words, but {} were given",
                    shape.first(),
                    shape.first().unwrap_or(&1).saturating_sub(1),
                    words.len()
                ),
            ))
        }
        (Some((shape, _)), None) => {
            return Err(Error::checkpoint(
                "prompt_embed.weight",
                format!(
                    "the checkpoint is prompt-conditioned ({} words) but no vocabulary was given; pass the word list",
                    shape.first().unwrap_or(&1).saturating_sub(1)
                ),
            ))
        }
    };

    let config = Config {
        image_size,
        patch_size,
        channels,
        dim,
        depth,
        heads,
        head_dim: inner / heads,
        mlp_mult: mlp / dim,
        time_dim,
        timesteps,
        schedule_offset,
        // The seed's attention has no QK-norm.
        qk_norm: false,
        matte: 0.0,
        x0_head,
        vocab,
        vocab_file: None,
    };
    config.validate().map_err(|message| Error::Config { path: "inferred".into(), message })?;
    Ok(Inferred { config, notes })
}
