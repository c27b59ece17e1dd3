//! The first image of a process (issue 14). The pipeline cache file kept between runs never
//! changes an image and never fails a run, whatever state the file or its folder is in; it is
//! written after a run that compiled pipelines and read by the next; turned off, nothing is
//! written. `sample --timings` accounts for every stage from process start to the PNG.
//!
//! Images are compared bit for bit with a run of an engine that keeps no cache file, and that
//! run with candle's, as tests/gpu.rs does. On a machine without a GPU adapter the tests skip
//! (or fail, with FAVICON_DIFFUSOR_REQUIRE_GPU=1).

mod common;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::cli::{checkpoint_at, installed};
use common::gpu::{compare_samples_on, engine_caching_in};
use common::{f16_rounded, random_checkpoint};
use favicon_diffusor::gpu::pipeline_cache::{decode, encode, fingerprint, CACHE_DIR_ENV, CACHE_ENV};
use favicon_diffusor::gpu::{GpuOptions, REQUIRE_GPU_ENV};
use favicon_diffusor::pipeline::{Engine, Job, Preview};
use favicon_diffusor::sampler::Plan;
use favicon_diffusor::schedule::Schedule;
use favicon_diffusor::timings::{Laps, Stage};
use favicon_diffusor::{Checkpoint, SamplerKind};

fn checkpoint() -> Checkpoint {
    f16_rounded(&random_checkpoint(&common::small_config(), 41))
}

/// Guided, three DDIM steps: every kernel a batch-1 request runs.
fn job(ck: &Checkpoint) -> Job {
    let schedule = Schedule::cosine(ck.config.timesteps, ck.config.schedule_offset);
    Job {
        plan: Plan::new(&schedule, SamplerKind::Ddim, 3, None, ck.config.x0_head).unwrap(),
        seed: 9,
        batch: 1,
        prompt: ck.encode_prompt("hippo").unwrap(),
        guidance: Some(3.0),
        init: None,
        preview: Preview::None,
        stop: Default::default(),
    }
}

/// The images of one run on a fresh engine caching in `folder`, with its laps and the
/// fingerprint its cache file is written under.
fn sample(ck: &Checkpoint, folder: Option<&Path>) -> Option<(Vec<f32>, Laps, u64)> {
    let mut engine = engine_caching_in(ck, GpuOptions::default(), folder)?;
    let images = engine.run(&job(ck), &mut |_| {}).unwrap();
    Some((images, engine.laps().clone(), fingerprint(&engine.context().info)))
}

/// The one cache file in `folder`.
fn cache_file(folder: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(folder).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "one cache file and nothing else: {files:?}");
    files[0].clone()
}

fn noted(laps: &Laps, what: &str) -> bool {
    laps.notes().iter().any(|n| n.contains(what))
}

/// Whether this adapter keeps pipeline cache data at all (wgpu has it on Vulkan only).
fn caches(laps: &Laps) -> bool {
    !noted(laps, "pipeline cache: none")
}

#[test]
fn the_pipeline_cache_is_written_after_a_run_and_read_by_the_next() {
    let ck = checkpoint();
    let Some((reference, _, _)) = sample(&ck, None) else { return };
    let Some(mut plain) = engine_caching_in(&ck, GpuOptions::default(), None) else { return };
    compare_samples_on(&mut plain, &ck, &[("no cache file", job(&ck))], 0.25, 2e-2);

    let folder = tempfile::tempdir().unwrap();
    let (first, laps, key) = sample(&ck, Some(folder.path())).unwrap();
    assert_eq!(first, reference, "a run that fills the cache draws the same image");
    if !caches(&laps) {
        eprintln!("*** this adapter has no pipeline cache: {:?} ***", laps.notes());
        assert!(std::fs::read_dir(folder.path()).unwrap().next().is_none(), "nothing to write, nothing written");
        return;
    }
    assert!(noted(&laps, "pipeline cache: wrote"), "{:?}", laps.notes());
    let written = std::fs::read(cache_file(folder.path())).unwrap();
    assert!(decode(&written, key).is_some_and(|data| !data.is_empty()), "a whole cache file");

    let (second, laps, _) = sample(&ck, Some(folder.path())).unwrap();
    assert_eq!(second, reference, "a run from the cache draws the same image");
    assert!(noted(&laps, "pipeline cache: read"), "{:?}", laps.notes());
    assert!(!noted(&laps, "pipeline cache: wrote"), "nothing new to write: {:?}", laps.notes());
    assert_eq!(std::fs::read(cache_file(folder.path())).unwrap(), written);
}

