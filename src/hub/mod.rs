//! Checkpoints from the Hugging Face hub. [`pull`] fetches `config.json`, `model.safetensors`
//! and the vocabulary file the config names, with the `hf-hub` crate, into the standard cache
//! (`$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`), then validates the
//! snapshot folder as it would any local checkpoint.
//!
//! - A file already cached for the asked revision is used without asking the server, so a second
//!   run needs no network; with `HF_HUB_OFFLINE=1` the server is never asked. A branch therefore
//!   stays at the commit first pulled: pin `@commit`, or clear the cache, to move on.
//! - `HF_ENDPOINT` points at another hub (the tests run one on 127.0.0.1); `HF_TOKEN` is sent
//!   if set.
//! - hf-hub writes into `blobs/<etag>.part` and renames only a body that arrived whole (as far as
//!   `Content-Length` tells), so a broken-off download leaves just the `.part` file, which the
//!   next run resumes with a range request. A body sent without `Content-Length` is not checked
//!   by hf-hub, so every file is also checked against its etag (sha256 for LFS files, git's blob
//!   sha1 for the rest); a mismatch removes it from the cache and the next run fetches it again.

use std::path::PathBuf;

use crate::error::{Error, Result};

/// Where and how to pull; [`HubOptions::from_env`] reads the usual `HF_*` variables.
#[derive(Debug, Clone)]
pub struct HubOptions {
    pub endpoint: String,
    pub cache: PathBuf,
    pub offline: bool,
    pub token: Option<String>,
    pub progress: bool,
}

impl HubOptions {
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The options the variables returned by `var` ask for.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let cache = match (var("HF_HUB_CACHE"), var("HF_HOME"), var("HOME")) {
            (Some(cache), _, _) => PathBuf::from(cache),
            (None, Some(home), _) => PathBuf::from(home).join("hub"),
            (None, None, Some(home)) => PathBuf::from(home).join(".cache/huggingface/hub"),
            (None, None, None) => return Err(Error::Hub("no cache folder: set HF_HOME or HOME".into())),
        };
        let offline = var("HF_HUB_OFFLINE")
            .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"));
        Ok(HubOptions {
            endpoint: var("HF_ENDPOINT")
                .unwrap_or_else(|| "https://huggingface.co".into())
                .trim_end_matches('/')
                .into(),
            cache,
            offline,
            token: var("HF_TOKEN").filter(|t| !t.trim().is_empty()),
            progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        })
    }
}

/// `owner/name[@revision]` split into the repo id and the revision (default `main`).
pub fn parse_spec(spec: &str) -> Result<(String, String)> {
    let (repo, revision) = spec.split_once('@').unwrap_or((spec, "main"));
    let name_ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    let parts: Vec<&str> = repo.split('/').collect();
    if parts.len() != 2 || !parts.iter().all(|p| name_ok(p)) || parts.iter().any(|p| p.starts_with('.')) {
        return Err(Error::Hub(format!("expected `owner/name[@revision]`, found `{spec}`")));
    }
    // The revision becomes a path under the cache (refs/<revision>), so it may not climb out.
    let revision_ok = revision.split('/').all(|p| name_ok(p) && p != "." && p != "..");
    if !revision_ok {
        return Err(Error::Hub(format!("`{revision}` is not a branch, tag or commit name (in `{spec}`)")));
    }
    Ok((repo.to_string(), revision.to_string()))
}

/// Pulls `owner/name[@revision]` with the options from the environment.
pub fn pull(spec: &str) -> Result<PathBuf> {
    pull_with(spec, &HubOptions::from_env()?)
}

#[cfg(not(all(feature = "hub", not(target_arch = "wasm32"))))]
pub fn pull_with(spec: &str, _options: &HubOptions) -> Result<PathBuf> {
    Err(Error::Hub(format!("hub pulls are not available in this build (asked for `{spec}`)")))
}

