//! Builds the training set: every icon of the emoji and glyph sets in `train/data/npm` (see
//! train/fetch_sources.sh) rasterised with resvg at 64×64, labelled with the words of its name
//! and, for emoji, its emojibase label and tags. Glyph sets (`mono`: drawn in `currentColor`)
//! are stored as black shapes; train/train.py paints them in a random colour and puts the
//! colour's word in the prompt ("red cloud").
//!
//! `cargo run --release --example dataset -- --npm train/data/npm --out train/data/icons.safetensors`
//!
//! The file holds one tensor, `rgba` (u8, `[N, 64, 64, 4]`, premultiplied alpha: the icon on a
//! transparent background), and JSON metadata: `vocab` (words with at least `--min-count` icons,
//! word i is prompt row i + 1) and `icons` (per icon: its set, name, `label` rows and all `words`
//! rows, and `mono` for glyphs). `sets` lists the sets with their licences. Colours and flips are
//! left to train/train.py, which draws them fresh every step.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Parser;
use resvg::{tiny_skia, usvg};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(about = "Rasterise the emoji icon sets into a training file")]
struct Args {
    /// The npm folder train/fetch_sources.sh installed into.
    #[arg(long, default_value = "train/data/npm")]
    npm: PathBuf,
    #[arg(long, default_value = "train/data/icons.safetensors")]
    out: PathBuf,
    #[arg(long, default_value_t = 64)]
    size: u32,
    /// A word enters the vocabulary when at least this many icons carry it.
    #[arg(long, default_value_t = 3)]
    min_count: usize,
    /// Keep every skin-tone variant. By default each glyph keeps its default (yellow) tone only:
    /// the variants are 45% of the six sets and drown the rest (72 of the 78 icons carrying
    /// "rocket" are astronauts). The vocabulary is counted over all icons either way, so a
    /// checkpoint trained on one file resumes on the other.
    #[arg(long)]
    skin_tones: bool,
}

/// One iconify set: its package name, licence (for the model card) and whether it is a glyph set
/// drawn in `currentColor`.
struct Set {
    name: &'static str,
    licence: &'static str,
    mono: bool,
}

const fn set(name: &'static str, licence: &'static str, mono: bool) -> Set {
    Set { name, licence, mono }
}

/// The iconify sets, in the order their icons are written. emojione-v1 is left out: the same
/// glyphs as emojione in an older style, under share-alike terms (CC-BY-SA-4.0).
const SETS: [Set; 14] = [
    set("noto", "Apache-2.0", false),
    set("twemoji", "CC-BY-4.0", false),
    set("fluent-emoji-flat", "MIT", false),
    set("openmoji", "CC-BY-SA-4.0", false),
    set("emojione", "CC-BY-4.0", false),
    set("fxemoji", "Apache-2.0", false),
    set("noto-v1", "Apache-2.0", false),
    set("streamline-emojis", "CC-BY-4.0", false),
    set("fluent-emoji-high-contrast", "MIT", true),
    set("mdi", "Apache-2.0", true),
    set("tabler", "MIT", true),
    set("lucide", "ISC", true),
    set("carbon", "Apache-2.0", true),
    set("game-icons", "CC-BY-3.0", true),
];

