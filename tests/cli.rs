//! The `sample` binary as an installed tool: copied out of the source tree, it finds its
//! checkpoint by the documented order (--weights, $FAVICON_DIFFUSOR_WEIGHTS, `weights` beside
//! the executable, the compiled-in path), writes a favicon kit, and a successful default run
//! prints nothing that reads as an error.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::cli::{checkpoint_at, installed};

/// Runs the binary from an unrelated working folder, without the lookup's variable unless given.
fn run(exe: &Path, env: Option<&Path>, args: &[&str]) -> Output {
    let cwd = tempfile::tempdir().unwrap();
    let mut command = Command::new(exe);
    command.args(args).current_dir(cwd.path()).env_remove("FAVICON_DIFFUSOR_WEIGHTS");
    if let Some(dir) = env {
        command.env("FAVICON_DIFFUSOR_WEIGHTS", dir);
    }
    command.output().unwrap()
}

fn weights_line(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the run failed: {}{}", stdout, String::from_utf8_lossy(&out.stderr));
    stdout.lines().find_map(|l| l.strip_prefix("weights: ")).map(String::from).expect("a weights line")
}

const QUICK: [&str; 8] = ["--backend", "cpu", "--steps", "1", "--sampler", "ddim", "--out", "out.png"];

#[test]
fn a_copied_binary_finds_the_weights_folder_beside_it() {
    let (dir, exe) = installed();
    checkpoint_at(&dir.path().join("weights"));
    let out = run(&exe, None, &QUICK);
    assert_eq!(weights_line(&out), dir.path().join("weights").display().to_string());
}

#[test]
fn the_environment_comes_before_the_folder_beside_the_binary_and_the_flag_before_both() {
    let (dir, exe) = installed();
    checkpoint_at(&dir.path().join("weights"));
    let (env, flag) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    checkpoint_at(env.path());
    checkpoint_at(flag.path());
    assert_eq!(weights_line(&run(&exe, Some(env.path()), &QUICK)), env.path().display().to_string());
    let mut args = QUICK.to_vec();
    let flag_arg = flag.path().display().to_string();
    args.extend(["--weights", &flag_arg]);
    assert_eq!(weights_line(&run(&exe, Some(env.path()), &args)), flag_arg);
}

#[test]
fn without_weights_beside_it_the_binary_falls_back_to_the_compiled_in_folder() {
    let (_dir, exe) = installed();
    let out = run(&exe, None, &QUICK);
    let compiled_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("weights");
    assert_eq!(weights_line(&out), compiled_in.display().to_string());
}

#[test]
fn a_named_folder_without_a_checkpoint_says_which_file_is_missing() {
    let (_dir, exe) = installed();
    let empty = tempfile::tempdir().unwrap();
    let out = run(&exe, Some(empty.path()), &QUICK);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&empty.path().join("config.json").display().to_string()), "{stderr}");
}

#[test]
fn a_default_auto_run_prints_no_error_text() {
    let (dir, exe) = installed();
    checkpoint_at(&dir.path().join("weights"));
    let cwd = tempfile::tempdir().unwrap();
    // A headless session: no XDG_RUNTIME_DIR, as on a server or in CI.
    let out = Command::new(&exe)
        .args(["--steps", "1", "--sampler", "ddim"])
        .current_dir(cwd.path())
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("FAVICON_DIFFUSOR_WEIGHTS")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.to_lowercase().contains("error"), "stderr of a successful run: {stderr}");
    assert!(cwd.path().join("favicon.png").is_file());
}

#[test]
fn kit_writes_every_file_of_the_favicon_kit() {
    let (dir, exe) = installed();
    checkpoint_at(&dir.path().join("weights"));
    let cwd = tempfile::tempdir().unwrap();
    let kit_dir = cwd.path().join("site");
    let out = Command::new(&exe)
        .args(["--backend", "cpu", "--steps", "2", "--sampler", "ddim", "--prompt", "sun", "--kit", "site"])
        .current_dir(cwd.path())
        .env_remove("FAVICON_DIFFUSOR_WEIGHTS")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut names: Vec<_> =
        std::fs::read_dir(&kit_dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    let mut want = favicon_diffusor::kit::build(&image::RgbaImage::new(64, 64), &Default::default())
        .unwrap()
        .into_iter()
        .map(|f| f.name.to_string())
        .collect::<Vec<_>>();
    want.sort();
    assert_eq!(names, want, "the kit's files, and no partial or stray files");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(kit_dir.join("site.webmanifest")).unwrap()).unwrap();
    assert_eq!(manifest["name"], "sun", "the name comes from the prompt");
    let touch = image::open(kit_dir.join("apple-touch-icon.png")).unwrap();
    assert_eq!((touch.width(), touch.height()), (180, 180));
    assert!(!cwd.path().join("favicon.png").exists(), "--kit alone writes no favicon.png");
}
