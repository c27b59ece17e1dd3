//! The forward pass on plain f32 buffers: the candle model's computation (src/model.rs), with
//! the weights packed once at load, every buffer kept from step to step, and the small ops
//! fused into the matmuls' epilogues (position embedding, SiLU, residuals, the x0 head's bias).

use std::collections::HashMap;

use candle_core::Tensor;

use super::adaln::{adaln, Modulation};
use super::attention::{self, attention};
use super::matmul::{matmul, Epilogue, Kernel, Packed};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::model::{position_embedding, sinusoid, time_sinusoid_width};
use crate::state_dict::{PROMPT_EMBED, X0_HEAD};

struct Block {
    /// `to_q`, `to_k` and `to_v` stacked: one product gives q | k | v.
    qkv: Packed,
    to_out: Packed,
    up: Packed,
    down: Packed,
}

/// The checkpoint's weights, packed for one kernel.
pub struct Net {
    cfg: Config,
    patch_embed: Packed,
    pos_embed: Vec<f32>,
    time_fc1: Packed,
    time_fc2: Packed,
    /// `[rows, time_dim]`, where the checkpoint is prompt-conditioned.
    prompt_embed: Option<Vec<f32>>,
    /// Every AdaLN's scale and shift projections stacked, as in the candle model.
    modulation: Packed,
    blocks: Vec<Block>,
    /// `to_pixels` and, where present, `proj_fin` stacked: ε | x0 from one product.
    heads: Packed,
    /// Zeros for ε, `proj_fin.bias` for x0.
    head_bias: Vec<f32>,
}

/// The buffers of one forward pass, grown to the largest batch seen and then reused.
#[derive(Default)]
pub struct Buffers {
    tokens: Vec<f32>,
    h: Vec<f32>,
    normed: Vec<f32>,
    qkv: Vec<f32>,
    core: Vec<f32>,
    hidden: Vec<f32>,
    heads: Vec<f32>,
    time: Vec<f32>,
    prompt: Vec<f32>,
    cond: Vec<f32>,
    mods: Vec<f32>,
    /// The outputs, `[images, C, H, W]`: ε, and x0 where the checkpoint has that head.
    pub eps: Vec<f32>,
    pub x0: Vec<f32>,
}

/// `buf` holding exactly `len` values (allocating only when it grows).
fn sized(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    buf.resize(len, 0.0);
    &mut buf[..]
}

fn values(tensors: &HashMap<String, Tensor>, name: &str) -> Result<Vec<f32>> {
    let t = tensors.get(name).ok_or_else(|| Error::checkpoint(name, "missing from the validated checkpoint"))?;
    Ok(t.flatten_all()?.to_vec1::<f32>()?)
}

