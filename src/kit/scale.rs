//! Resizing an icon for the kit: area weighting (down for the ICO sizes, up by a fraction for
//! 96 px; on premultiplied alpha, so transparent pixels lend no colour to their neighbours),
//! whole-pixel nearest neighbour up, and flattening onto a colour.

use image::{Rgba, RgbaImage};

/// `img` (square) resized to `size`×`size`: each output pixel is the area-weighted mean of the
/// source pixels it covers (down: several; up: one or two), computed on premultiplied alpha
/// and returned straight.
pub fn area_average(img: &RgbaImage, size: u32) -> RgbaImage {
    let source = img.width();
    let weights = coverage(source, size);
    RgbaImage::from_fn(size, size, |x, y| {
        let mut sum = [0f64; 4];
        for &(sy, wy) in &weights[y as usize] {
            for &(sx, wx) in &weights[x as usize] {
                let p = img.get_pixel(sx, sy);
                let w = wx * wy;
                let alpha = p[3] as f64 * w;
                for c in 0..3 {
                    sum[c] += p[c] as f64 * alpha;
                }
                sum[3] += alpha;
            }
        }
        unpremultiply(sum)
    })
}

/// For each output index, the source indices it covers and the share of the output pixel each
/// fills (the shares sum to 1).
fn coverage(source: u32, size: u32) -> Vec<Vec<(u32, f64)>> {
    let scale = source as f64 / size as f64;
    (0..size)
        .map(|o| {
            let (start, end) = (o as f64 * scale, (o + 1) as f64 * scale);
            (start.floor() as u32..(end.ceil() as u32).min(source))
                .map(|s| (s, ((s + 1) as f64).min(end) - (s as f64).max(start)))
                .filter(|&(_, w)| w > 1e-9)
                .map(|(s, w)| (s, w / scale))
                .collect()
        })
        .collect()
}

/// Premultiplied sums (colour·alpha, alpha) back to a straight 8-bit pixel.
fn unpremultiply(sum: [f64; 4]) -> Rgba<u8> {
    if sum[3] <= 0.0 {
        return Rgba([0, 0, 0, 0]);
    }
    let byte = |v: f64| v.round().clamp(0.0, 255.0) as u8;
    Rgba([byte(sum[0] / sum[3]), byte(sum[1] / sum[3]), byte(sum[2] / sum[3]), byte(sum[3])])
}

/// `img` scaled by the largest whole factor that fits `size`, each source pixel becoming a
/// square block, centred on a `size`×`size` canvas of `fill`.
pub fn nearest_padded(img: &RgbaImage, size: u32, fill: Rgba<u8>) -> RgbaImage {
    let factor = (size / img.width()).max(1);
    let drawn = img.width() * factor;
    let offset = size.saturating_sub(drawn) / 2;
    RgbaImage::from_fn(size, size, |x, y| {
        let (sx, sy) = (x.wrapping_sub(offset) / factor, y.wrapping_sub(offset) / factor);
        if x >= offset && y >= offset && sx < img.width() && sy < img.height() {
            *img.get_pixel(sx, sy)
        } else {
            fill
        }
    })
}

/// `img` composited over an opaque colour.
pub fn flatten(img: &RgbaImage, background: [u8; 3]) -> RgbaImage {
    RgbaImage::from_fn(img.width(), img.height(), |x, y| {
        let p = img.get_pixel(x, y);
        let a = p[3] as u32;
        let mix = |c: usize| ((p[c] as u32 * a + background[c] as u32 * (255 - a) + 127) / 255) as u8;
        Rgba([mix(0), mix(1), mix(2), 255])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn area_average_of_a_two_by_two_checker_is_the_mean() {
        let img =
            RgbaImage::from_fn(
                2,
                2,
                |x, y| if (x + y) % 2 == 0 { Rgba([200, 0, 0, 255]) } else { Rgba([0, 0, 100, 255]) },
            );
        assert_eq!(*area_average(&img, 1).get_pixel(0, 0), Rgba([100, 0, 50, 255]));
    }

    #[test]
    fn transparent_pixels_lend_no_colour_when_averaged() {
        // Half red, half transparent black: the average is red at half alpha, not dark red.
        let img = RgbaImage::from_fn(2, 1, |x, _| if x == 0 { Rgba([255, 0, 0, 255]) } else { Rgba([0, 0, 0, 0]) });
        let img = image::imageops::resize(&img, 2, 2, image::imageops::FilterType::Nearest);
        assert_eq!(*area_average(&img, 1).get_pixel(0, 0), Rgba([255, 0, 0, 128]));
    }

    #[test]
    fn coverage_of_a_fractional_scale_sums_to_one_and_spans_the_overlap() {
        let cover = coverage(64, 48);
        for row in &cover {
            let total: f64 = row.iter().map(|(_, w)| w).sum();
            assert!((total - 1.0).abs() < 1e-9, "{row:?}");
        }
        // Output 1 covers source [1.333, 2.667): a third of pixel 1 and two thirds of pixel 2.
        assert_eq!(cover[1].iter().map(|&(s, _)| s).collect::<Vec<_>>(), vec![1, 2]);
        assert!((cover[1][0].1 - 0.5).abs() < 1e-9 && (cover[1][1].1 - 0.5).abs() < 1e-9);
    }

    #[test]
    fn nearest_padded_centres_whole_blocks() {
        let img = RgbaImage::from_fn(2, 2, |x, y| Rgba([x as u8 * 100, y as u8 * 100, 0, 255]));
        let fill = Rgba([1, 2, 3, 4]);
        let out = nearest_padded(&img, 7, fill);
        // Factor 3, 6 pixels drawn, offset 0 (the odd pixel goes to the right and bottom).
        assert_eq!(*out.get_pixel(2, 2), Rgba([0, 0, 0, 255]));
        assert_eq!(*out.get_pixel(3, 5), Rgba([100, 100, 0, 255]));
        assert_eq!(*out.get_pixel(6, 0), fill);
        let img = RgbaImage::from_fn(3, 3, |x, y| Rgba([x as u8 * 100, y as u8 * 100, 0, 255]));
        let out = nearest_padded(&img, 11, fill);
        assert_eq!(*out.get_pixel(0, 0), fill);
        assert_eq!(*out.get_pixel(1, 1), Rgba([0, 0, 0, 255]));
        assert_eq!(*out.get_pixel(9, 9), Rgba([200, 200, 0, 255]));
        assert_eq!(*out.get_pixel(10, 10), fill);
    }

    #[test]
    fn flatten_mixes_by_alpha() {
        let img = RgbaImage::from_pixel(1, 1, Rgba([255, 0, 0, 51]));
        assert_eq!(*flatten(&img, [0, 0, 255]).get_pixel(0, 0), Rgba([51, 0, 204, 255]));
    }
}
