"""Trains the prompt-conditioned DiT of train/model.py on the icon set from examples/dataset.rs.

    python3 train/train.py --data train/data/pack/icons.safetensors.xz --state /tmp/favicon --out $OUT --minutes 9

Recipe (the seed's): the default hippo Config, loss = MSE(eps) + 0.6 MSE(x0), AdamW, an EMA of
the weights (what ships), bf16 autocast, timesteps uniform in 0..T-1 on the cosine schedule, and
the prompt dropped 10% of the time for classifier-free guidance.

An optional change to the seed's loss (--sampler-weight, off by default): each sample's eps error is
weighted by 1 + g_t^2, where g_t = beta_t / (sqrt(1 - abar_t) sqrt(1 - beta_t)) is how much the
DDPM update multiplies an eps error into x. The clipped last beta (0.999) makes g_31 = 31.6, so an
eps error of 0.05 at t = 31 puts 1.6 standard deviations of error into x_30 and the sample is
noise; every other g_t is below 1.5. The weight is ~1 for t < 30. Session 3: from scratch at
lr 3e-4 with it on, the t = 31 term was 90% of the loss at step 2,000 and the run diverged by
step 4,000 (loss 3.5 -> 245, then non-finite gradients), so it is off; the sampler's first step
handles t = 31 instead (see src/sampler.rs).

Sampling (not the seed's): icons carrying a --boost word are drawn more often; the default
hippo=16 draws the four hippopotamus icons 16x as often (0.35% of samples instead of 0.02%), since
"hippo" is the default prompt and every user's first image.

Guards: a step whose gradient is not finite is skipped on the GPU (the fused AdamW's found_inf,
no host sync), the run stops when over half the steps of two log windows in a row were skipped,
cuDNN attention is off (see configure_sdpa), and a logged loss that jumps above 3x the best so
far after warmup rolls back to the last saved state with half the learning rate.

Augmentation happens here, on the GPU, fresh for every sample: each icon (premultiplied RGBA) is
composited onto a random flat pastel background, and mirrored half of the time unless its words
say it has a direction or text (left, right, flag, letters ...).

Resuming: the full state (weights, EMA, AdamW moments, step) is saved to --state every 30 s;
--state survives between commands only while the GPU machine stays warm. Without it, --resume-ema
starts from an exported EMA (f16, e.g. weights/model.safetensors) with fresh AdamW moments. At the
deadline the EMA (f16) and the raw weights (bf16) are written under --out, each split into files
under 16 MiB, with a log and a preview grid.
"""
import argparse
import io
import json
import lzma
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load as load_bytes, load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import Config, DiT, cosine_schedule, ddpm_step  # noqa: E402
from png import write_png  # noqa: E402
from icons import IconFile, read_heldout  # noqa: E402
from widen import adapt_state  # noqa: E402
from distributed import Dist, scaled_lr  # noqa: E402

