//! Hostile checkpoints: every case gets an error that names the problem, never a panic, never
//! an allocation sized by a number the file claims, and never runs code from the file.
//! Inputs are built by hand (inputs.rs) from the formats' specs, or written by PyTorch
//! (tests/fixtures/hostile, from train/port_fixtures.py).

mod bounds;
#[path = "../common/mod.rs"]
mod common;
mod inputs;

use candle_core::{Device, Tensor};
use favicon_diffusor::convert::{self, pth, wts1, Hints};
use favicon_diffusor::{Checkpoint, Error};
use inputs::*;

// ---- truncated files ----

#[test]
fn truncated_safetensors_is_refused_at_every_cut() {
    let bytes = valid_safetensors();
    for cut in (0..bytes.len()).step_by(7).chain([bytes.len() - 1]) {
        let msg = message(load_safetensors(&bytes[..cut]));
        assert!(!msg.is_empty());
    }
    assert!(message(load_safetensors(&bytes[..4])).contains("expected an 8-byte header length"));
    let msg = message(load_safetensors(&bytes[..bytes.len() - 1]));
    assert!(msg.contains("run outside the") || msg.contains("the data section holds"), "{msg}");
}

#[test]
fn truncated_wts1_is_refused_at_every_cut_naming_the_field() {
    let bytes = wts1_bytes(2, &[small_tensor("a"), small_tensor("bb")]);
    for cut in 1..bytes.len() {
        let msg = message(wts1::read(&bytes[..cut], "cut.wts1"));
        assert!(msg.contains("truncated WTS1") || msg.contains("magic"), "{cut}: {msg}");
    }
    let msg = message(wts1::read(&bytes[..bytes.len() - 2], "cut.wts1"));
    assert!(msg.contains("the data of `bb` (4 f32)") && msg.contains("needs 16 bytes"), "{msg}");
}

#[test]
fn truncated_pytorch_archive_is_refused_at_every_cut() {
    let bytes = std::fs::read(common::fixtures().join("port/uncond.pt")).unwrap();
    for cut in (0..bytes.len()).step_by(61) {
        message(pth::read(&bytes[..cut], "cut.pt"));
    }
}

// ---- absurd header lengths and claimed sizes ----

#[test]
fn absurd_safetensors_header_length_is_refused_without_allocating_it() {
    for claimed in [u64::MAX, 1 << 40, 100_000_001] {
        let mut bytes = claimed.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"{\"a\":1}");
        let (result, largest) = largest_allocation(|| load_safetensors(&bytes));
        let msg = message(result);
        assert!(msg.contains(&format!("header claims {claimed} bytes")) && msg.contains("only 7 follow"), "{msg}");
        assert!(largest < SMALL, "allocated {largest} bytes");
    }
}

#[test]
fn huge_claimed_tensor_sizes_allocate_nothing_proportional() {
    let header = r#"{"patch_embed.weight":{"dtype":"F32","shape":[1048576,1048576],"data_offsets":[0,16]}}"#;
    let (result, largest) = largest_allocation(|| load_safetensors(&safetensors(header, &[0; 16])));
    message(result);
    assert!(largest < SMALL, "allocated {largest} bytes");

    let huge = Wts1Tensor { key: "a", dims: vec![65535, 65535], elements: 65535 * 65535, data: vec![1.0] };
    let (result, largest) = largest_allocation(|| wts1::read(&wts1_bytes(1, &[huge]), "huge.wts1"));
    assert!(message(result).contains("the data of `a` (4294836225 f32)"));
    assert!(largest < SMALL, "allocated {largest} bytes");

    let pt = torch_zip(&state_dict_pickle("w", i32::MAX as u32, 0, &[46340, 46340]), &floats(4));
    let (result, largest) = largest_allocation(|| pth::read(&pt, "huge.pt"));
    assert!(message(result).contains("needs 8589582400 bytes of memory"));
    assert!(largest < SMALL, "allocated {largest} bytes");
    // With no memory limit, the storage's real size is the check.
    let unlimited = favicon_diffusor::limits::LoadOptions { max_memory: u64::MAX };
    let (result, largest) = largest_allocation(|| pth::read_with(&pt, "huge.pt", &unlimited));
    assert!(message(result).contains("holds 16 bytes, the pickle claims 8589934588"));
    assert!(largest < SMALL, "allocated {largest} bytes");
}

