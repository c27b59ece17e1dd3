//! The Diffusion Transformer in candle: the CPU reference that every other path is checked against.
//! Module names mirror the seed's PyTorch state dict, so `vb.pp(...)` paths are its keys.

use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::{linear, linear_no_bias, Linear, VarBuilder};

use crate::config::Config;
use crate::patch::{patchify, unpatchify};

pub use crate::state_dict::time_sinusoid_width;

/// The added eps of AdaLN, on the unbiased standard deviation (not inside the sqrt).
pub const ADALN_EPS: f64 = 1e-5;

/// `[sin(p·f_0..f_h), cos(p·f_0..f_h)]` with `f_i = exp(−i·ln(10000)/(h−1))`, `h = width/2`.
pub fn sinusoid(position: f32, width: usize) -> Vec<f32> {
    let half = width / 2;
    let scale = (10000f64).ln() / (half as f64 - 1.0);
    let freqs = (0..half).map(|i| (-(i as f64) * scale).exp());
    let angles: Vec<f64> = freqs.map(|f| position as f64 * f).collect();
    angles.iter().map(|a| a.sin() as f32).chain(angles.iter().map(|a| a.cos() as f32)).collect()
}

/// The fixed 2-D position embedding `[tokens, dim]`: the first half of each row encodes the
/// token's grid row, the second half its grid column.
pub fn position_embedding(cfg: &Config) -> Vec<f32> {
    let grid = cfg.grid();
    (0..cfg.tokens())
        .flat_map(|token| {
            let mut row = sinusoid((token / grid) as f32, cfg.dim / 2);
            row.extend(sinusoid((token % grid) as f32, cfg.dim / 2));
            row
        })
        .collect()
}

/// The prompt vector: the mean of the prompt's `prompt_embed` rows, or row 0 for an empty prompt.
pub fn prompt_vector(table: &Tensor, ids: &[u32]) -> Result<Tensor> {
    let ids: Vec<u32> = if ids.is_empty() { vec![0] } else { ids.to_vec() };
    let idx = Tensor::new(ids.as_slice(), table.device())?;
    table.index_select(&idx, 0)?.mean_keepdim(0)
}

pub struct TimeEmbed {
    width: usize,
    fc1: Linear,
    fc2: Linear,
}

impl TimeEmbed {
    fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        let width = time_sinusoid_width(cfg);
        Ok(TimeEmbed {
            width,
            fc1: linear_no_bias(width, cfg.time_dim, vb.pp("1"))?,
            fc2: linear_no_bias(cfg.time_dim, cfg.time_dim, vb.pp("3"))?,
        })
    }

    /// `t` holds one float timestep per batch row; returns `[B, time_dim]`.
    pub fn forward(&self, t: &[f32], device: &Device) -> Result<Tensor> {
        let rows: Vec<f32> = t.iter().flat_map(|&ti| sinusoid(ti, self.width)).collect();
        let sin = Tensor::from_vec(rows, (t.len(), self.width), device)?;
        self.fc2.forward(&self.fc1.forward(&sin)?.silu()?)
    }
}

/// `lin` on the rows of `x` (`[B, N, D]` or `[M, D]`): one 2-D matmul instead of a batched one,
/// which candle runs faster for a batch of one.
fn linear_rows(lin: &Linear, x: &Tensor) -> Result<Tensor> {
    match x.dims() {
        &[b, n, d] => lin.forward(&x.reshape((b * n, d))?)?.reshape((b, n, ())),
        _ => lin.forward(x),
    }
}

/// AdaLN(x, c) = (x − mean)/(std + eps)·(1 + scale_proj(c)) + shift_proj(c), std unbiased.
/// Every AdaLN's two projections live in one matrix (`Modulation`), applied once per forward
/// pass; this AdaLN reads its slice of the result.
pub struct AdaLn {
    /// Which AdaLN of the model: 2i and 2i + 1 for block i's norm1 and norm2, 2·depth for the final one.
    index: usize,
    dim: usize,
}

