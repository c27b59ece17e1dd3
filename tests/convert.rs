//! The porting tool against files PyTorch, the `safetensors` package and an independent WTS1
//! writer produced (train/port_fixtures.py): every tensor must come through bit for bit.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::DType;
use favicon_diffusor::convert::{self, wts1, Format, Hints};
use favicon_diffusor::weights::X0_HEAD;
use favicon_diffusor::{Checkpoint, Config, Error};

fn port(name: &str) -> PathBuf {
    common::fixtures().join("port").join(name)
}

/// The tensors as the `safetensors` package wrote them from the PyTorch state dict.
fn reference(case: &str) -> HashMap<String, (Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(port(&format!("{case}_reference.safetensors"))).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    file.tensors()
        .into_iter()
        .map(|(name, view)| {
            assert_eq!(view.dtype(), safetensors::Dtype::F32);
            let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
            (name, (view.shape().to_vec(), values))
        })
        .collect()
}

fn config(case: &str) -> Config {
    let path = port(&format!("{case}_config.json"));
    Config::from_json(&std::fs::read_to_string(&path).unwrap(), "fixture").unwrap()
}

fn tiny_hints() -> Hints {
    Hints { heads: Some(2), timesteps: Some(8), ..Hints::default() }
}

fn values(ck: &Checkpoint, name: &str) -> Vec<f32> {
    common::flat(&ck.tensors[name])
}

/// Every tensor of `ck` equals the reference bit for bit; `skip` names tensors `ck` lacks.
fn assert_matches_reference(ck: &Checkpoint, reference: &HashMap<String, (Vec<usize>, Vec<f32>)>, skip: &[&str]) {
    let mut compared = 0;
    for (name, (shape, expected)) in reference {
        if name == "pos_embed.pos_emb" || skip.contains(&name.as_str()) {
            assert!(!ck.tensors.contains_key(name), "{name} should be absent");
            continue;
        }
        assert_eq!(ck.tensors[name].dims(), shape.as_slice(), "{name}");
        let got = values(ck, name);
        assert!(got.iter().zip(expected).all(|(a, b)| a.to_bits() == b.to_bits()), "{name} differs");
        compared += 1;
    }
    assert_eq!(compared, ck.tensors.len());
}

#[test]
fn pytorch_state_dict_loads_bit_exact_with_the_config_it_was_built_from() {
    let imported = convert::import(&port("uncond.pt"), &tiny_hints()).unwrap();
    assert_eq!(imported.format, Format::Pytorch);
    assert_eq!(imported.checkpoint.config, config("uncond"));
    assert_matches_reference(&imported.checkpoint, &reference("uncond"), &[]);
    // The position buffer gave the image size; only channels and the schedule offset were guessed.
    let guessed: Vec<&str> = imported.notes.iter().map(|n| n.split(':').next().unwrap()).collect();
    assert_eq!(guessed, ["channels", "schedule_offset"]);
    // The offset note says both values the seed uses and where to set it.
    let offset = imported.notes.iter().find(|n| n.starts_with("schedule_offset")).unwrap();
    assert!(offset.contains("1e-4") && offset.contains("3e-5") && offset.contains("config.json"), "{offset}");
}

#[test]
fn unknown_head_count_is_assumed_one_and_said_so() {
    let imported = convert::import(&port("uncond.pt"), &Hints::default()).unwrap();
    let cfg = &imported.checkpoint.config;
    assert_eq!((cfg.heads, cfg.head_dim), (1, 8));
    assert!(imported.notes.iter().any(|n| n.starts_with("heads:") && n.contains("= 8")), "{:?}", imported.notes);
    assert!(imported.notes.iter().any(|n| n.starts_with("timesteps:")));
}

