//! The checkpoint's tensors for a config: their names (the seed's PyTorch state-dict names)
//! and shapes, which the loader validates against and the model is built from.

use crate::config::Config;

/// The fixed position buffer the seed's state dict carries; checked, then dropped.
pub const POS_EMBED_BUFFER: &str = "pos_embed.pos_emb";
pub(crate) const PROMPT_EMBED: &str = "prompt_embed.weight";
/// The x0 head's tensors, present when `Config::x0_head` is set.
pub const X0_HEAD: [&str; 2] = ["proj_fin.weight", "proj_fin.bias"];

/// Every tensor a config needs, with its shape, in state-dict order (the x0 head last).
pub fn expected_tensors(cfg: &Config, prompt_rows: Option<usize>) -> Vec<(String, Vec<usize>)> {
    let (dim, inner, mlp, time, patch) = (cfg.dim, cfg.inner_dim(), cfg.mlp_dim(), cfg.time_dim, cfg.patch_dim());
    let mut out = vec![
        ("patch_embed.weight".to_string(), vec![dim, patch]),
        ("time_mlp.1.weight".to_string(), vec![time, time_sinusoid_width(cfg)]),
        ("time_mlp.3.weight".to_string(), vec![time, time]),
    ];
    if let Some(rows) = prompt_rows {
        out.push((PROMPT_EMBED.to_string(), vec![rows, time]));
    }
    let norm = |prefix: &str| {
        [format!("{prefix}.scale_proj.weight"), format!("{prefix}.shift_proj.weight")].map(|n| (n, vec![dim, time]))
    };
    for i in 0..cfg.depth {
        let b = format!("blocks.{i}");
        out.extend(norm(&format!("{b}.norm1")));
        for name in ["to_q", "to_k", "to_v"] {
            out.push((format!("{b}.attn.{name}.weight"), vec![inner, dim]));
        }
        out.push((format!("{b}.attn.to_out.weight"), vec![dim, inner]));
        out.extend(norm(&format!("{b}.norm2")));
        out.push((format!("{b}.ff.net.0.weight"), vec![mlp, dim]));
        out.push((format!("{b}.ff.net.2.weight"), vec![dim, mlp]));
    }
    out.extend(norm("final_norm"));
    out.push(("to_pixels.weight".to_string(), vec![patch, dim]));
    if cfg.x0_head {
        out.push((X0_HEAD[0].to_string(), vec![patch, dim]));
        out.push((X0_HEAD[1].to_string(), vec![patch]));
    }
    out
}

/// Width of the timestep sinusoid that feeds the time MLP.
pub fn time_sinusoid_width(cfg: &Config) -> usize {
    cfg.dim / 2
}
