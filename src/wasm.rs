//! The browser front end (wasm-bindgen), driven by `web/worker.js`.
//!
//! The worker fetches and caches the checkpoint files, then hands their bytes to
//! [`Diffusor::new`], which validates them like any other checkpoint. [`Diffusor::choose`]
//! picks WebGPU or the CPU engine; [`Diffusor::generate`] runs one request and reports
//! every step with an RGBA preview. Images cross to JavaScript as 8-bit straight RGBA, ready
//! for `ImageData`: a four-channel checkpoint's alpha included, a three-channel one opaque.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use js_sys::{Function, Object, Promise, Reflect, Uint8Array};
use serde::Deserialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, JsFuture};

use crate::alpha::{PixelFormat, Premultiplied};
use crate::cpu::CpuEngine;
use crate::error::{Error, Result};
use crate::gpu::GpuEngine;
use crate::image as img;
use crate::kit::{self, KitOptions};
use crate::pipeline::{self, Job, Preview, Request, StepEvent, Stop};
use crate::sampler::SamplerKind;
use crate::vocab::Vocab;
use crate::{Checkpoint, Config};

#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// A request as the page sends it, as JSON: every field optional.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
struct WebRequest {
    prompt: String,
    guidance: f32,
    seed: u64,
    /// Defaults to every timestep.
    steps: Option<usize>,
    sampler: String,
    /// "x0", "xt" or "none".
    preview: String,
    /// img2img strength, used when an init image comes with the request.
    strength: f32,
}

impl Default for WebRequest {
    fn default() -> Self {
        let base = Request::default();
        WebRequest {
            prompt: base.prompt,
            guidance: base.guidance,
            seed: base.seed,
            steps: None,
            sampler: "ddpm".into(),
            preview: "x0".into(),
            strength: base.strength,
        }
    }
}

impl WebRequest {
    fn resolve(self, config: &Config, init: Option<Vec<f32>>) -> Result<Request> {
        let preview = match self.preview.as_str() {
            "x0" => Preview::X0,
            "xt" => Preview::Xt,
            "none" => Preview::None,
            other => return Err(Error::Request(format!("unknown preview `{other}`, expected x0, xt or none"))),
        };
        Ok(Request {
            prompt: self.prompt,
            guidance: self.guidance,
            seed: self.seed,
            steps: self.steps.unwrap_or(config.timesteps),
            sampler: self.sampler.parse()?,
            batch: 1,
            init,
            strength: self.strength,
            preview,
            background: None,
        })
    }
}

/// A WebGPU engine, the reason its device was lost once it is, and the last measured time of
/// one step.
struct Gpu {
    engine: GpuEngine,
    lost: Arc<Mutex<Option<String>>>,
    step_ms: Option<f64>,
}

/// The most queued GPU work a Stop waits for, in milliseconds.
const STOP_BUDGET_MS: f64 = 250.0;

impl Gpu {
    async fn new(checkpoint: &Checkpoint) -> Result<Gpu> {
        let engine = GpuEngine::new(checkpoint).await?;
        let lost = Arc::new(Mutex::new(None));
        let sink = lost.clone();
        engine.context().device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut slot) = sink.lock() {
                slot.get_or_insert_with(|| format!("{reason:?}: {message}"));
            }
        });
        Ok(Gpu { engine, lost, step_ms: None })
    }

    /// Steps to keep submitted: as many as fit the Stop budget at the last measured speed, one
    /// before anything is measured.
    fn steps_in_flight(&self) -> usize {
        self.step_ms.map_or(1, |ms| (STOP_BUDGET_MS / ms.max(0.01)).floor().clamp(1.0, 64.0) as usize)
    }

    fn lost(&self) -> Option<String> {
        self.lost.lock().ok().and_then(|slot| slot.clone())
    }
}

enum Engine {
    Cpu(CpuEngine),
    Gpu(Box<Gpu>),
}

