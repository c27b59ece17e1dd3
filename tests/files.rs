//! Files around the checkpoint, as another local user or an unlucky disk would leave them: real
//! FIFOs, devices, symbolic links, sparse files, a full filesystem (a 64 KiB tmpfs mounted for
//! the test) and concurrent writers of one output.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use favicon_diffusor::fsio::{read_regular, write_atomic};
use favicon_diffusor::limits::LoadOptions;
use favicon_diffusor::{convert, Checkpoint, Config, Error};

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo runs");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Runs `f` on a thread and fails if it takes longer than `limit` (a FIFO would block forever).
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).expect("the call blocked")
}

#[test]
fn fifo_in_place_of_config_or_weights_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    common::write_dir(dir.path(), &common::random_checkpoint(&common::tiny_config(), 1));
    for file in ["config.json", "model.safetensors"] {
        let case = tempfile::tempdir().unwrap();
        for other in ["config.json", "model.safetensors"] {
            std::fs::copy(dir.path().join(other), case.path().join(other)).unwrap();
        }
        std::fs::remove_file(case.path().join(file)).unwrap();
        mkfifo(&case.path().join(file));
        let path = case.path().to_path_buf();
        let err = within(Duration::from_secs(5), move || Checkpoint::open(&path).unwrap_err());
        assert!(matches!(&err, Error::NotRegularFile { kind: "FIFO", .. }), "{file}: {err}");
        assert!(err.to_string().contains(file), "{err}");
    }
    let fifo = dir.path().join("in.pt");
    mkfifo(&fifo);
    let err = within(Duration::from_secs(5), move || convert::import(&fifo, &Default::default()).unwrap_err());
    assert!(err.to_string().ends_with("is a FIFO, expected a regular file"), "{err}");
}

#[test]
fn character_devices_are_refused_not_read_forever() {
    for device in ["/dev/zero", "/dev/urandom"] {
        let err = within(Duration::from_secs(5), move || read_regular(Path::new(device), 1 << 20).unwrap_err());
        assert!(matches!(&err, Error::NotRegularFile { kind: "character device", .. }), "{err}");
    }
    let dir = tempfile::tempdir().unwrap();
    common::write_dir(dir.path(), &common::random_checkpoint(&common::tiny_config(), 1));
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("model.safetensors")).unwrap();
    let path = dir.path().to_path_buf();
    let err = within(Duration::from_secs(5), move || Checkpoint::open(&path).unwrap_err());
    assert!(matches!(&err, Error::NotRegularFile { kind: "character device", .. }), "{err}");
}

#[test]
fn symbolic_links_to_regular_files_are_followed() {
    let real = tempfile::tempdir().unwrap();
    common::write_dir(real.path(), &common::random_checkpoint(&common::tiny_config(), 2));
    let linked = tempfile::tempdir().unwrap();
    for file in ["config.json", "model.safetensors"] {
        std::os::unix::fs::symlink(real.path().join(file), linked.path().join(file)).unwrap();
    }
    let a = Checkpoint::open(real.path()).unwrap();
    let b = Checkpoint::open(linked.path()).unwrap();
    assert_eq!(common::flat(&a.tensors["patch_embed.weight"]), common::flat(&b.tensors["patch_embed.weight"]));
}

#[test]
fn small_files_past_their_limit_are_refused_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("config.json");
    // Sparse: 17 MiB of nothing costs no disk.
    std::fs::File::create(&big).unwrap().set_len(17 << 20).unwrap();
    std::fs::write(dir.path().join("model.safetensors"), b"x").unwrap();
    let err = Checkpoint::open(dir.path()).unwrap_err();
    assert!(matches!(&err, Error::TooLarge { limit, .. } if *limit == 16 << 20), "{err}");
}

/// A safetensors file whose last tensor, not one the config uses, is 1 GiB of holes.
fn sparse_checkpoint(dir: &Path, extra_bytes: u64) {
    common::write_dir(dir, &common::random_checkpoint(&common::tiny_config(), 3));
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let data_len = (bytes.len() - 8 - n) as u64;
    let entry = serde_json::json!({"dtype": "F32", "shape": [extra_bytes / 4], "data_offsets": [data_len, data_len + extra_bytes]});
    header.insert("zz_unused".into(), entry);
    let mut text = serde_json::to_string(&header).unwrap();
    while !text.len().is_multiple_of(8) {
        text.push(' ');
    }
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&bytes[8 + n..]);
    let path = dir.join("model.safetensors");
    std::fs::write(&path, &out).unwrap();
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(out.len() as u64 + extra_bytes).unwrap();
}

