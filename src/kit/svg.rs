//! The icon as a pixel-art SVG: one path per colour, one rectangle per run of pixels,
//! nothing where the icon is transparent. Colours are painted in order, the most common
//! first, and a colour's runs may cross opaque pixels of colours painted after it (which cover
//! them again), so a background is a few large rectangles rather than many small ones; runs
//! repeated on the next row stack into one taller rectangle. A sampled icon rarely repeats a
//! colour exactly, so when the SVG would be larger than [`MAX_BYTES`], its colours are first
//! reduced by median cut. The faint haze around a sampled RGBA icon (alpha under
//! 5%, [`HAZE`]) is left out.

use std::collections::HashMap;
use std::fmt::Write as _;

use image::{Rgba, RgbaImage};

/// Above this size the colours are quantised (a rectangle costs about 17 bytes, a colour 30
/// more).
pub const MAX_BYTES: usize = 24_000;

/// Pixels at most this opaque (under 5%) are left out of the SVG.
pub const HAZE: u8 = 12;

/// Palette sizes tried in turn until the rectangles fit.
const PALETTES: [usize; 5] = [128, 64, 32, 16, 8];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rect {
    x: u32,
    y: u32,
    width: u32,
    height: u32,
}

/// One colour's rectangles, in painting order.
type Layers = Vec<([u8; 4], Vec<Rect>)>;

/// The SVG text for `img`, and the image it draws (equal to `img` unless it was quantised).
pub fn svg(img: &RgbaImage) -> (String, RgbaImage) {
    let visible = clear_haze(img);
    let mut drawn = visible.clone();
    let mut text = render(img.width(), img.height(), &paint(&drawn));
    for colours in PALETTES {
        if text.len() <= MAX_BYTES {
            break;
        }
        drawn = median_cut(&visible, colours);
        text = render(img.width(), img.height(), &paint(&drawn));
    }
    (text, drawn)
}

/// `img` with the faint haze a sampled RGBA icon leaves around it (alpha at most [`HAZE`])
/// made fully transparent: invisible, and scattered, so each pixel would cost a rectangle.
fn clear_haze(img: &RgbaImage) -> RgbaImage {
    let mut out = img.clone();
    for p in out.pixels_mut().filter(|p| p[3] <= HAZE) {
        *p = Rgba([0; 4]);
    }
    out
}

/// The rectangles of every visible colour, the most common colour first. A pixel ends up with
/// its own colour: its colour's rectangles cover it, and a later colour's never do, because
/// they cross only pixels of colours painted later still (and only opaque ones, which hide
/// what is under them).
fn paint(img: &RgbaImage) -> Layers {
    let mut counts: HashMap<[u8; 4], usize> = HashMap::new();
    for p in img.pixels().filter(|p| p[3] > 0) {
        *counts.entry(p.0).or_default() += 1;
    }
    let mut order: Vec<_> = counts.into_iter().collect();
    order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let rank: HashMap<[u8; 4], usize> = order.iter().enumerate().map(|(i, (c, _))| (*c, i)).collect();
    order
        .iter()
        .enumerate()
        .map(|(layer, &(colour, _))| {
            let covers = |p: &Rgba<u8>| p.0 == colour || (p[3] == 255 && rank.get(&p.0).is_some_and(|&r| r > layer));
            (colour, rects(img, colour, covers))
        })
        .collect()
}

/// Rectangles over the pixels `covers` allows, each holding at least one pixel of `colour` on
/// every row: maximal runs per row, stacked where the next row repeats a run exactly.
fn rects(img: &RgbaImage, colour: [u8; 4], covers: impl Fn(&Rgba<u8>) -> bool) -> Vec<Rect> {
    let mut out: Vec<Rect> = Vec::new();
    // Rectangles still growing downwards: (x, width) -> index in `out`.
    let mut open: HashMap<(u32, u32), usize> = HashMap::new();
    for y in 0..img.height() {
        let mut next_open = HashMap::new();
        let mut x = 0;
        while x < img.width() {
            let start = x;
            let mut own = false;
            while x < img.width() && covers(img.get_pixel(x, y)) {
                own |= img.get_pixel(x, y).0 == colour;
                x += 1;
            }
            if x == start {
                x += 1;
                continue;
            }
            if !own {
                continue;
            }
            let key = (start, x - start);
            let index = match open.get(&key) {
                Some(&i) => {
                    out[i].height += 1;
                    i
                }
                None => {
                    out.push(Rect { x: start, y, width: x - start, height: 1 });
                    out.len() - 1
                }
            };
            next_open.insert(key, index);
        }
        open = next_open;
    }
    out
}