/// The colours train/train.py paints glyphs in: their words always enter the vocabulary.
const COLOUR_WORDS: [&str; 10] =
    ["red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "gray"];

struct Icon {
    set: &'static Set,
    name: String,
    /// The emojibase label's words (or the name's, when emojibase has no entry).
    label: Vec<String>,
    /// Label, tags and name words, without repeats.
    words: Vec<String>,
    rgba: Vec<u8>,
    /// A skin-tone variant of another glyph.
    toned: bool,
}

/// The Fitzpatrick modifiers U+1F3FB..U+1F3FF.
const SKIN_TONES: [&str; 5] = ["1F3FB", "1F3FC", "1F3FD", "1F3FE", "1F3FF"];

/// Fluent's naming of the five tones, as name suffixes.
const TONE_SUFFIXES: [&str; 5] = ["-light", "-medium-light", "-medium", "-medium-dark", "-dark"];

/// Whether an icon is a skin-tone variant: by its codepoints when the set maps them, else by the
/// naming schemes of the sets: "-medium-dark-skin-tone", "-tone3", or one of Fluent's five
/// suffixes when the set holds all five for the same stem ("police-car-light" has no
/// "police-car-dark", so it stays).
fn is_toned(hex: Option<&str>, name: &str, names: &HashSet<&str>) -> bool {
    if let Some(hex) = hex {
        return hex.split('-').any(|part| SKIN_TONES.contains(&part));
    }
    if name.contains("skin-tone") || (1..=5).any(|n| name.ends_with(&format!("-tone{n}"))) {
        return true;
    }
    // The longest matching suffix names the stem ("-medium-dark" before "-dark").
    let stem = TONE_SUFFIXES.iter().filter_map(|suffix| name.strip_suffix(suffix)).min_by_key(|stem| stem.len());
    stem.is_some_and(|stem| TONE_SUFFIXES.iter().all(|suffix| names.contains(format!("{stem}{suffix}").as_str())))
}

/// Lower-cased alphanumeric words, as the Rust vocabulary splits a prompt.
fn words_of(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

fn compact(text: &str) -> String {
    words_of(text).concat()
}

/// Emojibase entries by hexcode (without FE0F) and by compacted label.
struct Labels {
    by_hex: HashMap<String, (String, Vec<String>)>,
    by_name: HashMap<String, (String, Vec<String>)>,
}

fn strip_hex(hex: &str) -> String {
    hex.split('-').filter(|p| !p.eq_ignore_ascii_case("fe0f")).map(str::to_uppercase).collect::<Vec<_>>().join("-")
}

impl Labels {
    fn load(npm: &std::path::Path) -> Result<Self> {
        let path = npm.join("node_modules/emojibase-data/en/data.json");
        let data: Vec<Value> = serde_json::from_str(
            &std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
        )?;
        let mut labels = Labels { by_hex: HashMap::new(), by_name: HashMap::new() };
        let strings = |v: &Value| -> Vec<String> {
            v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect()).unwrap_or_default()
        };
        for entry in &data {
            let tags = strings(&entry["tags"]);
            let mut add = |e: &Value| {
                if let (Some(hex), Some(label)) = (e["hexcode"].as_str(), e["label"].as_str()) {
                    labels.by_hex.insert(strip_hex(hex), (label.to_string(), tags.clone()));
                    labels.by_name.insert(compact(label), (label.to_string(), tags.clone()));
                }
            };
            add(entry);
            for skin in entry["skins"].as_array().into_iter().flatten() {
                add(skin);
            }
        }
        Ok(labels)
    }
}

/// Rasterises one iconify icon body, its viewBox (`[left, top, width, height]`) fitted into a
/// `size` square: premultiplied RGBA.
fn render(body: &str, [left, top, width, height]: [f64; 4], size: u32) -> Result<Vec<u8>> {
    let svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="{left} {top} {width} {height}" width="{width}" height="{height}">{body}</svg>"#
    );
    let tree = usvg::Tree::from_str(&svg, &usvg::Options::default())?;
    let mut pixmap = tiny_skia::Pixmap::new(size, size).context("zero-sized pixmap")?;
    let scale = size as f32 / tree.size().width().max(tree.size().height());
    let dx = (size as f32 - tree.size().width() * scale) / 2.0;
    let dy = (size as f32 - tree.size().height() * scale) / 2.0;
    resvg::render(&tree, tiny_skia::Transform::from_row(scale, 0.0, 0.0, scale, dx, dy), &mut pixmap.as_mut());
    Ok(pixmap.take())
}