/// Pulls `owner/name[@revision]` into `options.cache`; returns the snapshot folder, validated.
#[cfg(all(feature = "hub", not(target_arch = "wasm32")))]
pub fn pull_with(spec: &str, options: &HubOptions) -> Result<PathBuf> {
    use hf_hub::api::sync::ApiBuilder;
    use hf_hub::{Cache, Repo, RepoType};

    let (repo_id, revision) = parse_spec(spec)?;
    let repo = Repo::with_revision(repo_id, RepoType::Model, revision);
    let cache = Cache::new(options.cache.clone());
    let api = ApiBuilder::from_cache(cache.clone())
        .with_endpoint(options.endpoint.clone())
        .with_token(options.token.clone().or_else(|| cache.token()))
        .with_progress(options.progress)
        .with_retries(0)
        .build()
        .map_err(|e| Error::Hub(format!("cannot set up the hub client: {e}")))?;
    let fetch = |file: &str| -> Result<PathBuf> {
        let path = match cache.repo(repo.clone()).get(file) {
            Some(path) => path,
            None if options.offline => {
                return Err(Error::HubNotCached { repo: spec.into(), file: file.into(), cache: options.cache.clone() })
            }
            None => api.repo(repo.clone()).download(file).map_err(|e| download_error(e, spec, file, options))?,
        };
        verify(&path, file)?;
        Ok(path)
    };

    let config_path = fetch(crate::weights::CONFIG_FILE)?;
    let dir = config_path.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
    let text = std::fs::read_to_string(&config_path).map_err(|e| Error::io(&config_path, e))?;
    let config = crate::config::Config::from_json(&text, &config_path.display().to_string())
        .map_err(|e| Error::HubInvalid { repo: spec.into(), source: Box::new(e) })?;
    let mut files = vec![fetch(crate::weights::WEIGHTS_FILE)?];
    if let (None, Some(vocab)) = (&config.vocab, &config.vocab_file) {
        if !matches!(
            std::path::Path::new(vocab).components().collect::<Vec<_>>().as_slice(),
            [std::path::Component::Normal(_)]
        ) {
            return Err(Error::HubInvalid {
                repo: spec.into(),
                source: Box::new(Error::Config {
                    path: "config.json".into(),
                    message: format!("`vocab_file` must be a plain file name, found `{vocab}`"),
                }),
            });
        }
        files.push(fetch(vocab)?);
    }
    if let Some(stray) = files.iter().find(|f| f.parent() != Some(dir.as_path())) {
        return Err(Error::Hub(format!(
            "`{spec}` moved to another commit while downloading ({} is not in {}); run again",
            stray.display(),
            dir.display()
        )));
    }
    crate::weights::Checkpoint::open(&dir).map_err(|e| Error::HubInvalid { repo: spec.into(), source: Box::new(e) })?;
    Ok(dir)
}

/// One line per failure kind; the server's `X-Error-Code` tells a missing repo from a missing file.
#[cfg(all(feature = "hub", not(target_arch = "wasm32")))]
fn download_error(err: hf_hub::api::sync::ApiError, spec: &str, file: &str, options: &HubOptions) -> Error {
    use hf_hub::api::sync::ApiError;
    let endpoint = options.endpoint.clone();
    match err {
        ApiError::RequestError(boxed) => match *boxed {
            ureq::Error::Status(status, response) => {
                let code = response.header("x-error-code").unwrap_or_default().to_string();
                let detail = format!("HTTP {status}{}", if code.is_empty() { String::new() } else { format!(", {code}") });
                match code.as_str() {
                    "EntryNotFound" => Error::HubFileMissing { repo: spec.into(), file: file.into(), detail },
                    "RepoNotFound" | "RevisionNotFound" => Error::HubRepoNotFound { repo: spec.into(), endpoint, detail },
                    _ if status == 404 && file == crate::weights::CONFIG_FILE => {
                        Error::HubRepoNotFound { repo: spec.into(), endpoint, detail }
                    }
                    _ if status == 404 => Error::HubFileMissing { repo: spec.into(), file: file.into(), detail },
                    _ => Error::Hub(format!("`{spec}`: the server refused `{file}` ({detail})")),
                }
            }
            ureq::Error::Transport(t) => Error::HubUnreachable { endpoint, detail: t.to_string() },
        },
        ApiError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof || e.kind() == std::io::ErrorKind::ConnectionReset => {
            Error::Hub(format!(
                "the download of `{file}` from `{spec}` broke off ({e}); the partial file is kept outside the cache and the next run resumes it"
            ))
        }
        ApiError::MissingHeader(header) => Error::Hub(format!(
            "{endpoint} answered for `{file}` without the `{header}` header; is HF_ENDPOINT a Hugging Face hub?"
        )),
        other => Error::Hub(format!("`{spec}`: downloading `{file}` failed: {other}")),
    }
}

