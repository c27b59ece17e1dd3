//! Images ⇄ tokens. A token is one patch; tokens run row-major over the patch grid and
//! each token's values are ordered channel, then row-in-patch, then column-in-patch.

use candle_core::{Result, Tensor};

/// `[B, C, H, W]` → `[B, (H/P)·(W/P), C·P·P]`.
pub fn patchify(images: &Tensor, patch: usize) -> Result<Tensor> {
    let (b, c, h, w) = images.dims4()?;
    let (gh, gw) = (h / patch, w / patch);
    images.reshape((b, c, gh, patch, gw, patch))?.permute((0, 2, 4, 1, 3, 5))?.reshape((b, gh * gw, c * patch * patch))
}

/// The inverse of [`patchify`] for square images of `channels` channels.
pub fn unpatchify(tokens: &Tensor, patch: usize, channels: usize) -> Result<Tensor> {
    let (b, n, _) = tokens.dims3()?;
    let grid = (n as f64).sqrt().round() as usize;
    tokens.reshape((b, grid, grid, channels, patch, patch))?.permute((0, 3, 1, 4, 2, 5))?.reshape((
        b,
        channels,
        grid * patch,
        grid * patch,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, IndexOp};

    #[test]
    fn patchify_orders_channel_then_row_then_column() {
        let (c, size, p) = (3, 16, 4);
        let values: Vec<f32> = (0..c * size * size).map(|i| i as f32).collect();
        let img = Tensor::from_vec(values, (1, c, size, size), &Device::Cpu).unwrap();
        let tokens = patchify(&img, p).unwrap();
        assert_eq!(tokens.dims(), &[1, 16, 48]);
        // Token (grid row 2, grid col 1), value (channel 1, row 3, col 2) is pixel (1, 2·4+3, 1·4+2).
        let token = 2 * 4 + 1;
        let value = 1 * 16 + 3 * 4 + 2;
        let pixel = (1 * size * size + (2 * 4 + 3) * size + (1 * 4 + 2)) as f32;
        assert_eq!(tokens.i((0, token, value)).unwrap().to_scalar::<f32>().unwrap(), pixel);
    }

    #[test]
    fn unpatchify_inverts_patchify() {
        let img = Tensor::randn(0f32, 1.0, (2, 3, 64, 64), &Device::Cpu).unwrap();
        let back = unpatchify(&patchify(&img, 8).unwrap(), 8, 3).unwrap();
        let diff = (back - &img).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert_eq!(diff, 0.0);
    }
}
