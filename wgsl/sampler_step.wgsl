// sampler_step.wgsl: the initial noise and the sampler update x ← a·x + b·p + c·z (p the guided
// ε or x0 plane, per the step's `head`), with
// classifier-free guidance ε = ε_u + g·(ε_c − ε_u) and z from Philox4x32-10 + Box–Muller.
// A checkpoint without the x0 head has only the ε plane; its x0 preview is the x0 that ε
// implies, (x − √(1−ᾱ)·ε)/√ᾱ.
//
// Mirrors sampler::initial_x, sampler::apply_step, sampler::guide, sampler::x0_from_eps and
// noise::normal in src/.
// Element i of the batch draws normal (seed, tag, i + noise_offset), exactly as the CPU does.
// Bindings: group 0 = request, x, pred (ε plane then x0 plane if any, each [model images][C][H][W]),
// preview, init; group 1 = the step (dynamic offset). Entry points: `init_noise`, `step`.
// Workgroup: 256 threads, one element each; the grid is 2-D so large batches stay in limits.

const THREADS: u32 = 256u;
const INITIAL_NOISE_TAG: u32 = 0xFFFFFFFFu;
const PI: f32 = 3.14159265358979;

struct Request {
    seed_lo: u32,
    seed_hi: u32,
    // Elements in the x buffer: images · C · H · W.
    len: u32,
    // 1 when pred holds an unconditional half followed by a conditional half.
    guided: u32,
    guidance: f32,
    noise_offset: u32,
    // 0 none, 1 the guided x0 prediction, 2 the updated x.
    preview: u32,
    has_init: u32,
    signal: f32,
    noise: f32,
    // Row length of the 2-D dispatch grid, in workgroups.
    groups_x: u32,
    // 1 when pred holds the x0 plane after the ε plane.
    x0_head: u32,
}

struct Step {
    index: u32,
    tag: u32,
    a: f32,
    b: f32,
    c: f32,
    t: f32,
    head: u32,
    alpha_bar: f32,
}

@group(0) @binding(0) var<uniform> request: Request;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> pred: array<f32>;
@group(0) @binding(3) var<storage, read_write> preview: array<f32>;
@group(0) @binding(4) var<storage, read> init: array<f32>;
@group(1) @binding(0) var<uniform> step_params: Step;

// The high and low words of a 32×32-bit product, from 16-bit halves.
fn mul_hi_lo(a: u32, b: u32) -> vec2<u32> {
    let a_lo = a & 0xFFFFu;
    let a_hi = a >> 16u;
    let b_lo = b & 0xFFFFu;
    let b_hi = b >> 16u;
    let lo_lo = a_lo * b_lo;
    let hi_lo = a_hi * b_lo;
    let lo_hi = a_lo * b_hi;
    let cross = (lo_lo >> 16u) + (hi_lo & 0xFFFFu) + lo_hi;
    let hi = a_hi * b_hi + (hi_lo >> 16u) + (cross >> 16u);
    return vec2<u32>(hi, (cross << 16u) | (lo_lo & 0xFFFFu));
}

fn philox4x32_10(counter: vec4<u32>, key_in: vec2<u32>) -> vec4<u32> {
    var c = counter;
    var key = key_in;
    for (var round = 0u; round < 10u; round++) {
        if (round > 0u) {
            key += vec2<u32>(0x9E3779B9u, 0xBB67AE85u);
        }
        let p0 = mul_hi_lo(0xD2511F53u, c.x);
        let p1 = mul_hi_lo(0xCD9E8D57u, c.z);
        c = vec4<u32>(p1.x ^ c.y ^ key.x, p1.y, p0.x ^ c.w ^ key.y, p0.y);
    }
    return c;
}

fn uniform_open(word: u32) -> f32 {
    return (f32(word >> 9u) + 0.5) * (1.0 / 8388608.0);
}

fn normal(tag: u32, index: u32) -> f32 {
    let words = philox4x32_10(vec4<u32>(index / 4u, tag, 0u, 0u), vec2<u32>(request.seed_lo, request.seed_hi));
    let lane = index % 4u;
    var u1 = uniform_open(words.x);
    var u2 = uniform_open(words.y);
    if (lane >= 2u) {
        u1 = uniform_open(words.z);
        u2 = uniform_open(words.w);
    }
    let radius = sqrt(-2.0 * log(u1));
    let angle = 2.0 * PI * u2 - PI;
    if (lane % 2u == 0u) {
        return -radius * cos(angle);
    }
    return -radius * sin(angle);
}

fn element(wid: vec3<u32>, local: u32) -> u32 {
    return (wid.y * request.groups_x + wid.x) * THREADS + local;
}

fn guided(plane: u32, i: u32) -> f32 {
    let model_len = select(request.len, 2u * request.len, request.guided == 1u);
    let uncond = pred[plane * model_len + i];
    if (request.guided == 0u) {
        return uncond;
    }
    let cond = pred[plane * model_len + request.len + i];
    return uncond + request.guidance * (cond - uncond);
}

@compute @workgroup_size(256)
fn init_noise(@builtin(local_invocation_index) local: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let i = element(wid, local);
    if (i >= request.len) {
        return;
    }
    let z = normal(INITIAL_NOISE_TAG, i + request.noise_offset);
    if (request.has_init == 1u) {
        x[i] = request.signal * init[i] + request.noise * z;
    } else {
        x[i] = z;
    }
}

@compute @workgroup_size(256)
fn step(@builtin(local_invocation_index) local: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let i = element(wid, local);
    if (i >= request.len) {
        return;
    }
    // The head this step reads: plane 0 (ε) or 1 (x0), as src/sampler.rs decides.
    let p = guided(step_params.head, i);
    let xt = x[i];
    var next = step_params.a * xt + step_params.b * p;
    if (step_params.c != 0.0) {
        next += step_params.c * normal(step_params.tag, i + request.noise_offset);
    }
    x[i] = next;
    if (request.preview == 1u) {
        if (request.x0_head == 1u) {
            preview[i] = guided(1u, i);
        } else {
            let ab = step_params.alpha_bar;
            preview[i] = (xt - sqrt(1.0 - ab) * guided(0u, i)) / sqrt(ab);
        }
    } else if (request.preview == 2u) {
        preview[i] = next;
    }
}
