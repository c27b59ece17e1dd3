"""The PyTorch twin of the Rust reference model (src/model.rs).

Module names follow the seed's state dict, so `state_dict()` keys are the names the Rust
loader expects. Shapes and defaults come from the same config.json fields.
"""
import math
from dataclasses import dataclass, field, asdict
from typing import List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

QK_NORM_EPS = 1e-6
ADALN_EPS = 1e-5


@dataclass
class Config:
    image_size: int = 64
    patch_size: int = 8
    channels: int = 3
    dim: int = 512
    depth: int = 4
    heads: int = 1
    head_dim: int = 128
    mlp_mult: int = 4
    time_dim: int = 128
    timesteps: int = 32
    schedule_offset: float = 1e-4
    qk_norm: bool = False
    # Four channels: colour premultiplied over this grey, then alpha (see src/config.rs).
    matte: float = 0.0
    x0_head: bool = True  # the seed's WTS1 export has none: every step then uses eps
    vocab: Optional[List[str]] = None

    @property
    def grid(self):
        return self.image_size // self.patch_size

    @property
    def patch_dim(self):
        return self.channels * self.patch_size ** 2

    def to_json(self):
        d = asdict(self)
        if d["vocab"] is None:
            del d["vocab"]
        if self.channels != 4:
            del d["matte"]
        return d


def sinusoid(pos: torch.Tensor, width: int) -> torch.Tensor:
    """[sin(p f_0..f_h), cos(p f_0..f_h)], f_i = exp(-i ln(10000)/(h-1)), h = width/2."""
    half = width // 2
    freqs = torch.exp(-torch.arange(half, dtype=torch.float64, device=pos.device) * (math.log(10000.0) / (half - 1)))
    angles = pos.double()[:, None] * freqs[None, :]
    out_dtype = pos.dtype if pos.is_floating_point() else torch.float32
    return torch.cat([angles.sin(), angles.cos()], dim=-1).to(out_dtype)