#[test]
fn huge_wts1_key_length_and_rank_are_refused() {
    let mut bytes = b"WTS1\x01\x00\x00\x00".to_vec();
    bytes.extend_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    bytes.extend_from_slice(b"abcd");
    let (result, largest) = largest_allocation(|| wts1::read(&bytes, "key.wts1"));
    assert!(message(result).contains("the key of tensor 0 (of 1 claimed) needs 4294967280 bytes"));
    assert!(largest < SMALL);

    let mut bytes = wts1_bytes(1, &[small_tensor("abcd")]);
    bytes[16..20].copy_from_slice(&1000u32.to_le_bytes());
    assert!(message(wts1::read(&bytes, "rank.wts1")).contains("`abcd` claims 1000 dimensions"));
}

// ---- overlapping or out-of-range offsets ----

#[test]
fn safetensors_offsets_past_the_data_are_refused() {
    let header = r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,1000]}}"#;
    let msg = message(load_safetensors(&safetensors(header, &[0; 16])));
    assert!(msg.contains("tensor `a`: data_offsets [0, 1000] run outside the 16 bytes of data"), "{msg}");
}

#[test]
fn overlapping_safetensors_offsets_are_refused() {
    let header = r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}"#;
    let msg = message(load_safetensors(&safetensors(header, &[0; 24])));
    assert!(msg.contains("tensor `b` starts at byte 8, inside `a` (which ends at 16)"), "{msg}");
}

#[test]
fn pytorch_offsets_past_the_storage_are_refused() {
    let pt = torch_zip(&state_dict_pickle("w", 4, 3, &[2, 2]), &floats(4));
    let msg = message(pth::read(&pt, "offset.pt"));
    assert!(msg.contains("`w` (shape [2, 2], offset 3) reads to byte 28 of a storage of 16 bytes"), "{msg}");

    let pt = torch_zip(&state_dict_pickle("w", 8, 0, &[2, 4]), &floats(4));
    assert!(message(pth::read(&pt, "short.pt")).contains("holds 16 bytes, the pickle claims 32"));
}

// ---- wrong dtypes and shapes ----

#[test]
fn integer_dtypes_are_refused_naming_the_tensor() {
    let header = r#"{"patch_embed.weight":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}}"#;
    let err = load_safetensors(&safetensors(header, &[0; 16])).unwrap_err();
    assert!(matches!(&err, Error::BadDtype { name, found } if name == "patch_embed.weight" && found == "I64"), "{err}");

    let err = pth::read(&fixture("int64.pt"), "int64.pt").unwrap_err();
    assert!(matches!(&err, Error::BadDtype { found, .. } if found == "LongStorage"), "{err}");
}

#[test]
fn mis_shaped_tensor_is_refused_with_both_shapes() {
    let bytes = altered(|t| {
        t.insert(
            "blocks.0.attn.to_q.weight".into(),
            Tensor::zeros((4, 8), candle_core::DType::F32, &Device::Cpu).unwrap(),
        );
    });
    let err = load_safetensors(&bytes).unwrap_err();
    assert!(
        matches!(&err, Error::ShapeMismatch { name, expected, found } if name == "blocks.0.attn.to_q.weight" && expected == &[8, 8] && found == &[4, 8]),
        "{err}"
    );
}

#[test]
fn wrong_dtype_size_for_the_data_is_refused() {
    let header = r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,8]}}"#;
    let msg = message(load_safetensors(&safetensors(header, &[0; 8])));
    assert!(msg.contains("tensor `a`: shape [4] of F32 needs 16 bytes, but its data_offsets span 8"), "{msg}");
}

#[test]
fn non_contiguous_and_legacy_pytorch_files_are_refused() {
    assert!(message(pth::read(&fixture("transposed.pt"), "t.pt")).contains("non-contiguously"));
    assert!(message(pth::read(&fixture("legacy.pt"), "l.pt")).contains("legacy"));
}

// ---- NaN or Inf weights: refused (documented on weights::check_finite) ----

#[test]
fn non_finite_weights_are_refused_with_a_count() {
    let bytes = altered(|t| {
        let mut v = vec![0.5f32; 8 * 8];
        v[3] = f32::NAN;
        v[9] = f32::NEG_INFINITY;
        t.insert("blocks.0.attn.to_k.weight".into(), Tensor::from_vec(v, (8, 8), &Device::Cpu).unwrap());
    });
    let err = load_safetensors(&bytes).unwrap_err();
    assert!(matches!(&err, Error::NonFinite { name, count: 2 } if name == "blocks.0.attn.to_k.weight"), "{err}");

    let mut wts = convert::import(&common::fixtures().join("port/uncond.wts1"), &Hints::default()).unwrap().checkpoint;
    let name = "blocks.1.ff.net.0.weight";
    let shape = wts.tensors[name].dims().to_vec();
    wts.tensors.insert(name.into(), Tensor::full(f32::INFINITY, shape, &Device::Cpu).unwrap());
    let bytes = wts1::write(&wts).unwrap();
    let err = convert::import_bytes(&bytes, "inf.wts1", &Hints::default(), None).unwrap_err();
    assert!(matches!(&err, Error::NonFinite { name: n, count: 512 } if n == name), "{err}");
}

