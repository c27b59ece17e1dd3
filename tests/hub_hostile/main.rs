//! Hub pulls from a hostile server on 127.0.0.1: names that climb out of the cache, stalls,
//! redirect loops, a redirect to another host with a token set, bodies larger than announced,
//! and a stale `.part`. Each server answers requests with a closure; every request loop is
//! bounded by the client's redirect limit and the test's own timeouts.
#![cfg(feature = "hub")]

mod server;

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use favicon_diffusor::hub::{pull_with, HubOptions};
use favicon_diffusor::Error;
use server::*;

fn options(endpoint: &str, cache: &Path) -> HubOptions {
    HubOptions {
        read_timeout: Duration::from_secs(1),
        connect_timeout: Duration::from_secs(2),
        ..HubOptions::new(endpoint, cache)
    }
}

/// Every file under `root` outside `cache`.
fn files_outside(root: &Path, cache: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.starts_with(cache) {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[test]
fn etag_or_commit_that_climbs_out_of_the_cache_is_refused_and_nothing_is_written_outside() {
    let cases = [
        ("../../../../escaped_by_etag", COMMIT.to_string(), "ETag"),
        ("/tmp/absolute_etag", COMMIT.to_string(), "ETag"),
        ("da39a3ee5e6b4b0d3255bfef95601890afd80709", "../../../../escaped_by_commit".to_string(), "X-Repo-Commit"),
        ("da39a3ee5e6b4b0d3255bfef95601890afd80709", "/tmp/absolute_commit".to_string(), "X-Repo-Commit"),
    ];
    for (etag, commit, header) in cases {
        let root = tempfile::tempdir().unwrap();
        let cache = root.path().join("a/b/c/cache");
        let (e, c) = (etag.to_string(), commit.clone());
        let server = Server::start(move |seen, s| send_range(s, seen, b"{}", file_headers(&e, &c)));
        let err = pull_with("me/icons", &options(&server.url(), &cache)).unwrap_err();
        assert!(matches!(&err, Error::HubBadHeader { header: h, .. } if *h == header), "{etag} {commit}: {err}");
        assert!(err.to_string().contains(&format!("127.0.0.1:{}", server.port)), "{err}");
        assert_eq!(files_outside(root.path(), &cache), Vec::<PathBuf>::new());
        assert!(!Path::new("/tmp/absolute_etag").exists() && !Path::new("/tmp/absolute_commit").exists());
    }
}

#[test]
fn vocab_file_name_from_the_config_may_not_climb_out_either() {
    let config = br#"{"image_size":8,"patch_size":4,"dim":8,"depth":1,"heads":2,"head_dim":4,"mlp_mult":2,"time_dim":4,"vocab_file":"../../../x"}"#;
    let root = tempfile::tempdir().unwrap();
    let cache = root.path().join("cache");
    let server = Server::start(move |seen, s| {
        let etag = git_sha1(config);
        if seen.path.ends_with("config.json") {
            send_range(s, seen, config, file_headers(&etag, COMMIT));
        } else {
            head(s, "404 Not Found", &[("X-Error-Code", "EntryNotFound".into()), ("Content-Length", "0".into())]);
        }
    });
    let err = pull_with("me/icons", &options(&server.url(), &cache)).unwrap_err();
    assert!(err.to_string().contains("`vocab_file` must be a plain file name"), "{err}");
    assert!(server.requests().iter().all(|r| r.path.ends_with("/config.json")), "{:?}", server.requests());
    assert!(server.requests().iter().all(|r| !r.path.contains("..")), "{:?}", server.requests());
}

#[test]
fn server_stalling_after_the_headers_times_out_naming_the_host() {
    let root = tempfile::tempdir().unwrap();
    let server = Server::start(|seen, s| {
        let data = b"{}";
        if seen.range.as_deref() == Some("bytes=0-0") {
            send_range(s, seen, data, file_headers(&git_sha1(data), COMMIT));
        } else {
            head(s, "200 OK", &[("Content-Length", "2".into())]);
            std::thread::sleep(Duration::from_secs(4));
        }
    });
    let start = Instant::now();
    let err = pull_with("me/icons", &options(&server.url(), root.path())).unwrap_err();
    let took = start.elapsed();
    assert!(matches!(&err, Error::HubTimeout { what: "sent nothing", .. }), "{err}");
    assert!(err.to_string().contains(&format!("127.0.0.1:{}", server.port)), "{err}");
    assert!(err.to_string().contains("HF_HUB_DOWNLOAD_TIMEOUT"), "{err}");
    assert!(took < Duration::from_secs(3), "waited {took:?} with a 1 s read timeout");
}

#[test]
fn server_stalling_before_the_headers_times_out() {
    let root = tempfile::tempdir().unwrap();
    let server = Server::start(|_, _| std::thread::sleep(Duration::from_secs(4)));
    let start = Instant::now();
    let err = pull_with("me/icons", &options(&server.url(), root.path())).unwrap_err();
    assert!(matches!(&err, Error::HubTimeout { .. }), "{err}");
    assert!(start.elapsed() < Duration::from_secs(3), "{:?}", start.elapsed());
}

#[test]
fn redirect_loops_stop_after_a_few_requests() {
    let root = tempfile::tempdir().unwrap();
    let to_itself = Server::start(|seen, s| {
        head(s, "302 Found", &[("Location", seen.path.clone()), ("Content-Length", "0".into())])
    });
    let err = pull_with("me/icons", &options(&to_itself.url(), root.path())).unwrap_err();
    assert!(err.to_string().contains("redirected more than 5 times"), "{err}");
    assert_eq!(to_itself.requests().len(), 6);

    // Two hosts sending each other back and forth.
    let back = Arc::new(Mutex::new(String::new()));
    let b = back.clone();
    let second = Server::start(move |seen, s| {
        let to = format!("{}{}", b.lock().unwrap(), seen.path);
        head(s, "307 Temporary Redirect", &[("Location", to), ("Content-Length", "0".into())])
    });
    let second_url = second.url();
    let first = Server::start(move |seen, s| {
        let to = format!("{second_url}{}", seen.path);
        head(s, "302 Found", &[("Location", to), ("Content-Length", "0".into())])
    });
    *back.lock().unwrap() = first.url();
    let err = pull_with("me/icons", &options(&first.url(), root.path())).unwrap_err();
    assert!(err.to_string().contains("redirected more than 5 times"), "{err}");
    assert_eq!(first.requests().len() + second.requests().len(), 6);
}

#[test]
fn token_goes_only_to_the_endpoint_host_not_where_a_redirect_points() {
    let data: &'static [u8] = br#"{"image_size":8}"#;
    let storage = Server::start(move |seen, s| send_range(s, seen, data, vec![]));
    let storage_url = storage.url();
    let hub = Server::start(move |seen, s| {
        // Like the hub for an LFS file: the metadata here, the body on another host.
        let mut headers = file_headers(&git_sha1(data), COMMIT);
        headers.push(("Location", format!("{storage_url}/blob{}", seen.path)));
        headers.push(("X-Linked-Size", data.len().to_string()));
        headers.push(("Content-Length", "0".into()));
        head(s, "302 Found", &headers);
    });
    let root = tempfile::tempdir().unwrap();
    let opts = HubOptions { token: Some("hf_SECRET".into()), ..options(&hub.url(), root.path()) };
    // The config is not a whole checkpoint: the pull fails later, after the downloads.
    let _ = pull_with("me/icons", &opts);
    let at_hub = hub.requests();
    let at_storage = storage.requests();
    assert!(!at_hub.is_empty() && !at_storage.is_empty(), "{at_hub:?} {at_storage:?}");
    assert!(at_hub.iter().all(|r| r.authorization.as_deref() == Some("Bearer hf_SECRET")), "{at_hub:?}");
    assert!(at_storage.iter().all(|r| r.authorization.is_none()), "the token leaked: {at_storage:?}");
}

#[test]
fn huge_config_is_refused_by_its_announced_size_before_any_body() {
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    let server = Server::start(move |seen, s| {
        let total: u64 = 3 << 30;
        let mut headers = file_headers(&"1".repeat(40), COMMIT);
        headers.push(("Content-Range", format!("bytes 0-{}/{total}", total - 1)));
        headers.push((
            "Content-Length",
            (total - if seen.range.as_deref() == Some("bytes=0-0") { total - 1 } else { 0 }).to_string(),
        ));
        head(s, "206 Partial Content", &headers);
        let chunk = vec![b' '; 1 << 16];
        for _ in 0..64 {
            if s.write_all(&chunk).is_err() {
                return;
            }
            counter.fetch_add(chunk.len(), Ordering::SeqCst);
        }
    });
    let root = tempfile::tempdir().unwrap();
    let err = pull_with("me/icons", &options(&server.url(), root.path())).unwrap_err();
    assert!(matches!(&err, Error::HubTooLarge { limit, .. } if *limit == 16 << 20), "{err}");
    assert!(err.to_string().contains("it announces 3221225472"), "{err}");
    assert_eq!(server.requests().len(), 1, "only the metadata request");
}

#[test]
fn body_longer_than_announced_or_than_the_cap_is_cut_off() {
    // Announces 2 bytes, then streams 1 MiB.
    let server = Server::start(|seen, s| {
        let mut headers = file_headers(&"2".repeat(40), COMMIT);
        if seen.range.as_deref() == Some("bytes=0-0") {
            headers.push(("Content-Range", "bytes 0-0/2".into()));
            headers.push(("Content-Length", "1".into()));
            head(s, "206 Partial Content", &headers);
            let _ = s.write_all(b"{");
        } else {
            head(s, "200 OK", &headers);
            let _ = s.write_all(&vec![b' '; 1 << 20]);
        }
    });
    let root = tempfile::tempdir().unwrap();
    let err = pull_with("me/icons", &options(&server.url(), root.path())).unwrap_err();
    assert!(matches!(&err, Error::HubTooLarge { limit: 2, .. }), "{err}");
    let blobs = root.path().join("models--me--icons/blobs");
    let written: u64 = std::fs::read_dir(blobs).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    assert!(written <= 2, "{written} bytes kept");

    // Announces nothing at all: held to the 16 MiB cap of a config while it streams.
    let endless = Server::start(|_, s| {
        head(s, "200 OK", &file_headers(&"3".repeat(40), COMMIT));
        let chunk = vec![b' '; 1 << 20];
        for _ in 0..40 {
            if s.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    let err = pull_with("me/icons", &options(&endless.url(), root.path())).unwrap_err();
    assert!(matches!(&err, Error::HubTooLarge { limit, .. } if *limit == 16 << 20), "{err}");
}

#[test]
fn weights_past_the_cap_are_refused_by_their_announced_size() {
    let config =
        br#"{"image_size":8,"patch_size":4,"dim":8,"depth":1,"heads":2,"head_dim":4,"mlp_mult":2,"time_dim":4}"#;
    let server = Server::start(move |seen, s| {
        if seen.path.ends_with("config.json") {
            send_range(s, seen, config, file_headers(&git_sha1(config), COMMIT));
        } else {
            let mut headers = file_headers(&"4".repeat(64), COMMIT);
            headers.push(("Content-Range", "bytes 0-0/4294967296".into()));
            headers.push(("Content-Length", "1".into()));
            head(s, "206 Partial Content", &headers);
            let _ = s.write_all(b"x");
        }
    });
    let root = tempfile::tempdir().unwrap();
    let err = pull_with("me/icons", &options(&server.url(), root.path())).unwrap_err();
    assert!(
        matches!(&err, Error::HubTooLarge { limit, file, .. } if *limit == 2 << 30 && file == "model.safetensors"),
        "{err}"
    );
}

#[test]
fn part_file_longer_than_the_real_file_is_discarded_and_the_pull_goes_on() {
    let data: &'static [u8] =
        br#"{"image_size":8,"patch_size":4,"dim":8,"depth":1,"heads":2,"head_dim":4,"mlp_mult":2,"time_dim":4}"#;
    let etag = git_sha1(data);
    let root = tempfile::tempdir().unwrap();
    let blobs = root.path().join("models--me--icons/blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(blobs.join(format!("{etag}.part")), vec![b'x'; data.len() + 100]).unwrap();
    let e = etag.clone();
    let server = Server::start(move |seen, s| {
        if seen.path.ends_with("config.json") {
            send_range(s, seen, data, file_headers(&e, COMMIT));
        } else {
            head(s, "404 Not Found", &[("X-Error-Code", "EntryNotFound".into()), ("Content-Length", "0".into())]);
        }
    });
    let err = pull_with("me/icons", &options(&server.url(), root.path())).unwrap_err();
    // The config arrived whole; only the (absent) weights stop the pull.
    assert!(matches!(&err, Error::HubFileMissing { file, .. } if file == "model.safetensors"), "{err}");
    assert_eq!(std::fs::read(blobs.join(&etag)).unwrap(), data);
    assert!(!blobs.join(format!("{etag}.part")).exists());
    assert!(server.requests().iter().any(|r| r.range.as_deref() == Some("bytes=0-")), "{:?}", server.requests());
}

/// A listener whose accept queue is full: the kernel drops further SYNs, so a connect hangs.
fn full_listener() -> (i32, u16, Vec<TcpStream>) {
    // SAFETY: plain socket calls on a descriptor this function owns; closed by the caller.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0);
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(libc::bind(fd, &addr as *const _ as *const libc::sockaddr, len), 0);
        assert_eq!(libc::listen(fd, 0), 0);
        let mut bound: libc::sockaddr_in = std::mem::zeroed();
        let mut bound_len = len;
        libc::getsockname(fd, &mut bound as *mut _ as *mut libc::sockaddr, &mut bound_len);
        let port = u16::from_be(bound.sin_port);
        // Backlog 0 still queues one connection; a few more make sure the queue is full.
        let target = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let fillers =
            (0..3).filter_map(|_| TcpStream::connect_timeout(&target, Duration::from_millis(300)).ok()).collect();
        (fd, port, fillers)
    }
}

#[test]
fn endpoint_that_never_accepts_times_out_connecting() {
    let (fd, port, _fillers) = full_listener();
    let root = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let err = pull_with("me/icons", &options(&format!("http://127.0.0.1:{port}"), root.path())).unwrap_err();
    // SAFETY: closes the listener made above.
    unsafe { libc::close(fd) };
    assert!(matches!(&err, Error::HubTimeout { what: "did not accept a connection", .. }), "{err}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")) && err.to_string().contains("HF_HUB_CONNECT_TIMEOUT")
    );
    assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
}
