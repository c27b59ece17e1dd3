//! The static plan for one batch shape: every buffer, bind group and dispatch of a sample,
//! made once. A run only writes a few small uniforms before recording.

use bytemuck::{Pod, Zeroable};

use super::context::GpuContext;
use super::kernels::{
    split_k, ALayout, Epilogue, Kernel, Kernels, Matmul, OutLayout, Tile, ATTENTION_THREADS, BLOCK_FROM_WORKGROUPS,
    BLOCK_MAX_HEAD_DIM, BLOCK_MAX_TOKENS, BLOCK_QUERIES, REDUCE_THREADS, SAMPLER_THREADS,
};
use super::weights::{GpuWeights, Matrix};
use crate::config::Config;

/// A batch shape: `images` per run, and whether each step runs guided halves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shape {
    pub images: usize,
    pub guided: bool,
}

impl Shape {
    /// Images the model sees per step: both halves when guided.
    pub fn model_images(&self) -> usize {
        self.images * if self.guided { 2 } else { 1 }
    }
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub struct MatmulParams {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub k_words: u32,
    pub tokens: u32,
    pub uncond_images: u32,
    pub norm_offset: u32,
    pub mods_stride: u32,
    pub patch_size: u32,
    pub grid: u32,
    pub channels: u32,
    pub in_images: u32,
    pub out_images: u32,
    pub bias_offset: u32,
    pub k_chunk: u32,
    pub splits: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
struct AttentionParams {
    tokens: u32,
    heads: u32,
    head_dim: u32,
    scale: f32,
    qk_norm: u32,
    pad: [u32; 3],
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
struct ConditionParams {
    width: u32,
    time_dim: u32,
    fc1_words: u32,
    fc2_words: u32,
}

/// The sampler's per-request uniform (`Request` in sampler_step.wgsl).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub struct RequestParams {
    pub seed_lo: u32,
    pub seed_hi: u32,
    pub len: u32,
    pub guided: u32,
    pub guidance: f32,
    pub noise_offset: u32,
    pub preview: u32,
    pub has_init: u32,
    pub signal: f32,
    pub noise: f32,
    pub groups_x: u32,
    /// 1 when `pred` holds the x0 plane; 0 derives the x0 preview from ε.
    pub x0_head: u32,
}

/// One slot of the step table (`Step` in the kernels), read at a dynamic offset.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub struct StepParams {
    pub index: u32,
    pub tag: u32,
    pub a: f32,
    pub b: f32,
    pub c: f32,
    pub t: f32,
    /// The head the update reads (`sampler::Head`): 0 ε, 1 x0.
    pub head: u32,
    /// ᾱ at `t`, for the x0 preview derived from ε.
    pub alpha_bar: f32,
}

// The WGSL copies of these structs are pinned to these sizes by tests/wgsl.rs.
const _: () = assert!(std::mem::size_of::<MatmulParams>() == 64 && std::mem::size_of::<StepParams>() == 32);

/// One recorded dispatch. `output` is what it writes, for the debug mode.
pub struct Dispatch {
    pub name: String,
    pub kernel: Kernel,
    pub group: wgpu::BindGroup,
    pub stepped: bool,
    pub workgroups: [u32; 3],
    pub output: wgpu::Buffer,
}

/// What a plan allocated, for the no-allocation-in-the-loop test and the memory report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanStats {
    pub buffers: usize,
    pub bind_groups: usize,
    pub bytes: u64,
}

pub struct Plan {
    pub shape: Shape,
    pub x: wgpu::Buffer,
    pub init: wgpu::Buffer,
    pub preview: wgpu::Buffer,
    pub timesteps: wgpu::Buffer,
    pub prompts: wgpu::Buffer,
    pub cond: wgpu::Buffer,
    pub request: wgpu::Buffer,
    pub steps: wgpu::Buffer,
    pub step_group: wgpu::BindGroup,
    pub step_stride: u64,
    /// Holds the final x, then is mapped once.
    pub readback: wgpu::Buffer,
    /// One buffer per timestep for the previews, so reading step s waits for step s only.
    pub preview_staging: Vec<wgpu::Buffer>,
    pub prelude: Vec<Dispatch>,
    pub start: Dispatch,
    pub step: Vec<Dispatch>,
    pub stats: PlanStats,
    /// Every kernel its dispatches run, for `Kernels::prepare` to compile.
    pub kernels: Vec<Kernel>,
}

/// Builds buffers and bind groups, counting them.
struct Builder<'a> {
    ctx: &'a GpuContext,
    kernels: &'a Kernels,
    stats: PlanStats,
    /// The kernels dispatched so far.
    used: Vec<Kernel>,
    /// Split-K slices of every matmul that splits (see `MatmulShape::cut`).
    partial: wgpu::Buffer,
}