impl Net {
    /// Packs a validated checkpoint's tensors (see `state_dict::expected_tensors`).
    pub fn new(cfg: &Config, tensors: &HashMap<String, Tensor>, kernel: Kernel) -> Result<Net> {
        let (dim, inner, mlp, time, patch) = (cfg.dim, cfg.inner_dim(), cfg.mlp_dim(), cfg.time_dim, cfg.patch_dim());
        let pack = |names: &[String], n: usize, k: usize| -> Result<Packed> {
            let mut stacked = Vec::with_capacity(n * k);
            for name in names {
                stacked.extend(values(tensors, name)?);
            }
            Ok(Packed::new(kernel, &stacked, n, k))
        };
        let one = |name: &str, n: usize, k: usize| pack(&[name.to_string()], n, k);
        let mut norms: Vec<String> =
            (0..cfg.depth).flat_map(|i| [format!("blocks.{i}.norm1"), format!("blocks.{i}.norm2")]).collect();
        norms.push("final_norm".into());
        let projections: Vec<String> =
            norms.iter().flat_map(|p| [format!("{p}.scale_proj.weight"), format!("{p}.shift_proj.weight")]).collect();
        let blocks = (0..cfg.depth)
            .map(|i| {
                let b = format!("blocks.{i}");
                let qkv: Vec<String> =
                    ["to_q", "to_k", "to_v"].iter().map(|n| format!("{b}.attn.{n}.weight")).collect();
                Ok(Block {
                    qkv: pack(&qkv, 3 * inner, dim)?,
                    to_out: one(&format!("{b}.attn.to_out.weight"), dim, inner)?,
                    up: one(&format!("{b}.ff.net.0.weight"), mlp, dim)?,
                    down: one(&format!("{b}.ff.net.2.weight"), dim, mlp)?,
                })
            })
            .collect::<Result<_>>()?;
        let mut heads = vec!["to_pixels.weight".to_string()];
        let mut head_bias = vec![0.0; patch];
        if cfg.x0_head {
            heads.push(X0_HEAD[0].into());
            head_bias.extend(values(tensors, X0_HEAD[1])?);
        }
        Ok(Net {
            cfg: cfg.clone(),
            patch_embed: one("patch_embed.weight", dim, patch)?,
            pos_embed: position_embedding(cfg),
            time_fc1: one("time_mlp.1.weight", time, time_sinusoid_width(cfg))?,
            time_fc2: one("time_mlp.3.weight", time, time)?,
            prompt_embed: tensors.contains_key(PROMPT_EMBED).then(|| values(tensors, PROMPT_EMBED)).transpose()?,
            modulation: pack(&projections, projections.len() * dim, time)?,
            blocks,
            heads: pack(&heads, head_bias.len(), dim)?,
            head_bias,
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn kernel(&self) -> Kernel {
        self.patch_embed.kernel()
    }

    /// The conditioning vectors c = time MLP(sinusoid(t)) (+ the prompt's mean embedding row),
    /// one per prompt, all at timestep `t`, then every AdaLN's scale and shift for each:
    /// `buf.mods` becomes `[prompts, modulation width]`. An empty prompt is row 0.
    pub fn condition(&self, t: f32, prompts: &[&[u32]], buf: &mut Buffers) -> Result<()> {
        let (count, time) = (prompts.len(), self.cfg.time_dim);
        let sin = sinusoid(t, time_sinusoid_width(&self.cfg)).repeat(count);
        let hidden = sized(&mut buf.time, count * time);
        matmul(&sin, count, &self.time_fc1, hidden, Epilogue::Silu);
        let cond = sized(&mut buf.cond, count * time);
        matmul(hidden, count, &self.time_fc2, cond, Epilogue::Store);
        if let Some(table) = &self.prompt_embed {
            let rows = table.len() / time;
            for (c, &ids) in cond.chunks_exact_mut(time).zip(prompts) {
                let ids: &[u32] = if ids.is_empty() { &[0] } else { ids };
                let mean = sized(&mut buf.prompt, time);
                mean.fill(0.0);
                for &id in ids {
                    let id = id as usize;
                    if id >= rows {
                        return Err(Error::Request(format!("prompt row {id} is beyond the {rows} of prompt_embed")));
                    }
                    mean.iter_mut().zip(&table[id * time..][..time]).for_each(|(m, &v)| *m += v);
                }
                let n = ids.len() as f32;
                c.iter_mut().zip(&*mean).for_each(|(c, &m)| *c += m / n);
            }
        }
        let mods = sized(&mut buf.mods, count * self.modulation.n());
        matmul(cond, count, &self.modulation, mods, Epilogue::Store);
        Ok(())
    }

    /// The forward pass on `images` planar images `x` (`[images, C, H, W]`); image `b` is
    /// modulated by `buf.mods` row `of_image[b]` (from [`Net::condition`]). Leaves ε in
    /// `buf.eps` and, with the x0 head, x0 in `buf.x0`.
    pub fn forward(&self, x: &[f32], images: usize, of_image: &[usize], buf: &mut Buffers) {
        let cfg = &self.cfg;
        let (dim, inner, tokens, patch) = (cfg.dim, cfg.inner_dim(), cfg.tokens(), cfg.patch_dim());
        let rows = images * tokens;
        patchify(cfg, x, sized(&mut buf.tokens, rows * patch));
        let h = sized(&mut buf.h, rows * dim);
        matmul(
            &buf.tokens,
            rows,
            &self.patch_embed,
            h,
            Epilogue::AddPeriodic { rows: &self.pos_embed, period: tokens },
        );
        let mods = Modulation { values: &buf.mods, width: self.modulation.n(), of_image };
        let normed = sized(&mut buf.normed, rows * dim);
        let qkv = sized(&mut buf.qkv, rows * 3 * inner);
        let core = sized(&mut buf.core, rows * inner);
        let hidden = sized(&mut buf.hidden, rows * cfg.mlp_dim());
        let shape = attention::Shape { tokens, heads: cfg.heads, head_dim: cfg.head_dim, qk_norm: cfg.qk_norm };
        for (i, block) in self.blocks.iter().enumerate() {
            adaln(h, dim, tokens, &mods, 2 * i, normed);
            matmul(normed, rows, &block.qkv, qkv, Epilogue::Store);
            attention(qkv, shape, core);
            matmul(core, rows, &block.to_out, h, Epilogue::Accumulate);
            adaln(h, dim, tokens, &mods, 2 * i + 1, normed);
            matmul(normed, rows, &block.up, hidden, Epilogue::Silu);
            matmul(hidden, rows, &block.down, h, Epilogue::Accumulate);
        }
        adaln(h, dim, tokens, &mods, 2 * cfg.depth, normed);
        let heads = sized(&mut buf.heads, rows * self.heads.n());
        matmul(normed, rows, &self.heads, heads, Epilogue::Bias(&self.head_bias));
        let len = images * cfg.image_len();
        unpatchify(cfg, heads, 0, sized(&mut buf.eps, len));
        if cfg.x0_head {
            unpatchify(cfg, heads, patch, sized(&mut buf.x0, len));
        }
    }
}

/// `[B, C, H, W]` → `[B·tokens, C·P·P]`, ordered as `patch::patchify`.
fn patchify(cfg: &Config, x: &[f32], tokens: &mut [f32]) {
    let (p, grid, size, patch) = (cfg.patch_size, cfg.grid(), cfg.image_size, cfg.patch_dim());
    for (t, token) in tokens.chunks_exact_mut(patch).enumerate() {
        let (image, gy, gx) = (t / (grid * grid), t / grid % grid, t % grid);
        for (v, out) in token.chunks_exact_mut(p).enumerate() {
            let (c, py) = (v / p, v % p);
            let from = ((image * cfg.channels + c) * size + gy * p + py) * size + gx * p;
            out.copy_from_slice(&x[from..from + p]);
        }
    }
}

/// The inverse of [`patchify`], reading each token's `C·P·P` values from column `first` of
/// `heads`' rows.
fn unpatchify(cfg: &Config, heads: &[f32], first: usize, images: &mut [f32]) {
    let (p, grid, size, patch) = (cfg.patch_size, cfg.grid(), cfg.image_size, cfg.patch_dim());
    let width = heads.len() / (images.len() / cfg.image_len() * grid * grid);
    for (t, row) in heads.chunks_exact(width).enumerate() {
        let (image, gy, gx) = (t / (grid * grid), t / grid % grid, t % grid);
        for (v, values) in row[first..first + patch].chunks_exact(p).enumerate() {
            let (c, py) = (v / p, v % p);
            let to = ((image * cfg.channels + c) * size + gy * p + py) * size + gx * p;
            images[to..to + p].copy_from_slice(values);
        }
    }
}
