//! Ports a checkpoint between formats:
//! `cargo run --release --example convert -- IN OUT [--dtype f16|f32] [--to wts1]`.
//!
//! IN is a PyTorch state dict (`.pt`/`.pth`), a safetensors file, a WTS1 file, or one of our
//! checkpoint folders. OUT is a folder (`config.json` + `model.safetensors`, ready for the hub),
//! or with `--to wts1` a WTS1 file for the seed's JavaScript demo. The config is inferred from
//! the tensor shapes; what shapes cannot tell is printed as a note and can be given as a flag.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use candle_core::DType;
use clap::{Parser, ValueEnum};
use favicon_diffusor::convert::{self, Hints};
use favicon_diffusor::fsio;
use favicon_diffusor::limits::{LoadOptions, MAX_SMALL_FILE};
use favicon_diffusor::vocab::Vocab;
use favicon_diffusor::Config;

#[derive(Clone, Copy, ValueEnum)]
enum Dtype {
    F32,
    F16,
}

#[derive(Clone, Copy, ValueEnum)]
enum Target {
    /// config.json + model.safetensors
    Safetensors,
    /// the seed's browser format
    Wts1,
}

#[derive(Parser)]
#[command(about = "Convert favicon-diffusor checkpoints between PyTorch, safetensors and WTS1")]
struct Args {
    input: PathBuf,
    output: PathBuf,
    #[arg(long, value_enum, default_value = "safetensors")]
    to: Target,
    /// Storage dtype of model.safetensors.
    #[arg(long, value_enum, default_value = "f32")]
    dtype: Dtype,
    /// A config.json to use instead of inferring one (its fields are checked against the shapes).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Attention heads (the shapes give heads × head_dim only).
    #[arg(long)]
    heads: Option<usize>,
    /// 3 (RGB) or 4 (premultiplied RGBA); inferred from the patch width when left out.
    #[arg(long)]
    channels: Option<usize>,
    #[arg(long)]
    image_size: Option<usize>,
    #[arg(long)]
    timesteps: Option<usize>,
    /// The cosine schedule's offset s: the seed trains with 3e-5 (train_hippos.py), its browser
    /// sampler and our default use 1e-4. Written to config.json as `schedule_offset`.
    #[arg(long)]
    schedule_offset: Option<f64>,
    /// The vocabulary of a prompt-conditioned checkpoint: one word per line, in row order.
    #[arg(long)]
    vocab: Option<PathBuf>,
    /// The most memory (GiB) the input and its tensors may take; larger ones are refused.
    #[arg(long, default_value_t = 2.0)]
    max_memory: f64,
}

fn main() {
    if let Err(err) = run(Args::parse()) {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<()> {
    let limits = LoadOptions { max_memory: (args.max_memory * (1u64 << 30) as f64) as u64 };
    let small = |path: &PathBuf| {
        fsio::read_regular(path, MAX_SMALL_FILE).with_context(|| format!("reading {}", path.display()))
    };
    let vocab = match &args.vocab {
        Some(path) => Some(Vocab::from_file_bytes(&small(path)?, &path.display().to_string())?.words().to_vec()),
        None => None,
    };
    let hints = Hints {
        heads: args.heads,
        channels: args.channels,
        image_size: args.image_size,
        timesteps: args.timesteps,
        schedule_offset: args.schedule_offset,
        vocab,
    };
    let imported = match &args.config {
        Some(path) => {
            let text = String::from_utf8(small(path)?).with_context(|| format!("{} is not UTF-8", path.display()))?;
            let config = Config::from_json(&text, &path.display().to_string())?;
            let vocab = config.vocab.clone().or(hints.vocab.clone()).map(Vocab::new).transpose()?;
            let bytes = fsio::read_regular(&args.input, limits.max_memory)
                .with_context(|| format!("reading {}", args.input.display()))?;
            let what = args.input.display().to_string();
            convert::import_bytes_with(&bytes, &what, &hints, Some((config, vocab)), &limits)?
        }
        None => convert::import_with(&args.input, &hints, &limits)?,
    };
    for note in &imported.notes {
        eprintln!("note: {note}");
    }
    let ck = &imported.checkpoint;
    eprintln!(
        "read {} ({:?}): {} parameters, dim {}, depth {}, {}",
        args.input.display(),
        imported.format,
        ck.parameter_count(),
        ck.config.dim,
        ck.config.depth,
        if ck.is_conditional() { "prompt-conditioned" } else { "unconditional" }
    );
    match args.to {
        Target::Safetensors => {
            if args.output.is_file() {
                bail!("{} is a file; the safetensors output is a folder", args.output.display());
            }
            let dtype = match args.dtype {
                Dtype::F32 => DType::F32,
                Dtype::F16 => DType::F16,
            };
            ck.save(&args.output, dtype)?;
            eprintln!("wrote {}/config.json and model.safetensors (the folder replaced whole)", args.output.display());
        }
        Target::Wts1 => {
            if matches!(args.dtype, Dtype::F16) {
                bail!("WTS1 stores f32 only; drop --dtype f16");
            }
            convert::save_wts1(ck, &args.output)?;
            eprintln!("wrote {} (WTS1, without the x0 head)", args.output.display());
        }
    }
    Ok(())
}
