//! Finds an adapter and opens a device with the limits the kernels need.

use std::sync::{Arc, Mutex};

use super::kernels::{ShaderChecks, Tile};
use crate::error::{Error, Result};

/// Overrides for tests and benchmarks; the defaults suit the adapter.
#[derive(Debug, Clone, Copy, Default)]
pub struct GpuOptions {
    /// Cap storage bindings at this many bytes (to exercise batch splitting).
    pub max_binding: Option<u64>,
    /// Force the software (`Some(true)`) or hardware (`Some(false)`) kernel variants.
    pub software_kernels: Option<bool>,
    /// Force one matmul tile on hardware kernels (tests, benchmarks); `None` picks by shape.
    pub tile: Option<Tile>,
    /// Force this many split-K slices where K allows (1 turns split-K off); `None` picks by shape.
    pub splits: Option<u32>,
    /// The run-time checks compiled into the shaders (`ShaderChecks::Bounds` by default).
    pub checks: ShaderChecks,
    /// Prefetch the wide tile's next K slice into registers (off by default until measured on
    /// the GPU machine; `bench --wide-prefetch`).
    pub wide_prefetch: bool,
    /// Run AdaLN as its own dispatch (`adaln.wgsl`'s `rows`) before a plain matmul instead of
    /// fusing it into the matmul's prologue, where every workgroup recomputes its rows'
    /// statistics (off by default until measured; `bench --separate-adaln`).
    pub separate_adaln: bool,
    /// Attention with 16 queries per workgroup sharing each key and value read (`attention.wgsl`'s
    /// `block`; off by default until measured; `bench --block-attention`).
    pub block_attention: bool,
}

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
    pub checks: ShaderChecks,
    pub wide_prefetch: bool,
    pub separate_adaln: bool,
    pub block_attention: bool,
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
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                force_fallback_adapter: false,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::Gpu(format!("no GPU adapter found: {e}")))?;
        let info = adapter.get_info();
        let supported = adapter.limits();
        // WebGPU's default limits fit every kernel; only buffer sizes are raised, for big batches.
        let limits = wgpu::Limits {
            max_storage_buffer_binding_size: max_binding.map_or(supported.max_storage_buffer_binding_size, |cap| {
                cap.min(supported.max_storage_buffer_binding_size)
            }),
            max_buffer_size: supported.max_buffer_size,
            ..wgpu::Limits::default()
        };
        let features = adapter.features() & wgpu::Features::TIMESTAMP_QUERY;
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("favicon-diffusor"),
                required_features: features,
                required_limits: limits.clone(),
                ..Default::default()
            })
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
            checks: options.checks,
            wide_prefetch: options.wide_prefetch,
            separate_adaln: options.separate_adaln,
            block_attention: options.block_attention,
            errors,
        };
        ctx.software_kernels = options.software_kernels.unwrap_or_else(|| ctx.is_software());
        Ok(ctx)
    }

    /// `name (backend, device type)`, for status lines.
    pub fn describe(&self) -> String {
        format!("{} ({:?}, {:?})", self.info.name, self.info.backend, self.info.device_type)
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
