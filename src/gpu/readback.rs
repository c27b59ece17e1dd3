//! Waiting for submissions and reading buffers back, the same way natively and in the browser:
//! wgpu's callbacks complete a oneshot channel; natively a blocking poll fires them, in the
//! browser the event loop does while we await.

use futures_channel::oneshot;

use super::context::GpuContext;
use crate::error::{Error, Result};

/// A submission and the signal that it finished.
pub struct Pending {
    index: wgpu::SubmissionIndex,
    done: oneshot::Receiver<()>,
}

pub fn submit(ctx: &GpuContext, commands: wgpu::CommandBuffer) -> Pending {
    let index = ctx.queue.submit([commands]);
    let (tx, done) = oneshot::channel();
    ctx.queue.on_submitted_work_done(move || {
        let _ = tx.send(());
    });
    Pending { index, done }
}

fn block_until(ctx: &GpuContext, index: Option<wgpu::SubmissionIndex>) -> Result<()> {
    if cfg!(target_arch = "wasm32") {
        return Ok(());
    }
    ctx.device
        .poll(wgpu::PollType::Wait { submission_index: index, timeout: None })
        .map(|_| ())
        .map_err(|e| Error::Gpu(format!("waiting for the GPU failed: {e}")))
}

pub async fn wait(ctx: &GpuContext, pending: Pending) -> Result<()> {
    block_until(ctx, Some(pending.index))?;
    pending.done.await.map_err(|_| Error::Gpu("the device was lost before the work finished".into()))?;
    ctx.check()
}

/// Reads `len` f32 values at float offset `offset` of a MAP_READ buffer.
pub async fn read_f32(ctx: &GpuContext, buffer: &wgpu::Buffer, offset: usize, len: usize) -> Result<Vec<f32>> {
    // Mapped ranges start on 8-byte boundaries: map from the float before an odd offset.
    let skip = offset % 2;
    let range = ((offset - skip) * 4) as u64..((offset + len) * 4) as u64;
    let slice = buffer.slice(range);
    let (tx, rx) = oneshot::channel();
    slice.map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    block_until(ctx, None)?;
    let mapped = rx.await.map_err(|_| Error::Gpu("the device was lost during a read-back".into()))?;
    // A failed map is usually the echo of an earlier validation error: report that one.
    ctx.check()?;
    mapped.map_err(|e| Error::Gpu(format!("mapping a read-back buffer failed: {e}")))?;
    let values = {
        let view = slice.get_mapped_range().map_err(|e| Error::Gpu(format!("reading a mapped buffer failed: {e}")))?;
        bytemuck::pod_collect_to_vec::<u8, f32>(&view[skip * 4..])
    };
    buffer.unmap();
    ctx.check()?;
    Ok(values)
}
