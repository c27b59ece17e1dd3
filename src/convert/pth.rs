//! The seed's PyTorch checkpoints: the zip archive `torch.save(model.state_dict())` writes, with
//! `archive/data.pkl` (a pickle naming each tensor's storage, offset, shape and stride) and one
//! raw little-endian storage per tensor under `archive/data/`.
//!
//! The pickle is read by candle's `pickle::Stack`, which interprets opcodes into a tree of
//! plain values and never imports or calls anything. Before that, [`super::pickle_guard`]
//! refuses streams that name functions outside a short allowlist or that would make the
//! interpreter allocate or nest without bound. The tree is then walked here with every claimed
//! number (shape, offset, storage size) checked against the bytes really in the archive.

use std::collections::HashMap;
use std::io::{Cursor, Read};

use candle_core::pickle::{Object, Stack};

use super::{pickle_guard, RawTensors};
use crate::error::{Error, Result};
use crate::limits::{f32_bytes, LoadOptions};

/// The pickle of a state dict is a few kilobytes; anything past this is not one.
pub const MAX_PICKLE_BYTES: u64 = 16 << 20;
const MAX_RANK: usize = 8;

#[derive(Debug, Clone, Copy)]
enum Element {
    F32,
    F16,
    BF16,
    F64,
}

impl Element {
    fn from_storage(class: &str) -> Option<Self> {
        match class {
            "FloatStorage" => Some(Element::F32),
            "HalfStorage" => Some(Element::F16),
            "BFloat16Storage" => Some(Element::BF16),
            "DoubleStorage" => Some(Element::F64),
            _ => None,
        }
    }

    fn size(self) -> usize {
        match self {
            Element::F32 => 4,
            Element::F16 | Element::BF16 => 2,
            Element::F64 => 8,
        }
    }

    fn decode(self, bytes: &[u8]) -> Vec<f32> {
        match self {
            Element::F32 => bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            Element::F16 => bytes.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            Element::BF16 => bytes.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            Element::F64 => bytes
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32)
                .collect(),
        }
    }
}

/// One tensor as the pickle describes it, before its bytes are read.
#[derive(Debug)]
pub struct TensorRef {
    pub name: String,
    element: Element,
    pub shape: Vec<usize>,
    /// In elements, from the start of the storage.
    pub offset: usize,
    /// The storage's key: its data is `archive/data/{storage}`.
    pub storage: String,
    /// The storage's length in elements, as claimed.
    pub storage_len: usize,
}

/// Reads a `.pt`/`.pth` state dict into f32 tensors under their state-dict names.
pub fn read(bytes: &[u8], what: &str) -> Result<RawTensors> {
    read_with(bytes, what, &LoadOptions::default())
}

