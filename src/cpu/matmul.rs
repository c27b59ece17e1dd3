//! The CPU engine's matrix product `C = A·Wᵀ`, with the weight `W` (`[n, k]`, PyTorch's
//! `[out, in]`) packed once at load into panels of a tile's width, so the inner loop reads it
//! front to back.
//!
//! A tile is `rows × cols` outputs kept in registers over the whole K walk (no K blocking: at
//! batch 1 every A is at most 64 × 2048 floats, which stays in L2 while the panels stream
//! through). Each tile broadcasts one A value per row and multiplies it into a panel row of
//! `cols` weights. The tile shape is the kernel's (`Kernel`), picked once by CPU features:
//! AVX-512 8 × 32 (16 zmm sums), AVX2 6 × 16 (12 ymm sums), both with FMA, and 4 × 8 written
//! with wasm SIMD128 intrinsics in the browser or as plain loops elsewhere. The tiles are
//! written with intrinsics because LLVM, given one generic tile and a `#[target_feature]`,
//! kept the sums in memory (30× slower, measured).
//!
//! Threads split the panels (output columns), so each thread reads a disjoint part of the
//! weights: at batch 1 the product has only 64 rows, and splitting those would make every
//! thread stream every weight. Products under [`PARALLEL_FROM`] multiply-adds stay on the
//! calling thread. The thread count is rayon's (`RAYON_NUM_THREADS`).

use rayon::prelude::*;

/// Below this many multiply-adds a product runs on one thread: rayon's hand-off (a few µs)
/// would cost more than it saves.
pub const PARALLEL_FROM: usize = 1 << 18;

/// Floats of A per row block: rows of A are walked in blocks of about 512 KiB, so a large
/// batch's A stays in L2 while every panel passes over it.
const A_BLOCK_FLOATS: usize = 1 << 17;

/// The tile shape and instruction set of the product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    Avx512,
    Avx2,
    Portable,
}

impl Kernel {
    /// The widest kernel this CPU runs.
    pub fn detect() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("fma") {
                return Kernel::Avx512;
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return Kernel::Avx2;
            }
        }
        Kernel::Portable
    }

    /// Every kernel this CPU runs, widest first (the tests check each against a naive product).
    pub fn available() -> Vec<Kernel> {
        let all = [Kernel::Avx512, Kernel::Avx2, Kernel::Portable];
        let widest = all.iter().position(|&k| k == Kernel::detect()).unwrap_or(all.len() - 1);
        all[widest..].to_vec()
    }

    pub fn name(self) -> &'static str {
        match self {
            Kernel::Avx512 => "avx512",
            Kernel::Avx2 => "avx2",
            Kernel::Portable if cfg!(target_feature = "simd128") => "simd128",
            Kernel::Portable => "portable",
        }
    }

    /// Output columns per tile, and so the width of a packed panel.
    pub fn cols(self) -> usize {
        match self {
            Kernel::Avx512 => 32,
            Kernel::Avx2 => 16,
            Kernel::Portable => 8,
        }
    }
}

/// A weight `[n, k]` packed for `kernel`: panel `p` holds columns `p·cols ..` of the product as
/// `k` rows of `cols` floats, the last panel padded with zeros.
#[derive(Debug, Clone)]
pub struct Packed {
    kernel: Kernel,
    k: usize,
    n: usize,
    panels: Vec<f32>,
}

impl Packed {
    /// Packs `weight`, `[n, k]` row-major. `weight` must hold `n·k` values.
    pub fn new(kernel: Kernel, weight: &[f32], n: usize, k: usize) -> Packed {
        let cols = kernel.cols();
        let count = n.div_ceil(cols);
        let mut panels = vec![0.0; count * k * cols];
        for (p, panel) in panels.chunks_exact_mut(k * cols).enumerate() {
            for j in 0..cols.min(n - p * cols) {
                let row = &weight[(p * cols + j) * k..][..k];
                for (kk, &w) in row.iter().enumerate() {
                    panel[kk * cols + j] = w;
                }
            }
        }
        Packed { kernel, k, n, panels }
    }

    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// Input width (columns of A).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Output width (columns of C).
    pub fn n(&self) -> usize {
        self.n
    }
}