/// Checks a cached file against the etag it is stored under; a mismatch removes it.
#[cfg(all(feature = "hub", not(target_arch = "wasm32")))]
fn verify(pointer: &std::path::Path, file: &str) -> Result<()> {
    use sha1::Digest;
    let blob = std::fs::canonicalize(pointer).map_err(|e| Error::io(pointer, e))?;
    let etag = blob.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_ascii_lowercase();
    let is_hex = |len: usize| etag.len() == len && etag.bytes().all(|b| b.is_ascii_hexdigit());
    let data = std::fs::read(&blob).map_err(|e| Error::io(&blob, e))?;
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let found = if is_hex(64) {
        hex(&sha2::Sha256::digest(&data))
    } else if is_hex(40) {
        let mut git = sha1::Sha1::new();
        git.update(format!("blob {}\0", data.len()).as_bytes());
        git.update(&data);
        hex(&git.finalize())
    } else {
        return Ok(()); // Not a content hash (another kind of server): the loader's validation is the check.
    };
    if found == etag {
        return Ok(());
    }
    let _ = std::fs::remove_file(pointer);
    let _ = std::fs::remove_file(&blob);
    Err(Error::HubCorrupt { file: file.into(), expected: etag, found, size: data.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_split_into_repo_and_revision() {
        assert_eq!(parse_spec("owner/name").unwrap(), ("owner/name".into(), "main".into()));
        assert_eq!(parse_spec("o-1/n.2@v1.0").unwrap(), ("o-1/n.2".into(), "v1.0".into()));
        assert_eq!(parse_spec("o/n@refs/pr/3").unwrap().1, "refs/pr/3");
        for bad in ["noslash", "a/b/c", "a/b@", "/b", "a/", "a/b@../../etc", "a/b@x/../y", "a/..", "a b/c"] {
            assert!(matches!(parse_spec(bad), Err(Error::Hub(_))), "{bad}");
        }
    }

    #[test]
    fn options_follow_the_hf_variables() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
        };
        let o = HubOptions::from_lookup(vars(&[("HOME", "/h")])).unwrap();
        assert_eq!(
            (o.cache, o.offline, o.endpoint.as_str()),
            (PathBuf::from("/h/.cache/huggingface/hub"), false, "https://huggingface.co")
        );
        let o = HubOptions::from_lookup(vars(&[
            ("HOME", "/h"),
            ("HF_HOME", "/x"),
            ("HF_HUB_OFFLINE", "1"),
            ("HF_ENDPOINT", "http://127.0.0.1:9/"),
        ]))
        .unwrap();
        assert_eq!((o.cache, o.offline, o.endpoint.as_str()), (PathBuf::from("/x/hub"), true, "http://127.0.0.1:9"));
        let o = HubOptions::from_lookup(vars(&[("HF_HUB_CACHE", "/c"), ("HF_HOME", "/x"), ("HF_HUB_OFFLINE", "0")]))
            .unwrap();
        assert_eq!((o.cache, o.offline), (PathBuf::from("/c"), false));
        assert!(HubOptions::from_lookup(vars(&[])).is_err());
    }
}
