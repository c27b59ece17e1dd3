//! The WGSL kernels and their few named variants. Each variant is a set of `override`
//! constants on one readable `.wgsl` file; pipelines are compiled once and cached by key.

use std::collections::HashMap;

use crate::timings::{Laps, Stage};

/// Every kernel file, for the GPU-free naga validation test.
pub const SOURCES: [(&str, &str); 5] = [
    ("matmul.wgsl", include_str!("../../wgsl/matmul.wgsl")),
    ("adaln.wgsl", include_str!("../../wgsl/adaln.wgsl")),
    ("attention.wgsl", include_str!("../../wgsl/attention.wgsl")),
    ("condition.wgsl", include_str!("../../wgsl/condition.wgsl")),
    ("sampler_step.wgsl", include_str!("../../wgsl/sampler_step.wgsl")),
];

/// The cooperative-matrix entry point. Not a module of its own: `coop_module_source` puts it
/// after matmul.wgsl, whose prologues and epilogues it calls.
pub const COOP_FILE: &str = "matmul_coop.wgsl";
const COOP_ENTRY: &str = include_str!("../../wgsl/matmul_coop.wgsl");

/// `enable f16; enable wgpu_cooperative_matrix;` + matmul.wgsl + matmul_coop.wgsl: the module
/// that `Tile::Coop` compiles from (only on adapters with `GpuContext::coop`).
pub fn coop_module_source() -> String {
    format!("enable f16;\nenable wgpu_cooperative_matrix;\n{}\n{COOP_ENTRY}", SOURCES[0].1)
}

/// The text of a module named by `Kernel::source`.
pub fn module_source(file: &str) -> Option<std::borrow::Cow<'static, str>> {
    if file == COOP_FILE {
        return Some(coop_module_source().into());
    }
    SOURCES.iter().find(|(name, _)| *name == file).map(|(_, source)| (*source).into())
}

/// Where the matmul's left operand comes from (`A_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ALayout {
    Rows = 0,
    Patchify = 1,
}

/// What happens to each output (`EPILOGUE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Epilogue {
    None = 0,
    Silu = 1,
    Residual = 2,
    Position = 3,
    Bias = 4,
}

/// Where outputs land (`OUT_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutLayout {
    Rows = 0,
    Unpatchify = 1,
    /// One split-K slice's raw sums, for `Tile::Reduce` to add up.
    Partial = 2,
}

/// How the matmul splits its output: `Small` 32×32 blocks (2×2 per thread) for few rows, `Large`
/// 64×64 (4×4), `Wide` 128×128 (8×8, vec4 reads) once there are many rows, all through workgroup
/// memory; `Direct` is the barrier-free entry point for software adapters, 4 rows × 8 columns per
/// thread. `Coop` is `Wide`'s block on cooperative matrices (tensor cores; f16 inputs, f32
/// sums), which replaces it where the adapter has them (`GpuContext::coop`). `Reduce` is not a
/// tile but the entry point that adds split-K slices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tile {
    Small,
    Large,
    Wide,
    Coop,
    Direct,
    Reduce,
}

/// The run-time checks wgpu compiles into every shader: its bounds checks, without the loop
/// bounding it adds since version 25 (a counter in every loop that stops a loop which would never
/// end). Every loop in `wgsl/` is counted over a finite `u32` range with a positive stride, so it
/// cannot fire, but the extra exit keeps drivers from unrolling loops (gfx-rs/wgpu#7698), which on
/// NVIDIA kept our matmul accumulators in memory (BENCHMARKS.md, session 4: batch 1 57.5 → 15.2 ms).
fn runtime_checks() -> wgpu::ShaderRuntimeChecks {
    wgpu::ShaderRuntimeChecks { force_loop_bounding: false, ..wgpu::ShaderRuntimeChecks::checked() }
}

/// Threads per workgroup of the `direct` entry point, and the rows and columns each owns (the
/// kernel unrolls 4 × 8 by hand).
pub const DIRECT_THREADS: u32 = 64;
pub const DIRECT_ROWS: u32 = 4;
pub const DIRECT_COLS: u32 = 8;
/// Threads per workgroup of the `reduce` entry point.
pub const REDUCE_THREADS: u32 = 256;
/// Below this many output tiles a matmul splits K, aiming for `SPLIT_TARGET_WORKGROUPS`: with
/// few rows each workgroup's time is the latency of its walk along K, not arithmetic, and a big
/// GPU holds about a thousand 256-thread workgroups at once (132 SMs × 8).
pub const SPLIT_BELOW_WORKGROUPS: u32 = 256;
pub const SPLIT_TARGET_WORKGROUPS: u32 = 1024;
/// `Wide` tiles are used from this many of them on (and then never split K); `Large` from this
/// many rows on, else `Small`.
pub const WIDE_FROM_WORKGROUPS: u32 = 96;
pub const LARGE_FROM_ROWS: usize = 256;
/// No split-K slice is shorter than this many K columns, and there are at most `MAX_SPLITS`.
pub const MIN_SPLIT_K: u32 = 64;
pub const MAX_SPLITS: u32 = 16;

