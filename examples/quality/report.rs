//! One benchmark row from the scored samples, the stored rows, and docs/QUALITY.md made from them.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use image::{Rgb, RgbImage};
use serde::{Deserialize, Serialize};

use crate::classifier::Classifier;
use crate::copies::TrainingSet;
use crate::icons::Icons;
use crate::metrics::{self, Seams};
use crate::Prompt;

/// Fixed before any new training (`--freeze`).
#[derive(Serialize, Deserialize)]
pub struct Frozen {
    /// A quarter of the median distance between a training icon and its nearest other one.
    pub copy_threshold: f32,
    pub median_nearest: f32,
    pub icons_measured: usize,
}

pub fn freeze(icons: &Icons, path: &Path) -> Result<()> {
    let training = TrainingSet::new(icons)?;
    let all: Vec<usize> = (0..icons.len()).filter(|&k| !icons.held_out[k]).collect();
    let chosen: Vec<usize> = all.iter().step_by((all.len() / 1000).max(1)).copied().collect();
    let queries: Vec<Vec<f32>> = chosen.iter().map(|&k| icons.on_grey(k).0).collect();
    let skip: Vec<Option<usize>> = chosen.iter().map(|&k| Some(k)).collect();
    let mut nearest: Vec<f32> = training.nearest(&queries, &skip)?.into_iter().map(|(_, d)| d).collect();
    nearest.sort_by(f32::total_cmp);
    let median = nearest[nearest.len() / 2];
    let frozen = Frozen { copy_threshold: median / 4.0, median_nearest: median, icons_measured: chosen.len() };
    std::fs::write(path, serde_json::to_string_pretty(&frozen)? + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!(
        "copy threshold {:.2} levels (median nearest-icon RMSE {median:.2} over {} training icons)",
        median / 4.0,
        chosen.len()
    );
    Ok(())
}

#[derive(Serialize, Deserialize, Clone)]
pub struct PromptScore {
    pub prompt: String,
    pub word: String,
    /// None: the checkpoint has no word of the prompt (scored 0 overall).
    pub rate: Option<f64>,
    pub ceiling: f64,
    /// The ceiling comes from training icons: the word has too few icons to hold any out.
    pub from_training: bool,
    /// How many real icons the ceiling was measured on.
    #[serde(default)]
    pub references: usize,
    #[serde(skip)]
    pub reference: Vec<usize>,
}

pub struct Context {
    pub label: String,
    pub quick: bool,
    pub backend: String,
    pub channels: usize,
    pub sampling_s: f64,
}

#[derive(Serialize, Deserialize)]
pub struct Row {
    pub label: String,
    pub mode: String,
    pub date: String,
    pub backend: String,
    pub samples: usize,
    pub sampling_s: f64,
    pub recognisability: f64,
    pub ceiling: f64,
    pub grid_worst: (String, f64),
    pub frechet: f64,
    pub seams: f64,
    pub seams_real: f64,
    pub background: Option<f64>,
    pub background_real: f64,
    pub diversity: f64,
    pub copies: usize,
    pub nearest_min: f32,
    pub nearest_median: f32,
    pub copy_threshold: f32,
    pub prompts: Vec<PromptScore>,
    pub picture: String,
}

fn today() -> String {
    std::process::Command::new("date")
        .arg("+%Y-%m-%d")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

pub fn measure(
    ctx: Context,
    prompts: &[Prompt],
    samples: &[Option<Vec<(Vec<f32>, Vec<f32>)>>],
    scores: &[PromptScore],
    classifier: &Classifier,
    icons: &Icons,
    frozen: &Frozen,
) -> Result<Row> {
    let size = icons.size;
    let as_input = |rgb: &[f32]| rgb.iter().map(|v| v * 2.0 - 1.0).collect::<Vec<f32>>();
    // Real reference: the union of every prompt's reference icons.
    let mut reference: Vec<usize> = scores.iter().flat_map(|s| s.reference.iter().copied()).collect();
    reference.sort_unstable();
    reference.dedup();
    let real: Vec<(Vec<f32>, Vec<f32>)> = reference.iter().map(|&k| icons.on_grey(k)).collect();
    let real_flat: Vec<f32> = real.iter().flat_map(|(rgb, _)| as_input(rgb)).collect();
    let (real_feats, _) = classifier.run(&real_flat, real.len())?;
    let feature_of: std::collections::HashMap<usize, &Vec<f32>> =
        reference.iter().copied().zip(real_feats.iter()).collect();

    let drawn: Vec<&(Vec<f32>, Vec<f32>)> = samples.iter().flatten().flatten().collect();
    let gen_flat: Vec<f32> = drawn.iter().flat_map(|(rgb, _)| as_input(rgb)).collect();
    let (gen_feats, _) = classifier.run(&gen_flat, drawn.len())?;

    let (mut seams, mut seams_real) = (Seams::default(), Seams::default());
    let (mut between, mut between_real) = ((0, 0), (0, 0));
    for (rgb, alpha) in &drawn {
        seams.add(rgb, size, 8);
        let (b, n) = metrics::in_between(alpha);
        between = (between.0 + b, between.1 + n);
    }
    for (rgb, alpha) in &real {
        seams_real.add(rgb, size, 8);
        let (b, n) = metrics::in_between(alpha);
        between_real = (between_real.0 + b, between_real.1 + n);
    }

    // Diversity on the grid's prompts: samples' mean pairwise feature distance over the real icons'.
    let mut ratios = Vec::new();
    let mut cursor = 0;
    for ((p, s), drawn) in prompts.iter().zip(scores).zip(samples) {
        let Some(drawn) = drawn else { continue };
        let feats = &gen_feats[cursor..cursor + drawn.len()];
        cursor += drawn.len();
        if p.grid && s.reference.len() >= 2 {
            let real: Vec<Vec<f32>> = s.reference.iter().map(|k| feature_of[k].clone()).collect();
            ratios.push(metrics::mean_pairwise(feats) / metrics::mean_pairwise(&real).max(1e-9));
        }
    }

    let training = TrainingSet::new(icons)?;
    let rgb: Vec<Vec<f32>> = drawn.iter().map(|(rgb, _)| rgb.clone()).collect();
    let mut nearest: Vec<f32> = training.nearest(&rgb, &vec![None; rgb.len()])?.into_iter().map(|(_, d)| d).collect();
    nearest.sort_by(f32::total_cmp);

    let rate = |s: &PromptScore| s.rate.unwrap_or(0.0);
    let n = scores.len() as f64;
    let grid_worst = scores
        .iter()
        .zip(prompts)
        .filter(|(s, p)| p.grid && s.ceiling > 0.0)
        .map(|(s, _)| (s.prompt.clone(), rate(s) / s.ceiling.max(1e-9)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or_default();
    Ok(Row {
        label: ctx.label,
        mode: if ctx.quick { "quick (CPU look, 2 seeds)".into() } else { "full".into() },
        date: today(),
        backend: ctx.backend,
        samples: drawn.len(),
        sampling_s: ctx.sampling_s,
        recognisability: scores.iter().map(rate).sum::<f64>() / n,
        ceiling: scores.iter().map(|s| s.ceiling).sum::<f64>() / n,
        grid_worst,
        frechet: if gen_feats.len() >= 2 { metrics::frechet(&gen_feats, &real_feats) } else { f64::NAN },
        seams: seams.score(),
        seams_real: seams_real.score(),
        background: (ctx.channels == 4).then(|| between.0 as f64 / between.1.max(1) as f64),
        background_real: between_real.0 as f64 / between_real.1.max(1) as f64,
        diversity: ratios.iter().sum::<f64>() / ratios.len().max(1) as f64,
        copies: nearest.iter().filter(|&&d| d < frozen.copy_threshold).count(),
        nearest_min: nearest.first().copied().unwrap_or(f32::NAN),
        nearest_median: nearest.get(nearest.len() / 2).copied().unwrap_or(f32::NAN),
        copy_threshold: frozen.copy_threshold,
        prompts: scores.to_vec(),
        picture: String::new(),
    })
}

fn slug(label: &str) -> String {
    label.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect()
}

/// The first 16 prompts' samples (up to 4 seeds), 2× nearest, on a checkerboard.
pub fn picture(
    dir: &Path,
    label: &str,
    prompts: &[Prompt],
    planar: &[Vec<Vec<f32>>],
    cfg: &favicon_diffusor::Config,
) -> Result<String> {
    let size = cfg.image_size;
    let rows: Vec<usize> = (0..prompts.len()).filter(|&i| !planar[i].is_empty()).take(16).collect();
    let (scale, cols) = (2, 4);
    let tile = size * scale;
    let mut img = RgbImage::new((cols * tile) as u32, (rows.len() * tile) as u32);
    for (r, &i) in rows.iter().enumerate() {
        for (c, image) in planar[i].iter().take(cols).enumerate() {
            let (rgb, alpha) = metrics::on_grey(image, cfg.channels, cfg.matte, size)?;
            let plane = size * size;
            for y in 0..tile {
                for x in 0..tile {
                    let j = (y / scale) * size + x / scale;
                    let check = if ((x / 8) + (y / 8)) % 2 == 0 { 0.80 } else { 0.95 };
                    let a = alpha[j];
                    let px = [0, 1, 2].map(|ch| {
                        let colour = rgb[ch * plane + j] - metrics::GREY * (1.0 - a);
                        ((colour + check * (1.0 - a)).clamp(0.0, 1.0) * 255.0).round() as u8
                    });
                    img.put_pixel((c * tile + x) as u32, (r * tile + y) as u32, Rgb(px));
                }
            }
        }
    }
    std::fs::create_dir_all(dir)?;
    let name = format!("{}.png", slug(label));
    img.save(dir.join(&name)).with_context(|| format!("cannot write {}", dir.join(&name).display()))?;
    Ok(name)
}

fn load_rows(path: &Path) -> Result<Vec<Row>> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).with_context(|| format!("{} is not a list of rows", path.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Adds (or replaces) the row in rows.json and rewrites the markdown.
pub fn store(dir: &Path, out: &Path, row: Row, prompts: &[Prompt]) -> Result<()> {
    let path: PathBuf = dir.join("rows.json");
    let mut rows = load_rows(&path)?;
    rows.retain(|r| !(r.label == row.label && r.mode == row.mode));
    rows.push(row);
    std::fs::write(&path, serde_json::to_string_pretty(&rows)? + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    render(dir, out, prompts)
}

/// Rewrites the markdown from rows.json.
pub fn render(dir: &Path, out: &Path, prompts: &[Prompt]) -> Result<()> {
    let rows = load_rows(&dir.join("rows.json"))?;
    std::fs::write(out, crate::report_md::render(&rows, prompts, dir))
        .with_context(|| format!("cannot write {}", out.display()))
}
