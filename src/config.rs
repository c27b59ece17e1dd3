//! The model's shape and schedule, read from `config.json` beside the weights.
//! The defaults are the seed's "hippo" configuration.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// 3 = opaque RGB; 4 = premultiplied RGBA (R·A, G·A, B·A, A).
pub const CHANNELS: [usize; 2] = [3, 4];
/// Four times the favicon's 64 px.
pub const MAX_IMAGE_SIZE: usize = 256;
/// Tokens per image: attention costs tokens² per head, and the GPU kernels hold a row of scores.
pub const MAX_TOKENS: usize = 1024;
/// `dim`, `heads` × `head_dim` and the head count.
pub const MAX_WIDTH: usize = 4096;
pub const MAX_HEAD_DIM: usize = 256;
pub const MAX_DEPTH: usize = 64;
pub const MAX_MLP_MULT: usize = 16;
pub const MAX_TIME_DIM: usize = 1024;
pub const MAX_TIMESTEPS: usize = 10_000;
/// Prompt words, inline or in `vocab_file`.
pub const MAX_VOCAB: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub image_size: usize,
    pub patch_size: usize,
    /// 3: opaque RGB. 4: premultiplied RGBA, planar R·A, G·A, B·A, A (the colour planes over
    /// `matte`). Each channel is mapped from [0, 1] to [-1, 1] (`v * 2 - 1`), so with `matte` 0
    /// a transparent pixel is -1 in all four. `src/alpha.rs` converts to and from 8-bit RGBA.
    pub channels: usize,
    pub dim: usize,
    pub depth: usize,
    pub heads: usize,
    pub head_dim: usize,
    pub mlp_mult: usize,
    pub time_dim: usize,
    /// Number of diffusion timesteps T.
    pub timesteps: usize,
    /// The cosine schedule's offset s. The default, 1e-4, is what the seed's browser sampler
    /// uses; the seed trains with 3e-5 (`train_hippos.py`), so a checkpoint trained that way
    /// samples as trained with `"schedule_offset": 3e-5` in its config.json.
    pub schedule_offset: f64,
    /// RMS-normalise each head's queries and keys before q·kᵀ/√d (no parameters), which bounds
    /// the attention logits by √d. Off in the seed's architecture; on in the shipped model,
    /// whose training diverged without it (logits grew past 10⁵, train/TRAINING_LOG.md).
    pub qk_norm: bool,
    /// Four channels (RGBA) only: the colour channels hold the premultiplied colour over this grey
    /// matte, `c·a + matte·(1 − a)` in [0, 1] before the usual mapping to [-1, 1]; 0 is plain
    /// premultiplied alpha. The shipped RGBA model uses 0.86, the mean of the pastel backgrounds
    /// its RGB parent was trained on, so it started from that model (train/widen.py).
    pub matte: f32,
    /// Whether the checkpoint has the x0 head (`proj_fin`). The seed's browser export (WTS1) has
    /// none; without it every sampler step goes through ε, as the seed's own sampler does, and
    /// the x0 previews are derived from ε.
    pub x0_head: bool,
    /// Prompt words, in `prompt_embed` row order (row 0 is the empty prompt, so word i is row i + 1).
    pub vocab: Option<Vec<String>>,
    /// A file beside `config.json` with one vocabulary word per line, used when `vocab` is absent.
    pub vocab_file: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            image_size: 64,
            patch_size: 8,
            channels: 3,
            dim: 512,
            depth: 4,
            heads: 1,
            head_dim: 128,
            mlp_mult: 4,
            time_dim: 128,
            timesteps: 32,
            schedule_offset: 1e-4,
            qk_norm: false,
            matte: 0.0,
            x0_head: true,
            vocab: None,
            vocab_file: None,
        }
    }
}

impl Config {
    pub fn grid(&self) -> usize {
        self.image_size / self.patch_size
    }
    pub fn tokens(&self) -> usize {
        self.grid() * self.grid()
    }
    pub fn patch_dim(&self) -> usize {
        self.channels * self.patch_size * self.patch_size
    }
    pub fn inner_dim(&self) -> usize {
        self.heads * self.head_dim
    }
    pub fn mlp_dim(&self) -> usize {
        self.dim * self.mlp_mult
    }
    pub fn image_len(&self) -> usize {
        self.channels * self.image_size * self.image_size
    }

    pub fn from_json(text: &str, path: &str) -> Result<Self> {
        let cfg: Config =
            serde_json::from_str(text).map_err(|e| Error::Config { path: path.into(), message: e.to_string() })?;
        cfg.validate().map_err(|message| Error::Config { path: path.into(), message })?;
        Ok(cfg)
    }

    /// Checks every field against what the model can run, and the relations between fields,
    /// before anything sized by them is allocated.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let bounded = [
            ("image_size", self.image_size, MAX_IMAGE_SIZE),
            ("patch_size", self.patch_size, MAX_IMAGE_SIZE),
            ("dim", self.dim, MAX_WIDTH),
            ("depth", self.depth, MAX_DEPTH),
            ("heads", self.heads, MAX_WIDTH),
            ("head_dim", self.head_dim, MAX_HEAD_DIM),
            ("mlp_mult", self.mlp_mult, MAX_MLP_MULT),
            ("time_dim", self.time_dim, MAX_TIME_DIM),
            ("timesteps", self.timesteps, MAX_TIMESTEPS),
        ];
        for (name, value, max) in bounded {
            if value == 0 {
                return Err(format!("`{name}` must be positive, found 0"));
            }
            if value > max {
                return Err(format!("`{name}` = {value} is beyond any model this library runs (max {max})"));
            }
        }
        if !CHANNELS.contains(&self.channels) {
            return Err(format!("`channels` must be 3 (RGB) or 4 (premultiplied RGBA), found {}", self.channels));
        }
        if !self.image_size.is_multiple_of(self.patch_size) {
            return Err(format!(
                "`image_size` ({}) must be a multiple of `patch_size` ({})",
                self.image_size, self.patch_size
            ));
        }
        if !self.dim.is_multiple_of(4) {
            return Err(format!("`dim` must be a multiple of 4 (two sinusoid halves per axis), found {}", self.dim));
        }
        if !self.time_dim.is_multiple_of(2) || self.time_dim < 4 {
            return Err(format!("`time_dim` must be even and at least 4, found {}", self.time_dim));
        }
        if !(0.0..=1.0).contains(&self.matte) {
            return Err(format!("`matte` must be in [0, 1], found {}", self.matte));
        }
        if self.matte != 0.0 && self.channels != 4 {
            return Err(format!("`matte` is for 4-channel (RGBA) models, found {} channels", self.channels));
        }
        if self.tokens() > MAX_TOKENS {
            return Err(format!(
                "`image_size` {} with `patch_size` {} makes {} tokens, more than the {MAX_TOKENS} this library runs",
                self.image_size,
                self.patch_size,
                self.tokens()
            ));
        }
        if self.inner_dim() > MAX_WIDTH {
            return Err(format!(
                "`heads` × `head_dim` = {} is beyond any model this library runs (max {MAX_WIDTH})",
                self.inner_dim()
            ));
        }
        if let Some(words) = &self.vocab {
            if words.len() > MAX_VOCAB {
                return Err(format!("`vocab` holds {} words, more than the {MAX_VOCAB} allowed", words.len()));
            }
        }
        if !(self.schedule_offset >= 0.0 && self.schedule_offset < 1.0) {
            return Err(format!("`schedule_offset` must be in [0, 1), found {}", self.schedule_offset));
        }
        Ok(())
    }
}