/// Writes `bad(good file, fingerprint)` as the cache file of `ck`'s adapter in a new folder,
/// runs, and checks the image, that the run noted `why`, and that a good file replaced the bad.
fn run_over_a_bad_file(
    ck: &Checkpoint,
    reference: &[f32],
    (what, why): (&str, &str),
    bad: impl Fn(&[u8], u64) -> Vec<u8>,
) {
    let good = tempfile::tempdir().unwrap();
    let (_, laps, key) = sample(ck, Some(good.path())).unwrap();
    if !caches(&laps) {
        return;
    }
    let file = cache_file(good.path());
    let bytes = std::fs::read(&file).unwrap();
    let folder = tempfile::tempdir().unwrap();
    let target = folder.path().join(file.file_name().unwrap());
    std::fs::write(&target, bad(&bytes, key)).unwrap();
    let (images, laps, _) = sample(ck, Some(folder.path())).unwrap();
    assert_eq!(images, reference, "{what}: the same image");
    assert!(noted(&laps, why) && !noted(&laps, "pipeline cache: read"), "{what}: {:?}", laps.notes());
    let replaced = std::fs::read(&target).unwrap();
    assert!(decode(&replaced, key).is_some(), "{what}: replaced by a whole cache file");
}

const IGNORED: &str = "pipeline cache: ignored";

#[test]
fn a_corrupt_or_truncated_pipeline_cache_gives_the_same_image() {
    let ck = checkpoint();
    let Some((reference, _, _)) = sample(&ck, None) else { return };
    run_over_a_bad_file(&ck, &reference, ("truncated", IGNORED), |bytes, _| bytes[..bytes.len() / 2].to_vec());
    run_over_a_bad_file(&ck, &reference, ("one byte flipped", IGNORED), |bytes, _| {
        let mut bytes = bytes.to_vec();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x40;
        bytes
    });
    run_over_a_bad_file(&ck, &reference, ("empty", IGNORED), |_, _| Vec::new());
    run_over_a_bad_file(&ck, &reference, ("garbage", IGNORED), |bytes, _| {
        (0..bytes.len()).map(|i| (i * 7) as u8).collect()
    });
}

/// wgpu's own header in the cache data: the adapter key's device id sits at bytes 24..28.
const WGPU_DEVICE_ID: std::ops::Range<usize> = 24..28;

#[test]
fn a_pipeline_cache_from_another_adapter_gives_the_same_image() {
    let ck = checkpoint();
    let Some((reference, _, _)) = sample(&ck, None) else { return };
    // Another adapter's or build's file under this one's name: its fingerprint differs.
    run_over_a_bad_file(&ck, &reference, ("another fingerprint", IGNORED), |bytes, key| {
        encode(key ^ 1, decode(bytes, key).unwrap())
    });
    // A whole file of ours whose wgpu data names another device: wgpu refuses it, which must
    // not reach the run as a validation error.
    run_over_a_bad_file(&ck, &reference, ("another device inside", "the driver refused"), |bytes, key| {
        let mut data = decode(bytes, key).unwrap().to_vec();
        for byte in &mut data[WGPU_DEVICE_ID] {
            *byte ^= 0x5a;
        }
        encode(key, &data)
    });
}

#[test]
fn an_unwritable_cache_folder_does_not_fail_the_run() {
    let ck = checkpoint();
    let Some((reference, _, _)) = sample(&ck, None) else { return };
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("a file");
    std::fs::write(&blocker, b"not a folder").unwrap();
    // A folder below a regular file cannot be made, not even by root.
    let (images, laps, _) = sample(&ck, Some(&blocker.join("cache"))).unwrap();
    assert_eq!(images, reference);
    if caches(&laps) {
        assert!(noted(&laps, "pipeline cache: not saved"), "{:?}", laps.notes());
    }
    assert_eq!(std::fs::read(&blocker).unwrap(), b"not a folder");
}