#[test]
fn sparse_unexpected_tensor_is_refused_from_the_header_before_any_allocation() {
    let dir = tempfile::tempdir().unwrap();
    sparse_checkpoint(dir.path(), 1 << 30);
    let start = Instant::now();
    let err = Checkpoint::open(dir.path()).unwrap_err();
    assert!(matches!(&err, Error::ExtraTensor { name, .. } if name == "zz_unused"), "{err}");
    // Converting 1 GiB would take seconds and the memory; the header check takes none.
    assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());

    // Past the memory limit the file is refused by its size before it is mapped.
    let huge = tempfile::tempdir().unwrap();
    sparse_checkpoint(huge.path(), 3 << 30);
    let err = Checkpoint::open(huge.path()).unwrap_err();
    assert!(matches!(&err, Error::TooLarge { .. }), "{err}");
    // convert reads the whole file: the same limit, before reading.
    let err = convert::import(&huge.path().join("model.safetensors"), &Default::default()).unwrap_err();
    assert!(matches!(&err, Error::TooLarge { .. }), "{err}");
}

#[test]
fn memory_needed_is_computed_from_the_header_and_refused_past_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    common::write_dir(dir.path(), &common::random_checkpoint(&common::tiny_config(), 4));
    let params = Checkpoint::open(dir.path()).unwrap().parameter_count() as u64;
    let just = LoadOptions { max_memory: params * 4 };
    Checkpoint::open_with(dir.path(), &just).unwrap();
    let err = Checkpoint::open_with(dir.path(), &LoadOptions { max_memory: params * 4 - 1 }).unwrap_err();
    assert!(matches!(&err, Error::MemoryLimit { .. }), "{err}");
    assert!(err.to_string().contains(&format!("needs {} bytes", params * 4)), "{err}");
}

#[test]
fn config_asking_for_a_petabyte_is_refused_before_allocation() {
    let dir = tempfile::tempdir().unwrap();
    common::write_dir(dir.path(), &common::random_checkpoint(&common::tiny_config(), 5));
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    cfg["image_size"] = 4096.into();
    cfg["patch_size"] = 1.into();
    std::fs::write(dir.path().join("config.json"), cfg.to_string()).unwrap();
    let err = Checkpoint::open(dir.path()).unwrap_err();
    assert!(matches!(&err, Error::Config { message, .. } if message.contains("`image_size` = 4096")), "{err}");
    cfg["image_size"] = 256.into();
    std::fs::write(dir.path().join("config.json"), cfg.to_string()).unwrap();
    let err = Checkpoint::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("65536 tokens, more than the 1024"), "{err}");
    for channels in [1, 2, 5] {
        cfg["image_size"] = 8.into();
        cfg["patch_size"] = 4.into();
        cfg["channels"] = channels.into();
        std::fs::write(dir.path().join("config.json"), cfg.to_string()).unwrap();
        let err = Checkpoint::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("`channels` must be 3 (RGB) or 4"), "{channels}: {err}");
    }
}

#[test]
fn planted_links_at_the_output_never_redirect_the_write() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    let out = dir.path().join("out.png");
    // The old fixed temporary name, and the target itself, both pointing at the victim.
    std::os::unix::fs::symlink(&victim, dir.path().join("out.png.partial")).unwrap();
    std::os::unix::fs::symlink(&victim, &out).unwrap();
    write_atomic(&out, b"new image").unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert_eq!(std::fs::read(&out).unwrap(), b"new image");
    assert!(!std::fs::symlink_metadata(&out).unwrap().file_type().is_symlink());
    assert_eq!(names(dir.path()), ["out.png", "out.png.partial", "victim"]);
}

