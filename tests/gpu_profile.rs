//! The single-dispatch runner the kernel benchmarks time (`gpu::profile::repeat_dispatch`).

#![cfg(feature = "gpu")]

mod common;

use common::gpu::{engine, engine_with};
use common::*;
use favicon_diffusor::gpu::profile::{dispatch_names, repeat_dispatch};
use favicon_diffusor::gpu::GpuOptions;
use favicon_diffusor::pipeline::{job, Engine, Request};
use favicon_diffusor::{Config, SamplerKind};

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

/// The default config's step is 32 ops: embed, 4 blocks × (norm1, qkv, core, attn, norm2,
/// hidden, ff), final_norm, heads and the sampler. Each is one dispatch at every batch, on both
/// kernel families: at batch 1 (64 rows: every matmul splits K on 32×32 tiles) and batch 8 (all
/// but hidden split on 64×64 tiles) the split matmuls reduce in their own last workgroups, where
/// they used to add a reduce dispatch each (50 and 46 a step); batch 64's 128×128 tiles never
/// split.
#[test]
fn a_step_is_one_dispatch_per_op_at_batch_1_8_and_64() {
    let cfg = Config::default();
    let ck = random_checkpoint(&cfg, 41);
    let ops = 4 + 7 * cfg.depth;
    assert_eq!(ops, 32);
    for software in [false, true] {
        let options = GpuOptions { software_kernels: Some(software), ..Default::default() };
        let Some(mut gpu) = engine_with(&ck, options) else { return };
        for (images, guided) in [(1, false), (1, true), (8, false), (64, false)] {
            let count = gpu.dispatches_per_step(images, guided);
            assert_eq!(count, ops, "software {software}, batch {images}, guided {guided}");
        }
    }
}