impl AdaLn {
    /// `x` is `[B, N, D]`, `mods` is `Modulation::forward`'s `[B, AdaLNs · 2 · D]`.
    pub fn forward(&self, x: &Tensor, mods: &Tensor) -> Result<Tensor> {
        let width = x.dim(D::Minus1)?;
        let centred = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
        let var = (centred.sqr()?.sum_keepdim(D::Minus1)? / (width as f64 - 1.0))?;
        let normed = centred.broadcast_div(&(var.sqrt()? + ADALN_EPS)?)?;
        let at = self.index * 2 * self.dim;
        let scale = (mods.narrow(1, at, self.dim)? + 1.0)?.unsqueeze(1)?;
        let shift = mods.narrow(1, at + self.dim, self.dim)?.unsqueeze(1)?;
        normed.broadcast_mul(&scale)?.broadcast_add(&shift)
    }
}

/// The scale and shift projections of every AdaLN stacked into one `Linear`
/// (`[AdaLNs · 2 · D, time_dim]`, each AdaLN's scale rows then its shift rows): one matmul per
/// forward pass instead of two per AdaLN. Loaded from the checkpoint's `*.scale_proj.weight`
/// and `*.shift_proj.weight`.
struct Modulation {
    proj: Linear,
}

impl Modulation {
    fn new(cfg: &Config, vb: &VarBuilder) -> Result<Self> {
        let mut prefixes: Vec<String> =
            (0..cfg.depth).flat_map(|i| [format!("blocks.{i}.norm1"), format!("blocks.{i}.norm2")]).collect();
        prefixes.push("final_norm".into());
        let mut rows = Vec::new();
        for prefix in &prefixes {
            for proj in ["scale_proj", "shift_proj"] {
                rows.push(vb.pp(prefix).pp(proj).get((cfg.dim, cfg.time_dim), "weight")?);
            }
        }
        Ok(Modulation { proj: Linear::new(Tensor::cat(&rows, 0)?, None) })
    }

    fn forward(&self, c: &Tensor) -> Result<Tensor> {
        self.proj.forward(c)
    }
}

pub struct Attention {
    /// `to_q`, `to_k` and `to_v` stacked: one matmul gives q | k | v side by side.
    qkv: Linear,
    to_out: Linear,
    inner: usize,
    heads: usize,
    head_dim: usize,
    qk_norm: bool,
}

/// The epsilon inside QK-norm's root mean square (`Config::qk_norm`).
pub const QK_NORM_EPS: f64 = 1e-6;

/// `t / sqrt(mean(t², last dim) + eps)`.
fn rms_normalize(t: &Tensor) -> Result<Tensor> {
    let rms = (t.sqr()?.mean_keepdim(candle_core::D::Minus1)? + QK_NORM_EPS)?.sqrt()?;
    t.broadcast_div(&rms)
}

impl Attention {
    fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        let inner = cfg.inner_dim();
        let stacked = ["to_q", "to_k", "to_v"]
            .into_iter()
            .map(|name| vb.pp(name).get((inner, cfg.dim), "weight"))
            .collect::<Result<Vec<_>>>()?;
        Ok(Attention {
            qkv: Linear::new(Tensor::cat(&stacked, 0)?, None),
            to_out: linear_no_bias(inner, cfg.dim, vb.pp("to_out"))?,
            inner,
            heads: cfg.heads,
            head_dim: cfg.head_dim,
            qk_norm: cfg.qk_norm,
        })
    }

    /// The attention core on projected `q, k, v` of `[B, N, H·d]`: softmax(q·kᵀ/√d)·v per head,
    /// with q and k RMS-normalised per head first when `qk_norm` is on.
    pub fn core(&self, q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
        let (b, n, _) = q.dims3()?;
        let split = |t: &Tensor| t.reshape((b, n, self.heads, self.head_dim))?.transpose(1, 2)?.contiguous();
        let (mut q, mut k, v) = (split(q)?, split(k)?, split(v)?);
        if self.qk_norm {
            (q, k) = (rms_normalize(&q)?, rms_normalize(&k)?);
        }
        let scores = (q.matmul(&k.t()?)? / (self.head_dim as f64).sqrt())?;
        let mixed = candle_nn::ops::softmax_last_dim(&scores)?.matmul(&v)?;
        mixed.transpose(1, 2)?.reshape((b, n, self.heads * self.head_dim))
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_traced(x, &mut |_, _| {})
    }

    /// Traces `qkv` (q | k | v side by side, the GPU's fused projection) and `core`.
    fn forward_traced(&self, x: &Tensor, trace: &mut dyn FnMut(&str, &Tensor)) -> Result<Tensor> {
        let qkv = linear_rows(&self.qkv, x)?;
        trace("qkv", &qkv);
        let part = |i: usize| qkv.narrow(D::Minus1, i * self.inner, self.inner);
        let mixed = self.core(&part(0)?, &part(1)?, &part(2)?)?;
        trace("core", &mixed);
        linear_rows(&self.to_out, &mixed)
    }
}

