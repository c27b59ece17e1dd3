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

fn reduce_max(local: u32, value: f32) -> f32 {
    reduction[local] = value;
    workgroupBarrier();
    for (var width = WG / 2u; width > 0u; width /= 2u) {
        if (local < width) {
            reduction[local] = max(reduction[local], reduction[local + width]);
        }
        workgroupBarrier();
    }
    let result = reduction[0];
    workgroupBarrier();
    return result;
}

fn reduce_sum(local: u32, value: f32) -> f32 {
    reduction[local] = value;
    workgroupBarrier();
    for (var width = WG / 2u; width > 0u; width /= 2u) {
        if (local < width) {
            reduction[local] += reduction[local + width];
        }
        workgroupBarrier();
    }
    let result = reduction[0];
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
    let query_rms = sqrt(reduce_sum(local, local_squares) / head_dim + QK_NORM_EPS);
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
    let top = reduce_max(local, local_max);

    var local_sum = 0.0;
    for (var key = local; key < TOKENS; key += WG) {
        let weight = exp(scores[key] - top);
        scores[key] = weight;
        local_sum += weight;
    }
    let total = reduce_sum(local, local_sum);

    for (var d = local; d < HEAD_DIM; d += WG) {
        var acc = 0.0;
        for (var key = 0u; key < TOKENS; key++) {
            acc += scores[key] * qkv[(first_row + key) * stride + 2u * inner + head_offset + d];
        }
        out[row * inner + head_offset + d] = acc / total;
    }
}
