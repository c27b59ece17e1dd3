//! A hub stand-in on 127.0.0.1 whose every answer is a closure, for the hostile-server tests.
//! Each connection is served on its own thread; dropping the server waits (bounded) for them.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const COMMIT: &str = "cccccccccccccccccccccccccccccccccccccccc";

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub range: Option<String>,
    pub authorization: Option<String>,
}

type Handler = dyn Fn(&Seen, &mut TcpStream) + Send + Sync;

pub struct Server {
    pub port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    open: Arc<AtomicUsize>,
}

impl Server {
    pub fn start(handler: impl Fn(&Seen, &mut TcpStream) + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (seen, stop, open) =
            (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
        let handler: Arc<Handler> = Arc::new(handler);
        let (s, st, op) = (seen.clone(), stop.clone(), open.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let (handler, seen, open) = (handler.clone(), s.clone(), op.clone());
                open.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    if let Some(request) = read_request(&stream) {
                        seen.lock().unwrap().push(request.clone());
                        handler(&request, &mut stream);
                    }
                    let _ = stream.shutdown(std::net::Shutdown::Both);
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Server { port, seen, stop, open }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        // Stalling handlers end on their own (each sleeps a bounded time).
        let start = Instant::now();
        while self.open.load(Ordering::SeqCst) > 0 && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

pub fn read_request(stream: &TcpStream) -> Option<Seen> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut seen = Seen { path: line.split_whitespace().nth(1)?.to_string(), range: None, authorization: None };
    for _ in 0..64 {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 || header.trim().is_empty() {
            break;
        }
        let (k, v) = header.split_once(':')?;
        match k.trim().to_ascii_lowercase().as_str() {
            "range" => seen.range = Some(v.trim().to_string()),
            "authorization" => seen.authorization = Some(v.trim().to_string()),
            _ => {}
        }
    }
    Some(seen)
}

pub fn head(stream: &mut TcpStream, status: &str, headers: &[(&str, String)]) {
    let mut text = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (k, v) in headers {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    let _ = stream.write_all(format!("{text}\r\n").as_bytes());
}

/// A file's hub headers: its etag and commit.
pub fn file_headers(etag: &str, commit: &str) -> Vec<(&'static str, String)> {
    vec![("ETag", format!("\"{etag}\"")), ("X-Repo-Commit", commit.to_string())]
}

pub fn git_sha1(data: &[u8]) -> String {
    use sha1::Digest;
    let mut h = sha1::Sha1::new();
    h.update(format!("blob {}\0", data.len()).as_bytes());
    h.update(data);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Answers a range request for `data` like the hub does (206 with Content-Range).
pub fn send_range(stream: &mut TcpStream, seen: &Seen, data: &[u8], headers: Vec<(&str, String)>) {
    let start: usize =
        seen.range.as_deref().and_then(|r| r.strip_prefix("bytes=")?.split('-').next()?.parse().ok()).unwrap_or(0);
    let end = match seen.range.as_deref() {
        Some("bytes=0-0") => 1,
        _ => data.len(),
    };
    let body = &data[start.min(data.len())..end.min(data.len())];
    let mut headers = headers;
    headers.push(("Content-Range", format!("bytes {start}-{}/{}", end.saturating_sub(1), data.len())));
    headers.push(("Content-Length", body.len().to_string()));
    head(stream, "206 Partial Content", &headers);
    let _ = stream.write_all(body);
}