// ---- WTS1 with lying counts ----

#[test]
fn wts1_claiming_more_tensors_than_it_holds_is_refused() {
    let bytes = wts1_bytes(3, &[small_tensor("a")]);
    assert!(message(wts1::read(&bytes, "w")).contains("the key length of tensor 1 (of 3 claimed)"));

    let (result, largest) = largest_allocation(|| wts1::read(&wts1_bytes(u32::MAX, &[small_tensor("a")]), "w"));
    assert!(message(result).contains("of 4294967295 claimed"));
    assert!(largest < SMALL);
}

#[test]
fn wts1_claiming_fewer_tensors_than_it_holds_is_refused() {
    let bytes = wts1_bytes(1, &[small_tensor("a"), small_tensor("b")]);
    assert!(message(wts1::read(&bytes, "w")).contains("40 bytes follow the 1 tensors the header counts"));
}

#[test]
fn wts1_element_count_disagreeing_with_its_shape_is_refused() {
    let lying = Wts1Tensor { key: "a", dims: vec![2, 2], elements: 6, data: vec![0.0; 6] };
    assert!(message(wts1::read(&wts1_bytes(1, &[lying]), "w")).contains("`a` has shape [2, 2] but claims 6 elements"));
    let overflow = Wts1Tensor { key: "a", dims: vec![u32::MAX, u32::MAX, 16], elements: 0, data: vec![] };
    assert!(message(wts1::read(&wts1_bytes(1, &[overflow]), "w")).contains("claims 0 elements"));
}

#[test]
fn wts1_padding_must_be_zero_and_keys_unique() {
    let mut bytes = wts1_bytes(1, &[small_tensor("a")]);
    bytes[13] = 7;
    assert!(message(wts1::read(&bytes, "w")).contains("padding after key `a` is not zero"));
    let bytes = wts1_bytes(2, &[small_tensor("a"), small_tensor("a")]);
    assert!(message(wts1::read(&bytes, "w")).contains("key `a` appears twice"));
}

// ---- a pickle that tries to call a function ----

const MARKER: &str = "/tmp/favicon-diffusor-pickle-ran";

#[test]
fn pickle_calling_os_system_is_refused_and_never_run() {
    let _ = std::fs::remove_file(MARKER);
    let err = pth::read(&fixture("calls_system.pt"), "calls_system.pt").unwrap_err();
    assert!(matches!(&err, Error::UnsafePickle { global, .. } if global == "posix.system"), "{err}");
    assert!(err.to_string().contains("never run"));
    assert!(!std::path::Path::new(MARKER).exists());
}

#[test]
fn pickle_calling_eval_is_refused_before_interpretation() {
    let mut p = b"\x80\x02cbuiltins\neval\n".to_vec();
    pickle_str(&mut p, "__import__('os').system('true')");
    p.extend_from_slice(b"\x85R.");
    let err = pth::read_pickle(&p, "eval.pkl").unwrap_err();
    assert!(matches!(&err, Error::UnsafePickle { global, offset: 2, .. } if global == "builtins.eval"), "{err}");
    // The same stream inside a torch.save-shaped archive.
    assert!(matches!(pth::read(&torch_zip(&p, &[]), "eval.pt"), Err(Error::UnsafePickle { .. })));
}

#[test]
fn pickle_memo_bomb_is_refused_quickly() {
    // Each round makes a tuple of 200 copies of the previous one: 200^6 nodes if interpreted.
    let mut p = b"\x80\x02)q\x00".to_vec();
    for _ in 0..6 {
        p.push(b'(');
        p.extend(std::iter::repeat_n(*b"h\x00", 200).flatten());
        p.extend_from_slice(b"tq\x00");
    }
    p.push(b'.');
    let start = std::time::Instant::now();
    let (result, largest) = largest_allocation(|| pth::read_pickle(&p, "bomb.pkl"));
    assert!(message(result).contains("memo copies exceed"));
    assert!(start.elapsed().as_secs_f32() < 1.0 && largest < SMALL);
}

