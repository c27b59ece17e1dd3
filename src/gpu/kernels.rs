//! The WGSL kernels and their few named variants. Each variant is a set of `override`
//! constants on one readable `.wgsl` file; pipelines are compiled once and cached by key.

use std::collections::HashMap;

/// Every kernel file, for the GPU-free naga validation test.
pub const SOURCES: [(&str, &str); 5] = [
    ("matmul.wgsl", include_str!("../../wgsl/matmul.wgsl")),
    ("adaln.wgsl", include_str!("../../wgsl/adaln.wgsl")),
    ("attention.wgsl", include_str!("../../wgsl/attention.wgsl")),
    ("condition.wgsl", include_str!("../../wgsl/condition.wgsl")),
    ("sampler_step.wgsl", include_str!("../../wgsl/sampler_step.wgsl")),
];

/// Where the matmul's left operand comes from (`A_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ALayout {
    Rows = 0,
    Patchify = 1,
    AdaLn = 2,
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
}

/// How the matmul splits its output: `Small` 32×32 blocks (2×2 per thread) for few rows, `Large`
/// 64×64 (4×4) once there are enough rows, both through workgroup memory; `Direct` is the
/// barrier-free entry point for software adapters, 4 rows × 8 columns per thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tile {
    Small,
    Large,
    Direct,
}

/// Threads per workgroup of the `direct` entry point, and the rows and columns each owns (the
/// kernel unrolls 4 × 8 by hand).
pub const DIRECT_THREADS: u32 = 64;
pub const DIRECT_ROWS: u32 = 4;
pub const DIRECT_COLS: u32 = 8;

impl Tile {
    pub fn for_shape(m: usize, n: usize, software: bool) -> Tile {
        if software {
            Tile::Direct
        } else if m.div_ceil(64) * n.div_ceil(64) >= 256 {
            Tile::Large
        } else {
            Tile::Small
        }
    }

    /// Workgroups covering an `m × n` output.
    pub fn workgroups(self, m: u32, n: u32) -> [u32; 3] {
        match self {
            Tile::Small => [n.div_ceil(32), m.div_ceil(32), 1],
            Tile::Large => [n.div_ceil(64), m.div_ceil(64), 1],
            Tile::Direct => [n.div_ceil(DIRECT_THREADS * DIRECT_COLS), m.div_ceil(DIRECT_ROWS), 1],
        }
    }

    /// (ROWS, COLS, entry point).
    fn constants(self) -> (u32, u32, &'static str) {
        match self {
            Tile::Small => (2, 2, "main"),
            Tile::Large => (4, 4, "main"),
            Tile::Direct => (1, DIRECT_COLS, "direct"),
        }
    }
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
    /// The standalone AdaLN for software adapters.
    AdaLn,
    Attention,
    Condition,
    SamplerInit,
    SamplerStep,
}

