//! Checkpoints in other formats: the seed's PyTorch state dicts (`.pt`/`.pth`), its browser
//! export WTS1, and any safetensors file, read into a validated [`Checkpoint`]; and WTS1
//! written back out for the seed's JavaScript demo. Our own format is written by
//! [`Checkpoint::save`].
//!
//! Every reader treats its input as hostile: claimed lengths and counts are checked against the
//! bytes present before anything is allocated, and no pickle code is ever run.

pub mod infer;
pub mod names;
pub mod pickle_guard;
pub mod pth;
pub mod wts1;

use std::path::Path;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::limits::LoadOptions;
use crate::vocab::Vocab;
pub use crate::weights::RawTensors;
use crate::weights::{Checkpoint, X0_HEAD};

pub use infer::{infer_config, Hints, Inferred};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Safetensors,
    Pytorch,
    Wts1,
}

impl Format {
    /// Tells the format from the first bytes.
    pub fn detect(bytes: &[u8], what: &str) -> Result<Format> {
        if bytes.is_empty() {
            return Err(Error::EmptyFile { path: what.into() });
        }
        if bytes.starts_with(wts1::MAGIC) {
            return Ok(Format::Wts1);
        }
        if bytes.starts_with(b"PK\x03\x04") {
            return Ok(Format::Pytorch);
        }
        // safetensors: a u64 header length, then a JSON object. Checked before the legacy pickle
        // test below, since a header length whose low byte is 0x80 starts like a pickle.
        if bytes.len() >= 9 && bytes[8] == b'{' {
            return Ok(Format::Safetensors);
        }
        // The legacy torch.save format is a bare pickle: PROTO (0x80) and a version 2 to 5.
        if bytes[0] == 0x80 && bytes.get(1).is_some_and(|v| (2..=5).contains(v)) {
            return Ok(Format::Pytorch);
        }
        Err(Error::checkpoint(
            what,
            format!(
                "unrecognised format: expected safetensors, a torch.save zip (`PK`) or WTS1, found bytes {:?}",
                &bytes[..bytes.len().min(8)]
            ),
        ))
    }
}

/// Reads the tensors of one file, named as in our state dict (the seed's export names are
/// accepted in every format, see [`names`]).
pub fn read_tensors(bytes: &[u8], format: Format, what: &str) -> Result<RawTensors> {
    read_tensors_with(bytes, format, what, &LoadOptions::default())
}

/// [`read_tensors`] within `options`' memory limit.
pub fn read_tensors_with(bytes: &[u8], format: Format, what: &str, options: &LoadOptions) -> Result<RawTensors> {
    let tensors = match format {
        Format::Safetensors => {
            if bytes.is_empty() {
                return Err(Error::EmptyFile { path: what.into() });
            }
            crate::weights::safetensors_raw(bytes, what, None, options)?
        }
        Format::Pytorch => pth::read_with(bytes, what, options)?,
        // WTS1 values are f32 already: its tensors take no more than the file read whole.
        Format::Wts1 => wts1::read(bytes, what)?,
    };
    names::to_ours(tensors, what)
}

/// A checkpoint read from another format, with the guesses its config needed.
#[derive(Debug, Clone)]
pub struct Imported {
    pub checkpoint: Checkpoint,
    pub format: Format,
    pub notes: Vec<String>,
}

/// Reads and validates tensors from `bytes`; the config comes from `config` when given (with
/// its vocabulary), else it is inferred from the shapes and `hints`.
pub fn import_bytes(
    bytes: &[u8],
    what: &str,
    hints: &Hints,
    config: Option<(Config, Option<Vocab>)>,
) -> Result<Imported> {
    import_bytes_with(bytes, what, hints, config, &LoadOptions::default())
}

/// [`import_bytes`] within `options`' memory limit.
pub fn import_bytes_with(
    bytes: &[u8],
    what: &str,
    hints: &Hints,
    config: Option<(Config, Option<Vocab>)>,
    options: &LoadOptions,
) -> Result<Imported> {
    let format = Format::detect(bytes, what)?;
    let tensors = read_tensors_with(bytes, format, what, options)?;
    let (config, vocab, notes) = match config {
        Some((config, vocab)) => {
            let has_head = tensors.contains_key(X0_HEAD[0]);
            if config.x0_head != has_head {
                return Err(Error::checkpoint(
                    what,
                    format!(
                        "the config says `x0_head: {}`, but the file {} the x0 head (`{}`)",
                        config.x0_head,
                        if has_head { "has" } else { "lacks" },
                        X0_HEAD[0]
                    ),
                ));
            }
            (config, vocab, Vec::new())
        }
        None => {
            let Inferred { config, notes } = infer_config(&tensors, hints)?;
            let vocab = config.vocab.clone().map(Vocab::new).transpose()?;
            (config, vocab, notes)
        }
    };
    let checkpoint = Checkpoint::from_raw(config, vocab, tensors)?;
    Ok(Imported { checkpoint, format, notes })
}

/// Imports a file in any supported format, or opens one of our checkpoint folders as is.
pub fn import(path: &Path, hints: &Hints) -> Result<Imported> {
    import_with(path, hints, &LoadOptions::default())
}

/// [`import`] within `options`' memory limit (which also bounds the file, read whole).
pub fn import_with(path: &Path, hints: &Hints, options: &LoadOptions) -> Result<Imported> {
    if path.is_dir() {
        if path.join(crate::weights::CONFIG_FILE).is_file() {
            let checkpoint = Checkpoint::open_with(path, options)?;
            return Ok(Imported { checkpoint, format: Format::Safetensors, notes: Vec::new() });
        }
        return Err(Error::IsDirectory { path: path.into() });
    }
    let bytes = crate::fsio::read_regular(path, options.max_memory)?;
    import_bytes_with(&bytes, &path.display().to_string(), hints, None, options)
}

/// Writes `checkpoint` as WTS1 to `path`, atomically (see [`wts1::write`] for what is left out).
pub fn save_wts1(checkpoint: &Checkpoint, path: &Path) -> Result<()> {
    crate::fsio::write_atomic(path, &wts1::write(checkpoint)?)
}
