//! The seed's browser export, "WTS1": little-endian throughout,
//!
//! ```text
//! "WTS1"  u32 count
//! count × { u32 key_len, key bytes, zero padding to a multiple of 4,
//!           u32 ndims, ndims × u32 dim, u32 element_count, element_count × f32 }
//! ```
//!
//! Keys are the seed's export names (`block_{i}.…`, `norm1.scale.weight`; see [`super::names`]).
//! WTS1 carries no `proj_fin` (the x0 head), no `prompt_embed` and no position buffer: a
//! checkpoint read from it has `x0_head: false` and samples as the seed's own demo does.
//!
//! Every number in the file is checked against the bytes that are actually there before anything
//! is allocated, so a lying count or length is an error, never a large allocation.

use super::names::seed_name;
use super::RawTensors;
use crate::error::{Error, Result};
use crate::weights::{expected_tensors, Checkpoint, X0_HEAD};

pub const MAGIC: &[u8; 4] = b"WTS1";
/// No tensor of this model has more dimensions; a larger claim is corruption.
const MAX_DIMS: u32 = 8;
/// A cursor that names what it was reading when the bytes ran out.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    what: &'a str,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize, field: &str) -> Result<&'a [u8]> {
        let left = self.bytes.len() - self.pos;
        if len > left {
            return Err(Error::checkpoint(
                self.what,
                format!("truncated WTS1: {field} needs {len} bytes at offset {}, only {left} remain", self.pos),
            ));
        }
        let out = &self.bytes[self.pos..self.pos + len];
        self.pos += len;
        Ok(out)
    }

    fn u32(&mut self, field: &str) -> Result<u32> {
        let b = self.take(4, field)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Reads a WTS1 image into tensors under the keys it holds (the seed's export names).
pub fn read(bytes: &[u8], what: &str) -> Result<RawTensors> {
    let mut r = Reader { bytes, pos: 0, what };
    if bytes.is_empty() {
        return Err(Error::EmptyFile { path: what.into() });
    }
    let magic = r.take(4, "the magic")?;
    if magic != MAGIC {
        return Err(Error::checkpoint(what, format!("expected the WTS1 magic `WTS1`, found {magic:?}")));
    }
    let count = r.u32("the tensor count")?;
    let mut out = RawTensors::new();
    for index in 0..count {
        let field = |f: &str| format!("{f} of tensor {index} (of {count} claimed)");
        let key_len = r.u32(&field("the key length"))? as usize;
        let key = r.take(key_len, &field("the key"))?;
        let key = std::str::from_utf8(key)
            .map_err(|_| Error::checkpoint(what, format!("key of tensor {index} is not UTF-8")))?
            .to_string();
        let padding = r.take((4 - key_len % 4) % 4, &field("the key padding"))?;
        if padding.iter().any(|&b| b != 0) {
            return Err(Error::checkpoint(what, format!("padding after key `{key}` is not zero: {padding:?}")));
        }
        let ndims = r.u32(&format!("the rank of `{key}`"))?;
        if ndims > MAX_DIMS {
            return Err(Error::checkpoint(
                what,
                format!("`{key}` claims {ndims} dimensions, at most {MAX_DIMS} expected"),
            ));
        }
        let shape = (0..ndims)
            .map(|_| r.u32(&format!("the shape of `{key}`")).map(|d| d as usize))
            .collect::<Result<Vec<_>>>()?;
        let elements = r.u32(&format!("the element count of `{key}`"))? as usize;
        let product = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
        if product != Some(elements) {
            return Err(Error::checkpoint(what, format!("`{key}` has shape {shape:?} but claims {elements} elements")));
        }
        let data = r.take(elements.saturating_mul(4), &format!("the data of `{key}` ({elements} f32)"))?;
        let values = data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        if out.insert(key.clone(), (shape, values)).is_some() {
            return Err(Error::checkpoint(what, format!("key `{key}` appears twice")));
        }
    }
    if r.pos != bytes.len() {
        return Err(Error::checkpoint(
            what,
            format!("{} bytes follow the {count} tensors the header counts", bytes.len() - r.pos),
        ));
    }
    Ok(out)
}

/// Writes a checkpoint as WTS1 in state-dict order, leaving out the x0 head (WTS1 has no place
/// for it). Prompt-conditioned checkpoints are refused: WTS1 has no `prompt_embed` key and no
/// vocabulary, so the result could not be prompted.
pub fn write(checkpoint: &Checkpoint) -> Result<Vec<u8>> {
    if checkpoint.is_conditional() {
        return Err(Error::checkpoint(
            "WTS1 export",
            "the checkpoint is prompt-conditioned, but WTS1 has no `prompt_embed` key or vocabulary; export it as safetensors",
        ));
    }
    let names: Vec<(String, Vec<usize>)> = expected_tensors(&checkpoint.config, None)
        .into_iter()
        .filter(|(n, _)| !X0_HEAD.contains(&n.as_str()))
        .collect();
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(names.len() as u32).to_le_bytes());
    for (name, shape) in names {
        let tensor = checkpoint
            .tensors
            .get(&name)
            .ok_or_else(|| Error::MissingTensor { name: name.clone(), expected: shape.clone() })?;
        let values = tensor.flatten_all()?.to_vec1::<f32>()?;
        let key = seed_name(&name);
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(key.as_bytes());
        out.resize(out.len() + (4 - key.len() % 4) % 4, 0);
        out.extend_from_slice(&(shape.len() as u32).to_le_bytes());
        for d in &shape {
            out.extend_from_slice(&(*d as u32).to_le_bytes());
        }
        out.extend_from_slice(&(values.len() as u32).to_le_bytes());
        for v in values {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    Ok(out)
}