impl Tile {
    /// The tile for an `m × n` output. Software adapters always run `Direct`. On hardware the rule
    /// is the H200 variant sweep of session 4 (BENCHMARKS.md, perf notes v4): `Wide` from 96 of
    /// its tiles on, unsplit (batch 64: 202 ms unsplit vs 213 ms with split-K); `Large` from 256
    /// rows on (batch 8: 39.3 ms, against 47.7 for `Small` and 58.5 for `Wide`); else `Small`
    /// (batch 1: 15.1 ms, `Large` 16.2), which then splits K.
    pub fn for_shape(m: usize, n: usize, software: bool) -> Tile {
        let wide_tiles = (m.div_ceil(128) * n.div_ceil(128)) as u32;
        if software {
            Tile::Direct
        } else if wide_tiles >= WIDE_FROM_WORKGROUPS {
            Tile::Wide
        } else if m >= LARGE_FROM_ROWS {
            Tile::Large
        } else {
            Tile::Small
        }
    }

    /// Workgroups covering an `m × n` output (one K slice).
    pub fn workgroups(self, m: u32, n: u32) -> [u32; 3] {
        match self {
            Tile::Small => [n.div_ceil(32), m.div_ceil(32), 1],
            Tile::Large => [n.div_ceil(64), m.div_ceil(64), 1],
            Tile::Wide | Tile::Coop => [n.div_ceil(128), m.div_ceil(128), 1],
            Tile::Direct => [n.div_ceil(DIRECT_THREADS * DIRECT_COLS), m.div_ceil(DIRECT_ROWS), 1],
            Tile::Reduce => [(m * n).div_ceil(REDUCE_THREADS), 1, 1],
        }
    }

    /// (ROWS, COLS, TILE_K, entry point). The main entry point's tiles hold TILE_K · 16·ROWS =
    /// 1024 values of A (and of W): a 32-deep slice for Small halves its barriers per K.
    fn constants(self) -> (u32, u32, u32, &'static str) {
        match self {
            Tile::Small => (2, 2, 32, "main"),
            Tile::Large => (4, 4, 16, "main"),
            Tile::Wide => (8, 8, 8, "wide"),
            Tile::Coop => (8, 8, 8, "coop"),
            Tile::Direct => (1, DIRECT_COLS, 2, "direct"),
            Tile::Reduce => (1, 1, 1, "reduce"),
        }
    }

    /// Whether this entry point can run split-K slices.
    pub fn splits_k(self) -> bool {
        matches!(self, Tile::Small | Tile::Large | Tile::Wide | Tile::Coop)
    }

    /// `Wide` becomes `Coop` where the adapter runs cooperative matrices.
    pub fn with_coop(self, coop: bool) -> Tile {
        match self {
            Tile::Wide if coop => Tile::Coop,
            tile => tile,
        }
    }
}