#[test]
fn half_precision_state_dict_loads_as_the_f16_rounding_of_the_f32_weights() {
    let imported = convert::import(&port("uncond_f16.pt"), &tiny_hints()).unwrap();
    for (name, (_, expected)) in reference("uncond") {
        if name == "pos_embed.pos_emb" {
            continue;
        }
        let got = values(&imported.checkpoint, &name);
        let rounded: Vec<f32> = expected.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
        assert_eq!(got, rounded, "{name}");
    }
}

#[test]
fn conditional_state_dict_needs_its_vocabulary() {
    let err = convert::import(&port("cond.pt"), &tiny_hints()).unwrap_err();
    assert!(err.to_string().contains("3 words") && err.to_string().contains("vocabulary"), "{err}");

    let words: Vec<String> =
        std::fs::read_to_string(port("cond_vocab.txt")).unwrap().lines().map(String::from).collect();
    let hints = Hints { vocab: Some(words.clone()), ..tiny_hints() };
    let imported = convert::import(&port("cond.pt"), &hints).unwrap();
    assert_eq!(imported.checkpoint.config, config("cond"));
    assert_eq!(imported.checkpoint.vocab.as_ref().unwrap().words(), words.as_slice());
    assert_matches_reference(&imported.checkpoint, &reference("cond"), &[]);

    let short = Hints { vocab: Some(words[..2].to_vec()), ..tiny_hints() };
    let err = convert::import(&port("cond.pt"), &short).unwrap_err();
    assert!(err.to_string().contains("but 2 were given"), "{err}");
}

#[test]
fn wts1_from_the_spec_loads_without_an_x0_head() {
    let imported = convert::import(&port("uncond.wts1"), &tiny_hints()).unwrap();
    assert_eq!(imported.format, Format::Wts1);
    assert!(!imported.checkpoint.config.x0_head, "WTS1 has no proj_fin, and the config says so");
    assert_matches_reference(&imported.checkpoint, &reference("uncond"), &X0_HEAD);
    assert!(imported.notes.iter().any(|n| n.starts_with("x0_head: false")), "{:?}", imported.notes);
    // WTS1 carries no position buffer, so the image size is a guess (the seed's 64).
    assert!(imported.notes.iter().any(|n| n.starts_with("image_size")));
    // Saved and reopened, the checkpoint still has no x0 head and the model none either.
    let dir = tempfile::tempdir().unwrap();
    imported.checkpoint.save(dir.path(), DType::F32).unwrap();
    let reopened = Checkpoint::open(dir.path()).unwrap();
    assert!(!reopened.config.x0_head && !reopened.tensors.contains_key(X0_HEAD[0]));
    let model = reopened.model().unwrap();
    let size = reopened.config.image_size;
    let x = candle_core::Tensor::zeros((1, 3, size, size), DType::F32, &candle_core::Device::Cpu).unwrap();
    let pred = model.forward(&x, &model.condition(&[3.0], &[]).unwrap()).unwrap();
    assert!(pred.x0.is_none());
}

#[test]
fn a_config_that_disagrees_about_the_x0_head_is_refused() {
    let bytes = std::fs::read(port("uncond.wts1")).unwrap();
    let claims_head = Config { image_size: 8, ..config("uncond") };
    let err = convert::import_bytes(&bytes, "uncond.wts1", &tiny_hints(), Some((claims_head.clone(), None)));
    let msg = err.unwrap_err().to_string();
    assert!(msg.contains("`x0_head: true`") && msg.contains("lacks the x0 head"), "{msg}");
    let without = Config { x0_head: false, ..claims_head };
    convert::import_bytes(&bytes, "uncond.wts1", &tiny_hints(), Some((without, None))).unwrap();
}

#[test]
fn wts1_export_matches_the_independent_writer_byte_for_byte() {
    let imported = convert::import(&port("uncond.pt"), &tiny_hints()).unwrap();
    let ours = wts1::write(&imported.checkpoint).unwrap();
    assert_eq!(ours, std::fs::read(port("uncond.wts1")).unwrap());
}

