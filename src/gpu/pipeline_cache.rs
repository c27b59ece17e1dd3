//! wgpu's pipeline cache kept in a file between runs, so that the next process gets the
//! driver's compiled pipelines back instead of compiling them again (issue 14). Native only
//! (the browser keeps its own), and only where wgpu has cache data (Vulkan).
//!
//! The file is not trusted. Its name carries the adapter (wgpu's `pipeline_cache_key`) and a
//! fingerprint of everything that changes the pipelines (adapter and driver, this crate's
//! version, the WGSL sources); its header repeats the fingerprint, with the data's length and a
//! checksum. A file that does not match is ignored and later replaced; data that matches but that
//! wgpu still refuses (its own header names another device) is dropped inside an error scope.
//! Nothing here fails a run: every problem becomes a note in the run's [`Laps`].

use std::path::{Path, PathBuf};

use super::context::GpuContext;
use super::kernels::{coop_module_source, SOURCES};
use crate::fsio;
use crate::timings::Laps;

/// `off` (or `0`, `false`, `no`) turns the file cache off.
pub const CACHE_ENV: &str = "FAVICON_DIFFUSOR_PIPELINE_CACHE";
/// The folder for the cache file, instead of `$XDG_CACHE_HOME/favicon-diffusor` or
/// `$HOME/.cache/favicon-diffusor`.
pub const CACHE_DIR_ENV: &str = "FAVICON_DIFFUSOR_CACHE_DIR";

const MAGIC: &[u8; 8] = b"FDPIPEC1";
/// Magic, fingerprint, data length, data checksum.
const HEADER_BYTES: usize = 32;
/// Far above what our two dozen pipelines take: a larger file is not ours.
const MAX_FILE_BYTES: u64 = 64 << 20;

/// The cache folder the environment asks for; `None` when it turns the cache off or names no
/// home. A relative `XDG_CACHE_HOME` is ignored, as the XDG specification says.
pub fn folder_from_env() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Ok(setting) = std::env::var(CACHE_ENV) {
        if matches!(setting.to_ascii_lowercase().as_str(), "off" | "0" | "false" | "no") {
            return None;
        }
    }
    if let Some(folder) = var(CACHE_DIR_ENV) {
        return Some(folder);
    }
    let base = var("XDG_CACHE_HOME").filter(|p| p.is_absolute()).or_else(|| var("HOME").map(|h| h.join(".cache")))?;
    Some(base.join("favicon-diffusor"))
}

