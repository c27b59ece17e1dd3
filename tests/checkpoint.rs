//! Checkpoint validation and determinism: every bad tensor is named with both shapes, the
//! position buffer is checked against the closed-form sinusoid, and one seed gives one image.

mod common;

use candle_core::{DType, Device, Tensor};
use common::*;
use favicon_diffusor::{Backend, Checkpoint, Config, Error, Pipeline, Request, SamplerKind};

fn tiny() -> Config {
    Config {
        image_size: 8,
        patch_size: 4,
        dim: 16,
        depth: 1,
        heads: 2,
        head_dim: 4,
        time_dim: 8,
        timesteps: 4,
        ..Config::default()
    }
}

fn tensors(cfg: &Config) -> std::collections::HashMap<String, Tensor> {
    favicon_diffusor::model::random_tensors(cfg, None, 3).unwrap()
}

#[test]
fn a_missing_tensor_is_named_with_its_expected_shape() {
    let mut t = tensors(&tiny());
    t.remove("blocks.0.attn.to_k.weight");
    let err = Checkpoint::from_tensors(tiny(), None, t).unwrap_err();
    assert!(
        matches!(&err, Error::MissingTensor { name, expected } if name == "blocks.0.attn.to_k.weight" && expected == &vec![8, 16]),
        "{err}"
    );
}

#[test]
fn an_extra_tensor_is_named() {
    let mut t = tensors(&tiny());
    t.insert("blocks.7.attn.to_k.weight".into(), Tensor::zeros((2, 2), DType::F32, &Device::Cpu).unwrap());
    let err = Checkpoint::from_tensors(tiny(), None, t).unwrap_err().to_string();
    assert!(err.contains("blocks.7.attn.to_k.weight") && err.contains("[2, 2]"), "{err}");
}

#[test]
fn a_mis_shaped_tensor_names_both_shapes() {
    let mut t = tensors(&tiny());
    t.insert("proj_fin.bias".into(), Tensor::zeros(5, DType::F32, &Device::Cpu).unwrap());
    let err = Checkpoint::from_tensors(tiny(), None, t).unwrap_err().to_string();
    assert!(err.contains("proj_fin.bias") && err.contains("[5]") && err.contains("[48]"), "{err}");
}

#[test]
fn the_seeds_position_buffer_is_accepted_when_it_matches_and_refused_when_not() {
    let cfg = tiny();
    let pos = favicon_diffusor::model::position_embedding(&cfg);
    let mut t = tensors(&cfg);
    t.insert("pos_embed.pos_emb".into(), Tensor::from_vec(pos.clone(), (4, 16), &Device::Cpu).unwrap());
    assert!(Checkpoint::from_tensors(cfg.clone(), None, t.clone()).is_ok());
    // The seed's own formula at one position, by hand: row half of token 3 (grid row 1), i = 1:
    // sin(1 · exp(−ln(10000)/3)) = sin(0.046416).
    assert!((pos[3 * 16 + 1] - 0.046416f32.sin()).abs() < 1e-6);
    let mut wrong = pos;
    wrong[5] += 0.5;
    t.insert("pos_embed.pos_emb".into(), Tensor::from_vec(wrong, (4, 16), &Device::Cpu).unwrap());
    let err = Checkpoint::from_tensors(cfg, None, t).unwrap_err().to_string();
    assert!(err.contains("pos_embed.pos_emb") && err.contains("sinusoid"), "{err}");
}

#[test]
fn a_prompt_table_without_a_vocabulary_is_refused() {
    let cfg = Config { vocab: Some(vec!["a".into(), "b".into()]), ..tiny() };
    let t = favicon_diffusor::model::random_tensors(&cfg, Some(3), 3).unwrap();
    let err = Checkpoint::from_tensors(tiny(), None, t).unwrap_err().to_string();
    assert!(err.contains("prompt_embed.weight") && err.contains("vocabulary"), "{err}");
}

#[test]
fn inconsistent_configs_are_refused_naming_the_field() {
    for (json, field) in [
        (r#"{"image_size": 60, "patch_size": 8}"#, "image_size"),
        (r#"{"depth": 0}"#, "depth"),
        (r#"{"dim": 30}"#, "dim"),
        (r#"{"schedule_offset": 2.0}"#, "schedule_offset"),
        (r#"{"heads": 1, "colour": 3}"#, "colour"),
    ] {
        let err = Config::from_json(json, "config.json").unwrap_err().to_string();
        assert!(err.contains(field), "{json}: {err}");
    }
}

#[test]
fn a_prompt_on_an_unconditional_checkpoint_is_refused() {
    let ck = Checkpoint::from_tensors(tiny(), None, tensors(&tiny())).unwrap();
    let err = ck.encode_prompt("hippo").unwrap_err().to_string();
    assert!(err.contains("unconditional"), "{err}");
    assert!(ck.encode_prompt("  ").unwrap().is_empty());
}

#[test]
fn the_same_seed_gives_the_same_bits_and_another_seed_does_not() {
    let ck = random_checkpoint(&awkward_config(), 8);
    let mut pipe = Pipeline::new(ck, Backend::Cpu).unwrap();
    let req = Request { prompt: "sun".into(), seed: 11, steps: 8, batch: 2, ..Default::default() };
    let a = pipe.generate(&req, |_| {}).unwrap().images;
    let b = pipe.generate(&req, |_| {}).unwrap().images;
    assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
    let c = pipe.generate(&Request { seed: 12, ..req.clone() }, |_| {}).unwrap().images;
    assert!(a.iter().zip(&c).filter(|(x, y)| x != y).count() > a.len() / 2);
    // The first image of a batch is the batch-1 image of the same seed.
    let single = pipe.generate(&Request { batch: 1, ..req }, |_| {}).unwrap().images;
    assert_eq!(&a[..single.len()], &single[..]);
}

#[test]
fn img2img_at_low_strength_stays_near_its_input() {
    let ck = random_checkpoint(&awkward_config(), 9);
    let len = ck.config.image_len();
    let init: Vec<f32> = (0..len).map(|i| ((i % 7) as f32 / 3.0) - 1.0).collect();
    let mut pipe = Pipeline::new(ck, Backend::Cpu).unwrap();
    let req = Request {
        init: Some(init.clone()),
        strength: 0.15,
        sampler: SamplerKind::Ddim,
        steps: 8,
        ..Default::default()
    };
    let out = pipe.generate(&req, |_| {}).unwrap().images;
    let far = pipe.generate(&Request { init: None, ..req.clone() }, |_| {}).unwrap().images;
    let dist = |a: &[f32]| a.iter().zip(&init).map(|(x, y)| (x - y).abs()).sum::<f32>() / len as f32;
    assert!(dist(&out) < dist(&far) / 2.0, "img2img {} vs from noise {}", dist(&out), dist(&far));
    let bad = Request { init: Some(vec![0.0; 5]), ..req };
    let err = pipe.generate(&bad, |_| {}).err().expect("a wrong-sized init image is refused").to_string();
    assert!(err.contains("init image has 5 values"), "{err}");
}