/// Runs the installed `sample` with a tiny checkpoint beside it, `--timings` and `env` (the
/// cache variables otherwise unset); returns the timings table, or `None` where the GPU backend
/// found no adapter (a failure with FAVICON_DIFFUSOR_REQUIRE_GPU=1).
fn timed_run(backend: &str, env: &[(&str, &OsStr)]) -> Option<BTreeMap<String, f64>> {
    let (dir, exe) = installed();
    checkpoint_at(&dir.path().join("weights"));
    let cwd = tempfile::tempdir().unwrap();
    let mut command = Command::new(&exe);
    command.args(["--backend", backend, "--steps", "2", "--sampler", "ddim", "--timings", "--out", "out.png"]);
    command.current_dir(cwd.path());
    for name in ["FAVICON_DIFFUSOR_WEIGHTS", CACHE_ENV, CACHE_DIR_ENV] {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    let out = command.output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.success() && stderr.contains("no GPU adapter") {
        assert_ne!(std::env::var(REQUIRE_GPU_ENV).as_deref(), Ok("1"), "{REQUIRE_GPU_ENV}=1 but: {stderr}");
        eprintln!("*** SKIPPED: {stderr} ***");
        return None;
    }
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(cwd.path().join("out.png").is_file());
    let table = stdout.split_once("timings since process start:\n").map_or("", |(_, t)| t);
    let lines = table.lines().filter_map(|line| {
        let (name, ms) = line.trim().strip_suffix(" ms")?.rsplit_once(' ')?;
        Some((name.trim().to_string(), ms.trim().parse::<f64>().ok()?))
    });
    Some(lines.collect())
}

/// Every stage is there, and the stages with "other" make up the total (to the printed 0.1 ms).
fn check_breakdown(times: &BTreeMap<String, f64>, stages: &[Stage]) {
    for stage in stages {
        assert!(times.contains_key(stage.name()), "`{}` missing from {times:?}", stage.name());
    }
    let total = times["total"];
    let parts: f64 = times.iter().filter(|(name, _)| *name != "total").map(|(_, ms)| ms).sum();
    let rounding = 0.05 * times.len() as f64;
    assert!((parts - total).abs() <= rounding, "stages and other {parts} ms against the total {total} ms: {times:?}");
    assert!(times["other (start-up, arguments)"] >= 0.0 && total > 0.0, "{times:?}");
}

#[test]
fn timings_account_for_every_stage_from_process_start_to_the_png() {
    let cache_home = tempfile::tempdir().unwrap();
    if let Some(times) = timed_run("gpu", &[("XDG_CACHE_HOME", cache_home.path().as_os_str())]) {
        use Stage::*;
        let gpu = [WeightsRead, Adapter, Device, WeightsUpload, CacheRead, Plan, Modules, Pipelines, Sample, Write];
        check_breakdown(&times, &gpu);
    }
    let times = timed_run("cpu", &[]).unwrap();
    check_breakdown(&times, &[Stage::WeightsRead, Stage::Model, Stage::Sample, Stage::Write]);
}

#[test]
fn the_pipeline_cache_goes_to_the_cache_home_and_off_writes_nothing() {
    let (cache_home, home) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let homes = [("XDG_CACHE_HOME", cache_home.path().as_os_str()), ("HOME", home.path().as_os_str())];
    let Some(times) = timed_run("gpu", &homes) else { return };
    if times.contains_key(Stage::CacheWrite.name()) {
        assert!(cache_file(&cache_home.path().join("favicon-diffusor")).extension().is_some_and(|e| e == "bin"));
    }
    let (cache_home, home) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let off = [
        ("XDG_CACHE_HOME", cache_home.path().as_os_str()),
        ("HOME", home.path().as_os_str()),
        (CACHE_ENV, OsStr::new("off")),
    ];
    let times = timed_run("gpu", &off).unwrap();
    assert!(!times.contains_key(Stage::CacheWrite.name()), "{times:?}");
    // The driver may keep its own cache there (Mesa's mesa_shader_cache); ours is absent.
    assert!(!cache_home.path().join("favicon-diffusor").exists(), "no folder in the cache home");
    assert!(!home.path().join(".cache/favicon-diffusor").exists(), "no folder in the home's cache");
}
