//! Hostile inputs built by hand from the formats' specs, and an allocator that records the
//! largest single allocation, so a test can show nothing was sized by a number in the file.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashMap;
use std::io::Write;

use candle_core::Tensor;
use favicon_diffusor::{Checkpoint, Error};

use crate::common;

/// Records the largest single allocation made on the current thread.
pub struct Tracking;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

pub fn note(size: usize) {
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
}

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

/// Runs `f` and returns its result with the largest allocation it made.
pub fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|l| l.set(0));
    let out = f();
    (out, LARGEST.with(|l| l.get()))
}

/// No allocation above this in a case whose file claims gigabytes.
pub const SMALL: usize = 1 << 20;

pub fn valid_safetensors() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    common::random_checkpoint(&common::tiny_config(), 1).save(dir.path(), candle_core::DType::F32).unwrap();
    std::fs::read(dir.path().join("model.safetensors")).unwrap()
}

/// A safetensors image from a header written out by hand.
pub fn safetensors(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

pub fn load_safetensors(bytes: &[u8]) -> Result<Checkpoint, Error> {
    Checkpoint::from_safetensors_bytes(common::tiny_config(), None, bytes, "hostile.safetensors")
}

/// A checkpoint's tensors with one changed, as safetensors bytes.
pub fn altered(change: impl FnOnce(&mut HashMap<String, Tensor>)) -> Vec<u8> {
    let mut tensors = common::random_checkpoint(&common::tiny_config(), 1).tensors;
    change(&mut tensors);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.safetensors");
    candle_core::safetensors::save(&tensors, &path).unwrap();
    std::fs::read(path).unwrap()
}

pub fn message<T: std::fmt::Debug>(result: Result<T, Error>) -> String {
    result.expect_err("a hostile input was accepted").to_string()
}

// ---- WTS1, built from the spec ----

pub struct Wts1Tensor<'a> {
    pub key: &'a str,
    pub dims: Vec<u32>,
    pub elements: u32,
    pub data: Vec<f32>,
}

pub fn wts1_bytes(count: u32, tensors: &[Wts1Tensor]) -> Vec<u8> {
    let mut out = b"WTS1".to_vec();
    out.extend_from_slice(&count.to_le_bytes());
    for t in tensors {
        out.extend_from_slice(&(t.key.len() as u32).to_le_bytes());
        out.extend_from_slice(t.key.as_bytes());
        out.resize(out.len() + (4 - t.key.len() % 4) % 4, 0);
        out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
        t.dims.iter().for_each(|d| out.extend_from_slice(&d.to_le_bytes()));
        out.extend_from_slice(&t.elements.to_le_bytes());
        t.data.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
    }
    out
}

pub fn small_tensor(key: &str) -> Wts1Tensor<'_> {
    Wts1Tensor { key, dims: vec![2, 2], elements: 4, data: vec![1.0, 2.0, 3.0, 4.0] }
}

// ---- PyTorch archives, built by hand: a pickle and its storages in a zip ----

pub fn pickle_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'X');
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

pub fn pickle_int(out: &mut Vec<u8>, v: u32) {
    out.push(b'J');
    out.extend_from_slice(&v.to_le_bytes());
}

/// `{name: _rebuild_tensor_v2(storage(key, numel), offset, shape, stride)}` as protocol 2.
pub fn state_dict_pickle(name: &str, storage_numel: u32, offset: u32, shape: &[u32]) -> Vec<u8> {
    let mut p = vec![0x80, 2, b'}', b'('];
    pickle_str(&mut p, name);
    p.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\n((");
    pickle_str(&mut p, "storage");
    p.extend_from_slice(b"ctorch\nFloatStorage\n");
    pickle_str(&mut p, "0");
    pickle_str(&mut p, "cpu");
    pickle_int(&mut p, storage_numel);
    p.extend_from_slice(b"tQ");
    pickle_int(&mut p, offset);
    p.push(b'(');
    shape.iter().for_each(|&d| pickle_int(&mut p, d));
    p.push(b't');
    let mut stride = vec![1u32; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        stride[i] = stride[i + 1].wrapping_mul(shape[i + 1]);
    }
    p.push(b'(');
    stride.iter().for_each(|&s| pickle_int(&mut p, s));
    p.extend_from_slice(b"t\x89}tRu.");
    p
}

pub fn torch_zip(pickle: &[u8], storage: &[u8]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in
        [("archive/data.pkl", pickle), ("archive/byteorder", b"little".as_slice()), ("archive/data/0", storage)]
    {
        zip.start_file(name, stored).unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

pub fn floats(n: usize) -> Vec<u8> {
    (0..n).flat_map(|i| (i as f32).to_le_bytes()).collect()
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(common::fixtures().join("hostile").join(name)).unwrap()
}
