//! Finds an adapter and opens a device with the limits the kernels need.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::kernels::Tile;
use crate::error::{Error, Result};
use crate::timings::{Laps, Stage};

/// Overrides for tests and benchmarks; the defaults suit the adapter.
#[derive(Debug, Clone, Copy, Default)]
pub struct GpuOptions {
    /// Cap storage bindings at this many bytes (to exercise batch splitting).
    pub max_binding: Option<u64>,
    /// Force the software (`Some(true)`) or hardware (`Some(false)`) kernel variants.
    pub software_kernels: Option<bool>,
    /// Force one matmul tile on hardware kernels (tests: every tile runs on small shapes); `None`
    /// picks by shape.
    pub tile: Option<Tile>,
    /// Force this many split-K slices where K allows (1 turns split-K off); `None` picks by shape.
    pub splits: Option<u32>,
    /// Attention with 16 queries per workgroup sharing each key and value read (`attention.wgsl`'s
    /// `block`): `None` picks it from `BLOCK_FROM_WORKGROUPS` of its workgroups on (see there).
    pub block_attention: Option<bool>,
    /// Cooperative matrices (tensor cores) for the many-row matmuls: `None` uses them where the
    /// adapter has them, `Some(false)` never, `Some(true)` fails where the adapter lacks them.
    pub coop: Option<bool>,
}

/// What `Tile::Coop` needs: f16 in shaders, 16 × 16 × 16 f16 · f16 + f32 cooperative matrices
/// at subgroup scope, subgroups of exactly 32 (its 256 threads are 8 subgroups with fixed roles)
/// and 32 KiB of workgroup memory. `Err` says what is missing.
fn coop_support(adapter: &wgpu::Adapter) -> std::result::Result<(), String> {
    let needed =
        wgpu::Features::SHADER_F16 | wgpu::Features::SUBGROUP | wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX;
    let missing = needed - adapter.features();
    if !missing.is_empty() {
        return Err(format!("it lacks the features {missing:?}"));
    }
    use wgpu::CooperativeScalarType::{F16, F32};
    let shape = adapter
        .cooperative_matrix_properties()
        .iter()
        .any(|p| (p.m_size, p.n_size, p.k_size) == (16, 16, 16) && p.ab_type == F16 && p.cr_type == F32);
    if !shape {
        return Err("it has no 16x16x16 f16 * f16 + f32 cooperative matrix".into());
    }
    let info = adapter.get_info();
    if (info.subgroup_min_size, info.subgroup_max_size) != (32, 32) {
        return Err(format!("its subgroups are {}..={} wide, not 32", info.subgroup_min_size, info.subgroup_max_size));
    }
    let storage = adapter.limits().max_compute_workgroup_storage_size;
    if storage < COOP_WORKGROUP_BYTES {
        return Err(format!("it has {storage} bytes of workgroup memory, not {COOP_WORKGROUP_BYTES}"));
    }
    Ok(())
}

/// Workgroup memory of the `coop` entry point: two 128 × 40 f16 tiles, 8 KiB of f32 scratch and
/// the AdaLN row statistics.
pub const COOP_WORKGROUP_BYTES: u32 = 32768;

pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    pub features: wgpu::Features,
    /// Run the barrier-free kernel variants (direct matmul, standalone AdaLN, K-major weights).
    /// On by default for software adapters, where they are faster.
    pub software_kernels: bool,
    /// The matmul overrides of `GpuOptions`.
    pub tile: Option<Tile>,
    pub splits: Option<u32>,
    pub block_attention: Option<bool>,
    /// Many-row matmuls run `Tile::Coop` (see `GpuOptions::coop`).
    pub coop: bool,
    /// Why the adapter cannot run `Tile::Coop`, when it cannot.
    pub coop_missing: Option<String>,
    /// The folder of the pipeline cache file (`gpu::pipeline_cache`), `None` for no file: from
    /// the environment, and any engine built on this context uses what is here.
    pub pipeline_cache: Option<PathBuf>,
    /// Finding the adapter and opening the device.
    pub laps: Laps,
    /// The first error wgpu reported outside an error scope (validation, out of memory, device lost).
    errors: Arc<Mutex<Option<String>>>,
}

impl GpuContext {
    /// The first adapter wgpu offers (high-performance preference; `WGPU_BACKEND` narrows the backends).
    pub async fn new() -> Result<Self> {
        Self::with_options(GpuOptions::default()).await
    }

