// attention.wgsl: softmax(q·kᵀ·scale)·v for one query token of one head per workgroup.
//
// Mirrors Attention::core in src/model.rs. Reads the fused projection [rows, 3·inner] laid out
// q | k | v (each `heads` blocks of `head_dim`), writes [rows, inner] with heads side by side.
// Bindings: group 0 = params, qkv, out. Dispatch: (tokens, images·heads).
// QK-norm (params.qk_norm = 1, Config::qk_norm): each score is divided by the root mean squares
// of its query and key (eps QK_NORM_EPS inside the root), which the key loop sums beside the dot.
// Workgroup: WG threads (a power of two, at most 256) split the keys for the scores and the
// head's dimensions for the weighted sum; max and sum are tree reductions in shared memory.

override WG: u32 = 64u;
// The shape, as pipeline constants: with known bounds the driver unrolls the dimension and key
// loops and keeps several loads in flight (the uniform's tokens and head_dim must match them).
override TOKENS: u32 = 64u;
override HEAD_DIM: u32 = 128u;

const MAX_TOKENS: u32 = 1024u;
const MAX_HEAD_DIM: u32 = 256u;
const QK_NORM_EPS: f32 = 1e-6;

struct Params {
    tokens: u32,
    heads: u32,
    head_dim: u32,
    scale: f32,
    qk_norm: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

var<workgroup> query: array<f32, MAX_HEAD_DIM>;
var<workgroup> scores: array<f32, MAX_TOKENS>;
var<workgroup> reduction: array<f32, 256>;

// max (is_max) or sum of `value` over each run of `size` consecutive threads (a power of two),
// through `reduction`; every thread gets its run's result.
fn run_reduce(local: u32, value: f32, size: u32, is_max: bool) -> f32 {
    let lane = local % size;
    reduction[local] = value;
    workgroupBarrier();
    for (var width = size / 2u; width > 0u; width /= 2u) {
        if (lane < width) {
            let other = reduction[local + width];
            reduction[local] = select(reduction[local] + other, max(reduction[local], other), is_max);
        }
        workgroupBarrier();
    }
    let result = reduction[local - lane];
    workgroupBarrier();
    return result;
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) local: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let image = wid.y / params.heads;
    let head = wid.y % params.heads;
    let inner = params.heads * HEAD_DIM;
    let stride = 3u * inner;
    let row = image * TOKENS + wid.x;
    let first_row = image * TOKENS;
    let head_offset = head * HEAD_DIM;

    var local_squares = 0.0;
    for (var d = local; d < HEAD_DIM; d += WG) {
        let value = qkv[row * stride + head_offset + d];
        query[d] = value;
        local_squares += value * value;
    }
    workgroupBarrier();
    let head_dim = f32(HEAD_DIM);
    // The query's share of QK-norm, folded into the scale (the reduction is uniform either way).
    let query_rms = sqrt(run_reduce(local, local_squares, WG, false) / head_dim + QK_NORM_EPS);
    let scale = select(params.scale, params.scale / query_rms, params.qk_norm == 1u);

    var local_max = -3.4e38;
    for (var key = local; key < TOKENS; key += WG) {
        let base = (first_row + key) * stride + inner + head_offset;
        var dot = 0.0;
        var squares = 0.0;
        for (var d = 0u; d < HEAD_DIM; d++) {
            let k = qkv[base + d];
            dot += query[d] * k;
            squares += k * k;
        }
        var score = dot * scale;
        if (params.qk_norm == 1u) {
            score /= sqrt(squares / head_dim + QK_NORM_EPS);
        }
        scores[key] = score;
        local_max = max(local_max, score);
    }
    let top = run_reduce(local, local_max, WG, true);

    var local_sum = 0.0;
    for (var key = local; key < TOKENS; key += WG) {
        let weight = exp(scores[key] - top);
        scores[key] = weight;
        local_sum += weight;
    }
    let total = run_reduce(local, local_sum, WG, false);

    for (var d = local; d < HEAD_DIM; d += WG) {
        var acc = 0.0;
        for (var key = 0u; key < TOKENS; key++) {
            acc += scores[key] * qkv[(first_row + key) * stride + 2u * inner + head_offset + d];
        }
        out[row * inner + head_offset + d] = acc / total;
    }
}

// ---- block: one workgroup of 256 threads per (image, head, QB queries) -----------------------
// The per-query kernel above reads every key row once per query; this one stages QB queries in
// workgroup memory and reads each key and value once per block. Usable when HEAD_DIM ≤ 128 and
// TOKENS ≤ 64 (the tiles below), else the plan keeps `main`. Dispatch: (⌈TOKENS / QB⌉,
// images·heads). Scores: thread t takes key t % 64 for queries 4·(t / 64) .. +3. Softmax: 16
// threads a query row. Output: thread t takes dimension t % 128 for queries 8·(t / 128) .. +7.

const QB: u32 = 16u;
const BLOCK_THREADS: u32 = 256u;

