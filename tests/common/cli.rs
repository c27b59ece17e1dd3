//! The `sample` example as the tests run it: built once, copied out like an install, with a
//! tiny checkpoint beside it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Builds the `sample` example (a no-op when it is up to date) and returns its path.
pub fn sample_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = Command::new(cargo);
        command.args(["build", "--release", "--example", "sample", "--message-format", "json"]);
        // The variables cargo sets for this test (CARGO_PKG_NAME, CARGO_MANIFEST_DIR, ...) would
        // look like a changed environment to build scripts that watch them (ring's), and
        // rebuild half the dependencies; the build gets the environment cargo itself was given.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            let set_for_tests = [
                "CARGO_PKG_",
                "CARGO_MANIFEST_",
                "CARGO_CRATE_",
                "CARGO_PRIMARY_",
                "CARGO_TARGET_TMPDIR",
                "CARGO_BIN_",
            ];
            if set_for_tests.iter().any(|prefix| key.starts_with(prefix)) {
                command.env_remove(key.as_ref());
            }
        }
        let out = command.current_dir(env!("CARGO_MANIFEST_DIR")).output().expect("cargo runs");
        assert!(out.status.success(), "building sample failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "sample")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo names the sample executable")
    })
}

/// A copy of the binary in a fresh folder, as an install would put it.
pub fn installed() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("sample");
    std::fs::copy(sample_binary(), &exe).unwrap();
    (dir, exe)
}

/// A tiny random 64 px checkpoint.
pub fn checkpoint_at(dir: &Path) {
    super::write_dir(dir, &super::random_checkpoint(&super::small_config(), 3));
}