impl Kernel {
    /// The file, entry point and override constants of this variant.
    pub fn source(self) -> (&'static str, &'static str, Vec<(&'static str, f64)>) {
        match self {
            Kernel::Matmul(m) => (
                "matmul.wgsl",
                m.tile.constants().2,
                vec![
                    ("ROWS", m.tile.constants().0 as f64),
                    ("COLS", m.tile.constants().1 as f64),
                    ("A_MODE", m.a as u32 as f64),
                    ("EPILOGUE", m.epilogue as u32 as f64),
                    ("OUT_MODE", m.out as u32 as f64),
                ],
            ),
            Kernel::AdaLn => ("adaln.wgsl", "main", vec![]),
            Kernel::Attention => ("attention.wgsl", "main", vec![("WG", ATTENTION_THREADS as f64)]),
            Kernel::Condition => ("condition.wgsl", "main", vec![]),
            Kernel::SamplerInit => ("sampler_step.wgsl", "init_noise", vec![]),
            Kernel::SamplerStep => ("sampler_step.wgsl", "step", vec![]),
        }
    }

    /// Every variant a plan can ask for.
    pub fn all() -> Vec<Kernel> {
        let mut all =
            vec![Kernel::AdaLn, Kernel::Attention, Kernel::Condition, Kernel::SamplerInit, Kernel::SamplerStep];
        for a in [ALayout::Rows, ALayout::Patchify, ALayout::AdaLn] {
            for epilogue in [Epilogue::None, Epilogue::Silu, Epilogue::Residual, Epilogue::Position, Epilogue::Bias] {
                for out in [OutLayout::Rows, OutLayout::Unpatchify] {
                    for tile in [Tile::Small, Tile::Large, Tile::Direct] {
                        all.push(Kernel::Matmul(Matmul { a, epilogue, out, tile }));
                    }
                }
            }
        }
        all
    }
}

/// Workgroup size of the attention kernel (a power of two ≤ 256).
pub const ATTENTION_THREADS: u32 = 64;
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

/// Bind group layouts, shader modules and the pipeline cache.
pub struct Kernels {
    pub matmul_layout: wgpu::BindGroupLayout,
    pub adaln_layout: wgpu::BindGroupLayout,
    pub attention_layout: wgpu::BindGroupLayout,
    pub condition_layout: wgpu::BindGroupLayout,
    pub sampler_layout: wgpu::BindGroupLayout,
    /// Group 1 of the matmul and sampler kernels: the step, at a dynamic offset.
    pub step_layout: wgpu::BindGroupLayout,
    modules: HashMap<&'static str, wgpu::ShaderModule>,
    pipelines: HashMap<Kernel, wgpu::ComputePipeline>,
}

impl Kernels {
    pub fn new(device: &wgpu::Device) -> Self {
        use Binding::*;
        let modules = SOURCES
            .iter()
            .map(|(name, source)| {
                let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(name),
                    source: wgpu::ShaderSource::Wgsl((*source).into()),
                });
                (*name, module)
            })
            .collect();
        Kernels {
            matmul_layout: layout(device, "matmul", &[Uniform, Read, Read, ReadWrite, Read], false),
            adaln_layout: layout(device, "adaln", &[Uniform, Read, Read, ReadWrite], false),
            attention_layout: layout(device, "attention", &[Uniform, Read, ReadWrite], false),
            condition_layout: layout(device, "condition", &[Uniform, Read, Read, Read, Read, ReadWrite], false),
            sampler_layout: layout(device, "sampler", &[Uniform, ReadWrite, Read, ReadWrite, Read], false),
            step_layout: layout(device, "step", &[Uniform], true),
            modules,
            pipelines: HashMap::new(),
        }
    }

    pub fn pipeline_count(&self) -> usize {
        self.pipelines.len()
    }

    /// The pipeline for `kernel`, compiled on first use.
    pub fn get(&mut self, device: &wgpu::Device, kernel: Kernel) -> &wgpu::ComputePipeline {
        if !self.pipelines.contains_key(&kernel) {
            let pipeline = self.compile(device, kernel);
            self.pipelines.insert(kernel, pipeline);
        }
        &self.pipelines[&kernel]
    }

    /// A pipeline that `get` already compiled (every plan compiles its kernels when built).
    pub fn compiled(&self, kernel: Kernel) -> &wgpu::ComputePipeline {
        &self.pipelines[&kernel]
    }

    fn compile(&self, device: &wgpu::Device, kernel: Kernel) -> wgpu::ComputePipeline {
        let (file, entry, constants) = kernel.source();
        let groups: Vec<&wgpu::BindGroupLayout> = match kernel {
            Kernel::Matmul(_) => vec![&self.matmul_layout, &self.step_layout],
            Kernel::AdaLn => vec![&self.adaln_layout, &self.step_layout],
            Kernel::Attention => vec![&self.attention_layout],
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
            cache: None,
        })
    }
}
