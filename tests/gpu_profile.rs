//! The single-dispatch runner the kernel benchmarks time (`gpu::profile::repeat_dispatch`).

#![cfg(feature = "gpu")]

mod common;

use common::gpu::engine;
use common::*;
use favicon_diffusor::gpu::profile::{dispatch_names, repeat_dispatch};
use favicon_diffusor::pipeline::{job, Engine, Request};
use favicon_diffusor::SamplerKind;

#[test]
fn a_named_dispatch_runs_alone_and_an_unknown_name_lists_the_plan() {
    let ck = random_checkpoint(&awkward_config(), 40);
    let Some(mut gpu) = engine(&ck) else { return };
    let job = job(&ck, &Request { sampler: SamplerKind::Ddim, steps: 2, guidance: 1.0, ..Default::default() }).unwrap();
    let names = dispatch_names(&mut gpu, &job);
    for name in ["condition", "modulation", "init_noise", "embed", "blocks.0.qkv", "blocks.1.core", "heads"] {
        assert!(names.iter().any(|n| n == name), "{name} missing from {names:?}");
    }
    assert_eq!(names.last().map(String::as_str), Some("sampler_step"));

    gpu.run(&job, &mut |_| {}).unwrap();
    let after = gpu.counts();
    for name in &names {
        pollster::block_on(repeat_dispatch(&mut gpu, &job, name, 3)).unwrap();
    }
    assert_eq!(gpu.counts(), after, "repeating dispatches allocates nothing");

    let err = pollster::block_on(repeat_dispatch(&mut gpu, &job, "blocks.9.qkv", 1)).unwrap_err().to_string();
    assert!(err.contains("blocks.9.qkv") && err.contains("blocks.0.qkv"), "{err}");
}