/// An `m × n` output over `k` columns: its tile and split-K cut on this context.
struct MatmulShape {
    m: u32,
    n: u32,
    k: u32,
}

impl MatmulShape {
    /// (tile, splits, k_chunk). Split only where the entry point can and the slices fit a binding.
    fn cut(&self, ctx: &GpuContext) -> (Tile, u32, u32) {
        let software = ctx.software_kernels;
        let tile = match ctx.tile {
            // A forced `Coop` needs the adapter's cooperative matrices; without them, `Wide`.
            Some(Tile::Coop) if !software && !ctx.coop => Tile::Wide,
            Some(tile) if !software && tile.splits_k() => tile,
            _ => Tile::for_shape(self.m as usize, self.n as usize, software).with_coop(ctx.coop),
        };
        let [x, y, _] = tile.workgroups(self.m, self.n);
        let unsplit = (1, self.k.next_multiple_of(32).max(32));
        // A wide tile picked by shape already fills the card: it never splits unless asked to.
        let picked_wide = matches!(tile, Tile::Wide | Tile::Coop) && ctx.tile.is_none() && ctx.splits.is_none();
        if !tile.splits_k() || picked_wide {
            return (tile, unsplit.0, unsplit.1);
        }
        let (splits, k_chunk) = split_k(self.k, x * y, ctx.splits);
        let bytes = splits as u64 * self.m as u64 * self.n as u64 * 4;
        if splits > 1 && bytes <= ctx.limits.max_storage_buffer_binding_size {
            (tile, splits, k_chunk)
        } else {
            (tile, unsplit.0, unsplit.1)
        }
    }

    /// Floats of split-K slices this matmul needs (0 when it does not split).
    fn partial_floats(&self, ctx: &GpuContext) -> usize {
        match self.cut(ctx) {
            (_, 1, _) => 0,
            (_, splits, _) => splits as usize * self.m as usize * self.n as usize,
        }
    }
}

const STORAGE: wgpu::BufferUsages =
    wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_DST).union(wgpu::BufferUsages::COPY_SRC);

impl Builder<'_> {
    fn buffer(&mut self, label: &str, floats: usize, usage: wgpu::BufferUsages) -> wgpu::Buffer {
        Self::new_buffer(self.ctx, &mut self.stats, label, floats, usage)
    }

    fn new_buffer(
        ctx: &GpuContext,
        stats: &mut PlanStats,
        label: &str,
        floats: usize,
        usage: wgpu::BufferUsages,
    ) -> wgpu::Buffer {
        let size = (floats.max(1) * 4).next_multiple_of(16) as u64;
        stats.buffers += 1;
        stats.bytes += size;
        ctx.device.create_buffer(&wgpu::BufferDescriptor { label: Some(label), size, usage, mapped_at_creation: false })
    }

    fn uniform<T: Pod>(&mut self, label: &str, value: &T) -> wgpu::Buffer {
        let bytes = bytemuck::bytes_of(value);
        let buffer = self.buffer(label, bytes.len() / 4, wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST);
        self.ctx.queue.write_buffer(&buffer, 0, bytes);
        buffer
    }

    fn group(&mut self, label: &str, layout: &wgpu::BindGroupLayout, buffers: &[&wgpu::Buffer]) -> wgpu::BindGroup {
        self.stats.bind_groups += 1;
        let entries: Vec<_> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32, resource: b.as_entire_binding() })
            .collect();
        self.ctx.device.create_bind_group(&wgpu::BindGroupDescriptor { label: Some(label), layout, entries: &entries })
    }

    fn dispatch(
        &mut self,
        name: String,
        kernel: Kernel,
        group: wgpu::BindGroup,
        workgroups: [u32; 3],
        output: &wgpu::Buffer,
    ) -> Dispatch {
        self.used.push(kernel);
        let stepped = matches!(kernel, Kernel::AdaLn | Kernel::AdaLnRows | Kernel::SamplerInit | Kernel::SamplerStep);
        Dispatch { name, kernel, group, stepped, workgroups, output: output.clone() }
    }

    /// `y = a · wᵀ` with the variant's prologue and epilogue: one dispatch, or a split-K pass
    /// (`{name}/split`, into the partial buffer) and the reduce that applies the epilogue.
    #[allow(clippy::too_many_arguments)]
    fn matmul(
        &mut self,
        name: String,
        variant: (ALayout, Epilogue, OutLayout),
        mut params: MatmulParams,
        weights: &Matrix,
        a: &wgpu::Buffer,
        y: &wgpu::Buffer,
        aux: &wgpu::Buffer,
    ) -> Vec<Dispatch> {
        params.n = weights.rows as u32;
        params.k = weights.cols as u32;
        params.k_words = weights.words as u32;
        let (tile, splits, k_chunk) = MatmulShape { m: params.m, n: params.n, k: params.k }.cut(self.ctx);
        params.k_chunk = k_chunk;
        params.splits = splits;
        let uniform = self.uniform(&name, &params);
        let layout = self.kernels.matmul_layout.clone();
        let (a_mode, epilogue, out) = variant;
        if splits == 1 {
            let kernel = Kernel::Matmul(Matmul { a: a_mode, epilogue, out, tile });
            let group = self.group(&name, &layout, &[&uniform, a, &weights.buffer, y, aux]);
            let workgroups = tile.workgroups(params.m, params.n);
            return vec![self.dispatch(name, kernel, group, workgroups, y)];
        }
        let partial = self.partial.clone();
        let split_name = format!("{name}/split");
        let kernel = Kernel::Matmul(Matmul { a: a_mode, epilogue: Epilogue::None, out: OutLayout::Partial, tile });
        let group = self.group(&split_name, &layout, &[&uniform, a, &weights.buffer, &partial, aux]);
        let [x, y_groups, _] = tile.workgroups(params.m, params.n);
        let split = self.dispatch(split_name, kernel, group, [x, y_groups, splits], &partial);
        let kernel = Kernel::Matmul(Matmul { a: ALayout::Rows, epilogue, out, tile: Tile::Reduce });
        let group = self.group(&name, &layout, &[&uniform, &partial, &weights.buffer, y, aux]);
        let len = (params.m * params.n) as usize;
        let workgroups = grid_for(len, REDUCE_THREADS, self.ctx.limits.max_compute_workgroups_per_dimension);
        vec![split, self.dispatch(name, kernel, group, workgroups, y)]
    }
}

