// matmul_coop.wgsl: matmul.wgsl's wide tile on cooperative matrices (tensor cores): a 128 × 128
// block of Y per workgroup, f16 inputs, f32 accumulation, the same prologues and epilogues.
//
// Not a module of its own: the kernels build it as `enable f16; enable wgpu_cooperative_matrix;`
// + matmul.wgsl + this file (WGSL has no includes), so `load_a`, `wide_a_value`, `k_range` and
// `finish` are matmul.wgsl's. Only adapters with 16 × 16 × 16 f16 · f16 + f32
// cooperative matrices and 32-wide subgroups build it (`GpuContext::coop`); the others run `wide`.
//
// Precision: A is rounded to f16 when staged (W already is f16), products are summed in f32, as
// PyTorch's fp16 autocast does; tests/gpu_coop.rs judges it at that tolerance.
//
// Layout: 256 threads = 8 subgroups of 32; subgroup s owns rows 64·(s / 4) + {0..63} and
// columns 32·(s % 4) + {0..31} of the block, 4 × 2 fragments of 16 × 16. Per 32-deep K slice the
// workgroup stages A (128 rows × 32 k, row-major) and W (128 columns × 32 k, column-major, which
// is W's own [N][K] order) as f16 in workgroup memory, each row padded to COOP_STRIDE halves so
// that every fragment starts on a 16-byte boundary and neighbouring rows fall in other banks.
// The epilogue stores one fragment at a time to the subgroup's 16 × 16 f32 scratch and each lane
// finishes 8 of its outputs through matmul.wgsl's `finish` (split-K slices, fused epilogues and
// unpatchify included). The next slice is loaded into registers (`CoopSlice`) before the current
// one multiplies, as in `wide`.

const COOP_K: u32 = 32u;
const COOP_STRIDE: u32 = 40u;

var<workgroup> coop_a: array<f16, 5120>;        // [128][COOP_STRIDE]: row r, k at r·40 + k
var<workgroup> coop_w: array<f16, 5120>;        // [128][COOP_STRIDE]: column n, k at n·40 + k
var<workgroup> coop_out: array<f32, 2048>;      // [8 subgroups][16 × 16], row-major

// One K slice at k0 as this thread stages it: A rows r + 8·i (r = local / 32, i < 16) at k
// local % 32, so 32 lanes read 128 contiguous bytes of a row; W words local % 16 of columns
// c + 16·i (c = local / 16, i < 8), 16 lanes reading 64 contiguous bytes of a column.
struct CoopSlice {
    a: array<vec4<f32>, 4>,
    w: array<vec4<u32>, 2>,
}

fn coop_a4(row: u32, k: u32) -> vec4<f32> {
    return vec4<f32>(wide_a_value(row, k), wide_a_value(row + 8u, k), wide_a_value(row + 16u, k), wide_a_value(row + 24u, k));
}

fn coop_w4(col: u32, word: u32) -> vec4<u32> {
    return vec4<u32>(wide_w_word(col, word), wide_w_word(col + 16u, word), wide_w_word(col + 32u, word), wide_w_word(col + 48u, word));
}

fn coop_load(local: u32, row0: u32, col0: u32, k0: u32) -> CoopSlice {
    let row = row0 + local / COOP_K;
    let k = k0 + local % COOP_K;
    let col = col0 + local / (COOP_K / 2u);
    let word = k0 / 2u + local % (COOP_K / 2u);
    return CoopSlice(
        array<vec4<f32>, 4>(coop_a4(row, k), coop_a4(row + 32u, k), coop_a4(row + 64u, k), coop_a4(row + 96u, k)),
        array<vec4<u32>, 2>(coop_w4(col, word), coop_w4(col + 64u, word)),
    );
}

fn coop_store(local: u32, slice: CoopSlice) {
    let r = local / COOP_K;
    let k = local % COOP_K;
    for (var g = 0u; g < 4u; g++) {
        for (var j = 0u; j < 4u; j++) {
            coop_a[(r + 32u * g + 8u * j) * COOP_STRIDE + k] = f16(slice.a[g][j]);
        }
    }
    let c = local / (COOP_K / 2u);
    let at = 2u * (local % (COOP_K / 2u));
    for (var g = 0u; g < 2u; g++) {
        for (var j = 0u; j < 4u; j++) {
            let pair = unpack2x16float(slice.w[g][j]);
            let column = c + 64u * g + 16u * j;
            coop_w[column * COOP_STRIDE + at] = f16(pair.x);
            coop_w[column * COOP_STRIDE + at + 1u] = f16(pair.y);
        }
    }
}

