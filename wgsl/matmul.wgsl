// matmul.wgsl: Y = prologue(A) · Wᵀ, then an epilogue. f32 arithmetic, f16 weights.
//
// Mirrors candle_nn::Linear::forward (x · wᵀ) in src/model.rs, with its neighbours fused in:
//   A_MODE    0  A is row-major activations [M, K] (AdaLN, where it precedes, is adaln.wgsl's)
//             1  A is the image batch x, patchified on the fly (src/patch.rs::patchify)
//   EPILOGUE  0  none   1  SiLU   2  add into Y (residual)
//             3  + aux[(row % tokens)·N + col] (position embedding)   4  + aux[bias_offset + col] (bias)
//   OUT_MODE  0  Y is row-major [M, N]
//             1  unpatchify: column block h of width C·P·P goes to image plane h of Y
//                ([heads][images][C][H][W]), as src/patch.rs::unpatchify
//             2  split-K partial: workgroup z sums only K columns [z·k_chunk, (z+1)·k_chunk) and
//                writes the raw sum to slice z ([splits][M, N]) of Y; no epilogue
//
// Split-K: few output tiles (a batch of one image has 64 rows) leave most of a big GPU idle
// while each workgroup walks all of K alone. The plan then runs the matmul with OUT_MODE 2 over
// `splits` K slices (workgroup z), and the `reduce` entry point adds the slices in order and
// applies the real epilogue and output layout; A there is the partial buffer.
//
// Bindings: group 0 = params, A, W, Y, aux. W holds f16 pairs, `k_words` u32 per output row, zero-padded
// (K-major for `direct`, below).
// Entry points:
//   main    16×16 threads own a (16·ROWS) × (16·COLS) block of Y, staged through workgroup memory.
//           Thread (x, y) owns rows y + 16i and columns x + 16j, so neighbours read neighbouring words.
//   wide    16×16 threads own a 128 × 128 block, 8 × 8 per thread (rows 4·y + {0..3} and
//           64 + 4·y + {0..3}, the same for columns with x), read from workgroup memory as vec4s:
//           64 multiply-adds per four vec4 loads. ROWS and COLS must be 8. For many rows. The
//           next K slice is loaded into registers before this one multiplies (H100, batch 64:
//           198 → 180 ms on this tile, 127 → 124 on coop), so its latency overlaps the arithmetic.
//   reduce  one thread per output: the sum of the split-K slices, then the epilogue.
//   direct  64 threads, each owns 4 rows × 8 columns (rows 4·wid.y + i, columns lane + 64j;
//           COLS must be 8), reading A and W straight from memory with no barriers: for software
//           adapters (lavapipe, SwiftShader), where every barrier costs a round of thread switches
//           and lanes run as SIMD. W is then stored K-major (word w of column n at w·N + n) so
//           neighbouring lanes load contiguously. Dispatch (⌈N / 512⌉, ⌈M / 4⌉).

override ROWS: u32 = 4u;      // outputs per thread along M: at most 4 for main, 8 for wide
override COLS: u32 = 4u;      // outputs per thread along N: at most 4 for main, 8 for wide and direct
override A_MODE: u32 = 0u;
override EPILOGUE: u32 = 0u;
override OUT_MODE: u32 = 0u;

const SIDE: u32 = 16u;
const THREADS: u32 = 256u;
override TILE_K: u32 = 16u;   // K columns per slice of the main entry point: 32 for Small, 16 for Large
const WIDE_TILE: u32 = 128u;
const WIDE_K: u32 = 8u;