impl Engine {
    /// Runs `job`. Between CPU steps it awaits what `pause` hands out (the worker's "next task"
    /// promise), so a Stop posted to the worker is seen; the GPU path yields at every step anyway.
    async fn run(
        &mut self,
        job: &Job,
        on_step: &mut dyn FnMut(StepEvent),
        pause: &dyn Fn() -> Option<Promise>,
    ) -> Result<Vec<f32>> {
        match self {
            Engine::Cpu(cpu) => {
                let mut x = cpu.start(job)?;
                let total = job.plan.steps.len();
                for index in 0..total {
                    cpu.step(job, index, &mut x, on_step)?;
                    if let Some(promise) = pause() {
                        let _ = JsFuture::from(promise).await;
                    }
                    if job.stop.requested() && index + 1 < total {
                        return Err(Error::Stopped { done: index + 1, total });
                    }
                }
                Ok(x)
            }
            Engine::Gpu(gpu) => {
                gpu.engine.set_steps_in_flight(gpu.steps_in_flight());
                let start = now_ms();
                let images = gpu.engine.run_async(job, on_step).await?;
                gpu.step_ms = Some((now_ms() - start) / job.plan.steps.len().max(1) as f64);
                Ok(images)
            }
        }
    }

    /// What the status line shows: `{ backend, adapter, software }`.
    fn describe(&self) -> Object {
        match self {
            Engine::Cpu(cpu) => {
                object(&[("backend", "cpu".into()), ("adapter", format!("wasm ({})", cpu.kernel().name()).into())])
            }
            Engine::Gpu(gpu) => {
                let ctx = gpu.engine.context();
                object(&[
                    ("backend", "webgpu".into()),
                    ("adapter", ctx.info.name.as_str().into()),
                    ("software", ctx.is_software().into()),
                ])
            }
        }
    }
}

fn object(fields: &[(&str, JsValue)]) -> Object {
    let out = Object::new();
    for (key, value) in fields {
        // Setting a plain property on a fresh object cannot fail.
        let _ = Reflect::set(&out, &JsValue::from_str(key), value);
    }
    out
}

fn js_error(e: impl std::fmt::Display) -> JsValue {
    js_sys::Error::new(&e.to_string()).into()
}

fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// One planar [-1, 1] model image to straight RGBA bytes.
fn rgba(planar: &[f32], format: PixelFormat, size: usize) -> Result<Vec<u8>> {
    Ok(img::to_rgba(planar, format, size)?.into_raw())
}

fn rgba_image(bytes: &[u8], size: usize) -> Result<image::RgbaImage> {
    let expected = size * size * 4;
    if bytes.len() != expected {
        return Err(Error::Request(format!("expected {size}×{size} RGBA ({expected} bytes), found {}", bytes.len())));
    }
    image::RgbaImage::from_raw(size as u32, size as u32, bytes.to_vec())
        .ok_or_else(|| Error::Request(format!("{size}×{size} is too large an image")))
}

struct State {
    checkpoint: Rc<Checkpoint>,
    /// Taken out while a generation runs, so a second call finds it busy instead of waiting.
    engine: Option<Engine>,
    /// The running generation's Stop.
    stop: Stop,
}

/// A validated checkpoint and the engine that samples it.
#[wasm_bindgen]
pub struct Diffusor {
    state: Rc<RefCell<State>>,
}

#[wasm_bindgen]
impl Diffusor {
    /// Validates `config.json` text and `model.safetensors` bytes; `vocab` is the text of the
    /// config's `vocab_file`, one word per line, when it names one.
    #[wasm_bindgen(constructor)]
    pub fn new(config_json: &str, weights: &[u8], vocab: Option<String>) -> std::result::Result<Diffusor, JsValue> {
        let load = || -> Result<Checkpoint> {
            let config = Config::from_json(config_json, "config.json")?;
            let vocab = match (&config.vocab, &config.vocab_file, vocab) {
                (Some(words), _, _) => Some(Vocab::new(words.clone())?),
                (None, Some(file), Some(text)) => Some(Vocab::parse(&text, file)?),
                (None, Some(file), None) => {
                    return Err(Error::Config {
                        path: "config.json".into(),
                        message: format!("names `vocab_file` {file}, but its text was not passed"),
                    })
                }
                (None, None, _) => None,
            };
            Checkpoint::from_safetensors_bytes(config, vocab, weights, "model.safetensors")
        };
        let checkpoint = load().map_err(js_error)?;
        Ok(Diffusor {
            state: Rc::new(RefCell::new(State {
                checkpoint: Rc::new(checkpoint),
                engine: None,
                stop: Stop::default(),
            })),
        })
    }

