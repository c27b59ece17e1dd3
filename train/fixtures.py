"""Writes the cross-check fixtures under tests/fixtures/ (run from the repo root:
`python3 train/fixtures.py [CASE ...]`, every case when none is named, so a new case leaves the
others' bytes alone). Small configs ship their weights; the full config's weights are
regenerated on both sides from the shared Philox stream, so only inputs and outputs are stored."""
import json
import os
import sys

import numpy as np
import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(__file__))
from model import Config, DiT, cosine_schedule, ddpm_step  # noqa: E402
from philox import normals  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures")


def expected_tensors(cfg: Config, prompt_rows):
    """Same names and order as src/weights.rs::expected_tensors."""
    d, inner, mlp, time, patch = cfg.dim, cfg.heads * cfg.head_dim, cfg.dim * cfg.mlp_mult, cfg.time_dim, cfg.patch_dim
    out = [("patch_embed.weight", [d, patch]), ("time_mlp.1.weight", [time, d // 2]), ("time_mlp.3.weight", [time, time])]
    if prompt_rows is not None:
        out.append(("prompt_embed.weight", [prompt_rows, time]))
    norm = lambda p: [(f"{p}.scale_proj.weight", [d, time]), (f"{p}.shift_proj.weight", [d, time])]
    for i in range(cfg.depth):
        b = f"blocks.{i}"
        out += norm(f"{b}.norm1")
        out += [(f"{b}.attn.{n}.weight", [inner, d]) for n in ("to_q", "to_k", "to_v")]
        out.append((f"{b}.attn.to_out.weight", [d, inner]))
        out += norm(f"{b}.norm2")
        out += [(f"{b}.ff.net.0.weight", [mlp, d]), (f"{b}.ff.net.2.weight", [d, mlp])]
    out += norm("final_norm")
    out.append(("to_pixels.weight", [patch, d]))
    if cfg.x0_head:
        out += [("proj_fin.weight", [patch, d]), ("proj_fin.bias", [patch])]
    return out


def random_state(cfg: Config, seed: int):
    """Same values as src/model.rs::random_tensors."""
    rows = None if cfg.vocab is None else len(cfg.vocab) + 1
    state = {}
    for i, (name, shape) in enumerate(expected_tensors(cfg, rows)):
        std = np.float32(0.5) if name.startswith("prompt_embed") else np.float32(1.0) / np.sqrt(np.float32(shape[-1]))
        values = normals(seed, i, int(np.prod(shape))) * std
        state[name] = torch.from_numpy(values.astype(np.float32).reshape(shape))
    return state


def build(cfg: Config, seed: int) -> DiT:
    model = DiT(cfg).double()
    state = {k: v.double() for k, v in random_state(cfg, seed).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert missing == ["pos_embed.pos_emb"] and not unexpected, (missing, unexpected)
    return model.eval()


def encode(cfg: Config, prompts):
    index = {w: i + 1 for i, w in enumerate(cfg.vocab or [])}
    ids = [[index[w] for w in p.split()] for p in prompts]
    width = max(1, max(len(i) for i in ids))
    words = torch.tensor([i + [0] * (width - len(i)) for i in ids], dtype=torch.int64)
    return words, torch.tensor([len(i) for i in ids], dtype=torch.int64)


def write_case(name, cfg: Config, seed, batch, timesteps, prompts, ship_weights):
    model = build(cfg, seed)
    gen = torch.Generator().manual_seed(seed)
    size, ch = cfg.image_size, cfg.channels
    x = torch.randn(batch, ch, size, size, generator=gen, dtype=torch.float64)
    z = torch.randn(batch, ch, size, size, generator=gen, dtype=torch.float64)
    t = torch.tensor(timesteps, dtype=torch.float64)
    words, counts = encode(cfg, prompts) if cfg.vocab else (None, None)
    with torch.no_grad():
        eps, x0 = model(x, t, words, counts)
    betas, alpha_bars = cosine_schedule(cfg.timesteps, cfg.schedule_offset)
    x_next = torch.stack([ddpm_step(x[i], eps[i], z[i], timesteps[i], betas, alpha_bars, x0[i]) for i in range(batch)])
    io = {"x": x, "t": t, "z": z, "eps": eps, "x0": x0, "x_next": x_next}
    io = {k: v.float().contiguous() for k, v in io.items()}
    folder = os.path.join(OUT, name)
    os.makedirs(folder, exist_ok=True)
    meta = {"seed": str(seed), "prompts": json.dumps(prompts)}
    save_file(io, os.path.join(folder, "io.safetensors"), metadata=meta)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg.to_json(), f, indent=2)
        f.write("\n")
    if ship_weights:
        # The state dict as PyTorch has it, pos_embed buffer included, as the seed's files are.
        state = {k: v.float().contiguous() for k, v in model.state_dict().items()}
        save_file(state, os.path.join(folder, "model.safetensors"))


def write_noise_schedule():
    noise = {"normals_seed12345_tag7": torch.from_numpy(normals(12345, 7, 4099)),
             "normals_seed2pow40plus3_tag4294967295": torch.from_numpy(normals((1 << 40) + 3, 0xFFFFFFFF, 64))}
    betas, alpha_bars = cosine_schedule(32, 1e-4)
    noise["betas"], noise["alpha_bars"] = betas.float(), alpha_bars.float()
    save_file(noise, os.path.join(OUT, "noise_schedule.safetensors"))


def main(names):
    tiny = dict(image_size=16, patch_size=4, dim=32, depth=2, heads=2, head_dim=8, mlp_mult=2, time_dim=16, timesteps=8)
    words = ["hippo", "red", "heart", "cat", "sun"]
    cases = {
        "tiny_uncond": lambda: write_case("tiny_uncond", Config(**tiny), 11, 3, [7, 3, 0], ["", "", ""], True),
        "tiny_cond": lambda: write_case("tiny_cond", Config(**tiny, vocab=words), 12, 3, [7, 4, 1],
                                        ["", "hippo", "red heart"], True),
        "full_uncond": lambda: write_case("full_uncond", Config(), 13, 1, [20], [""], False),
        "full_cond": lambda: write_case("full_cond", Config(vocab=words), 14, 1, [31], ["red heart"], False),
        "tiny_qk_norm": lambda: write_case("tiny_qk_norm", Config(**tiny, vocab=words, qk_norm=True), 15, 3, [7, 2, 0],
                                           ["hippo", "", "sun"], True),
        "full_qk_norm": lambda: write_case("full_qk_norm", Config(vocab=words, qk_norm=True), 16, 1, [9], ["hippo"], False),
        # Four channels: premultiplied RGBA (R·A, G·A, B·A, A), as an RGBA checkpoint draws.
        "tiny_rgba": lambda: write_case("tiny_rgba", Config(**tiny, channels=4, vocab=words, qk_norm=True), 17, 3,
                                        [7, 5, 0], ["red", "", "hippo sun"], True),
        "full_rgba": lambda: write_case("full_rgba", Config(channels=4, vocab=words, qk_norm=True), 18, 1, [31],
                                        ["hippo"], False),
        "noise_schedule": write_noise_schedule,
    }
    unknown = [n for n in names if n not in cases]
    if unknown:
        sys.exit(f"unknown case(s) {unknown}; the cases are {list(cases)}")
    for name in names or cases:
        cases[name]()


if __name__ == "__main__":
    main(sys.argv[1:])