PREVIEW_PROMPTS = ["hippo", "pizza", "rocket", "red heart", "cat", "sun", "tree", "blue cloud", ""]


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True, help="icons.safetensors or its .xz")
    p.add_argument("--state", default="/tmp/favicon", help="folder for the full training state")
    p.add_argument("--out", default=None, help="folder for what comes back (EMA, weights, log, preview)")
    p.add_argument("--resume-ema", default=None, help="f16 EMA safetensors (files or a folder) to start from")
    p.add_argument("--minutes", type=float, default=9.0, help="stop, save and export after this long")
    p.add_argument("--max-steps", type=int, default=10**9)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--decay-start", type=int, default=10**9, help="step where lr starts its cosine decay")
    p.add_argument("--decay-steps", type=int, default=10000, help="length of that decay (to 10%%)")
    p.add_argument("--decay-time", action="store_true",
                   help="cosine lr decay to 10%% over this run's wall-clock budget (--minutes), for a fixed-length last run")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--ema", type=float, default=0.9995)
    p.add_argument("--drop-prompt", type=float, default=0.1)
    p.add_argument("--x0-weight", type=float, default=0.6)
    p.add_argument("--qk-norm", action=argparse.BooleanOptionalAction, default=True,
                   help="RMS-normalise queries and keys (Config.qk_norm); without it the logits grew past 1e5")
    p.add_argument("--sampler-weight", action=argparse.BooleanOptionalAction, default=False,
                   help="weight the eps error by 1 + (DDPM eps gain)^2")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--flash", action=argparse.BooleanOptionalAction, default=True,
                   help="flash/mem-efficient SDPA kernels (--no-flash: the math path)")
    p.add_argument("--preview", action=argparse.BooleanOptionalAction, default=True, help="PyTorch sample grid under --out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=200)
    p.add_argument("--boost", action="append", default=None, metavar="WORD=FACTOR",
                   help="draw icons whose words include WORD FACTOR times as often (default: hippo=16, "
                        "the default prompt's four icons; 'none' turns it off)")
    p.add_argument("--save-every", type=float, default=30.0, help="seconds between state saves")
    p.add_argument("--heldout", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "quality", "heldout.txt"),
                   help="icons never trained on (the quality benchmark's split); '' trains on all")
    p.add_argument("--channels", type=int, default=4, choices=(3, 4),
                   help="4: premultiplied RGBA on transparency; 3: RGB on a random pastel background")
    p.add_argument("--matte", type=float, default=0.86,
                   help="RGBA: the colour channels hold the premultiplied colour over this grey (c*a + m*(1-a)); "
                        "0.86, the mean of the RGB models' pastel backgrounds, lets an RGB checkpoint start where it stood")
    p.add_argument("--lr-scaling", default="sqrt", choices=("sqrt", "linear", "none"),
                   help="under torchrun, how --lr grows with the number of ranks (--batch is per rank)")
    p.add_argument("--glyph-share", type=float, default=None,
                   help="share of samples drawn from the glyph sets (0 drops them; default: their share of icons)")
    return p.parse_args()


class Icons(IconFile):
    """The training set on the GPU (held-out icons excluded), drawn as the model sees it."""

    def __init__(self, path, device, boost=(), exclude=frozenset(), glyph_share=None, channels=4, matte=0.0):
        super().__init__(path, device, exclude)
        self.channels, self.matte = channels, matte
        n = len(self)
        # Sampling weight per icon: 1, times FACTOR for each boosted word it carries; glyphs
        # (mono) rescaled to make up `glyph_share` of the samples (0 drops them).
        self.weight = torch.ones(n, device=device)
        for word, factor in boost:
            if word not in self.vocab:
                raise SystemExit(f"--boost: '{word}' is not in the vocabulary")
            hit = (self.words == self.vocab.index(word) + 1).any(1).float()
            self.weight = self.weight * (1 + (factor - 1) * hit)
            print(f"boost: {int(hit.sum())} icons with '{word}' drawn {factor}x as often", flush=True)
        if glyph_share is not None:
            mono = self.mono.float()
            glyphs, emoji = (self.weight * mono).sum(), (self.weight * (1 - mono)).sum()
            scale = glyph_share / (1 - glyph_share) * emoji / glyphs.clamp(min=1e-9) if glyph_share < 1 else 1.0
            self.weight = torch.where(self.mono, self.weight * scale, self.weight)
            print(f"glyphs: {int(mono.sum())} icons, {glyph_share:.0%} of samples", flush=True)

    def batch(self, size, gen, drop_prompt):
        """Images in [-1, 1] [B, C, H, W] (C = 4: premultiplied colour over the matte, and alpha;
        3: RGB on a random pastel background) and prompts (rows [B, L], counts [B])."""
        dev = self.rgba.device
        idx = torch.multinomial(self.weight, size, replacement=True, generator=gen)
        rgba, colour_row = self.paint(idx, gen)
        if self.channels == 3:
            background = 0.72 + 0.28 * torch.rand(size, 3, 1, 1, device=dev, generator=gen)
            image = rgba[:, :3] + background * (1 - rgba[:, 3:])
        else:
            image = torch.cat([rgba[:, :3] + self.matte * (1 - rgba[:, 3:]), rgba[:, 3:]], 1)
        # Prompts: the label ("red heart") half the time, else 1-3 random words of label and tags;
        # a painted glyph's colour word comes first.
        words, wcount = self.words[idx], self.words_count[idx]
        scores = torch.rand(words.shape, device=dev, generator=gen)
        scores = torch.where(torch.arange(words.shape[1], device=dev)[None] < wcount[:, None], scores, 2.0)
        shuffled = torch.gather(words, 1, scores.argsort(1))
        k = torch.randint(1, 4, (size,), device=dev, generator=gen)
        width = max(self.label.shape[1], 3)
        sub_rows = F.pad(shuffled[:, :3], (0, width - 3))
        label_rows = F.pad(self.label[idx], (0, width - self.label.shape[1]))
        use_label = torch.rand(size, device=dev, generator=gen) < 0.5
        rows = torch.where(use_label[:, None], label_rows, sub_rows)
        counts = torch.where(use_label, self.label_count[idx], torch.minimum(k, wcount))
        painted = colour_row > 0
        rows = torch.where(painted[:, None], torch.cat([colour_row[:, None], rows], 1), F.pad(rows, (0, 1)))
        counts = counts + painted.long()
        drop = torch.rand(size, device=dev, generator=gen) < drop_prompt
        counts = torch.where(drop, 0, counts)
        return image * 2 - 1, rows, counts