/// What is done with each output value `s` (the sum over K) as the tile is written.
#[derive(Debug, Clone, Copy)]
pub enum Epilogue<'a> {
    /// `c = s`
    Store,
    /// `c = s + bias[col]`
    Bias(&'a [f32]),
    /// `c = silu(s)`
    Silu,
    /// `c += s`: the residual connection.
    Accumulate,
    /// `c = s + rows[row mod period][col]`: the position embedding, one row per token.
    AddPeriodic { rows: &'a [f32], period: usize },
}

/// `silu(v) = v·sigmoid(v)`, written as candle writes it.
pub fn silu(v: f32) -> f32 {
    v / (1.0 + (-v).exp())
}

/// `c[m, n] (op)= a[m, k] · wᵀ` with `epilogue` applied to each sum. `a` and `c` are row-major
/// and must hold at least `m·k` and `m·n` values.
pub fn matmul(a: &[f32], m: usize, w: &Packed, c: &mut [f32], epilogue: Epilogue) {
    let (k, n, cols) = (w.k, w.n, w.kernel.cols());
    let (a, c) = (&a[..m * k], &mut c[..m * n]);
    let panels = n.div_ceil(cols);
    let out = Out { ptr: c.as_mut_ptr(), n };
    let parallel = m * n * k >= PARALLEL_FROM && rayon::current_num_threads() > 1;
    let block = (A_BLOCK_FLOATS / k.max(1)).max(8);
    for start in (0..m).step_by(block) {
        let rows = block.min(m - start);
        let job = Rows { a: &a[start * k..(start + rows) * k], m: rows, k, first_row: start, epilogue };
        let one = |p: usize| {
            let panel = &w.panels[p * k * cols..(p + 1) * k * cols];
            let (col, width) = (p * cols, cols.min(n - p * cols));
            // SAFETY: panel `p` writes only columns col..col + width of rows start..start + rows,
            // inside `c`, and no two panels share a column.
            unsafe { run(w.kernel, &job, panel, &out, col, width) }
        };
        if parallel {
            (0..panels).into_par_iter().for_each(one);
        } else {
            (0..panels).for_each(one);
        }
    }
}

/// One block of A's rows and what to do with the sums.
struct Rows<'a> {
    a: &'a [f32],
    m: usize,
    k: usize,
    /// Row of C that `a`'s first row writes.
    first_row: usize,
    epilogue: Epilogue<'a>,
}

/// C, shared by the threads: each writes its own columns.
struct Out {
    ptr: *mut f32,
    n: usize,
}

// SAFETY: threads write disjoint columns through it (see `matmul`).
unsafe impl Sync for Out {}

