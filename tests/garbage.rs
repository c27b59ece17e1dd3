//! No silent garbage: a sample that overflowed, an absurd guidance scale or a prompt with no
//! word is an error, on every backend, never an image written with exit code 0.

mod common;

use favicon_diffusor::pipeline::Engine;
use favicon_diffusor::{Backend, Checkpoint, Config, Error, Pipeline, Request};

fn tiny(vocab: bool) -> Config {
    Config { vocab: vocab.then(|| vec!["hippo".into(), "red".into()]), ..common::tiny_config() }
}

/// Every weight scaled to ±6·10⁴: finite, even in f16, but q·k overflows f32 in the first block.
fn overflowing() -> Checkpoint {
    let ck = common::random_checkpoint(&tiny(false), 11);
    let tensors = ck.tensors.iter().map(|(k, v)| (k.clone(), (v.sign().unwrap() * 6e4).unwrap())).collect();
    Checkpoint::from_tensors(ck.config.clone(), None, tensors).unwrap()
}

fn request() -> Request {
    Request { steps: 4, ..Request::default() }
}

fn assert_non_finite(result: favicon_diffusor::Result<favicon_diffusor::Output>) {
    match result {
        Err(Error::NonFiniteOutput { count, total }) => assert!(count > 0 && count <= total, "{count}/{total}"),
        Err(other) => panic!("expected NonFiniteOutput, got {other}"),
        Ok(_) => panic!("an overflowed sample was returned as an image"),
    }
}

#[test]
fn overflowing_weights_are_an_error_on_the_cpu() {
    let mut pipe = Pipeline::new(overflowing(), Backend::Cpu).unwrap();
    assert_non_finite(pipe.generate(&request(), |_| {}));
}

#[cfg(feature = "gpu")]
#[test]
fn overflowing_weights_are_an_error_on_the_gpu() {
    let ck = overflowing();
    let Some(engine) = common::gpu::engine(&ck) else { return };
    assert!(engine.name().starts_with("gpu"), "{}", engine.name());
    let mut pipe = Pipeline::with_engine(ck, Box::new(engine), None);
    assert_non_finite(pipe.generate(&request(), |_| {}));
}

#[test]
fn guidance_outside_zero_to_twenty_is_refused_before_sampling() {
    let mut pipe = Pipeline::new(common::random_checkpoint(&tiny(true), 12), Backend::Cpu).unwrap();
    for guidance in [1e30, -1.0, 20.01, f32::NAN] {
        let req = Request { prompt: "hippo".into(), guidance, ..request() };
        let err = pipe.generate(&req, |_| panic!("sampled with guidance {guidance}")).err().unwrap();
        assert!(err.to_string().contains("guidance must be in 0..=20"), "{err}");
    }
    for guidance in [0.0, 20.0] {
        let out = pipe.generate(&Request { prompt: "hippo".into(), guidance, ..request() }, |_| {}).unwrap();
        assert!(out.images.iter().all(|v| v.is_finite()));
    }
}

#[test]
fn prompt_of_only_emoji_is_an_error_not_an_unconditional_sample() {
    for vocab in [true, false] {
        let mut pipe = Pipeline::new(common::random_checkpoint(&tiny(vocab), 13), Backend::Cpu).unwrap();
        let err = pipe.generate(&Request { prompt: "🦛🦛".into(), ..request() }, |_| {}).err().unwrap();
        let expected = if vocab { "has no word" } else { "unconditional" };
        assert!(err.to_string().contains(expected), "{err}");
        pipe.generate(&Request { prompt: "  ".into(), ..request() }, |_| {}).unwrap();
    }
}
