//! The checkpoint on the GPU, uploaded once: matrices as f16 pairs, fused where kernels want
//! them fused (q|k|v, every AdaLN's scale|shift, to_pixels|proj_fin where there is an x0 head).

use candle_core::Tensor;
use wgpu::util::DeviceExt;

use crate::error::Result;
use crate::weights::{Checkpoint, X0_HEAD};

/// A weight matrix `[rows, cols]` as f16 pairs: `words` u32 per row, the odd column zero-padded.
/// Row-major for the tiled matmul; K-major (word w of row n at w·rows + n) for the direct one.
pub struct Matrix {
    pub buffer: wgpu::Buffer,
    pub rows: usize,
    pub cols: usize,
    pub words: usize,
}

pub struct BlockWeights {
    pub qkv: Matrix,
    pub out: Matrix,
    pub up: Matrix,
    pub down: Matrix,
}

pub struct GpuWeights {
    pub patch_embed: Matrix,
    pub position: wgpu::Buffer,
    pub time_fc1: Matrix,
    pub time_fc2: Matrix,
    /// Every AdaLN's scale then shift projection, in forward order (blocks' norm1, norm2, then final).
    pub modulation: Matrix,
    pub blocks: Vec<BlockWeights>,
    /// to_pixels rows, then proj_fin rows where the checkpoint has the x0 head.
    pub heads: Matrix,
    /// Zeros for to_pixels, then proj_fin.bias if any; each plan stores it after its modulation rows.
    pub heads_bias: Vec<f32>,
    /// Whether `heads` holds the x0 head (`Config::x0_head`).
    pub x0_head: bool,
    /// `prompt_embed.weight`, kept on the CPU: a request's prompt vector is computed there.
    pub prompt_table: Option<Tensor>,
}

/// Reorders row-major packed words to K-major.
pub fn k_major(packed: &[u32], rows: usize, words: usize) -> Vec<u32> {
    (0..words).flat_map(|w| (0..rows).map(move |n| packed[n * words + w])).collect()
}

/// Packs `[rows, cols]` f32 values into f16 pairs, row by row.
pub fn pack_f16(values: &[f32], rows: usize, cols: usize) -> (Vec<u32>, usize) {
    let words = cols.div_ceil(2);
    let mut out = Vec::with_capacity(rows * words);
    for row in values.chunks(cols).take(rows) {
        for pair in row.chunks(2) {
            let lo = half::f16::from_f32(pair[0]).to_bits() as u32;
            let hi = pair.get(1).map_or(0, |&v| half::f16::from_f32(v).to_bits() as u32);
            out.push(lo | (hi << 16));
        }
    }
    (out, words)
}

pub(crate) fn storage(device: &wgpu::Device, label: &str, contents: &[u8]) -> wgpu::Buffer {
    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
    })
}

impl GpuWeights {
    /// `k_major` stores the matmul weights for the direct kernel (software adapters).
    pub fn upload(device: &wgpu::Device, ck: &Checkpoint, k_major_layout: bool) -> Result<Self> {
        let cfg = &ck.config;
        let values = |name: &str| -> Result<Vec<f32>> { Ok(ck.tensors[name].flatten_all()?.to_vec1::<f32>()?) };
        let matrix_as = |label: &str, names: &[String], transpose: bool| -> Result<Matrix> {
            let mut all = Vec::new();
            let mut rows = 0;
            let cols = ck.tensors[&names[0]].dims()[1];
            for name in names {
                rows += ck.tensors[name].dims()[0];
                all.extend(values(name)?);
            }
            let (mut packed, words) = pack_f16(&all, rows, cols);
            if transpose {
                packed = k_major(&packed, rows, words);
            }
            Ok(Matrix { buffer: storage(device, label, bytemuck::cast_slice(&packed)), rows, cols, words })
        };
        let matrix = |label: &str, names: &[String]| matrix_as(label, names, k_major_layout);
        let one = |name: &str| matrix(name, &[name.to_string()]);
        // The condition kernel reads the time MLP row-major on every adapter.
        let row_major = |name: &str| matrix_as(name, &[name.to_string()], false);
        let mut norms = Vec::new();
        for i in 0..cfg.depth {
            norms.push(format!("blocks.{i}.norm1"));
            norms.push(format!("blocks.{i}.norm2"));
        }
        norms.push("final_norm".into());
        let modulation_names: Vec<String> =
            norms.iter().flat_map(|n| [format!("{n}.scale_proj.weight"), format!("{n}.shift_proj.weight")]).collect();
        let blocks = (0..cfg.depth)
            .map(|i| {
                let b = format!("blocks.{i}");
                Ok(BlockWeights {
                    qkv: matrix(
                        &format!("{b}.qkv"),
                        &["to_q", "to_k", "to_v"].map(|n| format!("{b}.attn.{n}.weight")),
                    )?,
                    out: one(&format!("{b}.attn.to_out.weight"))?,
                    up: one(&format!("{b}.ff.net.0.weight"))?,
                    down: one(&format!("{b}.ff.net.2.weight"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut heads = vec!["to_pixels.weight".to_string()];
        let mut bias = vec![0f32; cfg.patch_dim()];
        if cfg.x0_head {
            heads.push(X0_HEAD[0].to_string());
            bias.extend(values(X0_HEAD[1])?);
        }
        Ok(GpuWeights {
            patch_embed: one("patch_embed.weight")?,
            position: storage(device, "position", bytemuck::cast_slice(&crate::model::position_embedding(cfg))),
            time_fc1: row_major("time_mlp.1.weight")?,
            time_fc2: row_major("time_mlp.3.weight")?,
            modulation: matrix("modulation", &modulation_names)?,
            blocks,
            heads: matrix("heads", &heads)?,
            heads_bias: bias,
            x0_head: cfg.x0_head,
            prompt_table: ck.tensors.get("prompt_embed.weight").cloned(),
        })
    }

    fn buffers(&self) -> Vec<&wgpu::Buffer> {
        let mut all = vec![&self.patch_embed, &self.time_fc1, &self.time_fc2, &self.modulation, &self.heads];
        for b in &self.blocks {
            all.extend([&b.qkv, &b.out, &b.up, &b.down]);
        }
        all.into_iter().map(|m| &m.buffer).chain([&self.position]).collect()
    }

    /// Bytes of all weight buffers.
    pub fn bytes(&self) -> u64 {
        self.buffers().iter().map(|b| b.size()).sum()
    }

    pub fn largest_buffer(&self) -> Option<u64> {
        self.buffers().iter().map(|b| b.size()).max()
    }
}

#[cfg(test)]
mod tests {
    use super::{k_major, pack_f16};

    #[test]
    fn f16_pairs_put_the_even_column_in_the_low_half_and_pad_odd_rows() {
        let (packed, words) = pack_f16(&[1.0, -2.0, 0.5, 3.0, 4.0, 5.0], 2, 3);
        assert_eq!(words, 2);
        // f16 bits: 1.0 = 0x3C00, -2.0 = 0xC000, 0.5 = 0x3800, 3.0 = 0x4200, 4.0 = 0x4400, 5.0 = 0x4500.
        assert_eq!(packed, vec![0xC000_3C00, 0x0000_3800, 0x4400_4200, 0x0000_4500]);
        assert_eq!(k_major(&packed, 2, words), vec![0xC000_3C00, 0x4400_4200, 0x0000_3800, 0x0000_4500]);
    }
}