/// Buffers and parameters the AdaLN-then-matmul sites share.
struct AdaLnSite<'a> {
    h: &'a wgpu::Buffer,
    mods: &'a wgpu::Buffer,
    /// Where AdaLN materialises its output.
    normed: &'a wgpu::Buffer,
    software: bool,
}

impl Builder<'_> {
    /// `AdaLn → matmul`: AdaLN as its own dispatch (named after the candle activation it mirrors),
    /// then a plain matmul over its output. Fusing AdaLN into the matmul's prologue made every
    /// workgroup recompute its rows' statistics: H100, coop, batch 64 68.1 → 109.3 ms (session 5).
    #[allow(clippy::too_many_arguments)]
    fn normed_matmul(
        &mut self,
        site: &AdaLnSite,
        norm_name: String,
        name: String,
        epilogue: Epilogue,
        out: OutLayout,
        params: MatmulParams,
        weights: &Matrix,
        y: &wgpu::Buffer,
    ) -> Vec<Dispatch> {
        let norm_params = MatmulParams { k: weights.cols as u32, n: weights.cols as u32, ..params };
        let uniform = self.uniform(&norm_name, &norm_params);
        let layout = self.kernels.adaln_layout.clone();
        let group = self.group(&norm_name, &layout, &[&uniform, site.h, site.mods, site.normed]);
        let norm = if site.software {
            self.dispatch(norm_name, Kernel::AdaLn, group, [params.m.div_ceil(64), 1, 1], site.normed)
        } else {
            let grid = grid_for(params.m as usize, 1, self.ctx.limits.max_compute_workgroups_per_dimension);
            self.dispatch(norm_name, Kernel::AdaLnRows, group, grid, site.normed)
        };
        let mut dispatches = vec![norm];
        dispatches.extend(self.matmul(
            name,
            (ALayout::Rows, epilogue, out),
            params,
            weights,
            site.normed,
            y,
            site.mods,
        ));
        dispatches
    }
}

/// Workgroups for `len` elements at `threads` per group, folded into 2-D under the dispatch limit.
pub fn grid_for(len: usize, threads: u32, max_per_dim: u32) -> [u32; 3] {
    let groups = (len as u32).div_ceil(threads).max(1);
    let x = groups.min(max_per_dim);
    [x, groups.div_ceil(x), 1]
}

