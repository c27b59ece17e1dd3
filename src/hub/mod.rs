//! Checkpoints from the Hugging Face hub. [`pull`] fetches `config.json`, `model.safetensors`
//! and the vocabulary file the config names into the standard cache (`$HF_HUB_CACHE`, else
//! `$HF_HOME/hub`, else `~/.cache/huggingface/hub`, in the layout `huggingface_hub` uses), then
//! validates the snapshot folder as it would any local checkpoint.
//!
//! - A file already cached for the asked revision is used without asking the server, so a second
//!   run needs no network; with `HF_HUB_OFFLINE=1` the server is never asked. A branch therefore
//!   stays at the commit first pulled: pin `@commit`, or clear the cache, to move on.
//! - `HF_ENDPOINT` points at another hub (the tests run one on 127.0.0.1); `HF_TOKEN` (else the
//!   `token` file beside the cache) is sent to that endpoint's origin only, never to a host a
//!   redirect leads to.
//! - The server is not trusted (docs/SECURITY.md): its names are validated before they become
//!   paths ([`cache`]), requests time out ([`http`]: 10 s to connect, 30 s without a byte;
//!   `HF_HUB_CONNECT_TIMEOUT` and `HF_HUB_DOWNLOAD_TIMEOUT` in seconds change them), redirects are
//!   bounded, and bodies are capped while they stream: 16 MiB for the config and the vocabulary,
//!   the announced size (at most 2 GiB) for the weights.
//! - A download goes to `blobs/<etag>.part`, resumed by the next run with a range request, and
//!   becomes the blob only once its hash matches the etag (sha256 for LFS files, git's blob sha1
//!   for the rest). A `.part` longer than the file is discarded.
//!
//! hf-hub (0.4 and 1.0) is not used: neither validates the etag or commit before making them
//! paths, neither has timeouts or size caps, and 0.4 follows a relative redirect loop without
//! end (measured in docs/SECURITY.md).

#[cfg(all(feature = "hub", not(target_arch = "wasm32")))]
pub mod cache;
#[cfg(all(feature = "hub", not(target_arch = "wasm32")))]
pub mod http;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::limits::DEFAULT_MAX_MEMORY;
#[cfg(all(feature = "hub", not(target_arch = "wasm32")))]
use crate::limits::MAX_SMALL_FILE;

/// Where and how to pull; [`HubOptions::from_env`] reads the usual `HF_*` variables.
#[derive(Debug, Clone)]
pub struct HubOptions {
    pub endpoint: String,
    pub cache: PathBuf,
    pub offline: bool,
    pub token: Option<String>,
    pub progress: bool,
    pub connect_timeout: Duration,
    /// The longest wait for the next byte.
    pub read_timeout: Duration,
    /// The largest weights file accepted (the config and vocabulary are held to 16 MiB).
    pub max_weights: u64,
}

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

