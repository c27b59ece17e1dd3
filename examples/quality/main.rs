//! The quality benchmark: draws every prompt of `train/quality/prompts.tsv` with the Rust sampler
//! at the CLI's defaults (DDPM, 32 steps, guidance 3), scores the samples with the frozen word
//! classifier and the measures of docs/QUALITY.md, stores the row in `docs/quality/rows.json` and
//! rewrites docs/QUALITY.md from every stored row.
//!
//! ```sh
//! train/fetch_sources.sh && cargo run --release --example dataset   # the real icons, once
//! cargo run --release --example quality -- --label "my model" --weights DIR
//! cargo run --release --example quality -- --quick --backend cpu    # 2 seeds, rows marked quick
//! ```

mod classifier;
mod copies;
mod icons;
mod metrics;
mod report;
mod report_md;

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Parser;
use favicon_diffusor::{Backend, Pipeline, Request};
use indicatif::{ProgressBar, ProgressStyle};

use classifier::{in_top5, Classifier};
use icons::Icons;
use report::{PromptScore, Row};

#[derive(Parser)]
#[command(about = "Score a checkpoint on the quality benchmark and add its row to docs/QUALITY.md")]
struct Args {
    /// Checkpoint folder (config.json + model.safetensors); the shipped weights by default.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// The row's name in the table.
    #[arg(long)]
    label: Option<String>,
    #[arg(long, default_value = "auto")]
    backend: Backend,
    /// 2 seeds a prompt instead of 8: a quick look, marked as such and never compared with full rows.
    #[arg(long)]
    quick: bool,
    /// The icon file from `cargo run --release --example dataset` (uncompressed).
    #[arg(long, default_value = "train/data/icons.safetensors")]
    data: PathBuf,
    /// The frozen yardstick: classifier.safetensors, heldout.txt, prompts.tsv, frozen.json.
    #[arg(long, default_value = "train/quality")]
    yardstick: PathBuf,
    /// Where rows.json and the pictures live.
    #[arg(long, default_value = "docs/quality")]
    rows: PathBuf,
    #[arg(long, default_value = "docs/QUALITY.md")]
    out: PathBuf,
    /// Compute the copy threshold (a quarter of the median distance from a training icon to its
    /// nearest other one) into frozen.json, and stop; done once, before any new training.
    #[arg(long)]
    freeze: bool,
    /// Rewrite docs/QUALITY.md from the stored rows (after editing a label) and stop.
    #[arg(long)]
    render: bool,
    /// Guidance scale, to compare with the CLI's default (3); the row's label should say so.
    #[arg(long, default_value_t = 3.0)]
    guidance: f32,
}

pub struct Prompt {
    pub prompt: String,
    /// The word the classifier must rank in its top 5.
    pub word: String,
    /// One of the README grid's prompts.
    pub grid: bool,
}

fn read_prompts(path: &std::path::Path) -> Result<Vec<Prompt>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#')) {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            [prompt, word] | [prompt, word, _] => out.push(Prompt {
                prompt: prompt.to_string(),
                word: word.to_string(),
                grid: fields.get(2) == Some(&"grid"),
            }),
            _ => bail!("{}:{}: expected `prompt<TAB>word[<TAB>grid]`", path.display(), n + 1),
        }
    }
    Ok(out)
}