impl Plan {
    pub fn build(ctx: &GpuContext, kernels: &Kernels, weights: &GpuWeights, cfg: &Config, shape: Shape) -> Plan {
        let (tokens, dim, inner) = (cfg.tokens(), cfg.dim, cfg.inner_dim());
        let model_images = shape.model_images();
        let rows = model_images * tokens;
        let t_max = cfg.timesteps;
        let mut matrices = vec![(2 * t_max, &weights.modulation), (rows, &weights.patch_embed), (rows, &weights.heads)];
        for block in &weights.blocks {
            matrices.extend([&block.qkv, &block.out, &block.up, &block.down].map(|w| (rows, w)));
        }
        let partial_floats = matrices
            .iter()
            .map(|(m, w)| MatmulShape { m: *m as u32, n: w.rows as u32, k: w.cols as u32 }.partial_floats(ctx))
            .max()
            .unwrap_or(0);
        let mut stats = PlanStats::default();
        let partial = Builder::new_buffer(ctx, &mut stats, "partial", partial_floats, STORAGE);
        let mut b = Builder { ctx, kernels, stats, partial, used: Vec::new() };
        let len = shape.images * cfg.image_len();
        let mods_stride = weights.modulation.rows;
        let bias_offset = 2 * t_max * mods_stride;

        let x = b.buffer("x", len, STORAGE);
        let init = b.buffer("init", len, STORAGE);
        let preview = b.buffer("preview", len, STORAGE);
        let h = b.buffer("h", rows * dim, STORAGE);
        let qkv = b.buffer("qkv", rows * 3 * inner, STORAGE);
        let attn = b.buffer("attn", rows * inner, STORAGE);
        let ff = b.buffer("ff", rows * cfg.mlp_dim(), STORAGE);
        let software = ctx.software_kernels;
        let normed = b.buffer("normed", rows * dim, STORAGE);
        // The ε plane, then the x0 plane where the checkpoint has that head.
        let heads = if weights.x0_head { 2 } else { 1 };
        let pred = b.buffer("pred", heads * model_images * cfg.image_len(), STORAGE);
        let timesteps = b.buffer("timesteps", t_max, STORAGE);
        let prompts = b.buffer("prompts", 2 * cfg.time_dim, STORAGE);
        let cond = b.buffer("cond", 2 * t_max * cfg.time_dim, STORAGE);
        let mods = b.buffer("mods", bias_offset + weights.heads_bias.len(), STORAGE);
        ctx.queue.write_buffer(&mods, bias_offset as u64 * 4, bytemuck::cast_slice(&weights.heads_bias));
        let step_stride = (std::mem::size_of::<StepParams>() as u64)
            .next_multiple_of(ctx.limits.min_uniform_buffer_offset_alignment as u64);
        let steps = b.buffer(
            "steps",
            (step_stride as usize * t_max) / 4,
            wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        );
        let step_layout = b.kernels.step_layout.clone();
        let step_group = {
            b.stats.bind_groups += 1;
            ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("step"),
                layout: &step_layout,
                entries: &[wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &steps,
                        offset: 0,
                        size: wgpu::BufferSize::new(std::mem::size_of::<StepParams>() as u64),
                    }),
                }],
            })
        };
        let map_read = wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST;
        let readback = b.buffer("readback", len, map_read);
        let preview_staging = (0..t_max).map(|s| b.buffer(&format!("preview_{s}"), len, map_read)).collect();

        let base = MatmulParams {
            m: rows as u32,
            tokens: tokens as u32,
            uncond_images: if shape.guided { shape.images as u32 } else { 0 },
            mods_stride: mods_stride as u32,
            patch_size: cfg.patch_size as u32,
            grid: cfg.grid() as u32,
            channels: cfg.channels as u32,
            in_images: shape.images as u32,
            out_images: model_images as u32,
            bias_offset: bias_offset as u32,
            ..Default::default()
        };
        let norm = |i: usize| MatmulParams { norm_offset: (i * 2 * dim) as u32, ..base };
        let dummy = &weights.position;

        let condition_params = ConditionParams {
            width: weights.time_fc1.cols as u32,
            time_dim: cfg.time_dim as u32,
            fc1_words: weights.time_fc1.words as u32,
            fc2_words: weights.time_fc2.words as u32,
        };
        let condition_uniform = b.uniform("condition", &condition_params);
        let condition_layout = b.kernels.condition_layout.clone();
        let condition_group = b.group(
            "condition",
            &condition_layout,
            &[&condition_uniform, &timesteps, &weights.time_fc1.buffer, &weights.time_fc2.buffer, &prompts, &cond],
        );
        let mut prelude =
            vec![b.dispatch("condition".into(), Kernel::Condition, condition_group, [t_max as u32, 2, 1], &cond)];
        prelude.extend(b.matmul(
            "modulation".into(),
            (ALayout::Rows, Epilogue::None, OutLayout::Rows),
            MatmulParams { m: (2 * t_max) as u32, ..base },
            &weights.modulation,
            &cond,
            &mods,
            dummy,
        ));

        let request = b.uniform("request", &RequestParams::default());
        let sampler_layout = b.kernels.sampler_layout.clone();
        let sampler_group =
            |b: &mut Builder, name: &str| b.group(name, &sampler_layout, &[&request, &x, &pred, &preview, &init]);
        let sampler_grid = grid_for(len, SAMPLER_THREADS, ctx.limits.max_compute_workgroups_per_dimension);
        let group = sampler_group(&mut b, "init_noise");
        let start = b.dispatch("init_noise".into(), Kernel::SamplerInit, group, sampler_grid, &x);

        let mut step = b.matmul(
            "embed".into(),
            (ALayout::Patchify, Epilogue::Position, OutLayout::Rows),
            base,
            &weights.patch_embed,
            &x,
            &h,
            &weights.position,
        );
        let attention_layout = b.kernels.attention_layout.clone();
        let attention_params = AttentionParams {
            tokens: tokens as u32,
            heads: cfg.heads as u32,
            head_dim: cfg.head_dim as u32,
            scale: 1.0 / (cfg.head_dim as f32).sqrt(),
            qk_norm: cfg.qk_norm as u32,
            pad: [0; 3],
        };
        let site = AdaLnSite { h: &h, mods: &mods, normed: &normed, software };
        for (i, block) in weights.blocks.iter().enumerate() {
            let name = |op: &str| format!("blocks.{i}.{op}");
            let (none, rows) = (Epilogue::None, OutLayout::Rows);
            step.extend(b.normed_matmul(&site, name("norm1"), name("qkv"), none, rows, norm(2 * i), &block.qkv, &qkv));
            let uniform = b.uniform(&name("core"), &attention_params);
            let group = b.group(&name("core"), &attention_layout, &[&uniform, &qkv, &attn]);
            let groups = [tokens as u32, (model_images * cfg.heads) as u32, 1];
            let block_groups = model_images * cfg.heads * tokens.div_ceil(BLOCK_QUERIES as usize);
            let blocked = ctx.block_attention.unwrap_or(!software && block_groups >= BLOCK_FROM_WORKGROUPS)
                && cfg.head_dim <= BLOCK_MAX_HEAD_DIM
                && tokens <= BLOCK_MAX_TOKENS;
            let kernel = Kernel::Attention { tokens: tokens as u32, head_dim: cfg.head_dim as u32, block: blocked };
            let groups = if blocked { [(tokens as u32).div_ceil(BLOCK_QUERIES), groups[1], 1] } else { groups };
            step.push(b.dispatch(name("core"), kernel, group, groups, &attn));
            let out = (ALayout::Rows, Epilogue::Residual, OutLayout::Rows);
            step.extend(b.matmul(name("attn"), out, base, &block.out, &attn, &h, dummy));
            let params = norm(2 * i + 1);
            step.extend(b.normed_matmul(
                &site,
                name("norm2"),
                name("hidden"),
                Epilogue::Silu,
                rows,
                params,
                &block.up,
                &ff,
            ));
            step.extend(b.matmul(name("ff"), out, base, &block.down, &ff, &h, dummy));
        }
        step.extend(b.normed_matmul(
            &site,
            "final_norm".into(),
            "heads".into(),
            Epilogue::Bias,
            OutLayout::Unpatchify,
            norm(2 * cfg.depth),
            &weights.heads,
            &pred,
        ));
        let group = sampler_group(&mut b, "sampler_step");
        step.push(b.dispatch("sampler_step".into(), Kernel::SamplerStep, group, sampler_grid, &x));
        debug_assert_eq!(ATTENTION_THREADS.count_ones(), 1);

        let (stats, kernels) = (b.stats, b.used);
        Plan {
            shape,
            x,
            init,
            preview,
            timesteps,
            prompts,
            cond,
            request,
            steps,
            step_group,
            step_stride,
            readback,
            preview_staging,
            prelude,
            start,
            step,
            stats,
            kernels,
        }
    }

    /// Records `dispatches` into one compute pass; stepped kernels read step slot `slot`.
    pub fn record(&self, pass: &mut wgpu::ComputePass, kernels: &Kernels, dispatches: &[&Dispatch], slot: usize) {
        for d in dispatches {
            pass.set_pipeline(kernels.compiled(d.kernel));
            pass.set_bind_group(0, &d.group, &[]);
            if d.stepped {
                pass.set_bind_group(1, &self.step_group, &[(slot as u64 * self.step_stride) as u32]);
            }
            pass.dispatch_workgroups(d.workgroups[0], d.workgroups[1], d.workgroups[2]);
        }
    }
}