    pub async fn with_options(options: GpuOptions) -> Result<Self> {
        let max_binding = options.max_binding;
        let mut laps = Laps::default();
        let adapter = laps
            .time_async(Stage::Adapter, async {
                let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
                instance
                    .request_adapter(&wgpu::RequestAdapterOptions {
                        power_preference: wgpu::PowerPreference::HighPerformance,
                        force_fallback_adapter: false,
                        ..Default::default()
                    })
                    .await
            })
            .await
            .map_err(|e| Error::Gpu(format!("no GPU adapter found: {e}")))?;
        let info = adapter.get_info();
        let supported = adapter.limits();
        let support = coop_support(&adapter);
        let coop = match (options.coop, &support) {
            (Some(false), _) => false,
            (_, Ok(())) => true,
            (None, Err(_)) => false,
            (Some(true), Err(why)) => {
                return Err(Error::Gpu(format!("cooperative matrices were asked for, but `{}`: {why}", info.name)))
            }
        };
        // WebGPU's default limits fit every kernel but `coop`; buffer sizes are raised, for big batches.
        let limits = wgpu::Limits {
            max_storage_buffer_binding_size: max_binding.map_or(supported.max_storage_buffer_binding_size, |cap| {
                cap.min(supported.max_storage_buffer_binding_size)
            }),
            max_buffer_size: supported.max_buffer_size,
            max_compute_workgroup_storage_size: if coop {
                COOP_WORKGROUP_BYTES
            } else {
                wgpu::Limits::default().max_compute_workgroup_storage_size
            },
            ..wgpu::Limits::default()
        };
        // The pipeline cache only where wgpu has one (Vulkan); it costs nothing to ask for.
        let mut features = adapter.features() & (wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::PIPELINE_CACHE);
        if coop {
            features |=
                wgpu::Features::SHADER_F16 | wgpu::Features::SUBGROUP | wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX;
        }
        let (device, queue) = laps
            .time_async(
                Stage::Device,
                // In an async block so that the timing covers the call itself: natively
                // `request_device` does its work before it returns a ready future.
                async {
                    adapter
                        .request_device(&wgpu::DeviceDescriptor {
                            label: Some("favicon-diffusor"),
                            required_features: features,
                            required_limits: limits.clone(),
                            // SAFETY: the one experimental feature asked for is cooperative matrices, used
                            // only by `coop`, whose results the GPU tests compare with candle's.
                            experimental_features: if coop {
                                unsafe { wgpu::ExperimentalFeatures::enabled() }
                            } else {
                                wgpu::ExperimentalFeatures::disabled()
                            },
                            ..Default::default()
                        })
                        .await
                },
            )
            .await
            .map_err(|e| Error::Gpu(format!("adapter `{}` refused a device: {e}", info.name)))?;
        let errors = Arc::new(Mutex::new(None));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut slot) = sink.lock() {
                slot.get_or_insert_with(|| e.to_string());
            }
        }));
        let mut ctx = GpuContext {
            device,
            queue,
            info,
            limits,
            features,
            software_kernels: false,
            tile: options.tile,
            splits: options.splits,
            block_attention: options.block_attention,
            coop,
            coop_missing: support.err(),
            pipeline_cache: pipeline_cache_folder(),
            laps,
            errors,
        };
        ctx.software_kernels = options.software_kernels.unwrap_or_else(|| ctx.is_software());
        Ok(ctx)
    }

    /// `name (backend, device type)`, for status lines; `, cooperative matrices` when `coop` runs.
    pub fn describe(&self) -> String {
        let coop = if self.coop { ", cooperative matrices" } else { "" };
        format!("{} ({:?}, {:?}{coop})", self.info.name, self.info.backend, self.info.device_type)
    }

    /// Turns an error wgpu reported since the last check into an `Err`.
    pub fn check(&self) -> Result<()> {
        match self.errors.lock().ok().and_then(|mut slot| slot.take()) {
            Some(message) => Err(Error::Gpu(message)),
            None => Ok(()),
        }
    }

    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
            || ["swiftshader", "llvmpipe", "lavapipe"].iter().any(|n| self.info.name.to_lowercase().contains(n))
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn pipeline_cache_folder() -> Option<PathBuf> {
    super::pipeline_cache::folder_from_env()
}

/// The browser keeps compiled pipelines itself.
#[cfg(target_arch = "wasm32")]
fn pipeline_cache_folder() -> Option<PathBuf> {
    None
}
