//! Where a run's time went, stage by stage ([`Laps`]), for `sample --timings` and for any
//! [`crate::Pipeline`] user. Each stage is wall time spent on the calling thread, measured by
//! whoever does the work (the GPU context, the engine, the kernels, the caller), so the stages
//! never overlap and add up to no more than the run; work done on helper threads counts in the
//! stage that waits for it.

use std::collections::BTreeMap;
use std::time::Duration;

/// The stages from process start to a written picture, in the order a run meets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// config.json and model.safetensors read, validated and converted to f32 tensors.
    WeightsRead,
    /// The graphics API loaded and an adapter found.
    Adapter,
    Device,
    /// Weights packed to f16 and written to the device.
    WeightsUpload,
    /// The pipeline cache file read and handed to the driver.
    CacheRead,
    /// The CPU model: the fast engine's packed weights, or candle's module tree.
    Model,
    /// Buffers and bind groups of a batch shape.
    Plan,
    /// WGSL parsed and validated (the modules a plan uses).
    Modules,
    /// Compute pipelines: the driver's compile, or its cache's.
    Pipelines,
    /// The pipeline cache file written back.
    CacheWrite,
    /// The sampling loop itself, up to the images being back on the CPU.
    Sample,
    /// PNG / ICO / GIF encoded and written.
    Write,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::WeightsRead => "weights read",
            Stage::Adapter => "instance + adapter",
            Stage::Device => "device",
            Stage::CacheRead => "pipeline cache read",
            Stage::WeightsUpload => "weights upload",
            Stage::Model => "CPU model (packed weights)",
            Stage::Plan => "plan (buffers, bind groups)",
            Stage::Modules => "shader modules",
            Stage::Pipelines => "pipelines",
            Stage::CacheWrite => "pipeline cache write",
            Stage::Sample => "sample",
            Stage::Write => "encode + write",
        }
    }
}

/// Time per stage (a stage met twice, such as a second batch shape's pipelines, adds up), and
/// notes on what the stages found (the pipeline cache: hit, miss, written, unavailable).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Laps {
    stages: BTreeMap<Stage, Duration>,
    notes: Vec<String>,
}

/// A clock where the platform has one: `std::time::Instant` panics in the browser, where
/// nothing is timed.
#[cfg(not(target_arch = "wasm32"))]
fn now() -> Option<std::time::Instant> {
    Some(std::time::Instant::now())
}

#[cfg(target_arch = "wasm32")]
fn now() -> Option<std::time::Instant> {
    None
}

/// A stage under way, for work that `Laps::time` cannot wrap (it borrows what holds the laps).
pub struct Lap {
    stage: Stage,
    start: Option<std::time::Instant>,
}

impl Lap {
    pub fn start(stage: Stage) -> Lap {
        Lap { stage, start: now() }
    }

    /// Adds the time since `start` to `laps`.
    pub fn stop(self, laps: &mut Laps) {
        if let Some(start) = self.start {
            laps.add(self.stage, start.elapsed());
        }
    }
}

impl Laps {
    /// Runs `work`, adding its wall time to `stage`.
    pub fn time<T>(&mut self, stage: Stage, work: impl FnOnce() -> T) -> T {
        let start = now();
        let out = work();
        if let Some(start) = start {
            self.add(stage, start.elapsed());
        }
        out
    }

    /// Awaits `work`, adding the wall time until it is ready to `stage`.
    pub async fn time_async<T>(&mut self, stage: Stage, work: impl std::future::Future<Output = T>) -> T {
        let start = now();
        let out = work.await;
        if let Some(start) = start {
            self.add(stage, start.elapsed());
        }
        out
    }

    pub fn add(&mut self, stage: Stage, time: Duration) {
        *self.stages.entry(stage).or_default() += time;
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// Both sets of laps: stages added, notes in order.
    pub fn merged(&self, other: &Laps) -> Laps {
        let mut all = self.clone();
        for (&stage, &time) in &other.stages {
            all.add(stage, time);
        }
        all.notes.extend(other.notes.iter().cloned());
        all
    }

    pub fn get(&self, stage: Stage) -> Option<Duration> {
        self.stages.get(&stage).copied()
    }

    /// The stages met, in run order.
    pub fn stages(&self) -> impl Iterator<Item = (Stage, Duration)> + '_ {
        self.stages.iter().map(|(&s, &d)| (s, d))
    }

    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    pub fn sum(&self) -> Duration {
        self.stages.values().sum()
    }

    /// A table of the stages against `total` (the wall time of the whole run, e.g. since the
    /// process started), with what no stage accounts for as "other", then the notes.
    pub fn report(&self, total: Duration) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let mut out = String::new();
        for (stage, time) in self.stages() {
            out += &format!("  {:<28} {:>9.1} ms\n", stage.name(), ms(time));
        }
        out += &format!("  {:<28} {:>9.1} ms\n", "other (start-up, arguments)", ms(total.saturating_sub(self.sum())));
        out += &format!("  {:<28} {:>9.1} ms\n", "total", ms(total));
        for note in &self.notes {
            out += &format!("  {note}\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laps_add_up_per_stage_and_report_the_rest_as_other() {
        let mut a = Laps::default();
        a.add(Stage::Pipelines, Duration::from_millis(30));
        a.add(Stage::WeightsRead, Duration::from_millis(10));
        let mut b = Laps::default();
        b.add(Stage::Pipelines, Duration::from_millis(5));
        b.note("pipeline cache: hit");
        let all = a.merged(&b);
        assert_eq!(all.get(Stage::Pipelines), Some(Duration::from_millis(35)));
        assert_eq!(all.sum(), Duration::from_millis(45));
        let stages: Vec<_> = all.stages().map(|(s, _)| s).collect();
        assert_eq!(stages, [Stage::WeightsRead, Stage::Pipelines]);
        let report = all.report(Duration::from_millis(50));
        assert!(report.contains("other (start-up, arguments)        5.0 ms"), "{report}");
        assert!(report.contains("total") && report.ends_with("pipeline cache: hit\n"), "{report}");
    }
}
