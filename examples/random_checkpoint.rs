//! Writes a checkpoint folder of random weights, for browser tests and benchmarks before (or
//! without) trained weights: `cargo run --release --example random_checkpoint -- DIR --tiny [--channels 4]`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use candle_core::DType;
use clap::Parser;
use favicon_diffusor::vocab::Vocab;
use favicon_diffusor::{Checkpoint, Config};

#[derive(Parser)]
#[command(about = "Write config.json + model.safetensors with random weights")]
struct Args {
    /// Output folder (created if missing).
    dir: PathBuf,
    /// A tiny model (dim 32, one block, 8 timesteps) instead of the default ~11M-parameter one.
    #[arg(long)]
    tiny: bool,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Diffusion timesteps (default: 8 for --tiny, else the model's); many make a long DDPM
    /// run for the browser's Stop test.
    #[arg(long)]
    timesteps: Option<usize>,
    /// Prompt words, comma-separated; empty for an unconditional checkpoint.
    #[arg(long, default_value = "hippo,red,heart,sun")]
    vocab: String,
    /// 3 for RGB, 4 for premultiplied RGBA (a checkpoint that draws transparency).
    #[arg(long, default_value_t = 3)]
    channels: usize,
    /// Four channels: the grey the colour planes are premultiplied over (the shipped model's is 0.86).
    #[arg(long, default_value_t = 0.0)]
    matte: f32,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let words: Vec<String> = args.vocab.split(',').map(str::trim).filter(|w| !w.is_empty()).map(String::from).collect();
    let base = if args.tiny {
        Config {
            dim: 32,
            depth: 1,
            heads: 2,
            head_dim: 16,
            mlp_mult: 2,
            time_dim: 16,
            timesteps: 8,
            ..Config::default()
        }
    } else {
        Config::default()
    };
    let config = Config {
        channels: args.channels,
        matte: args.matte,
        vocab: (!words.is_empty()).then(|| words.clone()),
        timesteps: args.timesteps.unwrap_or(base.timesteps),
        ..base
    };
    config.validate().map_err(|message| anyhow::anyhow!("--channels / --matte: {message}"))?;
    let vocab = config.vocab.clone().map(Vocab::new).transpose()?;
    let rows = vocab.as_ref().map(|v| v.len() + 1);
    let tensors = favicon_diffusor::model::random_tensors(&config, rows, args.seed)?;
    let checkpoint = Checkpoint::from_tensors(config, vocab, tensors)?;
    // f16, as the shipped weights are and as the GPU stores them: CPU and GPU then share every weight.
    checkpoint.save(&args.dir, DType::F16).with_context(|| format!("writing {}", args.dir.display()))?;
    println!("wrote {} ({} parameters)", args.dir.display(), checkpoint.parameter_count());
    Ok(())
}