var<workgroup> q_block: array<f32, 2048>;        // [QB][HEAD_DIM]
var<workgroup> block_scores: array<f32, 1024>;   // [QB][TOKENS]: scores, then softmax weights
var<workgroup> row_total: array<f32, 16>;        // [QB]: each row's sum of weights

@compute @workgroup_size(BLOCK_THREADS)
fn block(@builtin(local_invocation_index) local: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let image = wid.y / params.heads;
    let head = wid.y % params.heads;
    let inner = params.heads * HEAD_DIM;
    let stride = 3u * inner;
    let first_row = image * TOKENS;
    let head_offset = head * HEAD_DIM;
    let q0 = wid.x * QB;

    for (var e = local; e < QB * HEAD_DIM; e += BLOCK_THREADS) {
        let query = q0 + e / HEAD_DIM;
        var value = 0.0;
        if (query < TOKENS) {
            value = qkv[(first_row + query) * stride + head_offset + e % HEAD_DIM];
        }
        q_block[e] = value;
    }
    workgroupBarrier();

    let group = local / 64u;
    let key = local % 64u;
    if (key < TOKENS) {
        let base = (first_row + key) * stride + inner + head_offset;
        let rows = vec4<u32>(4u * group, 4u * group + 1u, 4u * group + 2u, 4u * group + 3u) * HEAD_DIM;
        var dot = vec4<f32>(0.0);
        var q_squares = vec4<f32>(0.0);
        var k_squares = 0.0;
        for (var d = 0u; d < HEAD_DIM; d++) {
            let k = qkv[base + d];
            let q = vec4<f32>(q_block[rows.x + d], q_block[rows.y + d], q_block[rows.z + d], q_block[rows.w + d]);
            dot += q * k;
            q_squares += q * q;
            k_squares += k * k;
        }
        var score = dot * params.scale;
        if (params.qk_norm == 1u) {
            let head_dim = f32(HEAD_DIM);
            let q_rms = sqrt(q_squares / head_dim + vec4<f32>(QK_NORM_EPS));
            score = score / q_rms / sqrt(k_squares / head_dim + QK_NORM_EPS);
        }
        let at = 4u * group * TOKENS + key;
        block_scores[at] = score.x;
        block_scores[at + TOKENS] = score.y;
        block_scores[at + 2u * TOKENS] = score.z;
        block_scores[at + 3u * TOKENS] = score.w;
    }
    workgroupBarrier();

    let row = local / 16u;
    let lane = local % 16u;
    var local_max = -3.4e38;
    for (var k = lane; k < TOKENS; k += 16u) {
        local_max = max(local_max, block_scores[row * TOKENS + k]);
    }
    let top = run_reduce(local, local_max, 16u, true);
    var local_sum = 0.0;
    for (var k = lane; k < TOKENS; k += 16u) {
        let weight = exp(block_scores[row * TOKENS + k] - top);
        block_scores[row * TOKENS + k] = weight;
        local_sum += weight;
    }
    let total = run_reduce(local, local_sum, 16u, false);
    if (lane == 0u) {
        row_total[row] = total;
    }
    workgroupBarrier();

    let half = local / 128u;
    let d = local % 128u;
    if (d < HEAD_DIM) {
        let first = 8u * half;
        var lo = vec4<f32>(0.0);
        var hi = vec4<f32>(0.0);
        for (var k = 0u; k < TOKENS; k++) {
            let v = qkv[(first_row + k) * stride + 2u * inner + head_offset + d];
            let at = first * TOKENS + k;
            lo += v * vec4<f32>(block_scores[at], block_scores[at + TOKENS], block_scores[at + 2u * TOKENS], block_scores[at + 3u * TOKENS]);
            hi += v * vec4<f32>(block_scores[at + 4u * TOKENS], block_scores[at + 5u * TOKENS], block_scores[at + 6u * TOKENS], block_scores[at + 7u * TOKENS]);
        }
        block_store(q0 + first, first, d, first_row, inner, head_offset, lo);
        block_store(q0 + first + 4u, first + 4u, d, first_row, inner, head_offset, hi);
    }
}

// Four queries' outputs at dimension d (queries past the last token are not written).
fn block_store(query: u32, row: u32, d: u32, first_row: u32, inner: u32, head_offset: u32, acc: vec4<f32>) {
    let column = head_offset + d;
    if (query < TOKENS) {
        out[(first_row + query) * inner + column] = acc.x / row_total[row];
    }
    if (query + 1u < TOKENS) {
        out[(first_row + query + 1u) * inner + column] = acc.y / row_total[row + 1u];
    }
    if (query + 2u < TOKENS) {
        out[(first_row + query + 2u) * inner + column] = acc.z / row_total[row + 2u];
    }
    if (query + 3u < TOKENS) {
        out[(first_row + query + 3u) * inner + column] = acc.w / row_total[row + 3u];
    }
}