def parse_boost(specs):
    """--boost WORD=FACTOR (repeatable) into [(word, factor)]; 'none' clears it."""
    out = []
    for spec in specs if specs is not None else ["hippo=16"]:
        if spec == "none":
            return []
        word, sep, factor = spec.partition("=")
        try:
            value = float(factor)
        except ValueError:
            value = float("nan")
        if not sep or not word or not (value >= 1):
            raise SystemExit(f"--boost: expected WORD=FACTOR with FACTOR >= 1, got '{spec}'")
        out.append((word, value))
    return out


def configure_sdpa(flash=True):
    """Attention backends for training. cuDNN attention is always off: on Hopper it is PyTorch's
    preferred SDPA backend (2.11+), and its sm90 backward returns NaN in dQ when the key length is
    64 mod 128 (ours is 64 tokens) and a query row's logsumexp is below -ln(FLT_MAX) = -88.7: the
    zero-filled second half of its 128-row key tile is scored 0 instead of -inf and exp(0 - lse)
    overflows (pytorch/pytorch#196678, cudnn-frontend#628). After ~7k updates our first block's
    attention logits reach hundreds, ~1.4% of samples have such a row, so every batch of 1024
    held one and every step was skipped (TRAINING_LOG.md, session 2). Flash, mem-efficient and
    math compute the same attention; --no-flash leaves only math."""
    torch.backends.cuda.enable_cudnn_sdp(False)
    if not flash:
        torch.backends.cuda.enable_flash_sdp(False)
        torch.backends.cuda.enable_mem_efficient_sdp(False)


def lr_at(step, a, scale=1.0, warm_from=0):
    """Linear warmup from `warm_from` (0, or the step a fresh optimizer resumed at), then constant
    until --decay-start, then a cosine down to 10% over --decay-steps."""
    if step - warm_from < a.warmup:
        return scale * a.lr * (step - warm_from + 1) / a.warmup
    if step < a.decay_start:
        return scale * a.lr
    done = min(1.0, (step - a.decay_start) / a.decay_steps)
    return scale * a.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * done)))


def eps_weights(betas, abar):
    """1 + g_t^2 with g_t the DDPM update's factor on eps (see the module doc)."""
    gain = betas / ((1 - abar).sqrt() * (1 - betas).sqrt())
    return 1 + gain ** 2


def load_ema_files(spec):
    paths = [os.path.join(spec, f) for f in sorted(os.listdir(spec)) if f.endswith(".safetensors")] if os.path.isdir(spec) else spec.split(",")
    tensors = {}
    for p in paths:
        tensors.update(load_file(p))
    return {k: v.float() for k, v in tensors.items()}