fn main() {
    if let Err(err) = run(Args::parse()) {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

fn bar(len: usize, what: &str) -> Result<ProgressBar> {
    Ok(ProgressBar::new(len as u64).with_style(ProgressStyle::with_template(&format!(
        "{what} {{pos}}/{{len}} [{{bar:32}}] {{per_sec}} eta {{eta}}"
    ))?))
}

fn run(args: Args) -> Result<()> {
    let prompts = read_prompts(&args.yardstick.join("prompts.tsv"))?;
    if args.render {
        return report::render(&args.rows, &args.out, &prompts);
    }
    let icons = Icons::load(&args.data, &args.yardstick.join("heldout.txt"))?;
    let frozen_path = args.yardstick.join("frozen.json");
    if args.freeze {
        return report::freeze(&icons, &frozen_path);
    }
    let classifier = Classifier::load(&args.yardstick.join("classifier.safetensors"))?;
    if icons.vocab != classifier.vocab {
        bail!("the classifier's vocabulary is not the icon file's: retrain it on this file, and re-run every row");
    }
    let frozen: report::Frozen = serde_json::from_str(
        &std::fs::read_to_string(&frozen_path)
            .with_context(|| format!("cannot read {} (run with --freeze once)", frozen_path.display()))?,
    )?;

    let weights = args.weights.clone().unwrap_or_else(Pipeline::default_weights);
    let mut pipe = Pipeline::load(&weights, args.backend).with_context(|| format!("loading {}", weights.display()))?;
    let cfg = pipe.checkpoint().config.clone();
    let seeds = if args.quick { 2 } else { 8 };
    let started = std::time::Instant::now();
    let progress = bar(prompts.len() * seeds, "sampling")?;
    // RGB on grey and alpha per sample; None for prompts this checkpoint has no word of.
    let mut samples: Vec<Option<Vec<(Vec<f32>, Vec<f32>)>>> = Vec::new();
    let mut planar: Vec<Vec<Vec<f32>>> = Vec::new();
    for p in &prompts {
        if pipe.checkpoint().encode_prompt(&p.prompt).map(|ids| ids.is_empty()).unwrap_or(true) {
            samples.push(None);
            planar.push(Vec::new());
            progress.inc(seeds as u64);
            continue;
        }
        let mut drawn = Vec::new();
        let mut raw = Vec::new();
        for seed in 0..seeds as u64 {
            let req = Request { prompt: p.prompt.clone(), seed, guidance: args.guidance, ..Default::default() };
            let out = pipe.generate(&req, |_| {})?;
            drawn.push(metrics::on_grey(&out.images, cfg.channels, cfg.matte, cfg.image_size)?);
            raw.push(out.images);
            progress.inc(1);
        }
        samples.push(Some(drawn));
        planar.push(raw);
    }
    progress.finish_and_clear();
    let sampling_s = started.elapsed().as_secs_f64();

    let words: Vec<usize> = prompts
        .iter()
        .map(|p| {
            classifier
                .word(&p.word)
                .with_context(|| format!("prompt word `{}` is not in the classifier's vocabulary", p.word))
        })
        .collect::<Result<_>>()?;
    let scores = score_prompts(&prompts, &words, &samples, &classifier, &icons)?;
    let row = report::measure(
        report::Context {
            label: args.label.clone().unwrap_or_else(|| weights.display().to_string()),
            quick: args.quick,
            backend: pipe.backend_name(),
            channels: cfg.channels,
            sampling_s,
        },
        &prompts,
        &samples,
        &scores,
        &classifier,
        &icons,
        &frozen,
    )?;
    let picture = report::picture(&args.rows, &row.label, &prompts, &planar, &cfg)?;
    report::store(&args.rows, &args.out, Row { picture, ..row }, &prompts)?;
    println!("wrote {} and {}", args.out.display(), args.rows.join("rows.json").display());
    Ok(())
}

/// Per prompt: the share of samples whose word is in the classifier's top 5, and the same share
/// on real icons of the word (held out, or, for words too rare to hold out, training icons).
fn score_prompts(
    prompts: &[Prompt],
    words: &[usize],
    samples: &[Option<Vec<(Vec<f32>, Vec<f32>)>>],
    classifier: &Classifier,
    icons: &Icons,
) -> Result<Vec<PromptScore>> {
    let mut out = Vec::new();
    let progress = bar(prompts.len(), "scoring")?;
    for ((p, &word), drawn) in prompts.iter().zip(words).zip(samples) {
        let rate = match drawn {
            Some(drawn) => {
                let flat: Vec<f32> = drawn.iter().flat_map(|(rgb, _)| rgb.iter().map(|v| v * 2.0 - 1.0)).collect();
                let (_, logits) = classifier.run(&flat, drawn.len())?;
                Some(logits.iter().filter(|l| in_top5(l, word)).count() as f64 / drawn.len() as f64)
            }
            None => None,
        };
        let held: Vec<usize> = (0..icons.len()).filter(|&k| icons.held_out[k] && icons.has_word(k, &p.word)).collect();
        let (reference, from_training) = if held.is_empty() {
            ((0..icons.len()).filter(|&k| icons.has_word(k, &p.word)).collect(), true)
        } else {
            (held, false)
        };
        let flat: Vec<f32> =
            reference.iter().flat_map(|&k| icons.on_grey(k).0.into_iter().map(|v| v * 2.0 - 1.0)).collect();
        let (_, logits) = classifier.run(&flat, reference.len())?;
        let ceiling = logits.iter().filter(|l| in_top5(l, word)).count() as f64 / reference.len().max(1) as f64;
        out.push(PromptScore {
            references: reference.len(),
            prompt: p.prompt.clone(),
            word: p.word.clone(),
            rate,
            ceiling,
            from_training,
            reference,
        });
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok(out)
}
