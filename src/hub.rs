//! Checkpoints from the Hugging Face hub (filled in by the hub issue).

use std::path::PathBuf;

use crate::error::{Error, Result};

/// Pulls `owner/name[@revision]` into the HF cache and returns the folder holding its files.
pub fn pull(repo: &str) -> Result<PathBuf> {
    Err(Error::Hub(format!("hub pulls are not available in this build (asked for `{repo}`)")))
}
