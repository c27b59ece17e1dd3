// attention.wgsl: softmax(q·kᵀ·scale)·v for one query token of one head per workgroup.
//
// Mirrors Attention::core in src/model.rs. Reads the fused projection [rows, 3·inner] laid out
// q | k | v (each `heads` blocks of `head_dim`), writes [rows, inner] with heads side by side.
// Bindings: group 0 = params, qkv, out. Dispatch: (tokens, images·heads).
// Workgroup: WG threads (a power of two, at most 256) split the keys for the scores and the
// head's dimensions for the weighted sum; max and sum are tree reductions in shared memory.

override WG: u32 = 64u;

const MAX_TOKENS: u32 = 1024u;
const MAX_HEAD_DIM: u32 = 256u;

struct Params {
    tokens: u32,
    heads: u32,
    head_dim: u32,
    scale: f32,
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
    let inner = params.heads * params.head_dim;
    let stride = 3u * inner;
    let row = image * params.tokens + wid.x;
    let first_row = image * params.tokens;
    let head_offset = head * params.head_dim;

    for (var d = local; d < params.head_dim; d += WG) {
        query[d] = qkv[row * stride + head_offset + d];
    }
    workgroupBarrier();

    var local_max = -3.4e38;
    for (var key = local; key < params.tokens; key += WG) {
        let base = (first_row + key) * stride + inner + head_offset;
        var dot = 0.0;
        for (var d = 0u; d < params.head_dim; d++) {
            dot += query[d] * qkv[base + d];
        }
        let score = dot * params.scale;
        scores[key] = score;
        local_max = max(local_max, score);
    }
    let top = reduce_max(local, local_max);

    var local_sum = 0.0;
    for (var key = local; key < params.tokens; key += WG) {
        let weight = exp(scores[key] - top);
        scores[key] = weight;
        local_sum += weight;
    }
    let total = reduce_sum(local, local_sum);

    for (var d = local; d < params.head_dim; d += WG) {
        var acc = 0.0;
        for (var key = 0u; key < params.tokens; key++) {
            acc += scores[key] * qkv[(first_row + key) * stride + 2u * inner + head_offset + d];
        }
        out[row * inner + head_offset + d] = acc / total;
    }
}
