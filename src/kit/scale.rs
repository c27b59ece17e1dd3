//! Whole-pixel enlargement for the kit's large sizes (area averaging and flattening are
//! [`crate::alpha::Premultiplied`]'s).

use image::{Rgba, RgbaImage};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
