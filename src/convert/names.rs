//! The seed's export names. Its `dit.py` `export_matrices()` names tensors for its JavaScript
//! demo (`block_{i}.…`, `norm1.scale.weight`); they map one to one onto our state-dict names
//! (`blocks.{i}.…`, `norm1.scale_proj.weight`). WTS1 always uses them, and a `.pt` or
//! safetensors file may, so every container's tensors pass through [`to_ours`].

use super::RawTensors;
use crate::error::{Error, Result};

/// Our name for a seed export name: `block_{i}.` → `blocks.{i}.`, `.scale.weight` →
/// `.scale_proj.weight`, `.shift.weight` → `.shift_proj.weight`. Other names, ours included,
/// are the same in both.
pub fn our_name(key: &str) -> String {
    let mut name = match key.strip_prefix("block_").and_then(|rest| rest.split_once('.')) {
        Some((index, rest)) if !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()) => {
            format!("blocks.{index}.{rest}")
        }
        _ => key.to_string(),
    };
    for (short, long) in [(".scale.weight", ".scale_proj.weight"), (".shift.weight", ".shift_proj.weight")] {
        if let Some(stem) = name.strip_suffix(short) {
            name = format!("{stem}{long}");
        }
    }
    name
}

/// The seed's export name for one of our tensor names (the inverse of [`our_name`]).
pub fn seed_name(name: &str) -> String {
    let mut key = match name.strip_prefix("blocks.").and_then(|rest| rest.split_once('.')) {
        Some((index, rest)) if !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()) => {
            format!("block_{index}.{rest}")
        }
        _ => name.to_string(),
    };
    for (long, short) in [(".scale_proj.weight", ".scale.weight"), (".shift_proj.weight", ".shift.weight")] {
        if let Some(stem) = key.strip_suffix(long) {
            key = format!("{stem}{short}");
        }
    }
    key
}

/// Renames a file's tensors to ours. A file that holds one tensor under both names is refused:
/// which of the two is meant cannot be told.
pub fn to_ours(tensors: RawTensors, what: &str) -> Result<RawTensors> {
    let mut out = RawTensors::with_capacity(tensors.len());
    for (key, tensor) in tensors {
        let name = our_name(&key);
        if out.insert(name.clone(), tensor).is_some() {
            return Err(Error::checkpoint(
                what,
                format!("`{name}` appears twice, once under the seed's export name `{}`", seed_name(&name)),
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_both_ways_for_every_tensor_kind() {
        let pairs = [
            ("block_3.norm1.scale.weight", "blocks.3.norm1.scale_proj.weight"),
            ("block_0.norm2.shift.weight", "blocks.0.norm2.shift_proj.weight"),
            ("block_12.attn.to_q.weight", "blocks.12.attn.to_q.weight"),
            ("block_1.ff.net.2.weight", "blocks.1.ff.net.2.weight"),
            ("final_norm.scale.weight", "final_norm.scale_proj.weight"),
            ("time_mlp.1.weight", "time_mlp.1.weight"),
            ("to_pixels.weight", "to_pixels.weight"),
        ];
        for (key, name) in pairs {
            assert_eq!(our_name(key), name);
            assert_eq!(seed_name(name), key);
            assert_eq!(our_name(name), name, "our names are left as they are");
        }
        assert_eq!(our_name("block_x.attn.to_q.weight"), "block_x.attn.to_q.weight");
    }

    #[test]
    fn one_tensor_under_both_names_is_refused() {
        let tensor = (vec![1], vec![0.5]);
        let both: RawTensors = [
            ("block_0.attn.to_q.weight".to_string(), tensor.clone()),
            ("blocks.0.attn.to_q.weight".to_string(), tensor.clone()),
        ]
        .into();
        let err = to_ours(both, "f.pt").unwrap_err().to_string();
        assert!(err.contains("`blocks.0.attn.to_q.weight` appears twice"), "{err}");
        let seed: RawTensors = [("final_norm.shift.weight".to_string(), tensor)].into();
        assert!(to_ours(seed, "f.pt").unwrap().contains_key("final_norm.shift_proj.weight"));
    }
}
