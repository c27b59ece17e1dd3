//! `Job::stop`: an engine asked to stop ends after the step in progress (the GPU after the
//! steps it had already submitted), says how far it got, and leaves itself ready for the next
//! job, which draws exactly what a fresh engine draws.

mod common;

use favicon_diffusor::cpu::CpuEngine;
use favicon_diffusor::pipeline::{self, Engine, Job};
use favicon_diffusor::{Checkpoint, Config, Error, Request, SamplerKind};

fn checkpoint() -> Checkpoint {
    let cfg = Config {
        image_size: 16,
        patch_size: 4,
        dim: 16,
        depth: 1,
        heads: 2,
        head_dim: 8,
        mlp_mult: 2,
        time_dim: 8,
        timesteps: 16,
        ..Config::default()
    };
    common::random_checkpoint(&cfg, 5)
}

fn job(ck: &Checkpoint, seed: u64) -> Job {
    let request = Request { steps: 10, sampler: SamplerKind::Ddim, seed, ..Request::default() };
    pipeline::job(ck, &request).unwrap()
}

/// Runs `job`, asking it to stop while step `at` is reported; returns the steps reported.
fn run_stopping_at(engine: &mut dyn Engine, job: &Job, at: usize) -> (Result<Vec<f32>, Error>, Vec<usize>) {
    let mut seen = Vec::new();
    let stop = job.stop.clone();
    let result = engine.run(job, &mut |event| {
        seen.push(event.index);
        if event.index == at {
            stop.request();
        }
    });
    (result, seen)
}

#[test]
fn the_cpu_engine_stops_after_the_step_that_asked() {
    let ck = checkpoint();
    let mut engine = CpuEngine::new(&ck).unwrap();
    let (result, seen) = run_stopping_at(&mut engine, &job(&ck, 1), 2);
    assert!(matches!(result, Err(Error::Stopped { done: 3, total: 10 })), "{result:?}");
    assert_eq!(seen, vec![0, 1, 2]);
    let next = engine.run(&job(&ck, 2), &mut |_| {}).unwrap();
    let fresh = CpuEngine::new(&ck).unwrap().run(&job(&ck, 2), &mut |_| {}).unwrap();
    assert_eq!(next, fresh);
}

#[cfg(feature = "gpu")]
#[test]
fn the_gpu_engine_stops_within_its_window_and_the_next_job_matches_a_fresh_engine() {
    let ck = checkpoint();
    let Some(mut engine) = common::gpu::engine(&ck) else { return };
    engine.set_steps_in_flight(2);
    let (result, seen) = run_stopping_at(&mut engine, &job(&ck, 1), 3);
    assert!(matches!(result, Err(Error::Stopped { done: 4, total: 10 })), "{result:?}");
    assert_eq!(seen, vec![0, 1, 2, 3], "no step after the stop is reported");
    let next = engine.run(&job(&ck, 2), &mut |_| {}).unwrap();
    let Some(mut fresh) = common::gpu::engine(&ck) else { return };
    // All steps submitted at once (the default) or two at a time: the same image.
    assert_eq!(next, fresh.run(&job(&ck, 2), &mut |_| {}).unwrap());
}