impl HubOptions {
    /// Defaults for one endpoint and cache: online, no token, no progress output.
    pub fn new(endpoint: &str, cache: &Path) -> Self {
        HubOptions {
            endpoint: endpoint.trim_end_matches('/').into(),
            cache: cache.into(),
            offline: false,
            token: None,
            progress: false,
            connect_timeout: CONNECT_TIMEOUT,
            read_timeout: READ_TIMEOUT,
            max_weights: DEFAULT_MAX_MEMORY,
        }
    }

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
        let seconds = |name: &str, default: Duration| -> Result<Duration> {
            match var(name) {
                None => Ok(default),
                Some(v) => match v.trim().parse::<f64>() {
                    Ok(s) if s > 0.0 && s <= 86_400.0 => Ok(Duration::from_secs_f64(s)),
                    _ => Err(Error::Hub(format!("{name} must be a number of seconds in (0, 86400], found `{v}`"))),
                },
            }
        };
        let endpoint = var("HF_ENDPOINT").unwrap_or_else(|| "https://huggingface.co".into());
        Ok(HubOptions {
            offline,
            token: var("HF_TOKEN").filter(|t| !t.trim().is_empty()),
            progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            connect_timeout: seconds("HF_HUB_CONNECT_TIMEOUT", CONNECT_TIMEOUT)?,
            read_timeout: seconds("HF_HUB_DOWNLOAD_TIMEOUT", READ_TIMEOUT)?,
            ..HubOptions::new(&endpoint, &cache)
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
    let (repo, revision) = parse_spec(spec)?;
    let cache = cache::RepoCache::new(&options.cache, &repo);
    let token = options.token.clone().or_else(|| saved_token(&options.cache));
    let client = http::Client::new(options, token)?;
    let fetch = |file: &str, limit: u64| -> Result<PathBuf> {
        if let Some(path) = cache.commit_of(&revision).and_then(|commit| cache.cached(&commit, file)) {
            let blob = std::fs::canonicalize(&path).map_err(|e| Error::io(&path, e))?;
            let etag = blob.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            if !cache::is_hex(&etag, &[40, 64]) {
                return Err(Error::Hub(format!("{} is not named by a content hash; delete it", blob.display())));
            }
            if let Err(e) = cache::verify(&blob, &etag, file) {
                let _ = std::fs::remove_file(&path);
                let _ = std::fs::remove_file(&blob);
                return Err(e);
            }
            return Ok(path);
        }
        if options.offline {
            return Err(Error::HubNotCached { repo: spec.into(), file: file.into(), cache: options.cache.clone() });
        }
        download(&client, &cache, &repo, &revision, file, limit, options.progress).map_err(|e| named(e, spec))
    };

    let config_path = fetch(crate::weights::CONFIG_FILE, MAX_SMALL_FILE)?;
    let dir = config_path.parent().map(Path::to_path_buf).unwrap_or_default();
    let config = crate::fsio::read_regular(&config_path, MAX_SMALL_FILE)
        .and_then(|bytes| {
            let text = String::from_utf8(bytes)
                .map_err(|_| Error::Config { path: config_path.display().to_string(), message: "not UTF-8".into() })?;
            crate::config::Config::from_json(&text, &config_path.display().to_string())
        })
        .map_err(|e| Error::HubInvalid { repo: spec.into(), source: Box::new(e) })?;
    let vocab = match (&config.vocab, &config.vocab_file) {
        (None, Some(vocab)) if !cache::plain_name(vocab) => {
            return Err(Error::HubInvalid {
                repo: spec.into(),
                source: Box::new(Error::Config {
                    path: "config.json".into(),
                    message: format!(
                        "`vocab_file` must be a plain file name (letters, digits, `._-`), found `{vocab}`"
                    ),
                }),
            })
        }
        (None, Some(vocab)) => Some(vocab),
        _ => None,
    };
    let mut files = vec![fetch(crate::weights::WEIGHTS_FILE, options.max_weights)?];
    if let Some(vocab) = vocab {
        files.push(fetch(vocab, MAX_SMALL_FILE)?);
    }
    if let Some(stray) = files.iter().find(|f| f.parent() != Some(dir.as_path())) {
        return Err(Error::Hub(format!(
            "`{spec}` moved to another commit while downloading ({} is not in {}); run again",
            stray.display(),
            dir.display()
        )));
    }
    let load = crate::limits::LoadOptions { max_memory: options.max_weights };
    crate::weights::Checkpoint::open_with(&dir, &load)
        .map_err(|e| Error::HubInvalid { repo: spec.into(), source: Box::new(e) })?;
    Ok(dir)
}

/// Downloads one file into the cache (or resumes it) and links it into its commit's snapshot.
#[cfg(all(feature = "hub", not(target_arch = "wasm32")))]
fn download(
    client: &http::Client,
    cache: &cache::RepoCache,
    repo: &str,
    revision: &str,
    file: &str,
    limit: u64,
    progress: bool,
) -> Result<PathBuf> {
    let meta = client.meta(client.file_url(repo, revision, file)?, file)?;
    let server = http::host(&meta.body_url);
    let bad = |header: &'static str, expected: &'static str, found: &str| Error::HubBadHeader {
        host: server.clone(),
        file: file.into(),
        header,
        expected,
        found: found.chars().take(80).collect(),
    };
    if !cache::is_hex(&meta.commit, &[40]) {
        return Err(bad("X-Repo-Commit", "a 40-digit hex commit", &meta.commit));
    }
    if !cache::is_hex(&meta.etag, &[40, 64]) {
        return Err(bad("ETag", "a sha1 or sha256 in hex", &meta.etag));
    }
    let (commit, etag) = (meta.commit.to_ascii_lowercase(), meta.etag.to_ascii_lowercase());
    if let Some(size) = meta.size.filter(|&s| s > limit) {
        return Err(Error::HubTooLarge {
            host: server,
            file: file.into(),
            limit,
            detail: format!("it announces {size}"),
        });
    }
    // Taken before looking for the blob: another pull may be finishing it.
    let _lock = cache.lock(&etag, file, client.read_timeout())?;
    let blob = cache.blob(&etag);
    if std::fs::symlink_metadata(&blob).is_ok_and(|m| m.is_file()) {
        if let Err(e) = cache::verify(&blob, &etag, file) {
            let _ = std::fs::remove_file(&blob);
            return Err(e);
        }
    } else {
        let mut part = cache.part(&etag)?;
        let size = meta.size.unwrap_or(limit);
        if part.len > size {
            part.discard()?;
        }
        if part.len < size || meta.size.is_none() {
            if progress {
                eprintln!(
                    "downloading `{file}` ({} bytes) from {server}",
                    meta.size.map_or("?".into(), |s| s.to_string())
                );
            }
            match client.fetch(&meta, part.len, size, file, &mut part) {
                Err(e @ Error::HubTooLarge { .. }) => {
                    part.remove();
                    return Err(e);
                }
                other => other?,
            };
            if meta.size.is_some_and(|s| part.len < s) {
                return Err(Error::Hub(format!(
                    "the download of `{file}` from {server} broke off after {} of {size} bytes; the partial file is kept and the next run resumes it",
                    part.len
                )));
            }
        }
        part.finish(&etag, file)?;
    }
    let pointer = cache.link(&commit, file, &etag)?;
    cache.set_ref(revision, &commit)?;
    Ok(pointer)
}

#[cfg(all(feature = "hub", not(target_arch = "wasm32")))]
/// The token `huggingface-cli login` saves beside the cache (`$HF_HOME/token`).
fn saved_token(cache: &Path) -> Option<String> {
    let bytes = crate::fsio::read_regular(&cache.parent()?.join("token"), 4096).ok()?;
    let token = String::from_utf8(bytes).ok()?.trim().to_string();
    (!token.is_empty()).then_some(token)
}

#[cfg(all(feature = "hub", not(target_arch = "wasm32")))]
/// Fills in the repo the HTTP layer could not know.
fn named(err: Error, spec: &str) -> Error {
    match err {
        Error::HubFileMissing { file, detail, .. } => Error::HubFileMissing { repo: spec.into(), file, detail },
        Error::HubRepoNotFound { endpoint, detail, .. } => {
            Error::HubRepoNotFound { repo: spec.into(), endpoint, detail }
        }
        other => other,
    }
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

    #[test]
    fn timeouts_default_to_10_and_30_seconds_and_follow_their_variables() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
        };
        let o = HubOptions::from_lookup(vars(&[("HOME", "/h")])).unwrap();
        assert_eq!((o.connect_timeout, o.read_timeout), (Duration::from_secs(10), Duration::from_secs(30)));
        let o = HubOptions::from_lookup(vars(&[
            ("HOME", "/h"),
            ("HF_HUB_CONNECT_TIMEOUT", "2.5"),
            ("HF_HUB_DOWNLOAD_TIMEOUT", " 120 "),
        ]))
        .unwrap();
        assert_eq!((o.connect_timeout, o.read_timeout), (Duration::from_millis(2500), Duration::from_secs(120)));
        for bad in ["0", "-1", "soon", "1e9"] {
            let lookup = move |name: &str| match name {
                "HOME" => Some("/h".to_string()),
                "HF_HUB_DOWNLOAD_TIMEOUT" => Some(bad.to_string()),
                _ => None,
            };
            let err = HubOptions::from_lookup(lookup).unwrap_err().to_string();
            assert!(err.contains("HF_HUB_DOWNLOAD_TIMEOUT"), "{err}");
        }
    }
}