    /// `{ parameters, conditional, vocab, imageSize, channels, timesteps }`; channels is 4 for
    /// a checkpoint that draws transparency.
    pub fn info(&self) -> Object {
        let state = self.state.borrow();
        let ck = &state.checkpoint;
        let words: js_sys::Array = ck.vocab.iter().flat_map(|v| v.words()).map(|w| JsValue::from_str(w)).collect();
        object(&[
            ("parameters", (ck.parameter_count() as f64).into()),
            ("conditional", ck.is_conditional().into()),
            ("vocab", words.into()),
            ("imageSize", (ck.config.image_size as f64).into()),
            ("channels", (ck.config.channels as f64).into()),
            ("timesteps", (ck.config.timesteps as f64).into()),
        ])
    }

    /// Picks the engine: `"cpu"`, `"gpu"` or `"auto"`. Auto takes WebGPU when it gives a
    /// hardware adapter; when the adapter is a software fallback it times a step on each
    /// and keeps the faster. Resolves to `{ backend, adapter, software, note }`.
    pub fn choose(&self, mode: String) -> Promise {
        let state = self.state.clone();
        future_to_promise(async move {
            let checkpoint = state.borrow().checkpoint.clone();
            let cpu = || -> Result<Engine> { Ok(Engine::Cpu(CpuEngine::new(&checkpoint)?)) };
            let (engine, note) = match mode.as_str() {
                "cpu" => (cpu().map_err(js_error)?, None),
                "gpu" => (Engine::Gpu(Box::new(Gpu::new(&checkpoint).await.map_err(js_error)?)), None),
                "auto" => match Gpu::new(&checkpoint).await {
                    Err(e) => (cpu().map_err(js_error)?, Some(format!("WebGPU unavailable ({e}); using the CPU"))),
                    Ok(gpu) if !gpu.engine.context().is_software() => (Engine::Gpu(Box::new(gpu)), None),
                    Ok(gpu) => {
                        let (engine, note) = faster(&checkpoint, Engine::Gpu(Box::new(gpu)), cpu().map_err(js_error)?)
                            .await
                            .map_err(js_error)?;
                        (engine, Some(note))
                    }
                },
                other => return Err(js_error(format!("unknown backend `{other}`, expected auto, gpu or cpu"))),
            };
            let described = engine.describe();
            if let Some(note) = note {
                let _ = Reflect::set(&described, &"note".into(), &note.into());
            }
            state.borrow_mut().engine = Some(engine);
            Ok(described.into())
        })
    }

    /// Runs one request (JSON, see `WebRequest`); `init` is an RGBA image of the model's size
    /// for img2img. `on_step(index, total, rgba | null)` follows every step; a promise it
    /// returns is awaited before the next CPU step. Resolves to `{ rgba, notice }`, where
    /// `notice` says when a lost WebGPU device was re-initialised, or to `{ stopped, done,
    /// total }` after [`Diffusor::stop`].
    pub fn generate(&self, request_json: String, init: Option<Vec<u8>>, on_step: Function) -> Promise {
        let state = self.state.clone();
        future_to_promise(async move {
            let (checkpoint, engine, stop) = {
                let mut s = state.borrow_mut();
                s.stop = Stop::default();
                (s.checkpoint.clone(), s.engine.take(), s.stop.clone())
            };
            let Some(mut engine) = engine else {
                return Err(js_error("busy: a generation is already running, or no backend was chosen"));
            };
            let result = generate(&checkpoint, &mut engine, &request_json, init, &on_step, stop).await;
            state.borrow_mut().engine = Some(engine);
            match result {
                Ok((image, notice)) => {
                    Ok(object(&[("rgba", Uint8Array::from(image.as_slice()).into()), ("notice", notice.into())]).into())
                }
                Err(Error::Stopped { done, total }) => Ok(object(&[
                    ("stopped", true.into()),
                    ("done", (done as f64).into()),
                    ("total", (total as f64).into()),
                ])
                .into()),
                Err(e) => Err(js_error(e)),
            }
        })
    }