/// [`read`] within `options`' memory limit, checked on the pickle's claims before any storage
/// is read: tensors that alias one storage each get their own f32 copy, so a small archive
/// can ask for many times its size.
pub fn read_with(bytes: &[u8], what: &str, options: &LoadOptions) -> Result<RawTensors> {
    if bytes.is_empty() {
        return Err(Error::EmptyFile { path: what.into() });
    }
    if !bytes.starts_with(b"PK\x03\x04") {
        let hint = if bytes[0] == 0x80 {
            "this looks like the legacy (pre-1.6, non-zip) torch.save format; re-save it with a current torch.save"
        } else {
            "expected a zip archive (starting `PK\\x03\\x04`) as torch.save writes"
        };
        return Err(Error::checkpoint(what, format!("not a PyTorch checkpoint: {hint}")));
    }
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| Error::checkpoint(what, format!("unreadable zip archive: {e}")))?;
    let names = zip
        .file_names()
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::checkpoint(what, format!("unreadable zip entry name: {e}")))?;
    let pickles: Vec<String> = names.iter().filter(|n| n.ends_with("data.pkl")).map(|n| n.to_string()).collect();
    let pickle_name = match pickles.as_slice() {
        [one] => one.clone(),
        found => {
            return Err(Error::checkpoint(
                what,
                format!("expected one `data.pkl` in the archive, found {}", found.len()),
            ))
        }
    };
    let prefix = pickle_name.strip_suffix("data.pkl").unwrap_or_default().to_string();
    if zip.index_for_name(&format!("{prefix}byteorder")).is_some() {
        let order = read_entry(&mut zip, &format!("{prefix}byteorder"), 16, what)?;
        if order != b"little" {
            return Err(Error::checkpoint(
                what,
                format!("storages are `{}`-endian, expected little", String::from_utf8_lossy(&order)),
            ));
        }
    }
    let pickle = read_entry(&mut zip, &pickle_name, MAX_PICKLE_BYTES, what)?;
    let refs = read_pickle(&pickle, &format!("{what} ({pickle_name})"))?;
    let tensor_bytes = refs.iter().try_fold(0u64, |sum, t| f32_bytes(&t.shape)?.checked_add(sum));
    options.check(&format!("{what} (its tensors as f32)"), tensor_bytes)?;
    let mut claimed: HashMap<&str, u64> = HashMap::new();
    for t in &refs {
        let size = (t.storage_len as u64).saturating_mul(t.element.size() as u64);
        claimed.entry(t.storage.as_str()).or_insert(size);
    }
    let storage_bytes = claimed.values().try_fold(0u64, |sum, &b| sum.checked_add(b));
    options.check(&format!("{what} (its storages)"), storage_bytes)?;

    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    let mut out = RawTensors::new();
    for tensor in refs {
        let elsize = tensor.element.size();
        let numel = tensor.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        let span = numel.and_then(|n| n.checked_add(tensor.offset)).and_then(|end| end.checked_mul(elsize));
        let storage_bytes = tensor.storage_len.checked_mul(elsize);
        let (Some(end), Some(storage_bytes)) = (span, storage_bytes) else {
            return Err(Error::checkpoint(what, format!("`{}`: shape {:?} overflows", tensor.name, tensor.shape)));
        };
        if end > storage_bytes {
            return Err(Error::checkpoint(
                what,
                format!(
                    "`{}` (shape {:?}, offset {}) reads to byte {end} of a storage of {storage_bytes} bytes",
                    tensor.name, tensor.shape, tensor.offset
                ),
            ));
        }
        if !storages.contains_key(&tensor.storage) {
            let entry = format!("{prefix}data/{}", tensor.storage);
            let data = read_entry(&mut zip, &entry, storage_bytes as u64, what)?;
            if data.len() != storage_bytes {
                return Err(Error::checkpoint(
                    what,
                    format!("storage `{entry}` holds {} bytes, the pickle claims {storage_bytes}", data.len()),
                ));
            }
            storages.insert(tensor.storage.clone(), data);
        }
        let data = &storages[&tensor.storage];
        if data.len() != storage_bytes {
            return Err(Error::checkpoint(
                what,
                format!("storage `{}` is claimed with two different sizes", tensor.storage),
            ));
        }
        let values = tensor.element.decode(&data[tensor.offset * elsize..end]);
        if out.insert(tensor.name.clone(), (tensor.shape, values)).is_some() {
            return Err(Error::checkpoint(what, format!("tensor `{}` appears twice", tensor.name)));
        }
    }
    Ok(out)
}

/// The tensors a state-dict pickle describes, without their data. The stream is checked by
/// [`pickle_guard::check`] before candle's interpreter reads it.
pub fn read_pickle(pickle: &[u8], what: &str) -> Result<Vec<TensorRef>> {
    pickle_guard::check(pickle, what)?;
    let mut stack = Stack::empty();
    stack.read_loop(&mut &pickle[..]).map_err(|e| Error::checkpoint(what, format!("pickle: {e}")))?;
    let root = stack.finalize().map_err(|e| Error::checkpoint(what, format!("pickle: {e}")))?;
    state_dict(root, what)
}

/// Reads at most `limit` bytes of one archive entry; growth follows the bytes really read.
fn read_entry(zip: &mut zip::ZipArchive<Cursor<&[u8]>>, name: &str, limit: u64, what: &str) -> Result<Vec<u8>> {
    let entry = zip.by_name(name).map_err(|e| Error::checkpoint(what, format!("archive entry `{name}`: {e}")))?;
    let mut data = Vec::new();
    entry
        .take(limit.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|e| Error::checkpoint(what, format!("archive entry `{name}`: {e}")))?;
    if data.len() as u64 > limit {
        return Err(Error::checkpoint(
            what,
            format!("archive entry `{name}` is larger than the {limit} bytes expected"),
        ));
    }
    Ok(data)
}

fn kind(obj: &Object) -> &'static str {
    match obj {
        Object::Class { .. } => "a class",
        Object::Int(_) | Object::Long(_) => "an integer",
        Object::Float(_) => "a float",
        Object::Unicode(_) => "a string",
        Object::Bool(_) => "a bool",
        Object::None => "None",
        Object::Tuple(_) => "a tuple",
        Object::List(_) => "a list",
        Object::Mark => "a mark",
        Object::Dict(_) => "a dict",
        Object::Reduce { .. } => "a call",
        Object::Build { .. } => "an object build",
        Object::PersistentLoad(_) => "a persistent id",
    }
}