#[test]
fn pickle_nesting_and_malformed_opcodes_are_refused_without_panic() {
    let mut deep = b"\x80\x02)".to_vec();
    deep.extend(std::iter::repeat_n(0x85u8, 100_000));
    deep.push(b'.');
    assert!(message(pth::read_pickle(&deep, "deep.pkl")).contains("nest 65 deep"));

    let long = [b"\x80\x02\x8a\xc8".as_slice(), &[0xff; 200], b"."].concat();
    assert!(message(pth::read_pickle(&long, "long.pkl")).contains("LONG1 of 200 bytes"));

    let (result, largest) = largest_allocation(|| pth::read_pickle(b"\x80\x02X\xff\xff\xff\xffab.", "str.pkl"));
    assert!(message(result).contains("BINUNICODE needs 4294967295 bytes, only 3 remain"));
    assert!(largest < SMALL);

    assert!(message(pth::read_pickle(b"\x80\x02\x95abc", "frame.pkl")).contains("opcode 0x95"));
    assert!(message(pth::read_pickle(b"\x80\x02}", "nostop.pkl")).contains("without STOP"));
    assert!(message(pth::read_pickle(b"\x80\x02t.", "nomark.pkl")).contains("TUPLE without a MARK"));
    assert!(message(pth::read_pickle(b"\x80\x02K\x01.", "int.pkl")).contains("expected a state dict"));
}

// ---- empty files ----

#[test]
fn empty_files_are_refused_by_every_loader() {
    assert!(matches!(load_safetensors(&[]), Err(Error::EmptyFile { .. })));
    assert!(matches!(wts1::read(&[], "e.wts1"), Err(Error::EmptyFile { .. })));
    assert!(matches!(pth::read(&[], "e.pt"), Err(Error::EmptyFile { .. })));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.pt");
    std::fs::write(&path, b"").unwrap();
    let err = convert::import(&path, &Hints::default()).unwrap_err();
    assert!(matches!(&err, Error::EmptyFile { path: p } if p.ends_with("empty.pt")), "{err}");
    let err = Checkpoint::from_safetensors_file(common::tiny_config(), None, &path).unwrap_err();
    assert!(err.to_string().ends_with("is empty"), "{err}");
}

// ---- a directory where a file was expected ----

#[test]
fn directories_in_place_of_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    common::write_dir(dir.path(), &common::random_checkpoint(&common::tiny_config(), 1));
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    std::fs::create_dir(dir.path().join("model.safetensors")).unwrap();
    let err = Checkpoint::open(dir.path()).unwrap_err();
    assert!(matches!(&err, Error::IsDirectory { path } if path.ends_with("model.safetensors")), "{err}");

    let other = tempfile::tempdir().unwrap();
    std::fs::create_dir(other.path().join("config.json")).unwrap();
    assert!(matches!(Checkpoint::open(other.path()), Err(Error::IsDirectory { .. })));
    let err = convert::import(other.path(), &Hints::default()).unwrap_err();
    assert!(err.to_string().contains("is a directory, expected a file"), "{err}");
}

#[test]
fn short_rebuild_arguments_are_refused_not_indexed() {
    // candle's own `into_tensor_info` would `Vec::remove` past the end of these tuples and panic.
    let mut p = b"\x80\x02}(".to_vec();
    pickle_str(&mut p, "w");
    p.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\n(K\x00K\x01tRu.");
    assert!(message(pth::read_pickle(&p, "short.pkl"))
        .contains("a call to `torch._utils._rebuild_tensor_v2` with 2 arguments"));

    let mut p = b"\x80\x02}(".to_vec();
    pickle_str(&mut p, "w");
    p.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\n((");
    pickle_str(&mut p, "storage");
    p.extend_from_slice(b"tQK\x00(K\x01t(K\x01t\x89}tRu.");
    assert!(message(pth::read_pickle(&p, "storage.pkl")).contains("malformed storage id"));
}

#[test]
fn pickles_that_ran_candles_interpreter_out_of_memory_are_refused_small() {
    // Found by fuzzing candle's `pickle::Stack` without the guard (docs/FUZZING.md).
    let mut seen = 0;
    for entry in std::fs::read_dir(common::fixtures().join("hostile")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "pkl") {
            let bytes = std::fs::read(&path).unwrap();
            let (result, largest) = largest_allocation(|| pth::read_pickle(&bytes, "oom.pkl"));
            let msg = message(result);
            assert!(largest < SMALL, "{}: allocated {largest} bytes ({msg})", path.display());
            seen += 1;
        }
    }
    assert!(seen >= 3);
}