    /// Asks the running generation to stop after its current step (and, on WebGPU, the few
    /// steps already submitted).
    pub fn stop(&self) {
        self.state.borrow().stop.request();
    }

    /// When the WebGPU device has been lost since the last call, re-initialises it and resolves
    /// to a line saying so; otherwise to `null`.
    #[wasm_bindgen(js_name = checkDevice)]
    pub fn check_device(&self) -> Promise {
        let state = self.state.clone();
        future_to_promise(async move {
            let (checkpoint, engine) = {
                let mut s = state.borrow_mut();
                (s.checkpoint.clone(), s.engine.take())
            };
            let Some(mut engine) = engine else { return Ok(JsValue::NULL) };
            let result = recover(&checkpoint, &mut engine).await;
            state.borrow_mut().engine = Some(engine);
            Ok(result.map_err(js_error)?.map_or(JsValue::NULL, JsValue::from))
        })
    }

    /// GPU microseconds of each dispatch of one step of a request (WebGPU with timestamp
    /// queries only), as `[[name, us], ...]`: where a browser's adapter spends a step.
    pub fn profile(&self, request_json: String) -> Promise {
        let state = self.state.clone();
        future_to_promise(async move {
            let (checkpoint, engine) = {
                let mut s = state.borrow_mut();
                (s.checkpoint.clone(), s.engine.take())
            };
            let Some(mut engine) = engine else { return Err(js_error("busy, or no backend was chosen")) };
            let result = match &mut engine {
                Engine::Gpu(gpu) => profile(&checkpoint, &mut gpu.engine, &request_json).await,
                Engine::Cpu(_) => Err(Error::Gpu("profiling needs the WebGPU backend".into())),
            };
            state.borrow_mut().engine = Some(engine);
            let rows: js_sys::Array = result
                .map_err(js_error)?
                .into_iter()
                .map(|(name, us)| js_sys::Array::of2(&name.into(), &us.into()))
                .collect();
            Ok(rows.into())
        })
    }

    /// Destroys the WebGPU device, as a driver reset would (for tests of the recovery path).
    #[wasm_bindgen(js_name = loseDevice)]
    pub fn lose_device(&self) -> bool {
        match &self.state.borrow().engine {
            Some(Engine::Gpu(gpu)) => {
                gpu.engine.context().device.destroy();
                true
            }
            _ => false,
        }
    }
}

/// Re-creates a lost GPU engine in place; says what happened when it did.
async fn recover(checkpoint: &Checkpoint, engine: &mut Engine) -> Result<Option<String>> {
    let Engine::Gpu(gpu) = engine else { return Ok(None) };
    let Some(reason) = gpu.lost() else { return Ok(None) };
    **gpu = Gpu::new(checkpoint).await?;
    Ok(Some(format!("the WebGPU device was lost ({reason}); re-initialised it")))
}

async fn generate(
    checkpoint: &Checkpoint,
    engine: &mut Engine,
    request_json: &str,
    init: Option<Vec<u8>>,
    on_step: &Function,
    stop: Stop,
) -> Result<(Vec<u8>, Option<String>)> {
    let (size, format) = (checkpoint.config.image_size, PixelFormat::of(&checkpoint.config));
    let web: WebRequest =
        serde_json::from_str(request_json).map_err(|e| Error::Request(format!("bad request JSON: {e}")))?;
    let init = match init {
        Some(bytes) => Some(img::from_rgba(&rgba_image(&bytes, size)?, format, size)?),
        None => None,
    };
    let mut job = pipeline::job(checkpoint, &web.resolve(&checkpoint.config, init)?)?;
    job.stop = stop;
    let pause_for = RefCell::new(None);
    let mut report = |event: StepEvent| {
        // The config's channels were validated at load and previews are whole images, so the
        // conversion cannot fail; a preview that did would only be skipped.
        let preview = event
            .preview
            .and_then(|p| rgba(p, format, size).ok())
            .map_or(JsValue::NULL, |bytes| Uint8Array::from(bytes.as_slice()).into());
        let returned =
            on_step.call3(&JsValue::NULL, &(event.index as f64).into(), &(event.total as f64).into(), &preview);
        *pause_for.borrow_mut() = returned.ok().and_then(|r| r.dyn_into::<Promise>().ok());
    };
    let pause = || pause_for.borrow_mut().take();
    // A device lost while idle is replaced before the run; one lost during it, once after.
    let mut notice = recover(checkpoint, engine).await?;
    let images = match engine.run(&job, &mut report, &pause).await {
        Ok(images) => images,
        Err(e) => match recover(checkpoint, engine).await? {
            Some(lost) if notice.is_none() => {
                notice = Some(lost);
                engine.run(&job, &mut report, &pause).await?
            }
            _ => return Err(e),
        },
    };
    crate::limits::check_finite_output(&images)?;
    Ok((rgba(&images, format, size)?, notice))
}

