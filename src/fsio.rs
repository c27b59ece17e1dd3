//! Files in and out, treating the folders around them as shared with other users.
//!
//! - Reads accept only regular files (a symbolic link is followed to one: the hub cache is made
//!   of them), within a size limit. A FIFO or a device is refused without waiting on it.
//! - Writes go to a temporary file of their own beside the target, created new (`O_EXCL`, no
//!   link following), synced, then renamed over the target: a reader sees the old file or the
//!   new one, concurrent writers never leave a partial or empty file, and a failed write leaves
//!   nothing behind.
//! - [`NewDir`] does the same for a whole folder.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Opens `path` for reading if it is a regular file of at most `limit` bytes; returns its length.
pub fn open_regular(path: &Path, limit: u64) -> Result<(File, u64)> {
    let mut options = OpenOptions::new();
    options.read(true);
    // Opening a FIFO for reading blocks until a writer appears; non-blocking, it opens at once
    // and is refused below by its type. The flag does nothing to a regular file.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path).map_err(|e| Error::io(path, e))?;
    // Checked on the open file, so a path swapped between a check and the open cannot slip by.
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(Error::IsDirectory { path: path.into() });
    }
    if !meta.is_file() {
        return Err(Error::NotRegularFile { path: path.into(), kind: kind_of(&meta.file_type()) });
    }
    if meta.len() > limit {
        return Err(Error::TooLarge { path: path.into(), limit });
    }
    Ok((file, meta.len()))
}

/// The whole of a regular file of at most `limit` bytes.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let (file, len) = open_regular(path, limit)?;
    let mut bytes = Vec::with_capacity(len as usize);
    // The file may grow after the check: never read past the limit.
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > limit {
        return Err(Error::TooLarge { path: path.into(), limit });
    }
    Ok(bytes)
}

fn kind_of(kind: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "FIFO";
        }
        if kind.is_char_device() {
            return "character device";
        }
        if kind.is_block_device() {
            return "block device";
        }
        if kind.is_socket() {
            return "socket";
        }
    }
    if kind.is_symlink() {
        "symbolic link"
    } else {
        "special file"
    }
}

/// Replaces `path` with `bytes`, atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_with(path, |file| file.write_all(bytes))
}

/// The I/O boundary of [`write_atomic`]: `fill` writes the new contents.
fn write_with(path: &Path, fill: impl FnOnce(&mut File) -> std::io::Result<()>) -> Result<()> {
    let mut new = NewFile::beside(path)?;
    fill(&mut new.file).map_err(|e| Error::write(path, e))?;
    new.commit()
}