fn render(width: u32, height: u32, layers: &Layers) -> String {
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" shape-rendering=\"crispEdges\">\n"
    );
    for (colour, rects) in layers {
        let _ = write!(out, "<path fill=\"{}\"", hex(colour));
        if colour[3] < 255 {
            let _ = write!(out, " fill-opacity=\"{}\"", opacity(colour[3]));
        }
        out.push_str(" d=\"");
        for r in rects {
            let _ = write!(out, "M{} {}h{}v{}h-{}z", r.x, r.y, r.width, r.height, r.width);
        }
        out.push_str("\"/>\n");
    }
    out.push_str("</svg>\n");
    out
}

/// `#rgb` where each byte repeats its nibble, else `#rrggbb`.
pub fn hex(colour: &[u8; 4]) -> String {
    let [r, g, b, _] = *colour;
    if [r, g, b].iter().all(|c| c >> 4 == c & 15) {
        format!("#{:x}{:x}{:x}", r & 15, g & 15, b & 15)
    } else {
        format!("#{r:02x}{g:02x}{b:02x}")
    }
}

/// Alpha as the shortest decimal that rounds back to the same byte.
fn opacity(alpha: u8) -> String {
    (1..=4)
        .map(|digits| format!("{:.*}", digits, alpha as f64 / 255.0))
        .find(|text| text.parse::<f64>().is_ok_and(|v| (v * 255.0).round() as u8 == alpha))
        .map(|text| text.trim_end_matches('0').to_string())
        .unwrap_or_else(|| format!("{:.4}", alpha as f64 / 255.0))
}

/// `img` reduced to at most `colours` colours by median cut over its visible pixels, on
/// premultiplied values (so faint pixels, whatever their colour, sit close to transparent):
/// the box with the widest channel range is split at its median until there are enough boxes,
/// and each pixel takes its box's mean.
fn median_cut(img: &RgbaImage, colours: usize) -> RgbaImage {
    let premultiplied = |p: &Rgba<u8>| {
        let a = p[3] as u32;
        [p[0] as u32 * a / 255, p[1] as u32 * a / 255, p[2] as u32 * a / 255, a]
    };
    let visible: Vec<((u32, u32), [u32; 4])> =
        img.enumerate_pixels().filter(|(_, _, p)| p[3] > 0).map(|(x, y, p)| ((x, y), premultiplied(p))).collect();
    let mut boxes = vec![visible];
    while boxes.len() < colours {
        let widest = boxes
            .iter()
            .enumerate()
            .filter(|(_, b)| b.len() > 1)
            .map(|(i, b)| (i, widest_channel(b)))
            .max_by_key(|&(_, (_, range))| range);
        let Some((i, (channel, range))) = widest else { break };
        if range == 0 {
            break;
        }
        let mut cell = boxes.swap_remove(i);
        cell.sort_by_key(|&(_, p)| p[channel]);
        let upper = cell.split_off(cell.len() / 2);
        boxes.push(cell);
        boxes.push(upper);
    }
    let mut out = img.clone();
    for cell in &boxes {
        let mean = straight_mean(cell);
        for &((x, y), _) in cell {
            out.put_pixel(x, y, mean);
        }
    }
    out
}

fn widest_channel(cell: &[((u32, u32), [u32; 4])]) -> (usize, u32) {
    (0..4)
        .map(|c| {
            let (lo, hi) = cell.iter().fold((u32::MAX, 0), |(lo, hi), (_, p)| (lo.min(p[c]), hi.max(p[c])));
            (c, hi.saturating_sub(lo))
        })
        .max_by_key(|&(_, range)| range)
        .unwrap_or((0, 0))
}