pub struct FeedForward {
    up: Linear,
    down: Linear,
}

impl FeedForward {
    fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        Ok(FeedForward {
            up: linear_no_bias(cfg.dim, cfg.mlp_dim(), vb.pp("net.0"))?,
            down: linear_no_bias(cfg.mlp_dim(), cfg.dim, vb.pp("net.2"))?,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_traced(x, &mut |_, _| {})
    }

    fn forward_traced(&self, x: &Tensor, trace: &mut dyn FnMut(&str, &Tensor)) -> Result<Tensor> {
        let hidden = linear_rows(&self.up, x)?.silu()?;
        trace("hidden", &hidden);
        linear_rows(&self.down, &hidden)
    }
}

pub struct Block {
    pub norm1: AdaLn,
    pub attn: Attention,
    pub norm2: AdaLn,
    pub ff: FeedForward,
}

impl Block {
    fn new(cfg: &Config, index: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Block {
            norm1: AdaLn { index: 2 * index, dim: cfg.dim },
            attn: Attention::new(cfg, vb.pp("attn"))?,
            norm2: AdaLn { index: 2 * index + 1, dim: cfg.dim },
            ff: FeedForward::new(cfg, vb.pp("ff"))?,
        })
    }
}

/// The heads' outputs, unpatchified to `[B, C, H, W]`: ε always, x0 where the checkpoint has
/// the x0 head (`Config::x0_head`).
pub struct Prediction {
    pub eps: Tensor,
    pub x0: Option<Tensor>,
}

pub struct Dit {
    cfg: Config,
    device: Device,
    patch_embed: Linear,
    pos_embed: Tensor,
    time_mlp: TimeEmbed,
    prompt_embed: Option<Tensor>,
    pub blocks: Vec<Block>,
    modulation: Modulation,
    final_norm: AdaLn,
    to_pixels: Linear,
    proj_fin: Option<Linear>,
}

