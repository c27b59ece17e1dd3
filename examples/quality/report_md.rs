//! docs/QUALITY.md, written from the stored rows.

use std::fmt::Write;
use std::path::Path;

use crate::report::Row;
use crate::Prompt;

const HEADER: &str = "# Quality benchmark

Made by `cargo run --release --example quality -- --label NAME [--weights DIR] [--backend gpu]`
(the icon file first: `train/fetch_sources.sh && cargo run --release --example dataset`). Every
prompt of `train/quality/prompts.tsv` is drawn with the Rust sampler at the CLI's defaults (DDPM,
32 steps, guidance 3) for seeds 0–7 (full rows) or 0–1 (quick rows, a CPU look: never compare
them with full rows). The yardstick is frozen: `train/quality/classifier.safetensors` (a word
classifier trained from scratch by `train/classifier.py` on the training icons only),
`heldout.txt` (icons no model trains on) and `frozen.json` (the copy threshold).

- **Recognisability**: a sample scores when its prompt's word is among the classifier's 5
  highest-scoring words (of the whole vocabulary). The **ceiling** is the same score on held-out
  real icons of the word (marked † where the word has too few icons to hold any out, and the
  training icons stand in; the per-prompt table gives how many icons, and few icons make a noisy
  ceiling). Overall = mean over prompts of each (so the ratio weighs prompts by their ceiling); a
  prompt the model has no word for scores 0. The worst grid prompt skips ceilings of 0.
- **Fréchet distance**: between all samples and the held-out icons of the prompts' words, in the
  classifier's 256-wide feature space.
- **Seams**: mean absolute neighbour difference across the 8 × 8 patch boundaries over the same
  inside patches, on the icon over mid-grey; real icons drawn on pixel grids score above 1.
- **Background**: the share of pixels whose alpha is strictly between 0.05 and 0.95 (n/a for an
  RGB model, which has no alpha).
- **Diversity**: mean pairwise feature distance among one grid prompt's samples over the same
  among that word's real icons, averaged over the grid's prompts.
- **Copies**: samples whose RMSE to the nearest training icon (on mid-grey, 8-bit levels; glyphs
  in the flat colour that fits best) is below the frozen threshold.
";

fn pct(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

pub fn render(rows: &[Row], prompts: &[Prompt], dir: &Path) -> String {
    let mut md = String::from(HEADER);
    let folder = dir.file_name().map(|f| f.to_string_lossy().to_string()).unwrap_or_default();
    md.push_str("\n## Rows\n\n| model | mode | date | backend | samples | recognisability / ceiling | worst grid prompt (of its ceiling) | Fréchet | seams (real) | background (real) | diversity | copies (threshold) | nearest icon: min / median |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} / {} = **{}** | {} {} | {:.2} | {:.3} ({:.3}) | {} ({}) | {} | {} ({:.1}) | {:.1} / {:.1} |",
            r.label,
            r.mode,
            r.date,
            r.backend,
            r.samples,
            pct(r.recognisability),
            pct(r.ceiling),
            pct(r.recognisability / r.ceiling.max(1e-9)),
            r.grid_worst.0,
            pct(r.grid_worst.1),
            r.frechet,
            r.seams,
            r.seams_real,
            r.background.map(pct).unwrap_or_else(|| "n/a".into()),
            pct(r.background_real),
            pct(r.diversity),
            r.copies,
            r.copy_threshold,
            r.nearest_min,
            r.nearest_median,
        );
    }
    md.push_str("\n## Pictures\n\nThe first 16 prompts (");
    md.push_str(&prompts.iter().take(16).map(|p| format!("\"{}\"", p.prompt)).collect::<Vec<_>>().join(", "));
    md.push_str("), one row each, seeds 0–3, on a checkerboard.\n\n");
    for r in rows {
        let _ = writeln!(md, "**{}** ({}):\n\n![{}]({}/{})\n", r.label, r.mode, r.label, folder, r.picture);
    }
    md.push_str("\n## Per prompt\n\nShare of samples with the word in the classifier's top 5; the ceiling is real icons' (of how many).\n\n| prompt | word | ceiling |");
    for r in rows {
        let _ = write!(md, " {} ({}) |", r.label, if r.mode == "full" { "full" } else { "quick" });
    }
    md.push_str("\n|---|---|---|");
    md.push_str(&"---|".repeat(rows.len()));
    md.push('\n');
    for (i, p) in prompts.iter().enumerate() {
        let ceiling = rows.last().and_then(|r| r.prompts.get(i));
        let _ = write!(
            md,
            "| {}{} | {} | {} |",
            p.prompt,
            if p.grid { " (grid)" } else { "" },
            p.word,
            ceiling
                .map(|s| format!("{}{}", pct(s.ceiling), if s.from_training { " †" } else { "" }))
                .unwrap_or_default()
        );
        for r in rows {
            let cell =
                r.prompts.get(i).map(|s| s.rate.map(pct).unwrap_or_else(|| "no word".into())).unwrap_or_default();
            let _ = write!(md, " {cell} |");
        }
        md.push('\n');
    }
    md
}
