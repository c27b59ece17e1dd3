//! The CPU engine (`cpu::CpuEngine`) against the candle reference (`cpu::CandleEngine`): each
//! forward pass's ε and x0, whole samples, and the shipped weights; and its matmul against a
//! naive product. Both sides compute in f32 from the same weights and differ only by summation
//! order (and FMA rounding), about 1e-6 of an output's scale per op; the bars below are ten
//! times what was measured, far under what a wrong index, a missing bias or a swapped AdaLN
//! would cost (order one).

mod common;

use common::*;
use favicon_diffusor::cpu::matmul::{matmul, Epilogue, Kernel, Packed};
use favicon_diffusor::cpu::{CandleEngine, CpuEngine};
use favicon_diffusor::pipeline::{self, Engine, Job};
use favicon_diffusor::{Backend, Checkpoint, Config, Pipeline, Request, SamplerKind};

/// A product of m × k by (n × k)ᵀ in f64, with the epilogue's arithmetic.
fn naive(a: &[f32], w: &[f32], m: usize, n: usize, k: usize, c: &mut [f32], epilogue: Epilogue) {
    for i in 0..m {
        for j in 0..n {
            let s = (0..k).map(|kk| a[i * k + kk] as f64 * w[j * k + kk] as f64).sum::<f64>() as f32;
            let at = i * n + j;
            c[at] = match epilogue {
                Epilogue::Store => s,
                Epilogue::Bias(bias) => s + bias[j],
                Epilogue::Silu => s / (1.0 + (-s).exp()),
                Epilogue::Accumulate => c[at] + s,
                Epilogue::AddPeriodic { rows, period } => s + rows[(i % period) * n + j],
            };
        }
    }
}

fn random(len: usize, stream: u32) -> Vec<f32> {
    let mut v = vec![0f32; len];
    favicon_diffusor::noise::fill_normal(11, stream, &mut v);
    v
}

#[test]
fn matmul_matches_a_naive_product_on_odd_shapes_with_and_without_threads() {
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let three = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
    // Shapes off every tile (8×32, 6×16, 4×8), one row, one column, and two past PARALLEL_FROM
    // so the threaded split runs (65·47·129 is under it, 70·130·300 and 64·512·512 over).
    let shapes = [(1, 1, 1), (1, 300, 7), (7, 33, 5), (65, 47, 129), (70, 130, 300), (64, 512, 512)];
    for kernel in Kernel::available() {
        for (s, &(m, n, k)) in shapes.iter().enumerate() {
            let (a, w) = (random(m * k, 2 * s as u32), random(n * k, 2 * s as u32 + 1));
            let (bias, pos) = (random(n, 100), random(5 * n, 101));
            let packed = Packed::new(kernel, &w, n, k);
            let epilogues = [
                Epilogue::Store,
                Epilogue::Bias(&bias),
                Epilogue::Silu,
                Epilogue::Accumulate,
                Epilogue::AddPeriodic { rows: &pos, period: 5 },
            ];
            for epilogue in epilogues {
                let start = random(m * n, 200);
                let mut want = start.clone();
                naive(&a, &w, m, n, k, &mut want, epilogue);
                for (threads, pool) in [(1, &one), (3, &three)] {
                    let mut got = start.clone();
                    pool.install(|| matmul(&a, m, &packed, &mut got, epilogue));
                    let ratio = tolerance_ratio(&got, &want, 1e-5, 1e-5 * (k as f32).sqrt());
                    assert!(ratio <= 1.0, "{kernel:?} {m}×{n}×{k} {epilogue:?}, {threads} threads: {ratio} of the bar");
                }
            }
        }
    }
}

fn tiny(channels: usize, x0_head: bool, vocab: bool) -> Config {
    Config {
        image_size: 16,
        patch_size: 4,
        channels,
        dim: 24,
        depth: 2,
        heads: 2,
        head_dim: 12,
        mlp_mult: 3,
        time_dim: 10,
        timesteps: 16,
        x0_head,
        qk_norm: channels == 4,
        matte: if channels == 4 { 0.86 } else { 0.0 },
        vocab: vocab.then(|| ["hippo", "red", "heart"].map(String::from).to_vec()),
        ..Config::default()
    }
}

fn job(ck: &Checkpoint, batch: usize, prompt: &str, guidance: f32) -> Job {
    let req = Request {
        batch,
        prompt: prompt.into(),
        guidance,
        steps: 4,
        sampler: SamplerKind::Ddim,
        seed: 9,
        ..Default::default()
    };
    pipeline::job(ck, &req).unwrap()
}