#[test]
fn concurrent_writers_of_one_output_never_leave_a_partial_or_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("grid.png");
    let contents: Vec<Vec<u8>> = (0..4u8).map(|w| vec![w + 1; 256 << 10]).collect();
    write_atomic(&out, &contents[0]).unwrap();
    let writers: Vec<_> = contents
        .iter()
        .cloned()
        .map(|bytes| {
            let out = out.clone();
            std::thread::spawn(move || (0..20).for_each(|_| write_atomic(&out, &bytes).unwrap()))
        })
        .collect();
    let mut reads = 0;
    while writers.iter().any(|w| !w.is_finished()) && reads < 2000 {
        let seen = std::fs::read(&out).unwrap();
        assert!(contents.contains(&seen), "a reader saw {} bytes of a mix", seen.len());
        reads += 1;
    }
    writers.into_iter().for_each(|w| w.join().unwrap());
    assert!(contents.contains(&std::fs::read(&out).unwrap()));
    assert_eq!(names(dir.path()), ["grid.png"]);
}

/// A real full disk: a 64 KiB tmpfs mounted under a temporary folder for one test. Mounting
/// needs root (CI runs as root); elsewhere the test says so and checks nothing, and the injected
/// ENOSPC unit test in src/fsio.rs covers the same cleanup.
struct SmallDisk {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount() -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).unwrap();
        let status = Command::new("mount").args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"]).arg(&path).status();
        match status {
            Ok(s) if s.success() => Some(SmallDisk { path, _dir: dir }),
            // SAFETY: geteuid has no preconditions.
            _ if unsafe { libc::geteuid() } == 0 => panic!("running as root, yet a 64 KiB tmpfs could not be mounted"),
            _ => {
                eprintln!("NOT RUN: mounting a tmpfs needs root; src/fsio.rs injects ENOSPC instead");
                None
            }
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

#[test]
fn full_disk_leaves_the_old_output_and_no_temporary_file() {
    let Some(disk) = SmallDisk::mount() else { return };
    let out = disk.path.join("favicon.png");
    write_atomic(&out, &[7u8; 16 << 10]).unwrap();
    let err = write_atomic(&out, &[9u8; 128 << 10]).unwrap_err();
    assert!(matches!(&err, Error::Write { .. }), "{err}");
    assert!(err.to_string().starts_with(&format!("cannot write {}", out.display())), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), vec![7u8; 16 << 10]);
    assert_eq!(names(&disk.path), ["favicon.png"]);
}

#[test]
fn convert_on_a_full_disk_leaves_the_old_checkpoint_whole() {
    let Some(disk) = SmallDisk::mount() else { return };
    let out = disk.path.join("ck");
    let old = common::random_checkpoint(&common::tiny_config(), 6);
    old.save(&out, candle_core::DType::F32).unwrap();
    // A bigger model of the same kind does not fit in what is left.
    let bigger = common::random_checkpoint(&Config { dim: 64, ..common::tiny_config() }, 7);
    let err = bigger.save(&out, candle_core::DType::F32).unwrap_err();
    assert!(err.to_string().starts_with("cannot write"), "{err}");
    let reread = Checkpoint::open(&out).unwrap();
    assert_eq!(reread.config, old.config);
    assert_eq!(common::flat(&reread.tensors["patch_embed.weight"]), common::flat(&old.tensors["patch_embed.weight"]));
    assert_eq!(names(&disk.path), ["ck"]);
    assert_eq!(names(&out), ["config.json", "model.safetensors"]);
}

#[test]
fn convert_replaces_a_checkpoint_folder_whole_but_keeps_other_folders() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ck");
    common::random_checkpoint(&common::tiny_config(), 8).save(&out, candle_core::DType::F32).unwrap();
    let new = common::random_checkpoint(&Config { dim: 16, ..common::tiny_config() }, 9);
    new.save(&out, candle_core::DType::F16).unwrap();
    assert_eq!(Checkpoint::open(&out).unwrap().config.dim, 16);
    assert_eq!(names(dir.path()), ["ck"]);

    std::fs::write(out.join("notes.md"), b"mine").unwrap();
    let err = new.save(&out, candle_core::DType::F32).unwrap_err();
    assert!(err.to_string().contains("holds `notes.md`"), "{err}");
    assert_eq!(std::fs::read(out.join("notes.md")).unwrap(), b"mine");
    assert_eq!(names(dir.path()), ["ck"]);
}