/// A name nobody else is using: the process id, a counter and the clock.
fn unique_name(target: &Path, suffix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let stem = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!(".{stem}.{}-{}-{nanos:08x}.{suffix}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// `target`'s folder ("." for a bare name).
fn parent_of(target: &Path) -> &Path {
    match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A file created new beside its target; [`NewFile::commit`] renames it over the target, and
/// dropping it uncommitted removes it.
struct NewFile {
    file: File,
    temp: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl NewFile {
    fn beside(target: &Path) -> Result<NewFile> {
        let dir = parent_of(target);
        let mut last = None;
        // Another user may have taken a name first: that costs a retry, never their file.
        for _ in 0..16 {
            let temp = dir.join(unique_name(target, "tmp"));
            let mut options = OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
            match options.open(&temp) {
                Ok(file) => return Ok(NewFile { file, temp, target: target.into(), committed: false }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(Error::write(target, e)),
            }
        }
        Err(Error::write(target, last.unwrap_or_else(|| std::io::ErrorKind::AlreadyExists.into())))
    }

    /// Syncs the data, then renames it over the target.
    fn commit(mut self) -> Result<()> {
        self.file.sync_all().map_err(|e| Error::write(&self.target, e))?;
        std::fs::rename(&self.temp, &self.target).map_err(|e| Error::write(&self.target, e))?;
        self.committed = true;
        sync_dir(parent_of(&self.target));
        Ok(())
    }
}

impl Drop for NewFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Makes a rename durable. Best effort: not every system can open a folder to sync it.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// A folder filled beside its target, then swapped in whole by [`NewDir::commit`]; dropping it
/// uncommitted removes it with everything in it.
pub struct NewDir {
    temp: PathBuf,
    target: PathBuf,
    done: bool,
}

impl NewDir {
    pub fn beside(target: &Path) -> Result<NewDir> {
        let dir = parent_of(target);
        std::fs::create_dir_all(dir).map_err(|e| Error::write(dir, e))?;
        let mut last = None;
        for _ in 0..16 {
            let temp = dir.join(unique_name(target, "tmpdir"));
            match std::fs::create_dir(&temp) {
                Ok(()) => return Ok(NewDir { temp, target: target.into(), done: false }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(Error::write(target, e)),
            }
        }
        Err(Error::write(target, last.unwrap_or_else(|| std::io::ErrorKind::AlreadyExists.into())))
    }

    /// Writes one file into the new folder (where only this process writes).
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = self.temp.join(name);
        let mut file =
            OpenOptions::new().write(true).create_new(true).open(&path).map_err(|e| Error::write(&path, e))?;
        file.write_all(bytes).map_err(|e| Error::write(self.target.join(name), e))
    }

    /// Where a file of the new folder goes, for writers that take a path.
    pub fn path_of(&self, name: &str) -> PathBuf {
        self.temp.join(name)
    }

    /// Puts the new folder in place of the target. An existing target must be a folder holding
    /// nothing but names in `replaceable`: anything else there is the user's, not ours to drop.
    pub fn commit(mut self, replaceable: &[&str]) -> Result<()> {
        for entry in std::fs::read_dir(&self.temp).map_err(|e| Error::write(&self.target, e))? {
            let path = entry.map_err(|e| Error::write(&self.target, e))?.path();
            File::open(&path).and_then(|f| f.sync_all()).map_err(|e| Error::write(&path, e))?;
        }
        sync_dir(&self.temp);
        match std::fs::symlink_metadata(&self.target) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::rename(&self.temp, &self.target).map_err(|e| Error::write(&self.target, e))?;
            }
            Err(e) => return Err(Error::write(&self.target, e)),
            Ok(meta) if !meta.is_dir() => {
                return Err(Error::write(
                    &self.target,
                    std::io::Error::other(format!("it exists and is a {}, not a folder", kind_of(&meta.file_type()))),
                ))
            }
            Ok(_) => {
                let entries = std::fs::read_dir(&self.target).map_err(|e| Error::write(&self.target, e))?;
                for entry in entries {
                    let name = entry.map_err(|e| Error::write(&self.target, e))?.file_name();
                    if !replaceable.iter().any(|r| name == *r) {
                        return Err(Error::write(
                            &self.target,
                            std::io::Error::other(format!(
                                "it holds `{}`, which is not part of a checkpoint; write into a new or empty folder",
                                name.to_string_lossy()
                            )),
                        ));
                    }
                }
                swap(&self.temp, &self.target).map_err(|e| Error::write(&self.target, e))?;
                // `temp` now holds the old checkpoint.
                let _ = std::fs::remove_dir_all(&self.temp);
            }
        }
        self.done = true;
        sync_dir(parent_of(&self.target));
        Ok(())
    }
}

impl Drop for NewDir {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_dir_all(&self.temp);
        }
    }
}

/// Exchanges two folders in one step where the system can (Linux's `RENAME_EXCHANGE`), so no
/// reader ever finds the target missing; elsewhere in two renames.
fn swap(a: &Path, b: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other);
        let (ca, cb) = (c(a)?, c(b)?);
        // SAFETY: both are valid NUL-terminated paths that outlive the call.
        let rc =
            unsafe { libc::renameat2(libc::AT_FDCWD, ca.as_ptr(), libc::AT_FDCWD, cb.as_ptr(), libc::RENAME_EXCHANGE) };
        if rc == 0 {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        // Filesystems without the exchange say EINVAL; old kernels ENOSYS.
        if !matches!(err.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) {
            return Err(err);
        }
    }
    let aside = parent_of(b).join(unique_name(b, "old"));
    std::fs::rename(b, &aside)?;
    if let Err(e) = std::fs::rename(a, b) {
        let _ = std::fs::rename(&aside, b);
        return Err(e);
    }
    std::fs::rename(&aside, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    /// A write error injected at the I/O boundary (the bytes never reach a disk): the temporary
    /// file is removed, the target keeps its old contents, and the message says "cannot write".
    #[test]
    fn injected_write_error_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.png");
        std::fs::write(&target, b"old").unwrap();
        let no_space = || std::io::Error::from_raw_os_error(28); // ENOSPC
        let err = write_with(&target, |file| file.write_all(b"half").and(Err(no_space()))).unwrap_err();
        assert!(err.to_string().starts_with(&format!("cannot write {}", target.display())), "{err}");
        assert_eq!(std::fs::read(&target).unwrap(), b"old");
        assert_eq!(names(dir.path()), ["out.png"]);
    }

    #[test]
    fn temporary_names_differ_for_each_writer() {
        let target = Path::new("/x/out.png");
        let (a, b) = (unique_name(target, "tmp"), unique_name(target, "tmp"));
        assert_ne!(a, b);
        assert!(a.starts_with(".out.png.") && a.ends_with(".tmp"), "{a}");
    }

    #[test]
    fn new_dir_replaces_a_checkpoint_folder_but_not_a_folder_of_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("ck");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("a"), b"old").unwrap();
        let new = NewDir::beside(&target).unwrap();
        new.write("a", b"new").unwrap();
        new.commit(&["a"]).unwrap();
        assert_eq!(std::fs::read(target.join("a")).unwrap(), b"new");
        assert_eq!(names(dir.path()), ["ck"]);

        std::fs::write(target.join("notes.txt"), b"mine").unwrap();
        let new = NewDir::beside(&target).unwrap();
        new.write("a", b"newer").unwrap();
        let err = new.commit(&["a"]).unwrap_err().to_string();
        assert!(err.contains("cannot write") && err.contains("notes.txt"), "{err}");
        assert_eq!(std::fs::read(target.join("a")).unwrap(), b"new");
        assert_eq!(names(dir.path()), ["ck"]);
    }
}
