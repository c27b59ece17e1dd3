// condition.wgsl: c = time_mlp(sinusoid(t)) + prompt vector, for every step and both prompt
// variants (0 = empty prompt, 1 = the request's prompt) of one request, in one dispatch.
//
// Mirrors TimeEmbed::forward and Dit::condition in src/model.rs: the sinusoid
// [sin(t·f_i), cos(t·f_i)] with f_i = exp(−i·ln(10000)/(h−1)), then Linear, SiLU, Linear.
// Bindings: group 0 = params, per-step timesteps, fc1 and fc2 (f16 pairs, `*_words` u32 per
// row), the two prompt vectors, out [steps·2, time_dim]. Dispatch: (steps, 2).
// Workgroup: WG threads share the sinusoid and the hidden layer in workgroup memory.

override WG: u32 = 128u;

const MAX_WIDTH: u32 = 1024u;

struct Params {
    width: u32,
    time_dim: u32,
    fc1_words: u32,
    fc2_words: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> timesteps: array<f32>;
@group(0) @binding(2) var<storage, read> fc1: array<u32>;
@group(0) @binding(3) var<storage, read> fc2: array<u32>;
@group(0) @binding(4) var<storage, read> prompts: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

var<workgroup> sinusoid: array<f32, MAX_WIDTH>;
var<workgroup> hidden: array<f32, MAX_WIDTH>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) local: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let step = wid.x;
    let variant = wid.y;
    let t = timesteps[step];
    let half = params.width / 2u;
    let scale = log(10000.0) / f32(half - 1u);
    for (var i = local; i < half; i += WG) {
        let angle = t * exp(-f32(i) * scale);
        sinusoid[i] = sin(angle);
        sinusoid[half + i] = cos(angle);
    }
    workgroupBarrier();
    for (var j = local; j < params.time_dim; j += WG) {
        var acc = 0.0;
        for (var w = 0u; w < params.fc1_words; w++) {
            let pair = unpack2x16float(fc1[j * params.fc1_words + w]);
            acc += pair.x * sinusoid[2u * w] + pair.y * sinusoid[2u * w + 1u];
        }
        hidden[j] = acc / (1.0 + exp(-acc));
    }
    workgroupBarrier();
    for (var j = local; j < params.time_dim; j += WG) {
        var acc = 0.0;
        for (var w = 0u; w < params.fc2_words; w++) {
            let pair = unpack2x16float(fc2[j * params.fc2_words + w]);
            acc += pair.x * hidden[2u * w] + pair.y * hidden[2u * w + 1u];
        }
        out[(step * 2u + variant) * params.time_dim + j] = acc + prompts[variant * params.time_dim + j];
    }
}