/// The mean of premultiplied pixels, back to straight 8-bit.
fn straight_mean(cell: &[((u32, u32), [u32; 4])]) -> Rgba<u8> {
    let mut sum = [0u64; 4];
    for (_, p) in cell {
        for c in 0..4 {
            sum[c] += p[c] as u64;
        }
    }
    if sum[3] == 0 {
        return Rgba([0; 4]);
    }
    let colour = |c: usize| (sum[c] as f64 * 255.0 / sum[3] as f64).round().min(255.0) as u8;
    let n = cell.len() as f64;
    Rgba([colour(0), colour(1), colour(2), (sum[3] as f64 / n).round() as u8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_runs_merge_across_rows_and_columns() {
        // A 4×3 red block on transparent, plus one blue pixel: two rectangles.
        let img = RgbaImage::from_fn(8, 8, |x, y| match (x, y) {
            (1..=4, 2..=4) => Rgba([255, 0, 0, 255]),
            (7, 7) => Rgba([0, 0, 255, 255]),
            _ => Rgba([0, 0, 0, 0]),
        });
        let layers = paint(&img);
        assert_eq!(layers[0], ([255, 0, 0, 255], vec![Rect { x: 1, y: 2, width: 4, height: 3 }]));
        assert_eq!(layers[1], ([0, 0, 255, 255], vec![Rect { x: 7, y: 7, width: 1, height: 1 }]));
    }

    #[test]
    fn a_background_runs_under_the_colours_painted_over_it() {
        // Opaque grey with a scatter of black dots: one grey rectangle, then one per dot.
        let dots = [(3, 5), (10, 2), (20, 30), (40, 41), (63, 63)];
        let img = RgbaImage::from_fn(64, 64, |x, y| {
            if dots.contains(&(x, y)) {
                Rgba([0, 0, 0, 255])
            } else {
                Rgba([128, 128, 128, 255])
            }
        });
        let layers = paint(&img);
        assert_eq!(layers[0], ([128, 128, 128, 255], vec![Rect { x: 0, y: 0, width: 64, height: 64 }]));
        assert_eq!(layers[1].1.len(), dots.len());
    }

    #[test]
    fn translucent_pixels_are_never_painted_over() {
        // A half-transparent pixel inside an opaque row: the row splits around it, since
        // painting it over another colour would blend the two.
        let img = RgbaImage::from_fn(3, 1, |x, _| if x == 1 { Rgba([0, 0, 0, 128]) } else { Rgba([9, 9, 9, 255]) });
        let layers = paint(&img);
        assert_eq!(
            layers[0].1,
            vec![Rect { x: 0, y: 0, width: 1, height: 1 }, Rect { x: 2, y: 0, width: 1, height: 1 }]
        );
    }

    #[test]
    fn faint_haze_is_left_out_and_visible_pixels_kept() {
        let img = RgbaImage::from_fn(4, 1, |x, _| Rgba([200, 10, 10, [0, HAZE, HAZE + 1, 255][x as usize]]));
        let (text, drawn) = svg(&img);
        assert_eq!(drawn.pixels().map(|p| p[3]).collect::<Vec<_>>(), vec![0, 0, HAZE + 1, 255]);
        assert_eq!(text.matches('M').count(), 2, "{text}");
    }

    #[test]
    fn colours_are_written_short_when_they_can_be() {
        assert_eq!(hex(&[0xff, 0x00, 0x33, 255]), "#f03");
        assert_eq!(hex(&[0x12, 0x34, 0x56, 255]), "#123456");
    }

    #[test]
    fn opacity_rounds_back_to_the_same_alpha() {
        for alpha in 1..255u8 {
            let text = opacity(alpha);
            assert_eq!((text.parse::<f64>().unwrap() * 255.0).round() as u8, alpha, "{text}");
            assert!(text.len() <= 6, "{text}");
        }
    }

    #[test]
    fn a_noisy_icon_is_quantised_below_the_size_budget() {
        // Every pixel a different colour: 4,096 rectangles unquantised.
        let img = RgbaImage::from_fn(64, 64, |x, y| {
            Rgba([(x * 4) as u8, (y * 4) as u8, ((x * 7 + y * 13) % 256) as u8, 255])
        });
        let (text, drawn) = svg(&img);
        assert!(text.len() <= MAX_BYTES, "{} bytes", text.len());
        let colours: std::collections::HashSet<_> = drawn.pixels().map(|p| p.0).collect();
        assert!(colours.len() <= PALETTES[0], "{} colours", colours.len());
    }
}
