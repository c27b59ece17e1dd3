//! Where the default checkpoint is, for a binary that may have been copied or installed away
//! from the source tree. In order: the `--weights` flag, `FAVICON_DIFFUSOR_WEIGHTS`, a `weights`
//! folder beside the executable, and the source tree's `weights/` compiled into the binary.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The environment variable naming a checkpoint folder.
pub const ENV: &str = "FAVICON_DIFFUSOR_WEIGHTS";

/// The source tree's checkpoint folder, as compiled in.
pub fn compiled_in() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("weights")
}

/// The `weights` folder beside the running executable.
pub fn beside_executable() -> Option<PathBuf> {
    Some(std::env::current_exe().ok()?.parent()?.join("weights"))
}

fn holds_checkpoint(dir: &Path) -> bool {
    dir.join("config.json").is_file()
}

/// The checkpoint folder to load. A folder named by the flag or the environment is taken as
/// given (loading it says what is wrong with it); otherwise the first of the two defaults that
/// holds a `config.json`. When none does, one line names all four places.
pub fn find(flag: Option<&Path>) -> Result<PathBuf> {
    find_in(flag, std::env::var_os(ENV).map(PathBuf::from), beside_executable(), compiled_in())
}

fn find_in(flag: Option<&Path>, env: Option<PathBuf>, beside: Option<PathBuf>, built: PathBuf) -> Result<PathBuf> {
    if let Some(dir) = flag {
        return Ok(dir.to_path_buf());
    }
    if let Some(dir) = env.filter(|d| !d.as_os_str().is_empty()) {
        return Ok(dir);
    }
    if let Some(dir) = beside.iter().chain([&built]).find(|d| holds_checkpoint(d)) {
        return Ok(dir.clone());
    }
    let beside =
        beside.map_or("the executable's folder (unknown)".into(), |d| format!("{} (no config.json)", d.display()));
    Err(Error::NoWeights(format!(
        "--weights (not given), ${ENV} (not set), {beside}, {} (compiled in; no config.json)",
        built.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), "{}").unwrap();
        dir
    }

    #[test]
    fn the_flag_wins_then_the_environment() {
        let (a, b) = (checkpoint_dir(), checkpoint_dir());
        let got = find_in(Some(Path::new("/flag")), Some("/env".into()), Some(a.path().into()), b.path().into());
        assert_eq!(got.unwrap(), PathBuf::from("/flag"));
        let got = find_in(None, Some("/env".into()), Some(a.path().into()), b.path().into());
        assert_eq!(got.unwrap(), PathBuf::from("/env"));
    }

    #[test]
    fn beside_the_executable_comes_before_the_compiled_in_path() {
        let (beside, built, empty) = (checkpoint_dir(), checkpoint_dir(), tempfile::tempdir().unwrap());
        let got = find_in(None, None, Some(beside.path().into()), built.path().into()).unwrap();
        assert_eq!(got, beside.path());
        let got = find_in(None, Some("".into()), Some(empty.path().into()), built.path().into()).unwrap();
        assert_eq!(got, built.path());
    }

    #[test]
    fn when_nothing_holds_a_checkpoint_one_line_names_all_four_places() {
        let (beside, built) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let err = find_in(None, None, Some(beside.path().into()), built.path().into()).unwrap_err().to_string();
        assert!(!err.contains('\n'), "{err}");
        for part in ["--weights", ENV, &beside.path().display().to_string(), &built.path().display().to_string()] {
            assert!(err.contains(part), "`{part}` missing from: {err}");
        }
    }
}