/// ε and x0 of one forward pass on both engines, at three timesteps, for every kernel.
fn forward_matches(ck: &Checkpoint, job: &Job, rtol: f32) {
    let mut candle = CandleEngine::new(ck.model().unwrap());
    let x = random(job.batch * ck.config.image_len(), 7);
    for kernel in Kernel::available() {
        let mut fast = CpuEngine::with_kernel(ck, kernel).unwrap();
        for t in [0, ck.config.timesteps as u32 / 2, ck.config.timesteps as u32 - 1] {
            let (want_eps, want_x0) = candle.predict(job, &x, t).unwrap();
            let (want_eps, want_x0) = (want_eps.to_vec(), want_x0.map(<[f32]>::to_vec));
            let (eps, x0) = fast.predict(job, &x, t).unwrap();
            let err = max_rel_err(eps, &want_eps);
            assert!(err <= rtol, "{kernel:?} t={t}: ε differs from candle's by {err:e} of its scale");
            assert_eq!(x0.is_some(), ck.config.x0_head);
            if let (Some(x0), Some(want)) = (x0, &want_x0) {
                let err = max_rel_err(x0, want);
                assert!(err <= rtol, "{kernel:?} t={t}: x0 differs from candle's by {err:e} of its scale");
            }
        }
    }
}

#[test]
fn fast_engine_matches_candle_unguided_rgb() {
    let ck = random_checkpoint(&tiny(3, true, false), 1);
    forward_matches(&ck, &job(&ck, 1, "", 1.0), 1e-5);
    forward_matches(&ck, &job(&ck, 3, "", 1.0), 1e-5);
}

#[test]
fn fast_engine_matches_candle_guided_rgba() {
    let ck = random_checkpoint(&tiny(4, true, true), 2);
    for batch in [1, 3] {
        let job = job(&ck, batch, "red hippo", 3.0);
        assert!(job.guidance.is_some());
        forward_matches(&ck, &job, 1e-5);
    }
}

#[test]
fn fast_engine_matches_candle_without_the_x0_head() {
    for channels in [3, 4] {
        let ck = random_checkpoint(&tiny(channels, false, true), 3);
        forward_matches(&ck, &job(&ck, 1, "heart", 2.0), 1e-5);
        forward_matches(&ck, &job(&ck, 3, "", 1.0), 1e-5);
    }
}

#[test]
fn fast_engine_matches_candle_on_an_awkward_config() {
    // 25 tokens, patch width 27, three heads of five, QK-norm: nothing a multiple of a tile.
    let cfg = Config { qk_norm: true, ..awkward_config() };
    let ck = random_checkpoint(&cfg, 4);
    forward_matches(&ck, &job(&ck, 3, "sun", 4.0), 1e-5);
    forward_matches(&ck, &job(&ck, 1, "", 1.0), 1e-5);
}

#[test]
fn fast_engine_matches_candle_on_the_default_config() {
    let ck = random_checkpoint(&Config::default(), 5);
    forward_matches(&ck, &job(&ck, 1, "", 1.0), 1e-5);
}

#[test]
fn a_whole_sample_matches_candle_and_step_by_step_matches_run() {
    let ck = random_checkpoint(&tiny(4, true, true), 6);
    let job = job(&ck, 2, "hippo", 3.0);
    let want = CandleEngine::new(ck.model().unwrap()).run(&job, &mut |_| {}).unwrap();
    let mut fast = CpuEngine::new(&ck).unwrap();
    let got = fast.run(&job, &mut |_| {}).unwrap();
    let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(worst <= 1e-4, "4 DDIM steps: max |Δx| {worst:e} from candle's");
    // The browser's path: start, then one step at a time.
    let mut x = fast.start(&job).unwrap();
    for index in 0..job.plan.steps.len() {
        fast.step(&job, index, &mut x, &mut |_| {}).unwrap();
    }
    assert_eq!(x, got);
}

#[test]
fn shipped_weights_sample_like_candle_guided() {
    let ck = Checkpoint::open(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("weights")).unwrap();
    let job = job(&ck, 1, "hippo", 3.0);
    let want = CandleEngine::new(ck.model().unwrap()).run(&job, &mut |_| {}).unwrap();
    let got = CpuEngine::new(&ck).unwrap().run(&job, &mut |_| {}).unwrap();
    let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    let pixels = mean_pixel_diff(&got, &want);
    assert!(worst <= 1e-3, "max |Δx| {worst:e} from candle's");
    assert!(pixels <= 0.01, "mean pixel difference {pixels} levels");
}

#[test]
fn the_cpu_backend_is_the_fast_engine_and_candle_stays_selectable() {
    let ck = random_checkpoint(&tiny(3, true, false), 7);
    let fast = Pipeline::new(ck.clone(), Backend::Cpu).unwrap();
    assert!(fast.backend_name().starts_with("cpu (") && !fast.backend_name().contains("candle"));
    assert_eq!(Pipeline::new(ck, Backend::Candle).unwrap().backend_name(), "cpu (candle)");
    assert_eq!("candle".parse::<Backend>().unwrap(), Backend::Candle);
}