def position_embedding(cfg: Config) -> torch.Tensor:
    tokens = torch.arange(cfg.grid * cfg.grid)
    rows = sinusoid((tokens // cfg.grid).float(), cfg.dim // 2)
    cols = sinusoid((tokens % cfg.grid).float(), cfg.dim // 2)
    return torch.cat([rows, cols], dim=-1)


class PosEmbed(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.register_buffer("pos_emb", position_embedding(cfg))


class Sinusoid(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.width = width

    def forward(self, t):
        return sinusoid(t, self.width)


class AdaLN(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.scale_proj = nn.Linear(cfg.time_dim, cfg.dim, bias=False)
        self.shift_proj = nn.Linear(cfg.time_dim, cfg.dim, bias=False)

    def forward(self, x, c):
        mean = x.mean(-1, keepdim=True)
        std = x.std(-1, keepdim=True, unbiased=True)
        normed = (x - mean) / (std + ADALN_EPS)
        return normed * (1 + self.scale_proj(c)[:, None, :]) + self.shift_proj(c)[:, None, :]


def rms_normalize(t):
    """t / sqrt(mean(t^2) + eps) over the last dim, the root taken in at least fp32 (QK-norm)."""
    wide = t if t.dtype == torch.float64 else t.float()
    return t * torch.rsqrt(wide.pow(2).mean(-1, keepdim=True) + QK_NORM_EPS).to(t.dtype)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        inner = cfg.heads * cfg.head_dim
        self.heads, self.head_dim, self.qk_norm = cfg.heads, cfg.head_dim, cfg.qk_norm
        self.to_q = nn.Linear(cfg.dim, inner, bias=False)
        self.to_k = nn.Linear(cfg.dim, inner, bias=False)
        self.to_v = nn.Linear(cfg.dim, inner, bias=False)
        self.to_out = nn.Linear(inner, cfg.dim, bias=False)

    def forward(self, x):
        b, n, _ = x.shape
        split = lambda t: t.view(b, n, self.heads, self.head_dim).transpose(1, 2)
        q, k, v = split(self.to_q(x)), split(self.to_k(x)), split(self.to_v(x))
        if self.qk_norm:  # parameter-free RMS norm per head: |logits| <= sqrt(head_dim)
            q, k = rms_normalize(q), rms_normalize(k)
        mixed = F.scaled_dot_product_attention(q, k, v)
        return self.to_out(mixed.transpose(1, 2).reshape(b, n, -1))


class FeedForward(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(cfg.dim, cfg.dim * cfg.mlp_mult, bias=False),
            nn.SiLU(),
            nn.Linear(cfg.dim * cfg.mlp_mult, cfg.dim, bias=False),
        )

    def forward(self, x):
        return self.net(x)


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.norm1, self.attn = AdaLN(cfg), Attention(cfg)
        self.norm2, self.ff = AdaLN(cfg), FeedForward(cfg)

    def forward(self, x, c):
        x = x + self.attn(self.norm1(x, c))
        return x + self.ff(self.norm2(x, c))


def patchify(x, p):
    b, c, h, w = x.shape
    x = x.view(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(b, (h // p) * (w // p), c * p * p)


def unpatchify(tokens, p, c):
    b, n, _ = tokens.shape
    g = int(round(math.sqrt(n)))
    x = tokens.view(b, g, g, c, p, p).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(b, c, g * p, g * p)


class DiT(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.patch_embed = nn.Linear(cfg.patch_dim, cfg.dim, bias=False)
        self.pos_embed = PosEmbed(cfg)
        self.time_mlp = nn.Sequential(
            Sinusoid(cfg.dim // 2),
            nn.Linear(cfg.dim // 2, cfg.time_dim, bias=False),
            nn.SiLU(),
            nn.Linear(cfg.time_dim, cfg.time_dim, bias=False),
        )
        if cfg.vocab is not None:
            self.prompt_embed = nn.Embedding(len(cfg.vocab) + 1, cfg.time_dim)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.depth)])
        self.final_norm = AdaLN(cfg)
        self.to_pixels = nn.Linear(cfg.dim, cfg.patch_dim, bias=False)
        if cfg.x0_head:
            self.proj_fin = nn.Linear(cfg.dim, cfg.patch_dim, bias=True)

    def prompt_vectors(self, words: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """`words` [B, L] holds prompt_embed rows padded with 0; `counts` [B] how many are real.
        An empty prompt (count 0) is row 0; otherwise the mean of its rows."""
        rows = self.prompt_embed(words)
        mask = (torch.arange(words.shape[1], device=words.device)[None, :] < counts[:, None]).to(rows.dtype)
        summed = (rows * mask[..., None]).sum(1)
        mean = summed / counts.clamp(min=1)[:, None].to(summed.dtype)
        return torch.where((counts == 0)[:, None], self.prompt_embed.weight[0][None, :], mean)

    def condition(self, t, words=None, counts=None):
        c = self.time_mlp(t if t.is_floating_point() else t.float())
        if words is not None and hasattr(self, "prompt_embed"):
            c = c + self.prompt_vectors(words, counts)
        return c

    def forward(self, x, t, words=None, counts=None):
        """x [B, C, H, W], t [B] float timesteps. Returns (eps, x0), both [B, C, H, W]; x0 is None
        without the x0 head."""
        c = self.condition(t, words, counts)
        h = self.patch_embed(patchify(x, self.cfg.patch_size)) + self.pos_embed.pos_emb
        for block in self.blocks:
            h = block(h, c)
        h = self.final_norm(h, c)
        p, ch = self.cfg.patch_size, self.cfg.channels
        x0 = unpatchify(self.proj_fin(h), p, ch) if self.cfg.x0_head else None
        return unpatchify(self.to_pixels(h), p, ch), x0


def cosine_schedule(timesteps: int, offset: float):
    """betas and alpha_bars (float64), as src/schedule.rs."""
    t = torch.arange(timesteps + 1, dtype=torch.float64)
    f = torch.cos(((t / timesteps) + offset) / (1 + offset) * math.pi / 2) ** 2
    f = f / f[0]
    betas = (1 - f[1:] / f[:-1]).clamp(0, 0.999)
    return betas, torch.cumprod(1 - betas, 0)


X0_HEAD_ABOVE = 2.0


def ddpm_step(x, eps, z, t, betas, alpha_bars, x0=None):
    """The seed's ancestral update: (x - beta/sqrt(1-abar) eps)/sqrt(1-beta) + sqrt(beta) z for t > 0.
    Given the x0 head, a step whose eps coefficient exceeds X0_HEAD_ABOVE (only t = T-1 on the
    cosine schedule, where it is 31.6) is written through x0 instead, as src/sampler.rs does: the
    same function for a model whose heads agree, without multiplying the eps error by 31.6."""
    beta, ab = betas[t].item(), alpha_bars[t].item()
    if x0 is not None and beta / (math.sqrt(1 - ab) * math.sqrt(1 - beta)) > X0_HEAD_ABOVE:
        prev = alpha_bars[t - 1].item() if t > 0 else 1.0
        out = math.sqrt(1 - beta) * (1 - prev) / (1 - ab) * x + math.sqrt(prev) * beta / (1 - ab) * x0
    else:
        out = (x - beta / math.sqrt(1 - ab) * eps) / math.sqrt(1 - beta)
    return out + math.sqrt(beta) * z if t > 0 else out
