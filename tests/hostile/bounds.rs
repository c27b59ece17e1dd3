//! Inputs that are valid in form but ask for too much, or look like another format.

use favicon_diffusor::convert::{self, pth, Format, Hints};
use favicon_diffusor::limits::LoadOptions;
use favicon_diffusor::Error;

use crate::inputs::*;

/// A state dict of `count` tensors that all alias storage "0" of `numel` floats, whole.
fn aliasing_pickle(count: usize, numel: u32) -> Vec<u8> {
    let mut p = vec![0x80, 2, b'}', b'('];
    for i in 0..count {
        pickle_str(&mut p, &format!("t{i}"));
        p.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\n((");
        pickle_str(&mut p, "storage");
        p.extend_from_slice(b"ctorch\nFloatStorage\n");
        pickle_str(&mut p, "0");
        pickle_str(&mut p, "cpu");
        pickle_int(&mut p, numel);
        p.extend_from_slice(b"tQ");
        pickle_int(&mut p, 0);
        p.push(b'(');
        pickle_int(&mut p, numel);
        p.extend_from_slice(b"t(");
        pickle_int(&mut p, 1);
        p.extend_from_slice(b"t\x89}tR");
    }
    p.extend_from_slice(b"u.");
    p
}

#[test]
fn pickle_entries_aliasing_one_storage_are_counted_before_any_is_read() {
    // 4 MiB of storage, 600 views of all of it: 2.4 GB of f32 copies from a 4 MiB archive.
    let numel = 1 << 20;
    let pt = torch_zip(&aliasing_pickle(600, numel), &floats(numel as usize));
    let (result, largest) = largest_allocation(|| pth::read(&pt, "alias.pt"));
    let err = result.unwrap_err();
    assert!(matches!(&err, Error::MemoryLimit { .. }), "{err}");
    assert!(err.to_string().contains(&format!("needs {} bytes", 600u64 * 4 * numel as u64)), "{err}");
    assert!(largest < SMALL, "allocated {largest} bytes");
    // Within the limit the aliases are read, each its own copy.
    let pt = torch_zip(&aliasing_pickle(3, 16), &floats(16));
    let tensors = pth::read_with(&pt, "alias.pt", &LoadOptions { max_memory: 3 * 64 }).unwrap();
    assert_eq!(tensors["t2"].1, (0..16).map(|i| i as f32).collect::<Vec<_>>());
    assert!(matches!(
        pth::read_with(&pt, "alias.pt", &LoadOptions { max_memory: 3 * 64 - 1 }),
        Err(Error::MemoryLimit { .. })
    ));
}

#[test]
fn safetensors_whose_header_length_ends_in_0x80_is_not_taken_for_a_pickle() {
    let bytes = valid_safetensors();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    // Pad the header with spaces (valid JSON) to a length whose low byte is 0x80.
    let target = (n / 256 + 1) * 256 + 0x80;
    let mut header = bytes[8..8 + n].to_vec();
    header.resize(target, b' ');
    let mut padded = (target as u64).to_le_bytes().to_vec();
    padded.extend_from_slice(&header);
    padded.extend_from_slice(&bytes[8 + n..]);
    assert_eq!(padded[0], 0x80);
    assert_eq!(Format::detect(&padded, "p.safetensors").unwrap(), Format::Safetensors);
    load_safetensors(&padded).unwrap();
    let hints = Hints { heads: Some(2), image_size: Some(8), timesteps: Some(4), ..Hints::default() };
    let imported = convert::import_bytes(&padded, "p.safetensors", &hints, None).unwrap();
    assert_eq!(imported.format, Format::Safetensors);
    // A real legacy pickle (PROTO 2) is still recognised as one.
    assert_eq!(Format::detect(b"\x80\x02}q\x00.", "l.pt").unwrap(), Format::Pytorch);
}

#[test]
fn safetensors_tensors_past_the_memory_limit_are_refused_from_the_header() {
    let bytes = valid_safetensors();
    let (result, largest) = largest_allocation(|| {
        convert::read_tensors_with(&bytes, Format::Safetensors, "m.safetensors", &LoadOptions { max_memory: 64 })
    });
    assert!(matches!(result, Err(Error::MemoryLimit { .. })));
    assert!(largest < SMALL, "allocated {largest} bytes");
}
