// matmul.wgsl: Y = prologue(A) · Wᵀ, then an epilogue. f32 arithmetic, f16 weights.
//
// Mirrors candle_nn::Linear::forward (x · wᵀ) in src/model.rs, with its neighbours fused in:
//   A_MODE    0  A is row-major activations [M, K]
//             1  A is the image batch x, patchified on the fly (src/patch.rs::patchify)
//             2  A is AdaLn::forward of row-major activations: each workgroup computes the mean and
//                unbiased std of its rows, then modulates with scale/shift rows read from `aux`
//   EPILOGUE  0  none   1  SiLU   2  add into Y (residual)
//             3  + aux[(row % tokens)·N + col] (position embedding)   4  + aux[bias_offset + col] (bias)
//   OUT_MODE  0  Y is row-major [M, N]
//             1  unpatchify: column block h of width C·P·P goes to image plane h of Y
//                ([heads][images][C][H][W]), as src/patch.rs::unpatchify
//
// Bindings: group 0 = params, A, W, Y, aux; group 1 = the step (dynamic offset; its index
// selects the modulation row). W holds f16 pairs, `k_words` u32 per output row, zero-padded
// (K-major for `direct`, below).
// Entry points:
//   main    16×16 threads own a (16·ROWS) × (16·COLS) block of Y, staged through workgroup memory.
//           Thread (x, y) owns rows y + 16i and columns x + 16j, so neighbours read neighbouring words.
//   direct  64 threads, each owns 4 rows × 8 columns (rows 4·wid.y + i, columns lane + 64j;
//           COLS must be 8), reading A and W straight from memory with no barriers: for software
//           adapters (lavapipe, SwiftShader), where every barrier costs a round of thread switches
//           and lanes run as SIMD. W is then stored K-major (word w of column n at w·N + n) so
//           neighbouring lanes load contiguously. Dispatch (⌈N / 512⌉, ⌈M / 4⌉).

override ROWS: u32 = 4u;      // outputs per thread along M, at most 4
override COLS: u32 = 4u;      // outputs per thread along N, at most 4 for main; 8 for direct
override A_MODE: u32 = 0u;
override EPILOGUE: u32 = 0u;
override OUT_MODE: u32 = 0u;

const SIDE: u32 = 16u;
const THREADS: u32 = 256u;
const TILE_K: u32 = 16u;
const MAX_TILE: u32 = 64u;
const ADALN_EPS: f32 = 1e-5;

struct Params {
    m: u32,
    n: u32,
    k: u32,
    k_words: u32,
    tokens: u32,
    // Images [0, uncond_images) of a guided batch use the empty prompt's modulation.
    uncond_images: u32,
    // Where this AdaLN's scale row starts inside one modulation row; its shift row follows at + k.
    norm_offset: u32,
    mods_stride: u32,
    patch_size: u32,
    grid: u32,
    channels: u32,
    // Images in the x buffer that A_MODE 1 reads; model rows beyond them reuse them (guidance).
    in_images: u32,
    // Images per head plane for OUT_MODE 1.
    out_images: u32,
    // Where the bias starts in `aux` for EPILOGUE 4 (it sits after the modulation rows).
    bias_offset: u32,
    pad0: u32,
    pad1: u32,
}