/// How one matmul is cut along K: `splits` slices of `k_chunk` columns (a multiple of 32, so
/// every entry point's K step stays inside one slice). One slice when K is short or the output tiles
/// already fill the card; `forced` (tests, benchmarks) asks for that many where K allows.
pub fn split_k(k: u32, workgroups: u32, forced: Option<u32>) -> (u32, u32) {
    let wanted = match forced {
        Some(n) => n.clamp(1, k.div_ceil(32).max(1)),
        None if workgroups >= SPLIT_BELOW_WORKGROUPS => 1,
        None => SPLIT_TARGET_WORKGROUPS.div_ceil(workgroups.max(1)).min(k / MIN_SPLIT_K).clamp(1, MAX_SPLITS),
    };
    let k_chunk = k.div_ceil(wanted).next_multiple_of(32).max(32);
    (k.div_ceil(k_chunk).max(1), k_chunk)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Matmul {
    pub a: ALayout,
    pub epilogue: Epilogue,
    pub out: OutLayout,
    pub tile: Tile,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    Matmul(Matmul),
    /// The standalone AdaLN for software adapters (one row per thread).
    AdaLn,
    /// The standalone AdaLN for hardware (one row per workgroup).
    AdaLnRows,
    /// Specialised to its shape: known loop bounds let the driver unroll the key and dimension
    /// loops and keep several loads in flight (with run-time bounds each waited for the last).
    /// `block`: the entry point that stages 16 queries per workgroup (`GpuOptions::block_attention`).
    Attention {
        tokens: u32,
        head_dim: u32,
        block: bool,
    },
    Condition,
    SamplerInit,
    SamplerStep,
}

impl Kernel {
    /// The file, entry point and override constants of this variant.
    pub fn source(self) -> (&'static str, &'static str, Vec<(&'static str, f64)>) {
        match self {
            Kernel::Matmul(m) => (
                if m.tile == Tile::Coop { COOP_FILE } else { "matmul.wgsl" },
                m.tile.constants().3,
                vec![
                    ("ROWS", m.tile.constants().0 as f64),
                    ("COLS", m.tile.constants().1 as f64),
                    ("TILE_K", m.tile.constants().2 as f64),
                    ("A_MODE", m.a as u32 as f64),
                    ("EPILOGUE", m.epilogue as u32 as f64),
                    ("OUT_MODE", m.out as u32 as f64),
                ],
            ),
            Kernel::AdaLn => ("adaln.wgsl", "main", vec![]),
            Kernel::AdaLnRows => ("adaln.wgsl", "rows", vec![]),
            Kernel::Attention { tokens, head_dim, block } => (
                "attention.wgsl",
                if block { "block" } else { "main" },
                vec![("WG", ATTENTION_THREADS as f64), ("TOKENS", tokens as f64), ("HEAD_DIM", head_dim as f64)],
            ),
            Kernel::Condition => ("condition.wgsl", "main", vec![]),
            Kernel::SamplerInit => ("sampler_step.wgsl", "init_noise", vec![]),
            Kernel::SamplerStep => ("sampler_step.wgsl", "step", vec![]),
        }
    }

    /// Every variant a plan can ask for.
    pub fn all() -> Vec<Kernel> {
        let mut all = vec![
            Kernel::AdaLn,
            Kernel::AdaLnRows,
            Kernel::Attention { tokens: 64, head_dim: 128, block: false },
            Kernel::Attention { tokens: 64, head_dim: 128, block: true },
            Kernel::Condition,
            Kernel::SamplerInit,
            Kernel::SamplerStep,
        ];
        for a in [ALayout::Rows, ALayout::Patchify] {
            for epilogue in [Epilogue::None, Epilogue::Silu, Epilogue::Residual, Epilogue::Position, Epilogue::Bias] {
                for out in [OutLayout::Rows, OutLayout::Unpatchify] {
                    for tile in [Tile::Small, Tile::Large, Tile::Wide, Tile::Coop, Tile::Direct, Tile::Reduce] {
                        all.push(Kernel::Matmul(Matmul { a, epilogue, out, tile }));
                    }
                }
            }
            for tile in [Tile::Small, Tile::Large, Tile::Wide, Tile::Coop] {
                all.push(Kernel::Matmul(Matmul { a, epilogue: Epilogue::None, out: OutLayout::Partial, tile }));
            }
        }
        all
    }
}

/// Workgroup size of the attention kernel (a power of two ≤ 256).
pub const ATTENTION_THREADS: u32 = 64;
/// The block attention entry point: queries per workgroup, and the largest shapes its
/// workgroup tiles hold (16 × 128 queries, 16 × 64 scores).
pub const BLOCK_QUERIES: u32 = 16;
pub const BLOCK_MAX_HEAD_DIM: usize = 128;
pub const BLOCK_MAX_TOKENS: usize = 64;
/// The block entry point is picked from this many of its workgroups on (images × heads × ⌈tokens
/// / 16⌉). H100 with coop, unguided 32-step samples: batch 64 (256 of them) 127.2 → 112.8 ms
/// with it; batch 1 (4 of them) 14.1 → 16.2 ms, too few workgroups to fill the card.
pub const BLOCK_FROM_WORKGROUPS: usize = 256;
/// Workgroup size of the sampler kernels.
pub const SAMPLER_THREADS: u32 = 256;
/// Limits the kernels' workgroup arrays impose on a config.
pub const MAX_TOKENS: usize = 1024;
pub const MAX_HEAD_DIM: usize = 256;
pub const MAX_SINUSOID: usize = 1024;

#[derive(Debug, Clone, Copy)]
enum Binding {
    Uniform,
    Read,
    ReadWrite,
}

fn layout(device: &wgpu::Device, label: &str, bindings: &[Binding], dynamic: bool) -> wgpu::BindGroupLayout {
    let entries: Vec<_> = bindings
        .iter()
        .enumerate()
        .map(|(i, b)| wgpu::BindGroupLayoutEntry {
            binding: i as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: match b {
                    Binding::Uniform => wgpu::BufferBindingType::Uniform,
                    Binding::Read => wgpu::BufferBindingType::Storage { read_only: true },
                    Binding::ReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
                },
                has_dynamic_offset: dynamic,
                min_binding_size: None,
            },
            count: None,
        })
        .collect();
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(label), entries: &entries })
}

