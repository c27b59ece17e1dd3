//! Says which tensor of a safetensors header is wrong, and how, when the `safetensors` crate
//! refuses it with a generic message ("invalid shape, data type, or offset for tensor").
//! Only used to word errors; the crate's own checks stay the gate.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Deserialize)]
struct Entry {
    dtype: String,
    shape: Vec<u64>,
    data_offsets: (u64, u64),
}

fn dtype_size(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "F64" | "I64" | "U64" => 8,
        "F32" | "I32" | "U32" => 4,
        "F16" | "BF16" | "I16" | "U16" => 2,
        "I8" | "U8" | "BOOL" | "F8_E4M3" | "F8_E5M2" => 1,
        _ => return None,
    })
}

/// The first concrete problem with the header of `bytes`, if one can be named.
pub fn explain(bytes: &[u8]) -> Option<String> {
    let n = usize::try_from(u64::from_le_bytes(*bytes.first_chunk::<8>()?)).ok()?;
    let header = bytes.get(8..8usize.checked_add(n)?)?;
    let data_len = (bytes.len() - 8 - n) as u64;
    let raw: BTreeMap<String, serde_json::Value> = match serde_json::from_slice(header) {
        Ok(raw) => raw,
        Err(e) => return Some(format!("the header is not a JSON object of tensors: {e}")),
    };
    let mut entries = Vec::new();
    for (name, value) in raw {
        if name == "__metadata__" {
            continue;
        }
        match serde_json::from_value::<Entry>(value) {
            Ok(entry) => entries.push((name, entry)),
            Err(e) => return Some(format!("tensor `{name}`: malformed header entry: {e}")),
        }
    }
    entries.sort_by_key(|(_, e)| e.data_offsets);
    let mut covered = 0u64;
    let mut previous: Option<&str> = None;
    for (name, entry) in &entries {
        let (start, end) = entry.data_offsets;
        if start > end || end > data_len {
            return Some(format!(
                "tensor `{name}`: data_offsets [{start}, {end}] run outside the {data_len} bytes of data"
            ));
        }
        let Some(size) = dtype_size(&entry.dtype) else {
            return Some(format!("tensor `{name}`: unknown dtype `{}`", entry.dtype));
        };
        let needed = entry.shape.iter().try_fold(size, |acc, &d| acc.checked_mul(d));
        if needed != Some(end - start) {
            return Some(format!(
                "tensor `{name}`: shape {:?} of {} needs {} bytes, but its data_offsets span {}",
                entry.shape,
                entry.dtype,
                needed.map_or("more than 2^64".to_string(), |b| b.to_string()),
                end - start
            ));
        }
        if start != covered {
            return Some(match previous {
                None => format!("the first tensor, `{name}`, starts at byte {start}, expected 0"),
                Some(p) if start < covered => {
                    format!("tensor `{name}` starts at byte {start}, inside `{p}` (which ends at {covered}): overlapping offsets")
                }
                Some(p) => format!(
                    "tensor `{name}` starts at byte {start}, leaving a gap after `{p}`, which ends at {covered}"
                ),
            });
        }
        covered = end;
        previous = Some(name);
    }
    (covered != data_len).then(|| format!("the tensors cover {covered} bytes, but the data section holds {data_len}"))
}
