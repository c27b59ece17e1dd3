//! The Hugging Face cache layout, written so that nothing a server says can reach outside it:
//!
//! ```text
//! {cache}/models--{owner}--{name}/blobs/{etag}               the file, named by its content hash
//!                                 blobs/{etag}.part          a download in progress (resumed)
//!                                 snapshots/{commit}/{file}  → ../../blobs/{etag}
//!                                 refs/{revision}            the commit a branch or tag was at
//! ```
//!
//! Every name from a server is checked before it touches a path: the etag must be a sha1 or
//! sha256 in hex (so the blob is always verified against it), the commit a 40-digit sha1, and
//! a file name one plain component. Each folder written into is checked to resolve inside the
//! repo's folder, and files are opened without following links.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use super::http::Sink;
use crate::error::{Error, Result};
use crate::fsio;

pub fn is_hex(text: &str, lengths: &[usize]) -> bool {
    lengths.contains(&text.len()) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A file name inside a repo: one component of safe characters.
pub fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// One repo's folder in the cache.
pub struct RepoCache {
    root: PathBuf,
}

impl RepoCache {
    /// `repo` was checked by `parse_spec` (two plain components).
    pub fn new(cache: &Path, repo: &str) -> RepoCache {
        RepoCache { root: cache.join(format!("models--{}", repo.replace('/', "--"))) }
    }

    fn blobs(&self) -> PathBuf {
        self.root.join("blobs")
    }

    pub fn snapshot(&self, commit: &str) -> PathBuf {
        self.root.join("snapshots").join(commit)
    }

    /// The commit `revision` stands for in the cache: itself when it is one, else `refs/`.
    pub fn commit_of(&self, revision: &str) -> Option<String> {
        if is_hex(revision, &[40]) {
            return Some(revision.to_ascii_lowercase());
        }
        let text = fsio::read_regular(&self.root.join("refs").join(revision), 256).ok()?;
        let commit = String::from_utf8(text).ok()?.trim().to_ascii_lowercase();
        is_hex(&commit, &[40]).then_some(commit)
    }

    /// The cached file of `commit`, if its pointer leads to a blob of this repo.
    pub fn cached(&self, commit: &str, file: &str) -> Option<PathBuf> {
        let pointer = self.snapshot(commit).join(file);
        let blob = std::fs::canonicalize(&pointer).ok()?;
        let blobs = std::fs::canonicalize(self.blobs()).ok()?;
        (blob.parent() == Some(blobs.as_path())).then_some(pointer)
    }

    /// Creates `dir` (under the repo folder) and checks it resolves inside the repo folder, so a
    /// link planted in a shared cache cannot redirect the writes.
    fn make_dir(&self, dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(dir).map_err(|e| Error::write(dir, e))?;
        let (real, root) = (
            std::fs::canonicalize(dir).map_err(|e| Error::write(dir, e))?,
            std::fs::canonicalize(&self.root).map_err(|e| Error::write(&self.root, e))?,
        );
        if !real.starts_with(&root) {
            return Err(Error::write(
                dir,
                std::io::Error::other(format!("it resolves to {}, outside the cache folder", real.display())),
            ));
        }
        Ok(dir.to_path_buf())
    }

    /// The partial download of blob `etag`: the `.part` file, created if missing, with its length.
    pub fn part(&self, etag: &str) -> Result<Part> {
        let dir = self.make_dir(&self.blobs())?;
        let path = dir.join(format!("{etag}.part"));
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
        let mut file = options.open(&path).map_err(|e| Error::write(&path, e))?;
        let meta = file.metadata().map_err(|e| Error::io(&path, e))?;
        if !meta.is_file() {
            return Err(Error::NotRegularFile { path, kind: "special file" });
        }
        let len = file.seek(std::io::SeekFrom::End(0)).map_err(|e| Error::io(&path, e))?;
        Ok(Part { file, path, len, blob: dir.join(etag) })
    }

    /// Holds `blobs/{etag}.lock` while this process downloads the blob, so two pulls never
    /// append to one `.part`. Waits while another holder's `.part` keeps growing; gives up when
    /// it has not grown for `patience`.
    pub fn lock(&self, etag: &str, file: &str, patience: std::time::Duration) -> Result<File> {
        let dir = self.make_dir(&self.blobs())?;
        let path = dir.join(format!("{etag}.lock"));
        let mut options = OpenOptions::new();
        options.write(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
        let lock = options.open(&path).map_err(|e| Error::write(&path, e))?;
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            let part = dir.join(format!("{etag}.part"));
            let size = || std::fs::symlink_metadata(&part).map_or(0, |m| m.len());
            let (mut seen, mut since) = (size(), std::time::Instant::now());
            // SAFETY: flock on a descriptor this function owns; released when the file closes.
            while unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
                if size() != seen {
                    (seen, since) = (size(), std::time::Instant::now());
                } else if since.elapsed() > patience {
                    return Err(Error::Hub(format!(
                        "another process is downloading `{file}` but its {} has not grown for {} s",
                        part.display(),
                        patience.as_secs()
                    )));
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        }
        Ok(lock)
    }

    /// Points `snapshots/{commit}/{file}` at `blob`, replacing whatever was there in one rename.
    pub fn link(&self, commit: &str, file: &str, etag: &str) -> Result<PathBuf> {
        let dir = self.make_dir(&self.snapshot(commit))?;
        let pointer = dir.join(file);
        let temp = dir.join(format!(".{file}.{}.link", std::process::id()));
        let _ = std::fs::remove_file(&temp);
        let target = Path::new("../../blobs").join(etag);
        #[cfg(unix)]
        std::os::unix::fs::symlink(&target, &temp).map_err(|e| Error::write(&pointer, e))?;
        #[cfg(not(unix))]
        std::fs::copy(self.blobs().join(etag), &temp).map_err(|e| Error::write(&pointer, e))?;
        std::fs::rename(&temp, &pointer).map_err(|e| Error::write(&pointer, e))?;
        Ok(pointer)
    }

    /// Records that `revision` is at `commit` (nothing to record when it is the commit).
    pub fn set_ref(&self, revision: &str, commit: &str) -> Result<()> {
        if revision.eq_ignore_ascii_case(commit) {
            return Ok(());
        }
        let path = self.root.join("refs").join(revision);
        self.make_dir(path.parent().unwrap_or(&self.root))?;
        fsio::write_atomic(&path, commit.as_bytes())
    }

    pub fn blob(&self, etag: &str) -> PathBuf {
        self.blobs().join(etag)
    }
}

/// A download in progress: appended to, and renamed to its blob once whole.
pub struct Part {
    file: File,
    path: PathBuf,
    pub len: u64,
    blob: PathBuf,
}

impl Part {
    /// Deletes the partial file (a body that was refused is not worth resuming).
    pub fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
    }

    /// Throws away what was downloaded so far.
    pub fn discard(&mut self) -> Result<()> {
        self.restart_at(0).map_err(|e| Error::write(&self.path, e))
    }

    /// Checks the whole download against its etag, then makes it the blob.
    pub fn finish(self, etag: &str, file: &str) -> Result<()> {
        self.file.sync_all().map_err(|e| Error::write(&self.path, e))?;
        if let Err(e) = verify(&self.path, etag, file) {
            let _ = std::fs::remove_file(&self.path);
            return Err(e);
        }
        std::fs::rename(&self.path, &self.blob).map_err(|e| Error::write(&self.blob, e))
    }
}

impl Write for Part {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Sink for Part {
    fn restart_at(&mut self, offset: u64) -> std::io::Result<()> {
        if offset != self.len {
            self.file.set_len(offset)?;
            self.file.seek(std::io::SeekFrom::Start(offset))?;
            self.len = offset;
        }
        Ok(())
    }
    fn path(&self) -> &Path {
        &self.path
    }
}

/// Checks a file against its etag: sha256 for LFS files, git's blob sha1 for the rest.
pub fn verify(path: &Path, etag: &str, file: &str) -> Result<()> {
    use sha1::Digest;
    let mut reader = File::open(path).map_err(|e| Error::io(path, e))?;
    let size = reader.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut buf = vec![0u8; 1 << 20];
    let mut feed = |update: &mut dyn FnMut(&[u8])| -> Result<()> {
        loop {
            match reader.read(&mut buf).map_err(|e| Error::io(path, e))? {
                0 => return Ok(()),
                n => update(&buf[..n]),
            }
        }
    };
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let found = if etag.len() == 64 {
        let mut h = sha2::Sha256::new();
        feed(&mut |b| h.update(b))?;
        hex(&h.finalize())
    } else {
        let mut h = sha1::Sha1::new();
        h.update(format!("blob {size}\0").as_bytes());
        feed(&mut |b| h.update(b))?;
        hex(&h.finalize())
    };
    if found.eq_ignore_ascii_case(etag) {
        return Ok(());
    }
    Err(Error::HubCorrupt { file: file.into(), expected: etag.into(), found, size: size as usize })
}