/// # Safety
/// `kernel`'s instructions must exist on this CPU (`Kernel::detect`), and columns
/// `col..col + width` of the block's rows must be this call's alone.
unsafe fn run(kernel: Kernel, job: &Rows, panel: &[f32], out: &Out, col: usize, width: usize) {
    match kernel {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller checked the CPU has AVX-512F and FMA.
        Kernel::Avx512 => unsafe { panel_tiles::<8, 32>(job, panel, out, col, width, |l, p| x86::tile_avx512(l, p)) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller checked the CPU has AVX2 and FMA.
        Kernel::Avx2 => unsafe { panel_tiles::<6, 16>(job, panel, out, col, width, |l, p| x86::tile_avx2(l, p)) },
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        _ => unsafe { panel_tiles::<4, 8>(job, panel, out, col, width, |l, p| wasm::tile_simd128(l, p)) },
        #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
        _ => unsafe { panel_tiles::<4, 8>(job, panel, out, col, width, tile) },
    }
}

/// Every tile of one panel: `ROWS` rows of A at a time down the block, each multiplied by
/// `tile`.
///
/// # Safety
/// As [`run`]; `panel` holds `k · COLS` floats.
#[inline(always)]
unsafe fn panel_tiles<const ROWS: usize, const COLS: usize>(
    job: &Rows,
    panel: &[f32],
    out: &Out,
    col: usize,
    width: usize,
    tile: impl Fn(&[*const f32; ROWS], &[[f32; COLS]]) -> [[f32; COLS]; ROWS],
) {
    let (panel, _) = panel.as_chunks::<COLS>();
    let panel = &panel[..job.k];
    for top in (0..job.m).step_by(ROWS) {
        let rows = ROWS.min(job.m - top);
        // A short last tile repeats its last row; those sums are never written. Each lane
        // points at k readable values, which is all a tile reads.
        let lanes: [*const f32; ROWS] = std::array::from_fn(|i| job.a[(top + i.min(rows - 1)) * job.k..].as_ptr());
        let sums = tile(&lanes, panel);
        for (i, row) in sums.iter().enumerate().take(rows) {
            let r = job.first_row + top + i;
            // SAFETY: row r and columns col..col + width lie inside C and are this call's.
            let dst = unsafe { std::slice::from_raw_parts_mut(out.ptr.add(r * out.n + col), width) };
            finish(dst, &row[..width], r, col, job.epilogue);
        }
    }
}

/// The portable tile: plain loops, for CPUs and targets without the kernels below.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
fn tile<const ROWS: usize, const COLS: usize>(
    lanes: &[*const f32; ROWS],
    panel: &[[f32; COLS]],
) -> [[f32; COLS]; ROWS] {
    let mut sums = [[0.0f32; COLS]; ROWS];
    for (kk, weights) in panel.iter().enumerate() {
        for (sum, &lane) in sums.iter_mut().zip(lanes) {
            // SAFETY: every lane points at panel.len() readable values (see `panel_tiles`).
            let a = unsafe { *lane.add(kk) };
            for (s, &w) in sum.iter_mut().zip(weights) {
                *s += a * w;
            }
        }
    }
    sums
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// 8 rows × 32 columns: 16 zmm sums, two weight loads and eight broadcasts per K step.
    ///
    /// # Safety
    /// The CPU has AVX-512F and FMA; every lane points at `panel.len()` readable values.
    #[target_feature(enable = "avx512f,fma")]
    pub unsafe fn tile_avx512(lanes: &[*const f32; 8], panel: &[[f32; 32]]) -> [[f32; 32]; 8] {
        let mut acc = [[_mm512_setzero_ps(); 2]; 8];
        for (kk, w) in panel.iter().enumerate() {
            let (w0, w1) = unsafe { (_mm512_loadu_ps(w.as_ptr()), _mm512_loadu_ps(w.as_ptr().add(16))) };
            for (sum, &lane) in acc.iter_mut().zip(lanes) {
                let a = _mm512_set1_ps(unsafe { *lane.add(kk) });
                sum[0] = _mm512_fmadd_ps(a, w0, sum[0]);
                sum[1] = _mm512_fmadd_ps(a, w1, sum[1]);
            }
        }
        let mut out = [[0.0; 32]; 8];
        for (row, sum) in out.iter_mut().zip(&acc) {
            unsafe {
                _mm512_storeu_ps(row.as_mut_ptr(), sum[0]);
                _mm512_storeu_ps(row.as_mut_ptr().add(16), sum[1]);
            }
        }
        out
    }

    /// 6 rows × 16 columns: 12 ymm sums, two weight loads and six broadcasts per K step.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA; every lane points at `panel.len()` readable values.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn tile_avx2(lanes: &[*const f32; 6], panel: &[[f32; 16]]) -> [[f32; 16]; 6] {
        let mut acc = [[_mm256_setzero_ps(); 2]; 6];
        for (kk, w) in panel.iter().enumerate() {
            let (w0, w1) = unsafe { (_mm256_loadu_ps(w.as_ptr()), _mm256_loadu_ps(w.as_ptr().add(8))) };
            for (sum, &lane) in acc.iter_mut().zip(lanes) {
                let a = _mm256_set1_ps(unsafe { *lane.add(kk) });
                sum[0] = _mm256_fmadd_ps(a, w0, sum[0]);
                sum[1] = _mm256_fmadd_ps(a, w1, sum[1]);
            }
        }
        let mut out = [[0.0; 16]; 6];
        for (row, sum) in out.iter_mut().zip(&acc) {
            unsafe {
                _mm256_storeu_ps(row.as_mut_ptr(), sum[0]);
                _mm256_storeu_ps(row.as_mut_ptr().add(8), sum[1]);
            }
        }
        out
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm {
    use core::arch::wasm32::*;

    /// 4 rows × 8 columns: 8 v128 sums, two weight loads and four splats per K step.
    pub fn tile_simd128(lanes: &[*const f32; 4], panel: &[[f32; 8]]) -> [[f32; 8]; 4] {
        let mut acc = [[f32x4_splat(0.0); 2]; 4];
        for (kk, w) in panel.iter().enumerate() {
            // SAFETY: `w` is 8 floats; unaligned v128 loads are allowed.
            let (w0, w1) = unsafe { (v128_load(w.as_ptr().cast()), v128_load(w.as_ptr().add(4).cast())) };
            for (sum, &lane) in acc.iter_mut().zip(lanes) {
                // SAFETY: every lane points at panel.len() readable values (see `panel_tiles`).
                let a = f32x4_splat(unsafe { *lane.add(kk) });
                sum[0] = f32x4_add(sum[0], f32x4_mul(a, w0));
                sum[1] = f32x4_add(sum[1], f32x4_mul(a, w1));
            }
        }
        let mut out = [[0.0; 8]; 4];
        for (row, sum) in out.iter_mut().zip(&acc) {
            // SAFETY: each row is 8 floats.
            unsafe {
                v128_store(row.as_mut_ptr().cast(), sum[0]);
                v128_store(row.as_mut_ptr().add(4).cast(), sum[1]);
            }
        }
        out
    }
}

/// Writes one tile row's sums into `dst` (row `row` of C from column `col`).
#[inline(always)]
fn finish(dst: &mut [f32], sums: &[f32], row: usize, col: usize, epilogue: Epilogue) {
    match epilogue {
        Epilogue::Store => dst.copy_from_slice(sums),
        Epilogue::Bias(bias) => {
            for ((d, &s), &b) in dst.iter_mut().zip(sums).zip(&bias[col..]) {
                *d = s + b;
            }
        }
        Epilogue::Silu => {
            for (d, &s) in dst.iter_mut().zip(sums) {
                *d = silu(s);
            }
        }
        Epilogue::Accumulate => {
            for (d, &s) in dst.iter_mut().zip(sums) {
                *d += s;
            }
        }
        Epilogue::AddPeriodic { rows, period } => {
            let n = rows.len() / period;
            let add = &rows[(row % period) * n + col..];
            for ((d, &s), &p) in dst.iter_mut().zip(sums).zip(add) {
                *d = s + p;
            }
        }
    }
}