/// Bind group layouts, and the shader modules and pipelines that plans asked for.
pub struct Kernels {
    pub matmul_layout: wgpu::BindGroupLayout,
    pub adaln_layout: wgpu::BindGroupLayout,
    pub attention_layout: wgpu::BindGroupLayout,
    pub condition_layout: wgpu::BindGroupLayout,
    pub sampler_layout: wgpu::BindGroupLayout,
    /// Group 1 of the AdaLN and sampler kernels: the step, at a dynamic offset.
    pub step_layout: wgpu::BindGroupLayout,
    modules: HashMap<&'static str, wgpu::ShaderModule>,
    pipelines: HashMap<Kernel, wgpu::ComputePipeline>,
    /// The driver's cache of compiled pipelines, where the device has one (`pipeline_cache`).
    cache: Option<wgpu::PipelineCache>,
}

impl Kernels {
    /// Bind group layouts only: modules and pipelines come later, from `prepare`, and only
    /// those a plan uses (the cooperative-matrix module only where a plan picks `Tile::Coop`).
    pub fn new(device: &wgpu::Device, cache: Option<wgpu::PipelineCache>) -> Self {
        use Binding::*;
        Kernels {
            matmul_layout: layout(device, "matmul", &[Uniform, Read, Read, ReadWrite, Read], false),
            adaln_layout: layout(device, "adaln", &[Uniform, Read, Read, ReadWrite], false),
            attention_layout: layout(device, "attention", &[Uniform, Read, ReadWrite], false),
            condition_layout: layout(device, "condition", &[Uniform, Read, Read, Read, Read, ReadWrite], false),
            sampler_layout: layout(device, "sampler", &[Uniform, ReadWrite, Read, ReadWrite, Read], false),
            step_layout: layout(device, "step", &[Uniform], true),
            modules: HashMap::new(),
            pipelines: HashMap::new(),
            cache,
        }
    }

    pub fn pipeline_count(&self) -> usize {
        self.pipelines.len()
    }

    pub fn cache(&self) -> Option<&wgpu::PipelineCache> {
        self.cache.as_ref()
    }

    /// Compiles what `wanted` needs and is not compiled yet: its modules, then its pipelines,
    /// those on several threads where the platform has them. Returns how many pipelines it
    /// compiled; adds the time to `laps`.
    pub fn prepare(&mut self, device: &wgpu::Device, wanted: &[Kernel], laps: &mut Laps) -> usize {
        let mut missing: Vec<Kernel> = Vec::new();
        for &kernel in wanted {
            if !self.pipelines.contains_key(&kernel) && !missing.contains(&kernel) {
                missing.push(kernel);
            }
        }
        let mut files: Vec<&'static str> = Vec::new();
        for kernel in &missing {
            let file = kernel.source().0;
            if !self.modules.contains_key(file) && !files.contains(&file) {
                files.push(file);
            }
        }
        let modules = laps.time(Stage::Modules, || on_threads(&files, |&file| create_module(device, file)));
        self.modules.extend(files.into_iter().zip(modules));
        let pipelines = laps.time(Stage::Pipelines, || on_threads(&missing, |&kernel| self.compile(device, kernel)));
        self.pipelines.extend(missing.iter().copied().zip(pipelines));
        missing.len()
    }

    /// A pipeline that `prepare` compiled (every plan prepares its kernels when built).
    pub fn compiled(&self, kernel: Kernel) -> &wgpu::ComputePipeline {
        &self.pipelines[&kernel]
    }

