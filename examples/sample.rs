//! Draws a favicon: `cargo run --release --example sample -- --prompt hippo --out hippo.ico`,
//! or a site's whole favicon kit: `... -- --prompt hippo --kit site/`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;
use favicon_diffusor::alpha::PixelFormat;
use favicon_diffusor::hub::HubOptions;
use favicon_diffusor::kit::{self, KitOptions};
use favicon_diffusor::limits::LoadOptions;
use favicon_diffusor::timings::{Laps, Stage};
use favicon_diffusor::{Backend, Checkpoint, Pipeline, Preview, Request, SamplerKind};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Parser)]
#[command(about = "Generate a favicon with the favicon-diffusor DiT")]
struct Args {
    /// Words from the checkpoint's vocabulary; "" for an unconditional sample.
    #[arg(long, default_value = "hippo")]
    prompt: String,
    /// Classifier-free guidance scale, 0 to 20 (1 = off).
    #[arg(long, default_value_t = 3.0)]
    guidance: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Sampling steps (DDPM uses every timestep; DDIM may use fewer).
    #[arg(long)]
    steps: Option<usize>,
    #[arg(long, default_value = "ddpm")]
    sampler: SamplerKind,
    /// Number of images, written as a grid.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// img2img: start from this image instead of pure noise.
    #[arg(long)]
    init: Option<PathBuf>,
    /// img2img strength in (0, 1]: how far the input is noised.
    #[arg(long, default_value_t = 0.6)]
    strength: f32,
    #[arg(long, default_value = "auto")]
    backend: Backend,
    /// Checkpoint folder (config.json + model.safetensors). Default: $FAVICON_DIFFUSOR_WEIGHTS,
    /// else `weights` beside this executable, else the source tree's `weights/`.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Pull the checkpoint from the Hugging Face hub: owner/name[@revision].
    #[arg(long, conflicts_with = "weights")]
    hub: Option<String>,
    /// Output file: .png, .ico (16–64 px favicon) or .gif (the denoising, one frame per step).
    /// Default: favicon.png, unless --kit is given.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write a site's favicon kit into this folder: ICO, SVG, PNGs, web manifest, HTML snippet.
    #[arg(long)]
    kit: Option<PathBuf>,
    /// The site name in the kit's manifest (default: the prompt).
    #[arg(long)]
    name: Option<String>,
    /// Flatten onto this colour for an opaque icon: #rrggbb, rrggbb, white, black or grey.
    /// Without it, an RGBA checkpoint's transparency is kept. In a kit it is also the
    /// apple-touch icon's background (default: picked from the icon).
    #[arg(long, value_name = "COLOR", value_parser = parse_background)]
    background: Option<[u8; 3]>,
    /// The most memory (GiB) the checkpoint's tensors may take; larger ones are refused.
    #[arg(long, default_value_t = 2.0)]
    max_memory: f64,
    /// Print where the time went, stage by stage, from process start to the written files.
    #[arg(long)]
    timings: bool,
}

fn parse_background(text: &str) -> Result<[u8; 3], String> {
    favicon_diffusor::alpha::parse_color(text).map_err(|e| e.to_string())
}

fn main() {
    let started = Instant::now();
    // Mesa's Vulkan device-select layer asks Wayland for the default GPU, and without a session
    // libwayland prints "error: XDG_RUNTIME_DIR is invalid or not set", which reads as a failure
    // of this run. wgpu picks the adapter by power preference anyway, so the layer is skipped
    // (set before any thread starts).
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() && std::env::var_os("NODEVICE_SELECT").is_none() {
        std::env::set_var("NODEVICE_SELECT", "1");
    }
    if let Err(err) = run(Args::parse(), started) {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

/// `started`: the process's start, as near as `main` can take it.
fn run(args: Args, started: Instant) -> Result<()> {
    let out = match (&args.out, &args.kit) {
        (Some(out), _) => Some(out.clone()),
        (None, None) => Some(PathBuf::from("favicon.png")),
        (None, Some(_)) => None,
    };
    let format = out.as_deref().map(favicon_diffusor::image::Format::from_path).transpose()?;
    if args.kit.is_some() && args.batch != 1 {
        bail!("--kit makes one icon's kit; use --batch 1 (found --batch {})", args.batch);
    }
    let limits = LoadOptions { max_memory: (args.max_memory * (1u64 << 30) as f64) as u64 };
    let dir = match &args.hub {
        Some(repo) => {
            let options = HubOptions { max_weights: limits.max_memory, ..HubOptions::from_env()? };
            favicon_diffusor::hub::pull_with(repo, &options).with_context(|| format!("pulling `{repo}`"))?
        }
        None => favicon_diffusor::locate::find(args.weights.as_deref())?,
    };
    let mut laps = Laps::default();
    let checkpoint = laps
        .time(Stage::WeightsRead, || Checkpoint::open_with(&dir, &limits))
        .with_context(|| format!("loading {}", dir.display()))?;
    let mut pipe = Pipeline::new(checkpoint, args.backend)?;
    if let Some(note) = pipe.note() {
        eprintln!("note: {note}");
    }
    let config = &pipe.checkpoint().config;
    let init = match &args.init {
        Some(path) => Some(favicon_diffusor::image::load(path, PixelFormat::of(config), config.image_size)?),
        None => None,
    };
    if args.batch > 256 {
        bail!("--batch {} is more than this example tiles (256)", args.batch);
    }
    let timesteps = config.timesteps;
    let req = Request {
        prompt: args.prompt.clone(),
        guidance: args.guidance,
        seed: args.seed,
        steps: args.steps.unwrap_or(timesteps),
        sampler: args.sampler,
        batch: args.batch,
        init,
        strength: args.strength,
        preview: if format == Some(favicon_diffusor::image::Format::Gif) { Preview::X0 } else { Preview::None },
        background: args.background,
    };
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{spinner} step {pos}/{len} [{bar:32}] {per_sec} eta {eta}")?
            .progress_chars("=> "),
    );
    let start = Instant::now();
    let result = pipe.generate(&req, |event| {
        bar.set_length(event.total as u64);
        bar.set_position(event.index as u64 + 1);
    })?;
    bar.finish_and_clear();
    let elapsed = start.elapsed();
    println!("weights: {}", dir.display());
    println!("backend: {}", pipe.backend_name());
    println!("time: {:.2} s for {} step(s) at batch {}", elapsed.as_secs_f64(), req.steps, req.batch);
    if let Some(path) = &out {
        laps.time(Stage::Write, || result.save(path))?;
        println!("wrote {}", path.display());
    }
    if let Some(dir) = &args.kit {
        let name = args.name.clone().unwrap_or(args.prompt.clone());
        let options = KitOptions { name, background: args.background };
        laps.time(Stage::Write, || write_kit(dir, &kit::build(&result.image(0)?, &options)?))?;
    }
    if args.timings {
        print!("timings since process start:\n{}", laps.merged(&pipe.laps()).report(started.elapsed()));
    }
    Ok(())
}

fn write_kit(dir: &std::path::Path, files: &[kit::KitFile]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for file in files {
        favicon_diffusor::image::write_atomic(&dir.join(file.name), &file.bytes)?;
    }
    let names: Vec<_> = files.iter().map(|f| f.name).collect();
    println!("wrote the kit to {}: {}", dir.display(), names.join(", "));
    Ok(())
}
