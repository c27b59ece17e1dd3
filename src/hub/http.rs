//! The hub's HTTP, bounded: connect and read timeouts, at most [`MAX_REDIRECTS`] redirects,
//! the token only to the configured endpoint's origin, and bodies streamed to a sink that stops
//! at a byte limit. Every error names the host it came from.

use std::io::{Read, Write};
use std::time::Duration;

use url::Url;

use super::HubOptions;
use crate::error::{Error, Result};

/// The hub answers a file with at most two: a renamed repo, then the storage host.
pub const MAX_REDIRECTS: usize = 5;

/// What the hub says about one file before its body is fetched.
#[derive(Debug, Clone)]
pub struct Meta {
    /// `X-Repo-Commit`, as sent (validated by the cache before use).
    pub commit: String,
    /// `X-Linked-Etag` or `ETag`, quotes and `W/` removed (validated by the cache).
    pub etag: String,
    /// The file's size, when the server announced one.
    pub size: Option<u64>,
    /// Where the body is, after redirects.
    pub body_url: Url,
}

pub struct Client {
    agent: ureq::Agent,
    endpoint: Url,
    token: Option<String>,
    read_timeout: Duration,
    connect_timeout: Duration,
}

/// `scheme://host:port` of a URL: what the token is bound to.
fn origin(url: &Url) -> (String, Option<String>, Option<u16>) {
    (url.scheme().to_string(), url.host_str().map(str::to_string), url.port_or_known_default())
}

pub fn host(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => url.to_string(),
    }
}

impl Client {
    pub fn new(options: &HubOptions, token: Option<String>) -> Result<Client> {
        let endpoint = Url::parse(&options.endpoint)
            .map_err(|e| Error::Hub(format!("HF_ENDPOINT `{}` is not a URL: {e}", options.endpoint)))?;
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(options.connect_timeout)
            .timeout_read(options.read_timeout)
            .timeout_write(options.read_timeout)
            // Redirects are followed here, one at a time, to bound them and to drop the token.
            .redirects(0)
            .user_agent(concat!("favicon-diffusor/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Client {
            agent,
            endpoint,
            token,
            read_timeout: options.read_timeout,
            connect_timeout: options.connect_timeout,
        })
    }

    pub fn read_timeout(&self) -> Duration {
        self.read_timeout
    }

    /// `{endpoint}/{repo}/resolve/{revision}/{file}`, the revision's slashes escaped.
    pub fn file_url(&self, repo: &str, revision: &str, file: &str) -> Result<Url> {
        let text = format!(
            "{}/{repo}/resolve/{}/{file}",
            self.endpoint.as_str().trim_end_matches('/'),
            revision.replace('/', "%2F")
        );
        Url::parse(&text).map_err(|e| Error::Hub(format!("cannot form the URL of `{file}`: {e}")))
    }

    fn get(&self, url: &Url, range: &str, file: &str) -> Result<ureq::Response> {
        let mut request = self.agent.request_url("GET", url).set("Range", range);
        if let Some(token) = self.token.as_deref().filter(|_| origin(url) == origin(&self.endpoint)) {
            request = request.set("Authorization", &format!("Bearer {token}"));
        }
        request.call().map_err(|e| self.request_error(e, url, file))
    }