/// The tensors of a state dict: a dict from names to `_rebuild_tensor_v2` calls (optionally
/// wrapped in `_rebuild_parameter`). The `_metadata` entry PyTorch adds is skipped.
fn state_dict(root: Object, what: &str) -> Result<Vec<TensorRef>> {
    let Object::Dict(items) = root else {
        return Err(Error::checkpoint(
            what,
            format!("expected a state dict at the top of the pickle, found {}", kind(&root)),
        ));
    };
    let mut out = Vec::new();
    for (key, value) in items {
        let Object::Unicode(name) = key else {
            return Err(Error::checkpoint(what, format!("a state-dict key is {}, expected a string", kind(&key))));
        };
        if name == "_metadata" {
            continue;
        }
        if let Object::Dict(_) = value {
            return Err(Error::checkpoint(
                what,
                format!("`{name}` is a nested dict, not a tensor; save `model.state_dict()` itself"),
            ));
        }
        out.push(tensor_ref(name, value, what, true)?);
    }
    Ok(out)
}

fn class_of(obj: &Object) -> Option<String> {
    match obj {
        Object::Class { module_name, class_name } => Some(format!("{module_name}.{class_name}")),
        _ => None,
    }
}

fn index(obj: &Object, name: &str, field: &str, what: &str) -> Result<usize> {
    match obj {
        Object::Int(v) if *v >= 0 => Ok(*v as usize),
        Object::Long(v) if *v >= 0 => {
            usize::try_from(*v).map_err(|_| Error::checkpoint(what, format!("`{name}`: {field} {v} is too large")))
        }
        other => Err(Error::checkpoint(
            what,
            format!("`{name}`: {field} is {}, expected a non-negative integer", kind(other)),
        )),
    }
}

fn indices(obj: &Object, name: &str, field: &str, what: &str) -> Result<Vec<usize>> {
    let Object::Tuple(items) = obj else {
        return Err(Error::checkpoint(what, format!("`{name}`: {field} is {}, expected a tuple", kind(obj))));
    };
    if items.len() > MAX_RANK {
        return Err(Error::checkpoint(
            what,
            format!("`{name}`: {field} has {} entries, at most {MAX_RANK} expected", items.len()),
        ));
    }
    items.iter().map(|i| index(i, name, field, what)).collect()
}

fn tensor_ref(name: String, value: Object, what: &str, unwrap_parameter: bool) -> Result<TensorRef> {
    let not_tensor = |found: &str| Error::checkpoint(what, format!("`{name}` is {found}, expected a tensor"));
    let Object::Reduce { callable, args } = value else { return Err(not_tensor(kind(&value))) };
    let Object::Tuple(mut args) = *args else { return Err(not_tensor("a call with non-tuple arguments")) };
    match class_of(&callable).as_deref() {
        Some("torch._utils._rebuild_parameter") if unwrap_parameter && !args.is_empty() => {
            return tensor_ref(name, args.swap_remove(0), what, false)
        }
        Some("torch._utils._rebuild_tensor_v2") if args.len() >= 4 => {}
        Some(other) => return Err(not_tensor(&format!("a call to `{other}` with {} arguments", args.len()))),
        None => return Err(not_tensor("a call of a non-class")),
    }
    let shape = indices(&args[2], &name, "the shape", what)?;
    let stride = indices(&args[3], &name, "the stride", what)?;
    let offset = index(&args[1], &name, "the storage offset", what)?;
    let Object::PersistentLoad(storage) = &args[0] else { return Err(not_tensor("built from a non-storage")) };
    let Object::Tuple(storage) = storage.as_ref() else { return Err(not_tensor("built from a malformed storage id")) };
    let [Object::Unicode(tag), class, Object::Unicode(key), _location, size] = storage.as_slice() else {
        return Err(not_tensor("built from a malformed storage id"));
    };
    if tag != "storage" {
        return Err(not_tensor(&format!("built from a `{tag}` persistent id")));
    }
    let class = class_of(class).unwrap_or_default();
    let storage_class = class.strip_prefix("torch.").unwrap_or(&class);
    let element = Element::from_storage(storage_class)
        .ok_or_else(|| Error::BadDtype { name: name.clone(), found: storage_class.to_string() })?;
    if stride.len() != shape.len() {
        return Err(Error::checkpoint(what, format!("`{name}`: stride {stride:?} does not match shape {shape:?}")));
    }
    let mut expected = 1usize;
    for (&dim, &step) in shape.iter().zip(&stride).rev() {
        if dim > 1 && step != expected {
            return Err(Error::checkpoint(
                what,
                format!(
                    "`{name}` is stored non-contiguously (shape {shape:?}, stride {stride:?}); save a contiguous copy"
                ),
            ));
        }
        expected = expected.saturating_mul(dim);
    }
    Ok(TensorRef {
        storage_len: index(size, &name, "the storage size", what)?,
        name,
        element,
        shape,
        offset,
        storage: key.clone(),
    })
}