fn load_set(npm: &std::path::Path, set: &'static Set, labels: &Labels, size: u32) -> Result<Vec<Icon>> {
    let dir = npm.join("node_modules/@iconify-json").join(set.name);
    let icons: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("icons.json"))?)?;
    // chars.json maps codepoints to icon names; invert it to find each icon's emojibase entry.
    let chars: BTreeMap<String, String> = std::fs::read_to_string(dir.join("chars.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let hex_of: HashMap<&str, String> = chars.iter().map(|(hex, name)| (name.as_str(), strip_hex(hex))).collect();
    let num = |v: &Value, default: f64| v.as_f64().unwrap_or(default);
    let (width, height) = (num(&icons["width"], 16.0), num(&icons["height"], 16.0));
    let Some(entries) = icons["icons"].as_object() else { bail!("{}: icons.json has no `icons` object", set.name) };
    let names: HashSet<&str> = entries.keys().map(String::as_str).collect();
    let mut out = Vec::with_capacity(entries.len());
    for (name, icon) in entries {
        if icon["hidden"].as_bool() == Some(true) {
            continue;
        }
        let Some(body) = icon["body"].as_str() else { continue };
        let view =
            [num(&icon["left"], 0.0), num(&icon["top"], 0.0), num(&icon["width"], width), num(&icon["height"], height)];
        let rgba = match render(body, view, size) {
            Ok(rgba) => rgba,
            Err(err) => {
                eprintln!("skipping {}:{name}: {err}", set.name);
                continue;
            }
        };
        if rgba.chunks_exact(4).all(|p| p[3] == 0) {
            eprintln!("skipping {}:{name}: renders empty", set.name);
            continue;
        }
        let hex = hex_of.get(name.as_str());
        let toned = is_toned(hex.map(String::as_str), name, &names);
        // Glyph sets name things, not emoji: only an exact codepoint match borrows emojibase's words.
        let by_name = if set.mono && hex.is_none() { None } else { labels.by_name.get(&compact(name)) };
        let entry = hex.and_then(|hex| labels.by_hex.get(hex)).or(by_name);
        let (label, tags) = match entry {
            Some((label, tags)) => (words_of(label), tags.iter().flat_map(|t| words_of(t)).collect()),
            None => (words_of(name), Vec::new()),
        };
        let mut seen = HashSet::new();
        let words =
            label.iter().chain(&tags).cloned().chain(words_of(name)).filter(|w| seen.insert(w.clone())).collect();
        out.push(Icon { set, name: name.clone(), label, words, rgba, toned });
    }
    Ok(out)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let labels = Labels::load(&args.npm)?;
    let mut icons = Vec::new();
    for set in &SETS {
        let before = icons.len();
        icons.extend(load_set(&args.npm, set, &labels, args.size).with_context(|| format!("icon set {}", set.name))?);
        println!("{}: {} icons", set.name, icons.len() - before);
    }
    let mut counts: HashMap<String, usize> = HashMap::new();
    for icon in &icons {
        for w in &icon.words {
            *counts.entry(w.clone()).or_default() += 1;
        }
    }
    for word in COLOUR_WORDS {
        counts.entry(word.to_string()).or_insert(args.min_count);
    }
    let mut vocab: Vec<(String, usize)> = counts.into_iter().filter(|&(_, n)| n >= args.min_count).collect();
    vocab.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let row: HashMap<&str, usize> = vocab.iter().enumerate().map(|(i, (w, _))| (w.as_str(), i + 1)).collect();
    let toned = icons.iter().filter(|i| i.toned).count();
    if !args.skin_tones {
        icons.retain(|i| !i.toned);
        println!("dropped {toned} skin-tone variants (--skin-tones keeps them)");
    }
    let rows = |ws: &[String]| -> Vec<usize> { ws.iter().filter_map(|w| row.get(w.as_str()).copied()).collect() };
    let meta: Vec<Value> = icons
        .iter()
        .map(|i| {
            json!({"set": i.set.name, "name": i.name, "label": rows(&i.label), "words": rows(&i.words), "mono": i.set.mono})
        })
        .collect();
    let words: Vec<&str> = vocab.iter().map(|(w, _)| w.as_str()).collect();
    let mut pixels = Vec::with_capacity(icons.len() * icons[0].rgba.len());
    for icon in &icons {
        pixels.extend_from_slice(&icon.rgba);
    }
    let side = args.size as usize;
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::U8, vec![icons.len(), side, side, 4], &pixels)?;
    let metadata = HashMap::from([
        ("vocab".to_string(), serde_json::to_string(&words)?),
        ("icons".to_string(), serde_json::to_string(&meta)?),
        (
            "sets".to_string(),
            serde_json::to_string(
                &SETS.iter().map(|s| json!({"name": s.name, "licence": s.licence, "mono": s.mono})).collect::<Vec<_>>(),
            )?,
        ),
        ("colours".to_string(), serde_json::to_string(&COLOUR_WORDS)?),
    ]);
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    safetensors::serialize_to_file([("rgba", view)], Some(metadata), &args.out)?;
    let unlabelled = meta.iter().filter(|m| m["words"].as_array().is_none_or(|a| a.is_empty())).count();
    println!("{} icons, {} vocabulary words, {unlabelled} icons without a vocabulary word", icons.len(), words.len());
    println!("wrote {}", args.out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skin_tone_variants_are_found_by_codepoint_or_by_a_whole_family_of_names() {
        let none = HashSet::new();
        // 👩🏾‍🚀 woman astronaut, medium-dark skin tone; 🚀 rocket; 👍 without a tone.
        assert!(is_toned(Some("1F469-1F3FE-200D-1F680"), "woman-astronaut-medium-dark-skin-tone", &none));
        assert!(!is_toned(Some("1F680"), "rocket", &none));
        assert!(!is_toned(Some("1F44D"), "thumbs-up", &none));
        // Without codepoints, names decide.
        assert!(is_toned(None, "thumbs-up-tone3", &none));
        assert!(is_toned(None, "artist-dark-skin-tone", &none));
        let fluent: HashSet<&str> = [
            "astronaut",
            "astronaut-light",
            "astronaut-medium-light",
            "astronaut-medium",
            "astronaut-medium-dark",
            "astronaut-dark",
            "police-car",
            "police-car-light",
        ]
        .into_iter()
        .collect();
        assert!(is_toned(None, "astronaut-medium-dark", &fluent));
        assert!(is_toned(None, "astronaut-light", &fluent));
        assert!(!is_toned(None, "astronaut", &fluent));
        // 🚨 is "police-car-light", and no "police-car-dark" exists: not a tone.
        assert!(!is_toned(None, "police-car-light", &fluent));
    }
}