// Writes fragment `c` (rows r0.., columns c0.. of Y) through the subgroup's scratch.
fn coop_finish(c: coop_mat16x16<f32, C>, sid: u32, lane: u32, r0: u32, c0: u32, split: u32) {
    coopStoreT(c, &coop_out[sid * 256u], 16u);
    workgroupBarrier();
    for (var q = 0u; q < 8u; q++) {
        let e = lane + 32u * q;
        let row = r0 + e / 16u;
        let col = c0 + e % 16u;
        if (row < params.m && col < params.n) {
            finish(row, col, coop_out[sid * 256u + e], split);
        }
    }
    workgroupBarrier();
}

@compute @workgroup_size(256)
fn coop(
    @builtin(local_invocation_index) local: u32,
    @builtin(subgroup_id) sid: u32,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let row0 = wid.y * WIDE_TILE;
    let col0 = wid.x * WIDE_TILE;
    let a_base = (sid / 4u) * 64u * COOP_STRIDE;
    let w_base = (sid % 4u) * 32u * COOP_STRIDE;
    var c00 = coop_mat16x16<f32, C>();
    var c01 = coop_mat16x16<f32, C>();
    var c10 = coop_mat16x16<f32, C>();
    var c11 = coop_mat16x16<f32, C>();
    var c20 = coop_mat16x16<f32, C>();
    var c21 = coop_mat16x16<f32, C>();
    var c30 = coop_mat16x16<f32, C>();
    var c31 = coop_mat16x16<f32, C>();
    let range = k_range(wid.z);
    // The next slice's loads are issued before this slice's multiplies.
    var next = coop_load(local, row0, col0, range.x);
    for (var k0 = range.x; k0 < range.y; k0 += COOP_K) {
        coop_store(local, next);
        workgroupBarrier();
        if (k0 + COOP_K < range.y) {
            next = coop_load(local, row0, col0, k0 + COOP_K);
        }
        for (var kk = 0u; kk < COOP_K; kk += 16u) {
            let b0 = coopLoad<coop_mat16x16<f16, B>>(&coop_w[w_base + kk], COOP_STRIDE);
            let b1 = coopLoad<coop_mat16x16<f16, B>>(&coop_w[w_base + 16u * COOP_STRIDE + kk], COOP_STRIDE);
            let a0 = coopLoadT<coop_mat16x16<f16, A>>(&coop_a[a_base + kk], COOP_STRIDE);
            c00 = coopMultiplyAdd(a0, b0, c00);
            c01 = coopMultiplyAdd(a0, b1, c01);
            let a1 = coopLoadT<coop_mat16x16<f16, A>>(&coop_a[a_base + 16u * COOP_STRIDE + kk], COOP_STRIDE);
            c10 = coopMultiplyAdd(a1, b0, c10);
            c11 = coopMultiplyAdd(a1, b1, c11);
            let a2 = coopLoadT<coop_mat16x16<f16, A>>(&coop_a[a_base + 32u * COOP_STRIDE + kk], COOP_STRIDE);
            c20 = coopMultiplyAdd(a2, b0, c20);
            c21 = coopMultiplyAdd(a2, b1, c21);
            let a3 = coopLoadT<coop_mat16x16<f16, A>>(&coop_a[a_base + 48u * COOP_STRIDE + kk], COOP_STRIDE);
            c30 = coopMultiplyAdd(a3, b0, c30);
            c31 = coopMultiplyAdd(a3, b1, c31);
        }
        workgroupBarrier();
    }
    let r0 = row0 + (sid / 4u) * 64u;
    let c0 = col0 + (sid % 4u) * 32u;
    coop_finish(c00, sid, lane, r0, c0, wid.z);
    coop_finish(c01, sid, lane, r0, c0 + 16u, wid.z);
    coop_finish(c10, sid, lane, r0 + 16u, c0, wid.z);
    coop_finish(c11, sid, lane, r0 + 16u, c0 + 16u, wid.z);
    coop_finish(c20, sid, lane, r0 + 32u, c0, wid.z);
    coop_finish(c21, sid, lane, r0 + 32u, c0 + 16u, wid.z);
    coop_finish(c30, sid, lane, r0 + 48u, c0, wid.z);
    coop_finish(c31, sid, lane, r0 + 48u, c0 + 16u, wid.z);
}