struct Params {
    m: u32,
    n: u32,
    k: u32,
    k_words: u32,
    tokens: u32,
    // Images [0, uncond_images) of a guided batch use the empty prompt's modulation (adaln.wgsl).
    uncond_images: u32,
    // Where this AdaLN's scale row starts inside one modulation row (adaln.wgsl).
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
    // K columns per split-K slice (a multiple of 32; at least K when not split).
    k_chunk: u32,
    // Slices the reduce entry point adds.
    splits: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a_in: array<f32>;
@group(0) @binding(2) var<storage, read> weights: array<u32>;
@group(0) @binding(3) var<storage, read_write> y_out: array<f32>;
@group(0) @binding(4) var<storage, read> aux: array<f32>;

// [TILE_K][16·ROWS + 1] and [TILE_K][16·COLS + 1]: the extra word per row puts the 32 lanes that
// stage one row's neighbouring K values (A) or one column's K pairs (W) in 32 different banks;
// with a stride of 32 or 64 words they all hit one bank and serialise.
var<workgroup> tile_a: array<f32, 1088>;
var<workgroup> tile_w: array<f32, 1088>;
var<workgroup> wide_a: array<vec4<f32>, 256>;   // [WIDE_K][32]: rows 4r..4r+3 at one k
var<workgroup> wide_w: array<vec4<f32>, 256>;   // [WIDE_K][32]: columns 4c..4c+3 at one k

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

// Where workgroup z's split-K slice starts and ends.
fn k_range(split: u32) -> vec2<u32> {
    let begin = split * params.k_chunk;
    return vec2<u32>(begin, min(params.k, begin + params.k_chunk));
}

// One output: a split-K slice's raw sum (OUT_MODE 2), or the epilogue and output layout.
fn finish(row: u32, col: u32, sum: f32, split: u32) {
    if (OUT_MODE == 2u) {
        y_out[(split * params.m + row) * params.n + col] = sum;
    } else {
        store(row, col, sum);
    }
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

// Element e (of 1024) of the main kernel's A tile at k0: row e / TILE_K, column k0 + e % TILE_K,
// 0 past the edges.
fn main_a(e: u32, k0: u32, row0: u32) -> f32 {
    let tile_row = e / TILE_K;
    let row = row0 + tile_row;
    let col = k0 + e % TILE_K;
    var value = 0.0;
    if (tile_row < SIDE * ROWS && row < params.m && col < params.k) {
        value = load_a(row, col);
    }
    return value;
}

// Word e (of 512) of the main kernel's W tile at k0: column e / (TILE_K / 2), word e % (TILE_K / 2)
// of the slice, still packed (0 decodes to two zeros).
fn main_w(e: u32, k0: u32, col0: u32) -> u32 {
    let tile_col = e / (TILE_K / 2u);
    let col = col0 + tile_col;
    let word = k0 / 2u + e % (TILE_K / 2u);
    if (tile_col < SIDE * COLS && col < params.n && word < params.k_words) {
        return weights[col * params.k_words + word];
    }
    return 0u;
}

// Both tiles hold TILE_K × (16·ROWS) A values and TILE_K × (16·COLS) weights, 1024 each (Small:
// 32 × 32, Large: 16 × 64), so every thread stages four A values and two weight words per slice.
// The next slice's loads are issued before this slice's multiply-adds (software pipelining), so
// their memory latency overlaps the arithmetic and the barrier instead of adding to it.
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
    var acc: array<f32, 16>;
    let range = k_range(wid.z);
    var next_a = vec4<f32>(
        main_a(local, range.x, row0),
        main_a(local + 256u, range.x, row0),
        main_a(local + 512u, range.x, row0),
        main_a(local + 768u, range.x, row0),
    );
    var next_w = vec2<u32>(main_w(local, range.x, col0), main_w(local + 256u, range.x, col0));
    for (var k0 = range.x; k0 < range.y; k0 += TILE_K) {
        for (var r = 0u; r < 4u; r++) {
            let e = local + 256u * r;
            tile_a[(e % TILE_K) * (tile_m + 1u) + e / TILE_K] = next_a[r];
        }
        for (var r = 0u; r < 2u; r++) {
            let e = local + 256u * r;
            let pair = e % (TILE_K / 2u);
            let tile_col = e / (TILE_K / 2u);
            let w = unpack2x16float(next_w[r]);
            tile_w[(2u * pair) * (tile_n + 1u) + tile_col] = w.x;
            tile_w[(2u * pair + 1u) * (tile_n + 1u) + tile_col] = w.y;
        }
        workgroupBarrier();
        let k1 = k0 + TILE_K;
        if (k1 < range.y) {
            next_a = vec4<f32>(
                main_a(local, k1, row0),
                main_a(local + 256u, k1, row0),
                main_a(local + 512u, k1, row0),
                main_a(local + 768u, k1, row0),
            );
            next_w = vec2<u32>(main_w(local, k1, col0), main_w(local + 256u, k1, col0));
        }
        for (var kk = 0u; kk < TILE_K; kk++) {
            for (var i = 0u; i < ROWS; i++) {
                let a = tile_a[kk * (tile_m + 1u) + lid.y + i * SIDE];
                for (var j = 0u; j < COLS; j++) {
                    acc[i * 4u + j] += a * tile_w[kk * (tile_n + 1u) + lid.x + j * SIDE];
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
                finish(row, col, acc[i * 4u + j], wid.z);
            }
        }
    }
}

// One A value of the wide tile (0 past the edges).
fn wide_a_value(row: u32, col: u32) -> f32 {
    if (row < params.m && col < params.k) {
        return load_a(row, col);
    }
    return 0.0;
}

// One packed weight word (two K values of column `col`), 0 past the edges (two zeros).
fn wide_w_word(col: u32, word: u32) -> u32 {
    if (col < params.n && word < params.k_words) {
        return weights[col * params.k_words + word];
    }
    return 0u;
}

// The four A values one thread stages for the slice at k0: one k of rows 4·a_rows + {0..3}.
fn wide_load_a(row0: u32, k0: u32, a_rows: u32, a_k: u32) -> vec4<f32> {
    let r = 4u * a_rows;
    let col = k0 + a_k;
    return vec4<f32>(
        wide_a_value(row0 + r, col),
        wide_a_value(row0 + r + 1u, col),
        wide_a_value(row0 + r + 2u, col),
        wide_a_value(row0 + r + 3u, col),
    );
}

// The four weight words one of the first 128 threads stages for the slice at k0: word w_word
// of the slice for columns 4·w_cols + {0..3}, still packed.
fn wide_load_w(col0: u32, k0: u32, w_cols: u32, w_word: u32) -> vec4<u32> {
    let c = col0 + 4u * w_cols;
    let word = k0 / 2u + w_word;
    return vec4<u32>(wide_w_word(c, word), wide_w_word(c + 1u, word), wide_w_word(c + 2u, word), wide_w_word(c + 3u, word));
}

@compute @workgroup_size(16, 16)
fn wide(
    @builtin(local_invocation_index) local: u32,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let row0 = wid.y * WIDE_TILE;
    let col0 = wid.x * WIDE_TILE;
    // Loaders: every thread stages one k of four rows of A (eight neighbours read 32 contiguous
    // bytes of a row); the first 128 stage one weight word (two k) of four columns.
    let a_k = local % WIDE_K;
    let a_rows = local / WIDE_K;
    let w_word = local % (WIDE_K / 2u);
    let w_cols = (local / (WIDE_K / 2u)) % 32u;
    // acc[2i + h]: row 4·y + i (i < 4) or 64 + 4·y + i − 4, columns 4·x + 64·h + {0..3}.
    var acc: array<vec4<f32>, 16>;
    let range = k_range(wid.z);
    var next_a = wide_load_a(row0, range.x, a_rows, a_k);
    var next_w = vec4<u32>(0u);
    if (local < 128u) {
        next_w = wide_load_w(col0, range.x, w_cols, w_word);
    }
    for (var k0 = range.x; k0 < range.y; k0 += WIDE_K) {
        wide_a[a_k * 32u + a_rows] = next_a;
        if (local < 128u) {
            let w0 = unpack2x16float(next_w.x);
            let w1 = unpack2x16float(next_w.y);
            let w2 = unpack2x16float(next_w.z);
            let w3 = unpack2x16float(next_w.w);
            wide_w[2u * w_word * 32u + w_cols] = vec4<f32>(w0.x, w1.x, w2.x, w3.x);
            wide_w[(2u * w_word + 1u) * 32u + w_cols] = vec4<f32>(w0.y, w1.y, w2.y, w3.y);
        }
        workgroupBarrier();
        let k1 = k0 + WIDE_K;
        if (k1 < range.y) {
            next_a = wide_load_a(row0, k1, a_rows, a_k);
            if (local < 128u) {
                next_w = wide_load_w(col0, k1, w_cols, w_word);
            }
        }
        for (var kk = 0u; kk < WIDE_K; kk++) {
            let a_lo = wide_a[kk * 32u + lid.y];
            let a_hi = wide_a[kk * 32u + 16u + lid.y];
            let w_lo = wide_w[kk * 32u + lid.x];
            let w_hi = wide_w[kk * 32u + 16u + lid.x];
            acc[0] += a_lo.x * w_lo;
            acc[1] += a_lo.x * w_hi;
            acc[2] += a_lo.y * w_lo;
            acc[3] += a_lo.y * w_hi;
            acc[4] += a_lo.z * w_lo;
            acc[5] += a_lo.z * w_hi;
            acc[6] += a_lo.w * w_lo;
            acc[7] += a_lo.w * w_hi;
            acc[8] += a_hi.x * w_lo;
            acc[9] += a_hi.x * w_hi;
            acc[10] += a_hi.y * w_lo;
            acc[11] += a_hi.y * w_hi;
            acc[12] += a_hi.z * w_lo;
            acc[13] += a_hi.z * w_hi;
            acc[14] += a_hi.w * w_lo;
            acc[15] += a_hi.w * w_hi;
        }
        workgroupBarrier();
    }
    // Every accumulator by a constant index: a loop here would leave `acc` addressable, and a
    // driver may then keep it in local memory for the whole kernel.
    let lo = row0 + 4u * lid.y;
    let hi = lo + 64u;
    wide_store(lo, col0, lid.x, acc[0], acc[1], wid.z);
    wide_store(lo + 1u, col0, lid.x, acc[2], acc[3], wid.z);
    wide_store(lo + 2u, col0, lid.x, acc[4], acc[5], wid.z);
    wide_store(lo + 3u, col0, lid.x, acc[6], acc[7], wid.z);
    wide_store(hi, col0, lid.x, acc[8], acc[9], wid.z);
    wide_store(hi + 1u, col0, lid.x, acc[10], acc[11], wid.z);
    wide_store(hi + 2u, col0, lid.x, acc[12], acc[13], wid.z);
    wide_store(hi + 3u, col0, lid.x, acc[14], acc[15], wid.z);
}

// One row of a wide thread's outputs: columns 4·x + {0..3} (`left`) and 64 + 4·x + {0..3}.
fn wide_store(row: u32, col0: u32, x: u32, left: vec4<f32>, right: vec4<f32>, split: u32) {
    if (row >= params.m) {
        return;
    }
    let a = col0 + 4u * x;
    let b = a + 64u;
    for (var j = 0u; j < 4u; j++) {
        if (a + j < params.n) {
            finish(row, a + j, left[j], split);
        }
        if (b + j < params.n) {
            finish(row, b + j, right[j], split);
        }
    }
}

// The sum of the split-K slices in order, then the epilogue: one thread per output, rows of
// 256 outputs folded into 2-D under the dispatch limit. A holds the slices.
@compute @workgroup_size(256)
fn reduce(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let index = gid.y * groups.x * 256u + gid.x;
    let size = params.m * params.n;
    if (index >= size) {
        return;
    }
    var sum = 0.0;
    for (var s = 0u; s < params.splits; s++) {
        sum += a_in[s * size + index];
    }
    store(index / params.n, index % params.n, sum);
}

// Columns col and col + 1 of A's row (0 past K).
fn load_pair(row: u32, col: u32) -> vec2<f32> {
    var a = vec2<f32>(load_a(row, col), 0.0);
    if (col + 1u < params.k) {
        a.y = load_a(row, col + 1u);
    }
    return a;
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
        let a0 = load_pair(rows.x, col);
        let a1 = load_pair(rows.y, col);
        let a2 = load_pair(rows.z, col);
        let a3 = load_pair(rows.w, col);
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
