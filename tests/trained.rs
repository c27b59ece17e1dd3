//! The shipped checkpoint (weights/) against the PyTorch EMA model that train/export.py ran on a
//! fixed input (tests/fixtures/trained_io.safetensors).
//!
//! Both sides compute in f32 from the same f16-rounded weights, so they differ only by summation
//! order, about 1e-5 of the output's scale. The bound is looser, f16's resolution (2^-10 ≈ 1e-3
//! of the largest output magnitude): the precision at which the shipped model is defined. A loader
//! that drops or mis-shapes a tensor, a wrong vocabulary row or a prompt-mean bug is off by far more.

mod common;

use common::*;
use favicon_diffusor::Checkpoint;

const REL_TOL: f32 = 1e-3;

fn shipped() -> Checkpoint {
    Checkpoint::open(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("weights")).unwrap()
}

#[test]
fn shipped_weights_reproduce_the_pytorch_ema_model() {
    let ck = shipped();
    let io =
        candle_core::safetensors::load(fixtures().join("trained_io.safetensors"), &candle_core::Device::Cpu).unwrap();
    let bytes = std::fs::read(fixtures().join("trained_io.safetensors")).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let prompts: Vec<String> = serde_json::from_str(&meta.metadata().as_ref().unwrap()["prompts"]).unwrap();
    let ids: Vec<Vec<u32>> = prompts.iter().map(|p| ck.encode_prompt(p).unwrap()).collect();
    let model = ck.model().unwrap();
    let c = model.condition(&flat(&io["t"]), &ids).unwrap();
    let pred = model.forward(&io["x"], &c).unwrap();
    let x0 = pred.x0.expect("the shipped weights have the x0 head");
    for (name, got) in [("eps", &pred.eps), ("x0", &x0)] {
        let err = max_rel_err(&flat(got), &flat(&io[name]));
        assert!(err <= REL_TOL, "{name} differs from PyTorch by {err:e} of its largest magnitude");
    }
}

#[test]
fn shipped_weights_know_the_default_and_grid_prompts() {
    let ck = shipped();
    assert!(ck.is_conditional());
    assert_eq!(ck.config.dim, favicon_diffusor::Config::default().dim);
    for prompt in ["hippo", "pizza", "rocket", "red heart", "cat", "sun", "tree", "grinning face", ""] {
        ck.encode_prompt(prompt).unwrap_or_else(|e| panic!("prompt `{prompt}`: {e}"));
    }
}