impl Dit {
    /// `conditional` says whether the checkpoint carries `prompt_embed.weight` with `vocab_len + 1` rows.
    pub fn new(cfg: &Config, prompt_rows: Option<usize>, vb: VarBuilder) -> Result<Self> {
        let device = vb.device().clone();
        let pos = position_embedding(cfg);
        Ok(Dit {
            cfg: cfg.clone(),
            patch_embed: linear_no_bias(cfg.patch_dim(), cfg.dim, vb.pp("patch_embed"))?,
            pos_embed: Tensor::from_vec(pos, (cfg.tokens(), cfg.dim), &device)?,
            time_mlp: TimeEmbed::new(cfg, vb.pp("time_mlp"))?,
            prompt_embed: match prompt_rows {
                Some(rows) => Some(vb.pp("prompt_embed").get((rows, cfg.time_dim), "weight")?),
                None => None,
            },
            blocks: (0..cfg.depth).map(|i| Block::new(cfg, i, vb.pp(format!("blocks.{i}")))).collect::<Result<_>>()?,
            modulation: Modulation::new(cfg, &vb)?,
            final_norm: AdaLn { index: 2 * cfg.depth, dim: cfg.dim },
            to_pixels: linear_no_bias(cfg.dim, cfg.patch_dim(), vb.pp("to_pixels"))?,
            proj_fin: match cfg.x0_head {
                true => Some(linear(cfg.dim, cfg.patch_dim(), vb.pp("proj_fin"))?),
                false => None,
            },
            device,
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn is_conditional(&self) -> bool {
        self.prompt_embed.is_some()
    }

    /// The mean prompt-embedding row of each prompt, `[B, time_dim]`. An empty prompt is row 0.
    pub fn prompt_vectors(&self, prompts: &[Vec<u32>]) -> Result<Option<Tensor>> {
        let Some(table) = &self.prompt_embed else { return Ok(None) };
        let rows = prompts.iter().map(|ids| prompt_vector(table, ids)).collect::<Result<Vec<_>>>()?;
        Ok(Some(Tensor::cat(&rows, 0)?))
    }

    /// The conditioning vector c = time embedding (+ prompt vector), `[B, time_dim]`, for one
    /// timestep per batch item. `prompts` holds one entry per item (`Checkpoint::encode_prompt`),
    /// or is empty: every item then gets the empty prompt, which is all an unconditional model
    /// takes.
    pub fn condition(&self, t: &[f32], prompts: &[Vec<u32>]) -> Result<Tensor> {
        if !prompts.is_empty() && prompts.len() != t.len() {
            return Err(candle_core::Error::Msg(format!(
                "condition: {} timesteps but {} prompts; give one prompt per timestep, or none",
                t.len(),
                prompts.len()
            )));
        }
        let temb = self.time_mlp.forward(t, &self.device)?;
        let vectors = match prompts {
            [] => self.prompt_vectors(&vec![Vec::new(); t.len()])?,
            _ => self.prompt_vectors(prompts)?,
        };
        match vectors {
            Some(p) => temb + p,
            None => Ok(temb),
        }
    }

    pub fn forward(&self, x: &Tensor, c: &Tensor) -> Result<Prediction> {
        self.forward_traced(x, c, |_, _| {})
    }

    /// The forward pass, handing each named intermediate to `trace`: the GPU debug mode
    /// compares its own buffers against these.
    pub fn forward_traced(&self, x: &Tensor, c: &Tensor, mut trace: impl FnMut(&str, &Tensor)) -> Result<Prediction> {
        let cfg = &self.cfg;
        let tokens = patchify(x, cfg.patch_size)?;
        let mut h = linear_rows(&self.patch_embed, &tokens)?.broadcast_add(&self.pos_embed)?;
        trace("embed", &h);
        let mods = self.modulation.forward(c)?;
        for (i, block) in self.blocks.iter().enumerate() {
            let mut inner = |name: &str, t: &Tensor| trace(&format!("blocks.{i}.{name}"), t);
            let normed = block.norm1.forward(&h, &mods)?;
            inner("norm1", &normed);
            h = (h + block.attn.forward_traced(&normed, &mut inner)?)?;
            inner("attn", &h);
            let normed = block.norm2.forward(&h, &mods)?;
            inner("norm2", &normed);
            h = (h + block.ff.forward_traced(&normed, &mut inner)?)?;
            inner("ff", &h);
        }
        let h = self.final_norm.forward(&h, &mods)?;
        trace("final_norm", &h);
        let eps = unpatchify(&linear_rows(&self.to_pixels, &h)?, cfg.patch_size, cfg.channels)?;
        trace("eps", &eps);
        let x0 = match &self.proj_fin {
            Some(head) => {
                let x0 = unpatchify(&linear_rows(head, &h)?, cfg.patch_size, cfg.channels)?;
                trace("x0", &x0);
                Some(x0)
            }
            None => None,
        };
        Ok(Prediction { eps, x0 })
    }
}

/// Random weights for tests and benchmarks, drawn from the crate's own noise with std 1/√fan_in
/// so activations stay of order one through every layer.
pub fn random_tensors(
    cfg: &Config,
    prompt_rows: Option<usize>,
    seed: u64,
) -> Result<std::collections::HashMap<String, Tensor>> {
    let device = Device::Cpu;
    let mut out = std::collections::HashMap::new();
    for (i, (name, shape)) in crate::state_dict::expected_tensors(cfg, prompt_rows).into_iter().enumerate() {
        let len: usize = shape.iter().product();
        let mut values = vec![0f32; len];
        crate::noise::fill_normal(seed, i as u32, &mut values);
        let std = if name.starts_with("prompt_embed") { 0.5 } else { 1.0 / (shape[shape.len() - 1] as f32).sqrt() };
        values.iter_mut().for_each(|v| *v *= std);
        out.insert(name, Tensor::from_vec(values, shape, &device)?.to_dtype(DType::F32)?);
    }
    Ok(out)
}