/// 64-bit FNV-1a over length-prefixed parts: a check against torn or damaged files, not
/// against someone who can write to the user's own cache folder.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for part in parts {
        for &byte in (part.len() as u64).to_le_bytes().iter().chain(part.iter()) {
            hash = (hash ^ byte as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// What the cached pipelines depend on besides their SPIR-V (which the driver keys them by).
pub fn fingerprint(info: &wgpu::AdapterInfo) -> u64 {
    let coop = coop_module_source();
    let mut parts: Vec<&[u8]> = vec![
        info.name.as_bytes(),
        info.driver.as_bytes(),
        info.driver_info.as_bytes(),
        env!("CARGO_PKG_VERSION").as_bytes(),
        coop.as_bytes(),
    ];
    let key = wgpu::util::pipeline_cache_key(info).unwrap_or_default();
    parts.push(key.as_bytes());
    for (name, source) in SOURCES {
        parts.extend([name.as_bytes(), source.as_bytes()]);
    }
    fnv1a(&parts)
}

/// The file's bytes: header, then wgpu's cache data.
pub fn encode(fingerprint: u64, data: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HEADER_BYTES + data.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&fingerprint.to_le_bytes());
    bytes.extend_from_slice(&(data.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&fnv1a(&[data]).to_le_bytes());
    bytes.extend_from_slice(data);
    bytes
}

/// wgpu's cache data from a file's bytes, if they are a whole, undamaged cache of `fingerprint`.
pub fn decode(bytes: &[u8], fingerprint: u64) -> Option<&[u8]> {
    let (header, data) = bytes.split_at_checked(HEADER_BYTES)?;
    let word = |i: usize| header[i..i + 8].try_into().ok().map(u64::from_le_bytes);
    let whole = header[..8] == MAGIC[..]
        && word(8)? == fingerprint
        && word(16)? == data.len() as u64
        && word(24)? == fnv1a(&[data]);
    whole.then_some(data)
}

/// The cache file of one device, and the checksum of the data it holds, so that a run which
/// compiled nothing new writes nothing.
pub struct DiskCache {
    path: PathBuf,
    fingerprint: u64,
    stored: Option<u64>,
}

impl DiskCache {
    /// The file for `ctx`'s adapter and a wgpu cache seeded from it where it is good; `None`
    /// where the cache is off or the device has none. Notes what it found in `laps`.
    pub fn open(ctx: &GpuContext, laps: &mut Laps) -> Option<(DiskCache, wgpu::PipelineCache)> {
        let Some(folder) = &ctx.pipeline_cache else {
            laps.note("pipeline cache: off");
            return None;
        };
        let key = wgpu::util::pipeline_cache_key(&ctx.info);
        let Some(key) = key.filter(|_| ctx.features.contains(wgpu::Features::PIPELINE_CACHE)) else {
            laps.note(format!("pipeline cache: none on {:?} `{}`", ctx.info.backend, ctx.info.name));
            return None;
        };
        let fingerprint = fingerprint(&ctx.info);
        let path = folder.join(format!("{key}_{fingerprint:016x}.bin"));
        let bytes = match fsio::read_regular(&path, MAX_FILE_BYTES) {
            Ok(bytes) => Some(bytes),
            Err(crate::Error::Io { reason, .. }) if reason.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                laps.note(format!("pipeline cache: ignored ({e})"));
                None
            }
        };
        let data = bytes.as_deref().and_then(|b| decode(b, fingerprint));
        if bytes.is_some() && data.is_none() {
            laps.note(format!(
                "pipeline cache: ignored {} (not a whole cache of this adapter and build)",
                path.display()
            ));
        }
        let seeded = data.and_then(|d| create(&ctx.device, Some(d)).map(|cache| (cache, d)));
        let (cache, stored) = match seeded {
            Some((cache, d)) => {
                laps.note(format!("pipeline cache: read {} KiB from {}", d.len().div_ceil(1024), path.display()));
                (cache, Some(fnv1a(&[d])))
            }
            None => {
                if data.is_some() {
                    laps.note(format!("pipeline cache: the driver refused {}; starting empty", path.display()));
                }
                (create(&ctx.device, None)?, None)
            }
        };
        Some((DiskCache { path, fingerprint, stored }, cache))
    }

    /// Writes `cache`'s data when it differs from the file's; returns what happened, for a note.
    pub fn save(&mut self, cache: &wgpu::PipelineCache) -> Option<String> {
        let data = cache.get_data()?;
        let checksum = fnv1a(&[&data]);
        if self.stored == Some(checksum) {
            return None;
        }
        let folder = self.path.parent().unwrap_or(Path::new("."));
        let written = std::fs::create_dir_all(folder)
            .map_err(|e| crate::Error::Write { path: folder.into(), reason: e })
            .and_then(|()| fsio::write_atomic(&self.path, &encode(self.fingerprint, &data)));
        Some(match written {
            Ok(()) => {
                self.stored = Some(checksum);
                format!("pipeline cache: wrote {} KiB to {}", data.len().div_ceil(1024), self.path.display())
            }
            Err(e) => format!("pipeline cache: not saved ({e})"),
        })
    }
}

/// A wgpu pipeline cache from `data`, or `None` where wgpu refuses it (it reports that as a
/// validation error, caught here so that it cannot fail the run).
fn create(device: &wgpu::Device, data: Option<&[u8]>) -> Option<wgpu::PipelineCache> {
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let desc = wgpu::PipelineCacheDescriptor { label: Some("favicon-diffusor"), data, fallback: true };
    // SAFETY: `data` is what `PipelineCache::get_data` returned in an earlier run on an adapter
    // with the same cache key, driver and build: `decode` checked the fingerprint, the length
    // and the checksum the file was written with. wgpu checks its own header on top, and a
    // Vulkan driver its own.
    let cache = unsafe { device.create_pipeline_cache(&desc) };
    pollster::block_on(scope.pop()).is_none().then_some(cache)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_file_decodes_only_whole_and_for_its_own_fingerprint() {
        let data = b"driver bytes".to_vec();
        let file = encode(7, &data);
        assert_eq!(decode(&file, 7), Some(&data[..]));
        assert_eq!(decode(&file, 8), None, "another adapter or build");
        assert_eq!(decode(&file[..file.len() - 1], 7), None, "truncated");
        assert_eq!(decode(&file[..10], 7), None, "truncated inside the header");
        let mut flipped = file.clone();
        flipped[HEADER_BYTES + 3] ^= 1;
        assert_eq!(decode(&flipped, 7), None, "damaged");
        let mut longer = file.clone();
        longer.push(0);
        assert_eq!(decode(&longer, 7), None, "extended");
        assert_eq!(decode(&[], 7), None);
    }
}
