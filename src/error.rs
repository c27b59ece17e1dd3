//! The library's error type. Every message says what was expected and what was found.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The I/O error is part of the message (not a `source`), so error chains print it once.
    #[error("cannot read {path}: {reason}")]
    Io { path: PathBuf, reason: std::io::Error },

    #[error("cannot write {path}: {reason}")]
    Write { path: PathBuf, reason: std::io::Error },

    #[error("{path} is a directory, expected a file")]
    IsDirectory { path: PathBuf },

    #[error("{path} is a {kind}, expected a regular file")]
    NotRegularFile { path: PathBuf, kind: &'static str },

    #[error("{path} is larger than the {limit} bytes allowed for it")]
    TooLarge { path: PathBuf, limit: u64 },

    #[error("{what} needs {needed} bytes of memory, more than the limit of {limit}; raise the limit to load it anyway (`--max-memory` in the examples)")]
    MemoryLimit { what: String, needed: String, limit: u64 },

    #[error("{path} is empty")]
    EmptyFile { path: PathBuf },

    #[error("bad config {path}: {message}")]
    Config { path: String, message: String },

    #[error("bad checkpoint {what}: {message}")]
    Checkpoint { what: String, message: String },

    #[error("tensor `{name}` is missing from the checkpoint (expected shape {expected:?})")]
    MissingTensor { name: String, expected: Vec<usize> },

    #[error("unexpected tensor `{name}` with shape {shape:?}: the config does not use it")]
    ExtraTensor { name: String, shape: Vec<usize> },

    #[error("tensor `{name}` has shape {found:?}, expected {expected:?}")]
    ShapeMismatch { name: String, expected: Vec<usize>, found: Vec<usize> },

    #[error("tensor `{name}` has dtype {found}, expected F32, F16 or BF16")]
    BadDtype { name: String, found: String },

    #[error("tensor `{name}` holds {count} non-finite values (NaN or Inf); refusing to load it")]
    NonFinite { name: String, count: usize },

    #[error("unknown prompt word `{word}`{}", suggestion(.suggestions))]
    UnknownWord { word: String, suggestions: Vec<String> },

    #[error(
        "the prompt `{prompt}` has no word (letters or digits) in it; use an empty prompt for an unconditional sample"
    )]
    NoPromptWords { prompt: String },

    #[error("the sampled images hold {count} non-finite values (NaN or Inf) of {total}: the model's activations overflowed, so the weights or the guidance are out of range")]
    NonFiniteOutput { count: usize, total: usize },

    #[error("this checkpoint is unconditional (no `prompt_embed.weight`), so it takes no prompt; got `{prompt}` (use an empty prompt)")]
    PromptOnUnconditional { prompt: String },

    #[error("the checkpoint draws {found} channels; expected 3 (RGB) or 4 (premultiplied RGBA)")]
    Channels { found: usize },

    #[error("colour `{text}`: expected #rrggbb, rrggbb, white, black or grey")]
    Color { text: String },

    #[error("no checkpoint found; looked at {0}")]
    NoWeights(String),

    #[error("stopped after step {done} of {total}")]
    Stopped { done: usize, total: usize },

    #[error("invalid request: {0}")]
    Request(String),

    #[error("image {path}: {message}")]
    Image { path: String, message: String },

    #[error("GPU: {0}")]
    Gpu(String),

    #[error("hub: {0}")]
    Hub(String),

    #[error("hub: `{repo}` not found at {endpoint} ({detail})")]
    HubRepoNotFound { repo: String, endpoint: String, detail: String },

    #[error("hub: `{repo}` has no file `{file}` ({detail})")]
    HubFileMissing { repo: String, file: String, detail: String },

    #[error("hub: cannot reach {endpoint} ({detail}); with HF_HUB_OFFLINE=1 cached checkpoints load without it")]
    HubUnreachable { endpoint: String, detail: String },

    #[error("hub: {host} {what} within {seconds} s while fetching `{file}` (set {variable} to wait longer)")]
    HubTimeout { host: String, what: &'static str, seconds: u64, file: String, variable: &'static str },

    #[error("hub: {host} answered `{file}` with a {header} that is not {expected}, found `{found}`; refusing to use it as a cache path")]
    HubBadHeader { host: String, file: String, header: &'static str, expected: &'static str, found: String },

    #[error("hub: `{file}` from {host} is larger than {limit} bytes ({detail}); refusing it")]
    HubTooLarge { host: String, file: String, limit: u64, detail: String },

    #[error("hub: `{file}` of `{repo}` is not in the cache {cache}, and HF_HUB_OFFLINE is set")]
    HubNotCached { repo: String, file: String, cache: PathBuf },

    #[error("hub: the downloaded `{file}` ({size} bytes) does not match its etag (expected {expected}, found {found}); removed it from the cache, run again")]
    HubCorrupt { file: String, expected: String, found: String, size: usize },

    #[error("hub: `{repo}` downloaded, but it is not a valid checkpoint: {source}")]
    HubInvalid { repo: String, source: Box<Error> },

    #[error("{what}: the pickle calls `{global}` (byte {offset}), which is not one of the tensor-rebuild functions a state dict uses; refusing it (pickle code is never run)")]
    UnsafePickle { what: String, global: String, offset: usize },

    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

fn suggestion(words: &[String]) -> String {
    if words.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", words.iter().map(|w| format!("`{w}`")).collect::<Vec<_>>().join(", "))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), reason: source }
    }
    pub(crate) fn write(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Write { path: path.into(), reason: source }
    }
    pub(crate) fn checkpoint(what: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Checkpoint { what: what.into(), message: message.into() }
    }
}