async fn profile(checkpoint: &Checkpoint, engine: &mut GpuEngine, request_json: &str) -> Result<Vec<(String, f64)>> {
    let web: WebRequest =
        serde_json::from_str(request_json).map_err(|e| Error::Request(format!("bad request JSON: {e}")))?;
    let job = pipeline::job(checkpoint, &web.resolve(&checkpoint.config, None)?)?;
    crate::gpu::profile::profile_step(engine, &job).await
}

/// Times one DDIM step on each engine and keeps the faster, with a line saying what was
/// measured. The GPU's first run also compiles its pipelines, so it is an upper bound: when
/// even that beats the CPU the GPU wins outright, else one more step is timed.
async fn faster(checkpoint: &Checkpoint, mut gpu: Engine, mut cpu: Engine) -> Result<(Engine, String)> {
    let probe = Request { steps: 1, sampler: SamplerKind::Ddim, guidance: 1.0, ..Request::default() };
    let job = pipeline::job(checkpoint, &probe)?;
    let cpu_ms = time(&mut cpu, &job).await?;
    let mut gpu_ms = time(&mut gpu, &job).await?;
    if gpu_ms > cpu_ms {
        gpu_ms = time(&mut gpu, &job).await?;
    }
    let measured = format!("WebGPU is a software adapter: {gpu_ms:.0} ms/step there vs {cpu_ms:.0} ms/step on the CPU");
    Ok(if gpu_ms <= cpu_ms {
        (gpu, format!("{measured}; using WebGPU"))
    } else {
        (cpu, format!("{measured}; using the CPU"))
    })
}

async fn time(engine: &mut Engine, job: &Job) -> Result<f64> {
    let start = now_ms();
    engine.run(job, &mut |_| {}, &|| None).await?;
    Ok(now_ms() - start)
}

/// PNG bytes of a `size`×`size` straight RGBA image, alpha included.
#[wasm_bindgen(js_name = pngBytes)]
pub fn png_bytes(rgba: &[u8], size: usize) -> std::result::Result<Vec<u8>, JsValue> {
    img::png_bytes(&rgba_image(rgba, size).map_err(js_error)?).map_err(js_error)
}

/// A favicon `.ico` (16, 32, 48 and 64 px, with alpha) of a `size`×`size` straight RGBA image.
#[wasm_bindgen(js_name = icoBytes)]
pub fn ico_bytes(rgba: &[u8], size: usize) -> std::result::Result<Vec<u8>, JsValue> {
    let image = rgba_image(rgba, size).map_err(js_error)?;
    img::ico_bytes(&Premultiplied::from_straight(&image)).map_err(js_error)
}

/// The favicon kit of a `size`×`size` straight RGBA image as a zip archive (see
/// [`crate::kit`]): the same files `sample --kit` writes. `background` is a colour as
/// `--background` takes it, or empty to pick one.
#[wasm_bindgen(js_name = kitZip)]
pub fn kit_zip(rgba: &[u8], size: usize, name: String, background: String) -> std::result::Result<Vec<u8>, JsValue> {
    let build = || -> Result<Vec<u8>> {
        let icon = image::RgbaImage::from_raw(size as u32, size as u32, rgba.to_vec()).ok_or_else(|| {
            Error::Request(format!("expected {size}×{size} RGBA ({} bytes), found {}", size * size * 4, rgba.len()))
        })?;
        let background = match background.trim() {
            "" => None,
            text => Some(crate::alpha::parse_color(text)?),
        };
        kit::archive(&kit::build(&icon, &KitOptions { name, background })?)
    };
    build().map_err(js_error)
}
