//! Hub pulls against a real HTTP server on 127.0.0.1 that answers like the hub's resolve
//! endpoint (`/{owner}/{name}/resolve/{revision}/{file}`: etag, x-repo-commit, range requests,
//! X-Error-Code on 404), with real downloads into a temporary cache.
#![cfg(feature = "hub")]

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use favicon_diffusor::hub::{pull_with, HubOptions};
use favicon_diffusor::{Checkpoint, Config, Error};
use sha1::Digest;

/// How the next full download of one file goes wrong.
#[derive(Clone)]
enum Fault {
    /// Sends the headers with the true Content-Length, then this many body bytes, then closes.
    DropAfter(String, usize),
    /// Sends no Content-Length (close-delimited body) and only this many bytes.
    Truncate(String, usize),
    /// Sends the whole length with the last byte changed.
    Corrupt(String),
}

/// revision → (commit, file name → bytes)
type Revisions = HashMap<String, (String, HashMap<String, Vec<u8>>)>;

#[derive(Default)]
struct State {
    repos: HashMap<String, Revisions>,
    fault: Option<Fault>,
    /// Every request as "GET path range".
    log: Vec<String>,
}

struct Hub {
    port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hub's etags: sha256 for LFS files (weights), git's blob sha1 for the rest.
fn etag(file: &str, data: &[u8]) -> String {
    if file.ends_with(".safetensors") {
        hex(&sha2::Sha256::digest(data))
    } else {
        let mut git = sha1::Sha1::new();
        git.update(format!("blob {}\0", data.len()).as_bytes());
        git.update(data);
        hex(&git.finalize())
    }
}

impl Hub {
    fn start() -> Hub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let _ = serve(stream, &s);
                }
            }
        });
        Hub { port, state, stop, thread: Some(thread) }
    }

    fn publish(&self, repo: &str, revision: &str, commit: &str, files: &[(&str, Vec<u8>)]) {
        let files = files.iter().map(|(n, d)| (n.to_string(), d.clone())).collect();
        self.state
            .lock()
            .unwrap()
            .repos
            .entry(repo.into())
            .or_default()
            .insert(revision.into(), (commit.into(), files));
    }

    fn options(&self, cache: &Path) -> HubOptions {
        HubOptions::new(&format!("http://127.0.0.1:{}", self.port), cache)
    }

    fn log(&self) -> Vec<String> {
        self.state.lock().unwrap().log.clone()
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers one request on one connection, then closes it.
fn serve(mut stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    let mut range = None;
    for _ in 0..64 {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("range") {
                range = v.trim().strip_prefix("bytes=").map(str::to_string);
            }
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut st = state.lock().unwrap();
    st.log.push(format!("GET {path} {}", range.clone().unwrap_or_default()));
    let (repo, rest) = match path.trim_start_matches('/').splitn(3, '/').collect::<Vec<_>>()[..] {
        [owner, name, rest] => (format!("{owner}/{name}"), rest.to_string()),
        _ => return respond(&mut stream, 404, &[("X-Error-Code", "RepoNotFound")], b"", None),
    };
    let Some(rest) = rest.strip_prefix("resolve/") else { return respond(&mut stream, 404, &[], b"", None) };
    let (revision, file) = rest.split_once('/').unwrap_or((rest, ""));
    let revision = revision.replace("%2F", "/");
    let Some(revisions) = st.repos.get(&repo) else {
        return respond(&mut stream, 404, &[("X-Error-Code", "RepoNotFound")], b"", None);
    };
    let Some((commit, files)) = revisions.get(&revision) else {
        return respond(&mut stream, 404, &[("X-Error-Code", "RevisionNotFound")], b"", None);
    };
    let Some(data) = files.get(file) else {
        return respond(&mut stream, 404, &[("X-Error-Code", "EntryNotFound")], b"", None);
    };
    let (commit, data) = (commit.clone(), data.clone());
    let tag = format!("\"{}\"", etag(file, &data));
    let mut headers = vec![("X-Repo-Commit", commit.as_str()), ("ETag", tag.as_str())];
    let (start, end) = match range.as_deref().and_then(|r| r.split_once('-')) {
        Some((a, b)) => (a.parse::<usize>().unwrap_or(0), b.parse::<usize>().map_or(data.len(), |e| e + 1)),
        None => (0, data.len()),
    };
    if start >= data.len() {
        return respond(&mut stream, 416, &[], b"", None);
    }
    let end = end.min(data.len());
    let content_range = format!("bytes {start}-{}/{}", end - 1, data.len());
    headers.push(("Content-Range", content_range.as_str()));
    let status = if range.is_some() { 206 } else { 200 };
    let full_body = end == data.len() && end - start > 1;
    let fault = st.fault.clone().filter(|f| {
        matches!(f, Fault::DropAfter(n, _) | Fault::Truncate(n, _) | Fault::Corrupt(n) if n == file) && full_body
    });
    if fault.is_some() {
        st.fault = None;
    }
    drop(st);
    let body = &data[start..end];
    match fault {
        Some(Fault::DropAfter(_, n)) => respond(&mut stream, status, &headers, &body[..n], Some(body.len())),
        Some(Fault::Truncate(_, n)) => respond(&mut stream, status, &headers, &body[..n], None),
        Some(Fault::Corrupt(_)) => {
            let mut bad = body.to_vec();
            *bad.last_mut().unwrap() ^= 1;
            respond(&mut stream, status, &headers, &bad, Some(bad.len()))
        }
        None => respond(&mut stream, status, &headers, body, Some(body.len())),
    }
}

fn respond(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
    length: Option<usize>,
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(len) = length.or((status >= 400).then_some(0)) {
        head.push_str(&format!("Content-Length: {len}\r\n"));
    }
    stream.write_all(format!("{head}\r\n").as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;
    stream.shutdown(std::net::Shutdown::Both)
}

/// The files of a checkpoint folder, as a hub repo would hold them.
fn checkpoint_files(seed: u64, vocab_file: bool) -> Vec<(&'static str, Vec<u8>)> {
    let mut cfg = common::tiny_config();
    if vocab_file {
        cfg.vocab = Some(vec!["hippo".into(), "red".into()]);
    }
    let dir = tempfile::tempdir().unwrap();
    common::write_dir(dir.path(), &common::random_checkpoint(&cfg, seed));
    let read = |n: &str| std::fs::read(dir.path().join(n)).unwrap();
    let mut files = vec![("model.safetensors", read("model.safetensors"))];
    if vocab_file {
        cfg.vocab = None;
        cfg.vocab_file = Some("vocab.txt".into());
        files.push(("vocab.txt", b"hippo\nred\n".to_vec()));
    }
    files.push(("config.json", serde_json::to_vec_pretty(&cfg).unwrap()));
    files
}

const COMMIT_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const COMMIT_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn snapshot(cache: &Path, repo: &str, commit: &str) -> PathBuf {
    cache.join(format!("models--{}", repo.replace('/', "--"))).join("snapshots").join(commit)
}

fn part_files(cache: &Path, repo: &str) -> Vec<PathBuf> {
    let blobs = cache.join(format!("models--{}", repo.replace('/', "--"))).join("blobs");
    std::fs::read_dir(blobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "part"))
        .collect()
}

#[test]
fn first_pull_fills_the_hf_cache_and_loads() {
    let hub = Hub::start();
    let files = checkpoint_files(1, true);
    hub.publish("me/icons", "main", COMMIT_A, &files);
    let cache = tempfile::tempdir().unwrap();
    let dir = pull_with("me/icons", &hub.options(cache.path())).unwrap();
    assert_eq!(dir, snapshot(cache.path(), "me/icons", COMMIT_A));
    for (name, data) in &files {
        assert_eq!(&std::fs::read(dir.join(name)).unwrap(), data, "{name}");
    }
    let refs = cache.path().join("models--me--icons/refs/main");
    assert_eq!(std::fs::read_to_string(refs).unwrap(), COMMIT_A);
    let ck = Checkpoint::open(&dir).unwrap();
    assert_eq!(ck.vocab.unwrap().words(), ["hippo", "red"]);
}

#[test]
fn cached_pull_runs_offline_with_the_server_gone() {
    let cache = tempfile::tempdir().unwrap();
    let first = {
        let hub = Hub::start();
        hub.publish("me/icons", "main", COMMIT_A, &checkpoint_files(2, false));
        pull_with("me/icons", &hub.options(cache.path())).unwrap()
    };
    let gone = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut options =
        HubOptions { offline: true, ..HubOptions::new(&format!("http://127.0.0.1:{gone}"), cache.path()) };
    assert_eq!(pull_with("me/icons", &options).unwrap(), first);
    // Online with the server down, the cache answers too.
    options.offline = false;
    assert_eq!(pull_with("me/icons", &options).unwrap(), first);
    // Offline, an uncached repo says so.
    options.offline = true;
    let err = pull_with("me/other", &options).unwrap_err();
    assert!(matches!(&err, Error::HubNotCached { file, .. } if file == "config.json"), "{err}");
}

#[test]
fn missing_repo_revision_and_file_are_told_apart() {
    let hub = Hub::start();
    hub.publish(
        "me/only-config",
        "main",
        COMMIT_A,
        &[("config.json", serde_json::to_vec(&common::tiny_config()).unwrap())],
    );
    let cache = tempfile::tempdir().unwrap();
    let opts = hub.options(cache.path());

    let err = pull_with("nobody/nothing", &opts).unwrap_err();
    assert!(matches!(&err, Error::HubRepoNotFound { detail, .. } if detail == "HTTP 404, RepoNotFound"), "{err}");
    let err = pull_with("me/only-config@v9", &opts).unwrap_err();
    assert!(matches!(&err, Error::HubRepoNotFound { detail, .. } if detail.contains("RevisionNotFound")), "{err}");
    let err = pull_with("me/only-config", &opts).unwrap_err();
    assert!(matches!(&err, Error::HubFileMissing { file, .. } if file == "model.safetensors"), "{err}");
    assert_eq!(err.to_string().lines().count(), 1);
}

#[test]
fn unreachable_endpoint_is_a_network_error() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cache = tempfile::tempdir().unwrap();
    let opts = HubOptions::new(&format!("http://127.0.0.1:{port}"), cache.path());
    let err = pull_with("me/icons", &opts).unwrap_err();
    assert!(matches!(&err, Error::HubUnreachable { .. }), "{err}");
    assert!(err.to_string().contains("HF_HUB_OFFLINE"));
}

#[test]
fn dropped_connection_leaves_nothing_trusted_and_the_next_run_resumes() {
    let hub = Hub::start();
    let files = checkpoint_files(3, false);
    let weights = files[0].1.clone();
    hub.publish("me/icons", "main", COMMIT_A, &files);
    hub.state.lock().unwrap().fault = Some(Fault::DropAfter("model.safetensors".into(), 1000));
    let cache = tempfile::tempdir().unwrap();

    let err = pull_with("me/icons", &hub.options(cache.path())).unwrap_err();
    assert!(err.to_string().contains("broke off"), "{err}");
    assert!(!snapshot(cache.path(), "me/icons", COMMIT_A).join("model.safetensors").exists());
    let parts = part_files(cache.path(), "me/icons");
    assert_eq!(parts.len(), 1);
    assert_eq!(std::fs::read(&parts[0]).unwrap(), weights[..1000]);

    let dir = pull_with("me/icons", &hub.options(cache.path())).unwrap();
    assert_eq!(std::fs::read(dir.join("model.safetensors")).unwrap(), weights);
    assert!(hub.log().iter().any(|l| l.ends_with("/model.safetensors 1000-")), "{:?}", hub.log());
    assert!(part_files(cache.path(), "me/icons").is_empty());
}

#[test]
fn body_cut_short_without_length_is_caught_by_the_announced_size_and_resumed() {
    let hub = Hub::start();
    let files = checkpoint_files(4, false);
    hub.publish("me/icons", "main", COMMIT_A, &files);
    hub.state.lock().unwrap().fault = Some(Fault::Truncate("model.safetensors".into(), 500));
    let cache = tempfile::tempdir().unwrap();

    let err = pull_with("me/icons", &hub.options(cache.path())).unwrap_err();
    assert!(err.to_string().contains("broke off after 500 of"), "{err}");
    assert!(!snapshot(cache.path(), "me/icons", COMMIT_A).join("model.safetensors").exists());

    let dir = pull_with("me/icons", &hub.options(cache.path())).unwrap();
    assert_eq!(std::fs::read(dir.join("model.safetensors")).unwrap(), files[0].1);
    assert!(hub.log().iter().any(|l| l.ends_with("/model.safetensors 500-")), "{:?}", hub.log());
}

#[test]
fn body_not_matching_its_etag_is_removed_and_refetched() {
    let hub = Hub::start();
    let files = checkpoint_files(4, false);
    hub.publish("me/icons", "main", COMMIT_A, &files);
    hub.state.lock().unwrap().fault = Some(Fault::Corrupt("model.safetensors".into()));
    let cache = tempfile::tempdir().unwrap();

    let err = pull_with("me/icons", &hub.options(cache.path())).unwrap_err();
    assert!(matches!(&err, Error::HubCorrupt { size, .. } if *size == files[0].1.len()), "{err}");
    assert!(!snapshot(cache.path(), "me/icons", COMMIT_A).join("model.safetensors").exists());
    assert!(part_files(cache.path(), "me/icons").is_empty());

    let dir = pull_with("me/icons", &hub.options(cache.path())).unwrap();
    assert_eq!(std::fs::read(dir.join("model.safetensors")).unwrap(), files[0].1);
}

#[test]
fn revision_pin_pulls_that_commit() {
    let hub = Hub::start();
    let (main, pinned) = (checkpoint_files(5, false), checkpoint_files(6, false));
    hub.publish("me/icons", "main", COMMIT_A, &main);
    hub.publish("me/icons", COMMIT_B, COMMIT_B, &pinned);
    hub.publish("me/icons", "v1/beta", COMMIT_B, &pinned);
    let cache = tempfile::tempdir().unwrap();
    let opts = hub.options(cache.path());

    let dir = pull_with(&format!("me/icons@{COMMIT_B}"), &opts).unwrap();
    assert_eq!(dir, snapshot(cache.path(), "me/icons", COMMIT_B));
    assert_eq!(std::fs::read(dir.join("model.safetensors")).unwrap(), pinned[0].1);
    assert_eq!(pull_with("me/icons", &opts).unwrap(), snapshot(cache.path(), "me/icons", COMMIT_A));
    assert_eq!(pull_with("me/icons@v1/beta", &opts).unwrap(), dir);
    assert!(hub.log().iter().any(|l| l.contains("/resolve/v1%2Fbeta/config.json")), "{:?}", hub.log());
}

#[test]
fn checkpoint_not_matching_its_config_is_refused_after_download() {
    let hub = Hub::start();
    let mut files = checkpoint_files(7, false);
    let wider = Config { dim: 16, ..common::tiny_config() };
    files[1].1 = serde_json::to_vec(&wider).unwrap();
    hub.publish("me/icons", "main", COMMIT_A, &files);
    let cache = tempfile::tempdir().unwrap();
    let err = pull_with("me/icons", &hub.options(cache.path())).unwrap_err();
    assert!(
        matches!(&err, Error::HubInvalid { source, .. } if matches!(**source, Error::ShapeMismatch { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("expected [16, 48]"), "{err}");
}
