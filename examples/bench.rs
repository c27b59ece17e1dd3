//! Times whole samples on each backend and prints one table row per case:
//! `cargo run --release --example bench -- --backend gpu --batches 1,64 --profile`.
//! Without `--weights` it uses random weights of the default config (`--save-weights DIR`
//! writes them, so the PyTorch twin in train/bench_torch.py can time the same model).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use clap::Parser;
use favicon_diffusor::cpu::{CandleEngine, CpuEngine};
use favicon_diffusor::gpu::{GpuContext, GpuEngine, GpuOptions};
use favicon_diffusor::pipeline::{job, Engine, Request};
use favicon_diffusor::{Backend, Checkpoint, Config, SamplerKind};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    weights: Option<PathBuf>,
    #[arg(long)]
    save_weights: Option<PathBuf>,
    #[arg(long, default_value = "gpu")]
    backend: Backend,
    /// With `--backend cpu`: `fast` (the CPU engine) or `candle` (the reference). Threads:
    /// `RAYON_NUM_THREADS` (default: one per core).
    #[arg(long, value_parser = parse_engine, default_value = "fast")]
    engine: CpuKind,
    #[arg(long, value_delimiter = ',', default_value = "1")]
    batches: Vec<usize>,
    /// `ddpm` (32 steps) and/or `ddim8`.
    #[arg(long, value_delimiter = ',', default_value = "ddpm")]
    samplers: Vec<String>,
    #[arg(long, default_value_t = 10)]
    repeats: usize,
    /// Prompt words; with a prompt each step is guided (two forward passes), as `sample` runs.
    #[arg(long, default_value = "")]
    prompt: String,
    /// Classifier-free guidance scale, used when there is a prompt.
    #[arg(long, default_value_t = 3.0)]
    guidance: f32,
    /// Print per-kernel GPU time from timestamp queries.
    #[arg(long)]
    profile: bool,
    /// Attention with 16 queries per workgroup (`auto`: from 256 of its workgroups on).
    #[arg(long, value_parser = parse_switch, default_value = "auto")]
    block_attention: Switch,
    /// Cooperative matrices (tensor cores) for the many-row matmuls: `auto` (where the adapter
    /// has them), `on` (fail without them) or `off`.
    #[arg(long, value_parser = parse_switch, default_value = "auto")]
    coop: Switch,
}

#[derive(Clone, Copy, PartialEq)]
enum CpuKind {
    Fast,
    Candle,
}

fn parse_engine(name: &str) -> std::result::Result<CpuKind, String> {
    pick("engine", name, &[("fast", CpuKind::Fast), ("candle", CpuKind::Candle)])
}

/// `auto` (the library's default), `on` or `off`.
#[derive(Clone, Copy)]
struct Switch(Option<bool>);

fn parse_switch(name: &str) -> std::result::Result<Switch, String> {
    pick("switch", name, &[("auto", Switch(None)), ("on", Switch(Some(true))), ("off", Switch(Some(false)))])
}

/// One of `choices` by name, or an error listing them.
fn pick<T: Copy>(what: &str, name: &str, choices: &[(&str, T)]) -> std::result::Result<T, String> {
    choices.iter().find(|(n, _)| *n == name).map(|&(_, value)| value).ok_or_else(|| {
        let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
        format!("unknown {what} `{name}` (one of: {})", names.join(", "))
    })
}

fn gpu_engine(ck: &Checkpoint, args: &Args) -> Result<GpuEngine> {
    let options = GpuOptions { block_attention: args.block_attention.0, coop: args.coop.0, ..Default::default() };
    Ok(GpuEngine::with_context(pollster::block_on(GpuContext::with_options(options))?, ck)?)
}

fn checkpoint(args: &Args) -> Result<Checkpoint> {
    let ck = match &args.weights {
        Some(dir) => Checkpoint::open(dir)?,
        None => {
            let cfg = Config::default();
            let tensors = favicon_diffusor::model::random_tensors(&cfg, None, 1)?;
            Checkpoint::from_tensors(cfg, None, tensors)?
        }
    };
    if let Some(dir) = &args.save_weights {
        ck.save(dir, candle_core::DType::F16)?;
    }
    Ok(ck)
}

fn engine(ck: &Checkpoint, args: &Args) -> Result<(Box<dyn Engine>, String)> {
    Ok(match args.backend {
        Backend::Cpu if args.engine == CpuKind::Fast => {
            let cpu = CpuEngine::new(ck)?;
            let name = cpu.name();
            (Box::new(cpu), name)
        }
        Backend::Cpu | Backend::Candle => {
            let candle = CandleEngine::new(ck.model()?);
            let name = format!("{} ({} threads)", candle.name(), rayon::current_num_threads());
            (Box::new(candle), name)
        }
        _ => {
            let gpu = gpu_engine(ck, args)?;
            let mut name = gpu.context().describe();
            if let Some(why) = &gpu.context().coop_missing {
                name += &format!(" [no cooperative matrices: {why}]");
            }
            (Box::new(gpu), name)
        }
    })
}