struct Step {
    index: u32,
    tag: u32,
    a: f32,
    b: f32,
    c: f32,
    t: f32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a_in: array<f32>;
@group(0) @binding(2) var<storage, read> weights: array<u32>;
@group(0) @binding(3) var<storage, read_write> y_out: array<f32>;
@group(0) @binding(4) var<storage, read> aux: array<f32>;
@group(1) @binding(0) var<uniform> step: Step;

var<workgroup> tile_a: array<f32, 1024>;   // [TILE_K][MAX_TILE]
var<workgroup> tile_w: array<f32, 1024>;   // [TILE_K][MAX_TILE]
var<workgroup> row_mean: array<f32, 64>;
var<workgroup> row_rstd: array<f32, 64>;
var<workgroup> partial: array<f32, 256>;

fn image_index(image: u32, channel: u32, token: u32, within: u32) -> u32 {
    let p = params.patch_size;
    let side = params.grid * p;
    let y = (token / params.grid) * p + within / p;
    let x = (token % params.grid) * p + within % p;
    return ((image * params.channels + channel) * side + y) * side + x;
}

fn load_a(row: u32, col: u32) -> f32 {
    if (A_MODE == 1u) {
        let image = (row / params.tokens) % params.in_images;
        let area = params.patch_size * params.patch_size;
        return a_in[image_index(image, col / area, row % params.tokens, col % area)];
    }
    return a_in[row * params.k + col];
}

// Mean and 1/(unbiased std + eps) of the tile's rows, over all K columns, in two passes
// (centred sum of squares), as AdaLn::forward computes them.
fn row_stats(local: u32, row0: u32) {
    let per_row = THREADS / (SIDE * ROWS);
    let r = local / per_row;
    let part = local % per_row;
    let row = row0 + r;
    var sum = 0.0;
    if (row < params.m) {
        for (var col = part; col < params.k; col += per_row) {
            sum += a_in[row * params.k + col];
        }
    }
    partial[local] = sum;
    workgroupBarrier();
    if (part == 0u) {
        var total = 0.0;
        for (var i = 0u; i < per_row; i++) {
            total += partial[local + i];
        }
        row_mean[r] = total / f32(params.k);
    }
    workgroupBarrier();
    let mean = row_mean[r];
    var squares = 0.0;
    if (row < params.m) {
        for (var col = part; col < params.k; col += per_row) {
            let d = a_in[row * params.k + col] - mean;
            squares += d * d;
        }
    }
    partial[local] = squares;
    workgroupBarrier();
    if (part == 0u) {
        var total = 0.0;
        for (var i = 0u; i < per_row; i++) {
            total += partial[local + i];
        }
        row_rstd[r] = 1.0 / (sqrt(total / f32(params.k - 1u)) + ADALN_EPS);
    }
    workgroupBarrier();
}

// AdaLN's modulation of one normalised value.
fn modulate_normed(normed: f32, row: u32, col: u32) -> f32 {
    let variant = select(0u, 1u, row / params.tokens >= params.uncond_images);
    let base = (step.index * 2u + variant) * params.mods_stride + params.norm_offset;
    return normed * (1.0 + aux[base + col]) + aux[base + params.k + col];
}

fn modulate(value: f32, tile_row: u32, row: u32, col: u32) -> f32 {
    return modulate_normed((value - row_mean[tile_row]) * row_rstd[tile_row], row, col);
}

fn store(row: u32, col: u32, sum: f32) {
    var value = sum;
    if (EPILOGUE == 1u) {
        value = value / (1.0 + exp(-value));
    }
    if (EPILOGUE == 3u) {
        value += aux[(row % params.tokens) * params.n + col];
    }
    if (EPILOGUE == 4u) {
        value += aux[params.bias_offset + col];
    }
    var index = row * params.n + col;
    if (OUT_MODE == 1u) {
        let area = params.patch_size * params.patch_size;
        let width = params.channels * area;
        let head = col / width;
        let within = col % width;
        let image = head * params.out_images + row / params.tokens;
        index = image_index(image, within / area, row % params.tokens, within % area);
    }
    if (EPILOGUE == 2u) {
        value += y_out[index];
    }
    y_out[index] = value;
}

@compute @workgroup_size(16, 16)
fn main(
    @builtin(local_invocation_index) local: u32,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let tile_m = SIDE * ROWS;
    let tile_n = SIDE * COLS;
    let row0 = wid.y * tile_m;
    let col0 = wid.x * tile_n;
    if (A_MODE == 2u) {
        row_stats(local, row0);
    }
    var acc: array<f32, 16>;
    for (var k0 = 0u; k0 < params.k; k0 += TILE_K) {
        for (var i = local; i < TILE_K * tile_m; i += THREADS) {
            let tile_row = i / TILE_K;
            let row = row0 + tile_row;
            let col = k0 + i % TILE_K;
            var value = 0.0;
            if (row < params.m && col < params.k) {
                value = load_a(row, col);
                if (A_MODE == 2u) {
                    value = modulate(value, tile_row, row, col);
                }
            }
            tile_a[(i % TILE_K) * MAX_TILE + tile_row] = value;
        }
        for (var i = local; i < (TILE_K / 2u) * tile_n; i += THREADS) {
            let pair = i % (TILE_K / 2u);
            let tile_col = i / (TILE_K / 2u);
            let col = col0 + tile_col;
            let word = k0 / 2u + pair;
            var w = vec2<f32>(0.0, 0.0);
            if (col < params.n && word < params.k_words) {
                w = unpack2x16float(weights[col * params.k_words + word]);
            }
            tile_w[(2u * pair) * MAX_TILE + tile_col] = w.x;
            tile_w[(2u * pair + 1u) * MAX_TILE + tile_col] = w.y;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TILE_K; kk++) {
            for (var i = 0u; i < ROWS; i++) {
                let a = tile_a[kk * MAX_TILE + lid.y + i * SIDE];
                for (var j = 0u; j < COLS; j++) {
                    acc[i * 4u + j] += a * tile_w[kk * MAX_TILE + lid.x + j * SIDE];
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < ROWS; i++) {
        let row = row0 + lid.y + i * SIDE;
        for (var j = 0u; j < COLS; j++) {
            let col = col0 + lid.x + j * SIDE;
            if (row < params.m && col < params.n) {
                store(row, col, acc[i * 4u + j]);
            }
        }
    }
}

// Mean and 1/(unbiased std + eps) of one row, by one thread.
fn single_row_stats(row: u32) -> vec2<f32> {
    var sum = 0.0;
    for (var col = 0u; col < params.k; col++) {
        sum += a_in[row * params.k + col];
    }
    let mean = sum / f32(params.k);
    var squares = 0.0;
    for (var col = 0u; col < params.k; col++) {
        let d = a_in[row * params.k + col] - mean;
        squares += d * d;
    }
    return vec2<f32>(mean, 1.0 / (sqrt(squares / f32(params.k - 1u)) + ADALN_EPS));
}

// Columns col and col + 1 of A's row (0 past K), AdaLN-modulated in mode 2.
fn load_pair(row: u32, col: u32, stats: vec2<f32>) -> vec2<f32> {
    var a = vec2<f32>(load_a(row, col), 0.0);
    if (col + 1u < params.k) {
        a.y = load_a(row, col + 1u);
    }
    if (A_MODE == 2u) {
        a.x = modulate_normed((a.x - stats.x) * stats.y, row, col);
        if (col + 1u < params.k) {
            a.y = modulate_normed((a.y - stats.x) * stats.y, row, col + 1u);
        }
    }
    return a;
}

fn direct_stats(row: u32) -> vec2<f32> {
    if (A_MODE == 2u) {
        return single_row_stats(row);
    }
    return vec2<f32>(0.0, 1.0);
}

// 4 rows × 8 columns per thread, unrolled by hand: software adapters keep neither loops over an
// override nor dynamically indexed accumulators in registers; each weight word loaded serves
// four rows and each A value eight columns. `acc` holds columns lane + 64j for j < 4, `bcc` the
// next four.
@compute @workgroup_size(64)
fn direct(
    @builtin(local_invocation_index) lane: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let row0 = wid.y * 4u;
    let col0 = wid.x * 64u * COLS + lane;
    if (row0 >= params.m) {
        return;
    }
    // Rows and columns past the edge repeat the last one; their results are not stored.
    let last_row = params.m - 1u;
    let rows = vec4<u32>(row0, min(row0 + 1u, last_row), min(row0 + 2u, last_row), min(row0 + 3u, last_row));
    let last_col = params.n - 1u;
    let cols = min(vec4<u32>(col0, col0 + 64u, col0 + 128u, col0 + 192u), vec4<u32>(last_col));
    let cols_b = min(vec4<u32>(col0 + 256u, col0 + 320u, col0 + 384u, col0 + 448u), vec4<u32>(last_col));
    let s0 = direct_stats(rows.x);
    let s1 = direct_stats(rows.y);
    let s2 = direct_stats(rows.z);
    let s3 = direct_stats(rows.w);
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var bcc0 = vec4<f32>(0.0);
    var bcc1 = vec4<f32>(0.0);
    var bcc2 = vec4<f32>(0.0);
    var bcc3 = vec4<f32>(0.0);
    for (var word = 0u; word < params.k_words; word++) {
        let col = 2u * word;
        let base = word * params.n;
        let w0 = unpack2x16float(weights[base + cols.x]);
        let w1 = unpack2x16float(weights[base + cols.y]);
        let w2 = unpack2x16float(weights[base + cols.z]);
        let w3 = unpack2x16float(weights[base + cols.w]);
        let v0 = unpack2x16float(weights[base + cols_b.x]);
        let v1 = unpack2x16float(weights[base + cols_b.y]);
        let v2 = unpack2x16float(weights[base + cols_b.z]);
        let v3 = unpack2x16float(weights[base + cols_b.w]);
        let a0 = load_pair(rows.x, col, s0);
        let a1 = load_pair(rows.y, col, s1);
        let a2 = load_pair(rows.z, col, s2);
        let a3 = load_pair(rows.w, col, s3);
        acc0 += vec4<f32>(dot(a0, w0), dot(a0, w1), dot(a0, w2), dot(a0, w3));
        acc1 += vec4<f32>(dot(a1, w0), dot(a1, w1), dot(a1, w2), dot(a1, w3));
        acc2 += vec4<f32>(dot(a2, w0), dot(a2, w1), dot(a2, w2), dot(a2, w3));
        acc3 += vec4<f32>(dot(a3, w0), dot(a3, w1), dot(a3, w2), dot(a3, w3));
        bcc0 += vec4<f32>(dot(a0, v0), dot(a0, v1), dot(a0, v2), dot(a0, v3));
        bcc1 += vec4<f32>(dot(a1, v0), dot(a1, v1), dot(a1, v2), dot(a1, v3));
        bcc2 += vec4<f32>(dot(a2, v0), dot(a2, v1), dot(a2, v2), dot(a2, v3));
        bcc3 += vec4<f32>(dot(a3, v0), dot(a3, v1), dot(a3, v2), dot(a3, v3));
    }
    let accs = array<vec4<f32>, 8>(acc0, acc1, acc2, acc3, bcc0, bcc1, bcc2, bcc3);
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + i;
        for (var j = 0u; j < 8u; j++) {
            let col = col0 + 64u * j;
            if (row < params.m && col < params.n) {
                store(row, col, accs[i + 4u * (j / 4u)][j % 4u]);
            }
        }
    }
}