def save_split(tensors, dtype, prefix, limit=15 * 2**20):
    """Safetensors files under `limit` bytes each: prefix-0.safetensors, prefix-1..."""
    part, size, k = {}, 0, 0
    for name, t in tensors.items():
        t = t.detach().to(dtype).contiguous().cpu()
        if part and size + t.numel() * t.element_size() > limit:
            save_file(part, f"{prefix}-{k}.safetensors")
            part, size, k = {}, 0, k + 1
        part[name], size = t, size + t.numel() * t.element_size()
    save_file(part, f"{prefix}-{k}.safetensors")


@torch.no_grad()
def preview(model, vocab, path, device, guidance=3.0, seeds=4):
    """A PyTorch DDPM grid (one row per prompt); a quick look, not the Rust grid."""
    cfg = model.cfg
    betas, abar = cosine_schedule(cfg.timesteps, cfg.schedule_offset)
    rows = []
    gen = torch.Generator(device=device).manual_seed(1234)
    for prompt in PREVIEW_PROMPTS:
        ids = [vocab.index(w) + 1 for w in prompt.split() if w in vocab]
        b = seeds
        words = torch.tensor([ids or [0]] * b, device=device)
        counts = torch.full((b,), len(ids), device=device)
        x = torch.randn(b, cfg.channels, cfg.image_size, cfg.image_size, device=device, generator=gen)
        for t in reversed(range(cfg.timesteps)):
            tt = torch.full((2 * b,), float(t), device=device)
            eps, x0 = model(torch.cat([x, x]), tt, torch.cat([words, words]), torch.cat([torch.zeros_like(counts), counts]))
            eps = eps[:b] + guidance * (eps[b:] - eps[:b])
            x0 = x0[:b] + guidance * (x0[b:] - x0[:b])
            z = torch.randn(x.shape, device=device, generator=gen)
            x = ddpm_step(x, eps, z, t, betas, abar, x0)
        if cfg.channels == 4:  # on white, like a browser tab
            p = (x.clamp(-1, 1) + 1) / 2
            a = p[:, 3:]
            x = ((p[:, :3] - cfg.matte * (1 - a)).clamp(min=0) + (1 - a)) * 2 - 1
        rows.append(torch.cat(list(x), dim=2))
    grid = torch.cat(rows, dim=1)
    write_png(path, ((grid.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy())


def losses(fwd, x0, rows, counts, t, eps, sqrt_ab, sqrt_1m, weight_t, x0_weight, cuda):
    """The training loss of one batch: (loss, per-sample eps error, x0 loss)."""
    xt = sqrt_ab[t][:, None, None, None] * x0 + sqrt_1m[t][:, None, None, None] * eps
    with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=cuda):
        eps_pred, x0_pred = fwd(xt, t.float(), rows, counts)
    eps_err = (eps_pred.float() - eps).pow(2).mean((1, 2, 3))
    loss_x0 = F.mse_loss(x0_pred.float(), x0)
    return (weight_t[t] * eps_err).mean() + x0_weight * loss_x0, eps_err, loss_x0


def main():
    a = parse_args()
    start = time.time()
    deadline = start + a.minutes * 60
    ranks = Dist()
    device = ranks.device
    cuda = device.startswith("cuda")
    if ranks.world > 1:
        a.lr = scaled_lr(a.lr, ranks.world, a.lr_scaling)
        if ranks.main:
            print(f"data parallel: {ranks.world} ranks x batch {a.batch} = {ranks.world * a.batch} a step, lr {a.lr:.2e} ({a.lr_scaling})", flush=True)
    if not ranks.main:
        a.preview = False
    torch.backends.cuda.matmul.allow_tf32 = True
    configure_sdpa(a.flash)
    torch.manual_seed(a.seed)
    heldout = read_heldout(a.heldout) if a.heldout else frozenset()
    data = Icons(a.data, device, parse_boost(a.boost), heldout, a.glyph_share, a.channels, a.matte)
    print(f"data: {len(data)} icons ({data.excluded} held out), {len(data.vocab)} words, load {time.time() - start:.1f}s", flush=True)

    cfg = Config(vocab=data.vocab, qk_norm=a.qk_norm, channels=a.channels, matte=a.matte if a.channels == 4 else 0.0)
    model = DiT(cfg).to(device)
    decay = [p for n, p in model.named_parameters() if p.ndim == 2 and "prompt_embed" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim == 2 and "prompt_embed" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.99), fused=cuda)
    ema = {n: p.detach().clone() for n, p in model.named_parameters()}
    step, trained_s, lr_scale, warm_from = 0, 0.0, 1.0, 0
    state_path = os.path.join(a.state, "state.pt")
    if os.path.exists(state_path):
        st = torch.load(state_path, map_location=device)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        ema = st["ema"]
        step, trained_s, lr_scale = st["step"], st["trained_s"], st.get("lr_scale", 1.0)
        print(f"resumed full state at step {step}", flush=True)
    elif a.resume_ema:
        tensors = load_ema_files(a.resume_ema)
        tensors.pop("pos_embed.pos_emb", None)
        tensors = adapt_state(tensors, a.resume_ema, cfg)
        missing = model.load_state_dict(tensors, strict=False)
        assert not missing.unexpected_keys and missing.missing_keys == ["pos_embed.pos_emb"], missing
        ema = {n: p.detach().clone() for n, p in model.named_parameters()}
        meta_path = os.path.join(a.resume_ema if os.path.isdir(a.resume_ema) else os.path.dirname(a.resume_ema), "progress.json")
        if os.path.exists(meta_path):
            prog = json.load(open(meta_path))
            step, trained_s = prog["step"], prog["trained_s"]
        warm_from = step  # fresh AdamW moments need their own warmup
        print(f"resumed from EMA {a.resume_ema} at step {step} (fresh AdamW moments)", flush=True)

    fwd = ranks.wrap(model)
    fwd = torch.compile(fwd) if a.compile and cuda else fwd
    betas, abar = cosine_schedule(cfg.timesteps, cfg.schedule_offset)
    sqrt_ab, sqrt_1m = abar.sqrt().float().to(device), (1 - abar).sqrt().float().to(device)
    weight_t = (eps_weights(betas, abar) if a.sampler_weight else torch.ones_like(betas)).float().to(device)
    fused = cuda
    gen = torch.Generator(device=device).manual_seed(a.seed * 1000003 + step + 7919 * ranks.rank)
    names = [n for n, _ in model.named_parameters()]
    params = [p for _, p in model.named_parameters()]
    out = a.out if ranks.main else None
    if out:
        os.makedirs(out, exist_ok=True)
    log = open(os.path.join(out, "train_log.txt"), "a") if out else None
    os.makedirs(a.state, exist_ok=True)

    def save_state():
        if not ranks.main:
            return
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "ema": ema, "step": step,
                    "trained_s": trained_s, "lr_scale": lr_scale}, state_path + ".tmp")
        os.replace(state_path + ".tmp", state_path)

    best = float("inf")
    acc = torch.zeros(5, device=device)
    acc_n, t_log, t_save, samples, mostly_skipped = 0, time.time(), time.time(), 0, 0
    seg_start = loop_start = time.time()
    while ranks.decide(time.time() < deadline, device) and step < a.max_steps:
        x0, rows, counts = data.batch(a.batch, gen, a.drop_prompt)
        t = torch.randint(cfg.timesteps, (a.batch,), device=device, generator=gen)
        eps = torch.randn(x0.shape, device=device, generator=gen)
        lr = lr_at(step, a, lr_scale, warm_from)
        if a.decay_time:
            done = min(1.0, (time.time() - loop_start) / max(1.0, deadline - loop_start))
            lr *= 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * done))
        for g in opt.param_groups:
            g["lr"] = lr
        loss, eps_err, loss_x0 = losses(fwd, x0, rows, counts, t, eps, sqrt_ab, sqrt_1m, weight_t, a.x0_weight, cuda)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
        bad = (~torch.isfinite(grad_norm)).float()
        if fused:
            opt.found_inf = bad  # the fused AdamW skips the update when this is 1
        opt.step()
        d = min(a.ema, (1 + step) / (10 + step))
        torch._foreach_lerp_([ema[n] for n in names], [p.detach() for p in params], 1 - d)
        last = (t == cfg.timesteps - 1).float()
        acc += torch.stack([loss.detach(), eps_err.mean().detach(), loss_x0.detach(), bad,
                            (eps_err * last).sum() / last.sum().clamp(min=1)])
        acc_n += 1
        step += 1
        samples += a.batch * ranks.world
        if step % a.log_every == 0:
            l, le, lx, skipped, le_last = ranks.mean(acc / acc_n).tolist()
            now = time.time()
            line = (f"step {step} loss {l:.4f} eps {le:.4f} eps@T-1 {le_last:.5f} x0 {lx:.4f} "
                    f"lr {lr:.2e} skipped {skipped * acc_n:.0f} "
                    f"{samples / (now - t_log):.0f} img/s trained {trained_s + now - seg_start:.0f}s")
            if ranks.main:
                print(line, flush=True)
            if log:
                log.write(line + "\n")
                log.flush()
            acc.zero_()
            acc_n, t_log, samples = 0, now, 0
            # A window where most steps were skipped trains nothing; two in a row end the run
            # (the EMA and raw weights are still written) instead of spending device time.
            mostly_skipped = mostly_skipped + 1 if skipped > 0.5 else 0
            if mostly_skipped >= 2:
                if ranks.main:
                    print(f"over half the steps of two log windows skipped (non-finite gradients): stopping at step {step}", flush=True)
                break
            if step > 2 * a.warmup and not (l <= 3 * best):
                # Diverged: back to the last saved state (saved only after a window that passed
                # this check) at half the learning rate; never save the diverged weights. Every
                # rank decides alike (the losses are averaged over ranks) and reads rank 0's file.
                ranks.barrier()
                if os.path.exists(state_path):
                    st = torch.load(state_path, map_location=device)
                    model.load_state_dict(st["model"])
                    opt.load_state_dict(st["opt"])
                    ema, step = st["ema"], st["step"]
                    lr_scale = st.get("lr_scale", 1.0) * 0.5
                else:
                    lr_scale *= 0.5
                print(f"loss {l} diverged (best {best}): back to step {step}, lr x{lr_scale}", flush=True)
                t_save = time.time()
                continue
            best = min(best, l)
            if ranks.decide(time.time() - t_save > a.save_every, device):  # only right after a loss that passed the check
                trained_s += time.time() - seg_start
                seg_start = time.time()
                save_state()
                t_save = time.time()
    trained_s += time.time() - seg_start
    if all(bool(torch.isfinite(p).all()) for p in params):
        save_state()
    ranks.barrier()
    if not ranks.main:
        ranks.close()
        return
    print(f"stopped at step {step}, {trained_s:.0f}s trained in all, wall {time.time() - start:.0f}s", flush=True)
    if out:
        ema_state = dict(ema)
        ema_state["pos_embed.pos_emb"] = model.pos_embed.pos_emb
        save_split(ema_state, torch.float16, os.path.join(out, "ema"))
        save_split({n: p for n, p in model.named_parameters()}, torch.bfloat16, os.path.join(out, "raw"))
        json.dump({"step": step, "trained_s": trained_s, "config": cfg.to_json()}, open(os.path.join(out, "progress.json"), "w"))
        if a.preview:
            ema_model = DiT(cfg).to(device).eval()
            ema_model.load_state_dict({**ema, "pos_embed.pos_emb": model.pos_embed.pos_emb})
            preview(ema_model, data.vocab, os.path.join(out, "preview.png"), device)
        print(f"wrote {sorted(os.listdir(out))}, wall {time.time() - start:.0f}s", flush=True)
    ranks.close()


if __name__ == "__main__":
    main()