#[test]
fn wts1_round_trip_is_lossless() {
    let original = std::fs::read(port("uncond.wts1")).unwrap();
    let hints = Hints { image_size: Some(8), ..tiny_hints() };
    let imported = convert::import_bytes(&original, "uncond.wts1", &hints, None).unwrap();
    assert_eq!(wts1::write(&imported.checkpoint).unwrap(), original);
}

#[test]
fn safetensors_export_round_trips_in_f32_and_rounds_in_f16() {
    let imported = convert::import(&port("uncond.pt"), &tiny_hints()).unwrap();
    let reference = reference("uncond");
    for dtype in [DType::F32, DType::F16] {
        let dir = tempfile::tempdir().unwrap();
        imported.checkpoint.save(dir.path(), dtype).unwrap();
        let reopened = Checkpoint::open(dir.path()).unwrap();
        assert_eq!(reopened.config, config("uncond"));
        for (name, (_, expected)) in &reference {
            if name == "pos_embed.pos_emb" {
                continue;
            }
            let want: Vec<f32> = match dtype {
                DType::F16 => expected.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect(),
                _ => expected.clone(),
            };
            assert_eq!(values(&reopened, name), want, "{name} in {dtype:?}");
        }
        // The re-read folder goes through the converter as a folder, unchanged.
        let again = convert::import(dir.path(), &Hints::default()).unwrap();
        assert!(again.notes.is_empty());
    }
}

#[test]
fn safetensors_file_alone_gets_its_config_inferred() {
    let dir = common::fixtures().join("tiny_uncond");
    let hints = Hints { heads: Some(2), image_size: Some(16), timesteps: Some(8), ..Hints::default() };
    let imported = convert::import(&dir.join("model.safetensors"), &hints).unwrap();
    assert_eq!(imported.format, Format::Safetensors);
    assert_eq!(imported.checkpoint.config, common::config("tiny_uncond"));
}

#[test]
fn an_rgba_safetensors_file_is_inferred_as_four_channels() {
    // Patch width 64 splits as 4 channels × 4 × 4 and never as 3 × a square.
    let dir = common::fixtures().join("tiny_rgba");
    let want = common::config("tiny_rgba");
    let hints = Hints { heads: Some(2), timesteps: Some(8), vocab: want.vocab.clone(), ..Hints::default() };
    let imported = convert::import(&dir.join("model.safetensors"), &hints).unwrap();
    let cfg = &imported.checkpoint.config;
    assert_eq!((cfg.channels, cfg.patch_size, cfg.image_size), (4, 4, 16));
    assert_eq!(imported.checkpoint.config, Config { qk_norm: false, ..want });
    assert!(imported.notes.iter().any(|n| n.starts_with("channels: 4")), "{:?}", imported.notes);
}

#[test]
fn conditional_checkpoint_is_refused_as_wts1() {
    let words = vec!["hippo".to_string(), "red".into(), "cat".into()];
    let imported = convert::import(&port("cond.pt"), &Hints { vocab: Some(words), ..tiny_hints() }).unwrap();
    let err = wts1::write(&imported.checkpoint).unwrap_err();
    assert!(matches!(err, Error::Checkpoint { .. }) && err.to_string().contains("prompt_embed"), "{err}");
}

#[test]
fn seed_export_names_load_from_every_container() {
    // `dit.py`'s export_matrices() names, saved by torch.save and by the safetensors package
    // (train/seed_fixtures.py); WTS1 uses them too. None of them carries the x0 head.
    let reference = reference("uncond");
    for (file, format) in [
        ("uncond_export.pt", Format::Pytorch),
        ("uncond_export.safetensors", Format::Safetensors),
        ("uncond.wts1", Format::Wts1),
    ] {
        let imported = convert::import(&port(file), &tiny_hints()).unwrap();
        assert_eq!(imported.format, format, "{file}");
        assert!(!imported.checkpoint.config.x0_head, "{file}");
        assert_matches_reference(&imported.checkpoint, &reference, &X0_HEAD);
    }
}