    /// One GET that follows redirects (bounded); `on_hop` sees every response on the way.
    fn follow(
        &self,
        start: Url,
        range: &str,
        file: &str,
        mut on_hop: impl FnMut(&ureq::Response),
    ) -> Result<(Url, ureq::Response)> {
        let mut url = start;
        for _ in 0..=MAX_REDIRECTS {
            let response = self.get(&url, range, file)?;
            on_hop(&response);
            if !(300..400).contains(&response.status()) {
                return Ok((url, response));
            }
            let Some(location) = response.header("location") else {
                return Err(Error::Hub(format!(
                    "{} redirected `{file}` (HTTP {}) without a Location",
                    host(&url),
                    response.status()
                )));
            };
            url = url
                .join(location)
                .map_err(|e| Error::Hub(format!("{} redirected `{file}` to a bad Location: {e}", host(&url))))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(Error::Hub(format!("`{file}` was redirected to a `{}` URL", url.scheme())));
            }
        }
        Err(Error::Hub(format!(
            "`{file}` was redirected more than {MAX_REDIRECTS} times (last to {}); refusing to follow further",
            host(&url)
        )))
    }

    /// Asks for the first byte of `url`: the commit, etag and size, and where the body is.
    pub fn meta(&self, url: Url, file: &str) -> Result<Meta> {
        let (mut commit, mut etag, mut linked_size) = (None, None, None);
        let (body_url, last) = self.follow(url, "bytes=0-0", file, |r| {
            // The first answer that names a commit is the hub's; a storage host's ETag is not a
            // content hash, so later answers never override it.
            if commit.is_none() {
                if let Some(c) = r.header("x-repo-commit") {
                    commit = Some(c.to_string());
                    etag = r.header("x-linked-etag").or(r.header("etag")).map(clean_etag);
                    linked_size = r.header("x-linked-size").and_then(|s| s.trim().parse().ok());
                }
            }
        })?;
        let size = linked_size.or_else(|| announced_total(&last));
        let missing = |header: &str| {
            Error::Hub(format!(
                "{} answered `{file}` without the `{header}` header; is HF_ENDPOINT a Hugging Face hub?",
                host(&body_url)
            ))
        };
        Ok(Meta {
            commit: commit.ok_or_else(|| missing("X-Repo-Commit"))?,
            etag: etag.ok_or_else(|| missing("ETag"))?,
            size,
            body_url,
        })
    }

    /// Streams the body of `meta` from byte `start` into `sink`, never past `limit` bytes in
    /// all. Returns the offset the body really started at (0 when the server ignored the range).
    pub fn fetch(&self, meta: &Meta, start: u64, limit: u64, file: &str, sink: &mut dyn Sink) -> Result<u64> {
        let (url, response) = self.follow(meta.body_url.clone(), &format!("bytes={start}-"), file, |_| {})?;
        let from = match response.status() {
            206 => range_start(&response).unwrap_or(u64::MAX),
            _ => 0,
        };
        if from != 0 && from != start {
            return Err(Error::Hub(format!(
                "{} answered a request for `{file}` from byte {start} with another range",
                host(&url)
            )));
        }
        sink.restart_at(from).map_err(|e| Error::write(sink.path(), e))?;
        let mut body = response.into_reader().take(limit.saturating_sub(from).saturating_add(1));
        let mut buf = vec![0u8; 1 << 16];
        let mut written = from;
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.body_error(e, &url, file, written)),
            };
            written += n as u64;
            if written > limit {
                return Err(Error::HubTooLarge {
                    host: host(&url),
                    file: file.into(),
                    limit,
                    detail: "the body ran past the limit".into(),
                });
            }
            sink.write_all(&buf[..n]).map_err(|e| Error::write(sink.path(), e))?;
        }
        Ok(from)
    }

    fn timeout(&self, url: &Url, file: &str, connecting: bool) -> Error {
        let (what, limit, variable) = if connecting {
            ("did not accept a connection", self.connect_timeout, "HF_HUB_CONNECT_TIMEOUT")
        } else {
            ("sent nothing", self.read_timeout, "HF_HUB_DOWNLOAD_TIMEOUT")
        };
        Error::HubTimeout { host: host(url), what, seconds: limit.as_secs(), file: file.into(), variable }
    }

    fn request_error(&self, err: ureq::Error, url: &Url, file: &str) -> Error {
        match err {
            ureq::Error::Status(status, response) => status_error(status, &response, url, file),
            ureq::Error::Transport(t) => {
                if timed_out(&t) {
                    return self.timeout(url, file, t.kind() == ureq::ErrorKind::ConnectionFailed);
                }
                Error::HubUnreachable { endpoint: host(url), detail: t.to_string() }
            }
        }
    }

    fn body_error(&self, err: std::io::Error, url: &Url, file: &str, written: u64) -> Error {
        if matches!(err.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) {
            return self.timeout(url, file, false);
        }
        Error::Hub(format!(
            "the download of `{file}` from {} broke off after {written} bytes ({err}); the partial file is kept and the next run resumes it",
            host(url)
        ))
    }
}

/// Where a body goes: [`Client::fetch`] restarts it at the offset the server really sends from.
pub trait Sink: Write {
    fn restart_at(&mut self, offset: u64) -> std::io::Result<()>;
    fn path(&self) -> &std::path::Path;
}

fn timed_out(t: &ureq::Transport) -> bool {
    let mut source = std::error::Error::source(t);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if matches!(io.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) {
                return true;
            }
        }
        source = e.source();
    }
    false
}

fn clean_etag(raw: &str) -> String {
    raw.trim().trim_start_matches("W/").trim_matches('"').to_string()
}

/// The total of `Content-Range: bytes a-b/total`, else a whole body's `Content-Length`.
fn announced_total(r: &ureq::Response) -> Option<u64> {
    match r.header("content-range") {
        Some(range) => range.rsplit('/').next()?.trim().parse().ok(),
        None if r.status() == 200 => r.header("content-length")?.trim().parse().ok(),
        None => None,
    }
}

fn range_start(r: &ureq::Response) -> Option<u64> {
    r.header("content-range")?.trim().strip_prefix("bytes ")?.split('-').next()?.parse().ok()
}

/// One line per refusal; the server's `X-Error-Code` tells a missing repo from a missing file.
fn status_error(status: u16, response: &ureq::Response, url: &Url, file: &str) -> Error {
    let code = response.header("x-error-code").unwrap_or_default().to_string();
    let detail = format!("HTTP {status}{}", if code.is_empty() { String::new() } else { format!(", {code}") });
    let endpoint = host(url);
    match code.as_str() {
        "EntryNotFound" => Error::HubFileMissing { repo: String::new(), file: file.into(), detail },
        "RepoNotFound" | "RevisionNotFound" => Error::HubRepoNotFound { repo: String::new(), endpoint, detail },
        _ if status == 404 && file == crate::weights::CONFIG_FILE => {
            Error::HubRepoNotFound { repo: String::new(), endpoint, detail }
        }
        _ if status == 404 => Error::HubFileMissing { repo: String::new(), file: file.into(), detail },
        _ => Error::Hub(format!("{endpoint} refused `{file}` ({detail})")),
    }
}