fn sampler(name: &str, timesteps: usize) -> Result<(SamplerKind, usize)> {
    match name {
        "ddpm" => Ok((SamplerKind::Ddpm, timesteps)),
        "ddim8" => Ok((SamplerKind::Ddim, 8)),
        other => bail!("unknown sampler case `{other}` (ddpm or ddim8)"),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<()> {
    let args = Args::parse();
    let ck = checkpoint(&args)?;
    let (mut engine, device) = engine(&ck, &args)?;
    let guided = if args.prompt.is_empty() {
        "unguided".into()
    } else {
        format!("\"{}\" guided {}", args.prompt, args.guidance)
    };
    println!("device: {device}; parameters: {:.2} M; {guided}", ck.parameter_count() as f64 / 1e6);
    println!("| backend | batch | sampler | steps | median ms | min ms | ms/step |");
    println!("|---|---|---|---|---|---|---|");
    for name in &args.samplers {
        let (kind, steps) = sampler(name, ck.config.timesteps)?;
        for &batch in &args.batches {
            let req = Request {
                batch,
                sampler: kind,
                steps,
                seed: 3,
                prompt: args.prompt.clone(),
                guidance: args.guidance,
                ..Default::default()
            };
            let job = job(&ck, &req)?;
            engine.run(&job, &mut |_| {})?;
            let times: Vec<f64> = (0..args.repeats.max(1))
                .map(|_| {
                    let start = Instant::now();
                    engine.run(&job, &mut |_| {}).map(|_| start.elapsed().as_secs_f64() * 1e3)
                })
                .collect::<favicon_diffusor::Result<_>>()?;
            let min = times.iter().copied().fold(f64::INFINITY, f64::min);
            let med = median(times);
            println!("| {device} | {batch} | {name} | {steps} | {med:.2} | {min:.2} | {:.3} |", med / steps as f64);
        }
    }
    report_memory(&ck, &args)?;
    if args.profile && !matches!(args.backend, Backend::Cpu | Backend::Candle) {
        profile(&ck, &args)?;
    }
    Ok(())
}

fn report_memory(ck: &Checkpoint, args: &Args) -> Result<()> {
    if matches!(args.backend, Backend::Cpu | Backend::Candle) {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let peak = status.lines().find(|l| l.starts_with("VmHWM")).unwrap_or("VmHWM: unknown");
        println!("CPU resident peak: {}", peak.trim_start_matches("VmHWM:").trim());
        return Ok(());
    }
    for &batch in &args.batches {
        let mut gpu = gpu_engine(ck, args)?;
        let req = Request { batch, steps: ck.config.timesteps, ..Default::default() };
        gpu.run(&job(ck, &req)?, &mut |_| {})?;
        let (weights, plan) = (gpu.weight_bytes(), gpu.plan_stats().bytes);
        let mib = |b: u64| b as f64 / (1 << 20) as f64;
        println!(
            "GPU memory at batch {batch}: weights {:.1} MiB + plan {:.1} MiB = {:.1} MiB ({:.2}x the weights); {} dispatches per step",
            mib(weights),
            mib(plan),
            mib(weights + plan),
            (weights + plan) as f64 / weights as f64,
            gpu.dispatches_per_step(batch, false)
        );
    }
    Ok(())
}

fn profile(ck: &Checkpoint, args: &Args) -> Result<()> {
    let mut gpu = gpu_engine(ck, args)?;
    for &batch in &args.batches {
        let req = Request { batch, steps: ck.config.timesteps, ..Default::default() };
        let job = job(ck, &req)?;
        let times = pollster::block_on(favicon_diffusor::gpu::profile::profile_step(&mut gpu, &job))?;
        let mut by_kind: Vec<(String, f64, usize)> = Vec::new();
        for (name, us) in &times {
            let kind = name.rsplit('.').next().unwrap_or(name).to_string();
            match by_kind.iter_mut().find(|(k, _, _)| *k == kind) {
                Some(entry) => {
                    entry.1 += us;
                    entry.2 += 1;
                }
                None => by_kind.push((kind, *us, 1)),
            }
        }
        let total: f64 = times.iter().map(|(_, us)| us).sum();
        println!("profile, batch {batch}, one step ({total:.1} µs of kernel time):");
        for (kind, us, n) in by_kind {
            println!("  {kind:<14} x{n:<2} {us:>9.1} µs  {:>5.1}%", 100.0 * us / total);
        }
    }
    Ok(())
}