    fn compile(&self, device: &wgpu::Device, kernel: Kernel) -> wgpu::ComputePipeline {
        let (file, entry, constants) = kernel.source();
        let groups: Vec<&wgpu::BindGroupLayout> = match kernel {
            Kernel::Matmul(_) => vec![&self.matmul_layout],
            Kernel::AdaLn | Kernel::AdaLnRows => vec![&self.adaln_layout, &self.step_layout],
            Kernel::Attention { .. } => vec![&self.attention_layout],
            Kernel::Condition => vec![&self.condition_layout],
            Kernel::SamplerInit | Kernel::SamplerStep => vec![&self.sampler_layout, &self.step_layout],
        };
        let label = format!("{kernel:?}");
        let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(&label),
            bind_group_layouts: &groups.iter().map(|g| Some(*g)).collect::<Vec<_>>(),
            immediate_size: 0,
        });
        device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&label),
            layout: Some(&layout),
            module: &self.modules[file],
            entry_point: Some(entry),
            compilation_options: wgpu::PipelineCompilationOptions { constants: &constants, ..Default::default() },
            cache: self.cache.as_ref(),
        })
    }
}

/// The module of one file of `SOURCES` (or the coop module).
fn create_module(device: &wgpu::Device, file: &'static str) -> wgpu::ShaderModule {
    let source = module_source(file).unwrap_or_default();
    let desc = wgpu::ShaderModuleDescriptor { label: Some(file), source: wgpu::ShaderSource::Wgsl(source) };
    // SAFETY: wgpu still validates the WGSL and keeps its bounds checks; only the loop
    // bounding goes, and every loop in wgsl/ terminates (see `runtime_checks`).
    unsafe { device.create_shader_module_trusted(desc, runtime_checks()) }
}

/// `work` on every item, in order. Natively the items are shared out among up to one thread
/// per core (the calling thread one of them): the driver compiles each pipeline on the thread
/// that asks for it, and a first run on a fresh machine is mostly that compile (issue 14).
/// The browser has one thread.
#[cfg(not(target_arch = "wasm32"))]
fn on_threads<I: Sync, T: Send>(items: &[I], work: impl Fn(&I) -> T + Sync) -> Vec<T> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(items.len());
    if threads <= 1 {
        return items.iter().map(work).collect();
    }
    let next = AtomicUsize::new(0);
    let worker = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else { return done };
            done.push((i, work(item)));
        }
    };
    let mut results: Vec<(usize, T)> = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(worker)).collect();
        let mut all = worker();
        for helper in helpers {
            match helper.join() {
                Ok(done) => all.extend(done),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        all
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, t)| t).collect()
}

#[cfg(target_arch = "wasm32")]
fn on_threads<I, T>(items: &[I], work: impl Fn(&I) -> T) -> Vec<T> {
    items.iter().map(work).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_k_fills_the_card_only_when_the_tiles_do_not() {
        // Batch 1's ff projection: 64 rows × 512 columns is 32 small tiles over K = 2048, so it
        // splits into the most slices allowed, 16 of 128 columns.
        assert_eq!(split_k(2048, 32, None), (16, 128));
        // qkv at batch 1: 24 tiles over K = 512; slices stop at 64 columns.
        assert_eq!(split_k(512, 24, None), (8, 64));
        // Enough tiles already: one slice covering K.
        assert_eq!(split_k(512, 256, None), (1, 512));
        // K shorter than two minimum slices never splits.
        assert_eq!(split_k(100, 1, None), (1, 128));
        // Forced: slices are whole multiples of 32, the last one short.
        assert_eq!(split_k(160, 4, Some(3)), (3, 64));
        assert_eq!(split_k(27, 4, Some(3)), (1, 32));
    }

    #[test]
    fn tiles_grow_with_the_output_until_they_stop_filling_the_card() {
        assert_eq!(Tile::for_shape(64, 512, false), Tile::Small);
        // Batch 64: 4096 rows, 32 row tiles of 128: every model matmul has ≥ 3 column tiles.
        assert_eq!(Tile::for_shape(4096, 2048, false), Tile::Wide);
        assert_eq!(Tile::for_shape(4096, 384, false), Tile::Wide);
        // Batch 8: 512 rows give 16 or 64 wide tiles, too few; 64×64 tiles (splitting K where
        // they are fewer than 256).
        assert_eq!(Tile::for_shape(512, 512, false), Tile::Large);
        assert_eq!(Tile::for_shape(512, 2048, false), Tile::Large);
        // Guided batch 1 (128 rows) stays on the small tile.
        assert_eq!(Tile::for_shape(128, 2048, false), Tile::Small);
        assert_eq!(Tile::for_shape(4096, 2048, true), Tile::Direct);
    }
}
