//! The browser shell: the lab in eframe's web runner, the live channel (`EventSource`), fetches
//! and downloads. Network answers land in an inbox drained once per frame; each one asks for a
//! repaint, so a step logged on the server is drawn in the next frame.
//!
//! The page's URL may say `?view=latent` (training, latent, transfer, compare) to open on a
//! view, and `frames=continuous` to draw every frame (frame-time measurements). The page logs
//! `ltlab-metric …` lines to the console: when the first loss curve was drawn, when each new
//! step was drawn, and frame times every 5 s.

use crate::client::{Answer, Client, Fetch, Request, ToLab};
use crate::download::download;
use eframe::egui;
use ltlab_types::{Intake, RunId};
use ltlab_ui::{Lab, LabState, UiCommand, VIEWS};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

enum Net {
    Hello(String),
    Live(String),
    Answer(Fetch, Result<Answer, String>),
}

type Inbox = Rc<RefCell<Vec<Net>>>;

struct WebApp {
    lab: Lab,
    client: Client,
    inbox: Inbox,
    ctx: egui::Context,
    continuous: bool,
    /// Newest step drawn per run (for the console's latency lines).
    drawn: HashMap<RunId, u64>,
    first_curve_logged: bool,
    last_frames_log: f64,
    /// Kept alive: dropping the closures would detach them.
    _events: web_sys::EventSource,
    _handlers: Vec<Closure<dyn FnMut(web_sys::Event)>>,
}

fn log(line: &str) {
    web_sys::console::log_1(&JsValue::from_str(line));
}

fn now_ms() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map_or(0.0, |p| p.now())
}

fn query_param(name: &str) -> Option<String> {
    let search = web_sys::window()?.location().search().ok()?;
    search.trim_start_matches('?').split('&').find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=').map(str::to_string))
}

impl WebApp {
    fn new(cc: &eframe::CreationContext<'_>) -> Result<Self, JsValue> {
        let mut state: LabState = cc.storage.and_then(|s| eframe::get_value(s, eframe::APP_KEY)).unwrap_or_default();
        if let Some(v) = query_param("view")
            && let Some(entry) = VIEWS.iter().find(|e| e.export_prefix == v)
        {
            state.view = entry.id;
        }
        // Runs are the server's: the page shows what it has, not what this browser had open.
        state.open_runs.clear();
        let lab = Lab::new(state);
        let inbox: Inbox = Rc::default();
        let ctx = cc.egui_ctx.clone();
        let events = web_sys::EventSource::new("/api/events")?;
        let mut handlers = Vec::new();
        let on = |kind: &str, f: Box<dyn Fn(web_sys::Event) -> Option<Net>>, handlers: &mut Vec<Closure<dyn FnMut(web_sys::Event)>>| -> Result<(), JsValue> {
            let (inbox, ctx) = (inbox.clone(), ctx.clone());
            let c = Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
                if let Some(m) = f(e) {
                    inbox.borrow_mut().push(m);
                    ctx.request_repaint();
                }
            });
            events.add_event_listener_with_callback(kind, c.as_ref().unchecked_ref())?;
            handlers.push(c);
            Ok(())
        };
        let data = |e: web_sys::Event| e.dyn_ref::<web_sys::MessageEvent>().and_then(|m| m.data().as_string());
        on("hello", Box::new(move |e| data(e).map(Net::Hello)), &mut handlers)?;
        on("message", Box::new(move |e| data(e).map(Net::Live)), &mut handlers)?;
        Ok(Self {
            lab,
            client: Client::default(),
            inbox,
            ctx,
            continuous: query_param("frames").as_deref() == Some("continuous"),
            drawn: HashMap::new(),
            first_curve_logged: false,
            last_frames_log: 0.0,
            _events: events,
            _handlers: handlers,
        })
    }

    /// Everything that came in since the last frame, through the client into the lab.
    fn drain(&mut self) {
        let msgs: Vec<Net> = std::mem::take(&mut *self.inbox.borrow_mut());
        for m in msgs {
            match m {
                Net::Hello(text) => self.client.hello(&text),
                Net::Live(text) => self.client.live(&text),
                Net::Answer(fetch, a) => self.client.fetched(fetch, a),
            }
        }
        for out in self.client.take_out() {
            match out {
                ToLab::Reset => {
                    self.lab.runs.clear();
                    self.lab.selected.clear();
                    self.lab.jobs.clear();
                }
                ToLab::Offer(offer) => self.lab.set_offer(*offer),
                ToLab::Intake(i) => self.lab.intake(i),
            }
        }
        for r in self.client.take_requests() {
            self.send(r);
        }
    }

    fn send(&self, r: Request) {
        let (inbox, ctx) = (self.inbox.clone(), self.ctx.clone());
        wasm_bindgen_futures::spawn_local(async move {
            let answer = fetch(&r.url, r.body.as_deref()).await.map_err(|e| format!("{}: {}", r.url, e.as_string().unwrap_or_else(|| format!("{e:?}"))));
            inbox.borrow_mut().push(Net::Answer(r.fetch, answer));
            ctx.request_repaint();
        });
    }

    fn execute(&mut self, c: UiCommand) {
        match c {
            UiCommand::Host(c) => self.client.command(&c),
            UiCommand::Close(id) => self.lab.close(id),
            UiCommand::Export { path, data } => match download(&path, data).map_err(JsValue::from).and_then(|d| save_file(&d)) {
                Ok(name) => self.lab.intake(Intake::Exported(format!("{name} (download)"))),
                Err(e) => self.lab.intake(Intake::Error(format!("export {path}: {e:?}"))),
            },
        }
    }

    /// The console lines the browser test reads.
    fn report(&mut self) {
        let epoch_ms = js_sys::Date::now();
        for r in &self.lab.runs {
            let step = r.last_step();
            if !r.metrics.is_empty() && self.drawn.get(&r.header.id) != Some(&step) {
                if !self.first_curve_logged {
                    self.first_curve_logged = true;
                    log(&format!("ltlab-metric first-curve ms={:.0} run={} points={}", now_ms(), r.header.name, r.metrics.len()));
                }
                log(&format!("ltlab-metric drawn run={} step={step} epoch_ms={epoch_ms:.0}", r.header.name));
                self.drawn.insert(r.header.id, step);
            }
        }
        let t = now_ms();
        if t - self.last_frames_log > 5000.0 {
            self.last_frames_log = t;
            if let Some((p50, p95, max)) = self.lab.frame_stats() {
                let points: usize = self.lab.runs.iter().flat_map(|r| r.latent_maps.iter()).map(|m| m.labels.len()).max().unwrap_or(0);
                log(&format!("ltlab-metric frames p50={p50:.2} p95={p95:.2} max={max:.2} view={:?} latent_points={points}", self.lab.state.view));
            }
        }
    }
}

impl eframe::App for WebApp {
    fn logic(&mut self, ctx: &egui::Context, _: &mut eframe::Frame) {
        self.drain();
        if self.continuous {
            ctx.request_repaint();
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        if let Some(s) = frame.info().cpu_usage {
            self.lab.record_frame(1000.0 * s);
        }
        for c in self.lab.ui(ui) {
            self.execute(c);
        }
        self.report();
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, eframe::APP_KEY, &self.lab.state);
    }
}

/// A GET, or a POST of a JSON body.
async fn fetch(url: &str, body: Option<&str>) -> Result<Answer, JsValue> {
    let init = web_sys::RequestInit::new();
    if let Some(b) = body {
        init.set_method("POST");
        init.set_body(&JsValue::from_str(b));
        let headers = web_sys::Headers::new()?;
        headers.set("content-type", "application/json")?;
        init.set_headers(&headers);
    }
    let request = web_sys::Request::new_with_str_and_init(url, &init)?;
    let window = web_sys::window().ok_or("no window")?;
    let resp: web_sys::Response = JsFuture::from(window.fetch_with_request(&request)).await?.dyn_into()?;
    let buf = JsFuture::from(resp.array_buffer()?).await?;
    Ok(Answer { status: resp.status(), body: js_sys::Uint8Array::new(&buf).to_vec() })
}

/// Hands the file to the browser as a download; its name.
fn save_file(d: &crate::download::Download) -> Result<String, JsValue> {
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(d.bytes.as_slice()));
    let opts = web_sys::BlobPropertyBag::new();
    opts.set_type(d.mime);
    let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &opts)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob)?;
    let document = web_sys::window().and_then(|w| w.document()).ok_or("no document")?;
    let a: web_sys::HtmlAnchorElement = document.create_element("a")?.dyn_into()?;
    a.set_href(&url);
    a.set_download(&d.name);
    a.click();
    web_sys::Url::revoke_object_url(&url)?;
    Ok(d.name.clone())
}

/// The page's entry point (run by the generated JS on load).
#[wasm_bindgen(start)]
pub fn start() {
    wasm_bindgen_futures::spawn_local(async {
        let document = web_sys::window().and_then(|w| w.document()).expect("a page has a document");
        let canvas = document.get_element_by_id("ltlab_canvas").expect("index.html has the canvas").dyn_into::<web_sys::HtmlCanvasElement>().expect("a canvas");
        let started = eframe::WebRunner::new()
            .start(canvas, eframe::WebOptions::default(), Box::new(|cc| Ok(Box::new(WebApp::new(cc).map_err(|e| format!("{e:?}"))?))))
            .await;
        if let Err(e) = started {
            log(&format!("ltlab: the web lab did not start: {e:?}"));
            if let Some(el) = document.get_element_by_id("ltlab_status") {
                el.set_text_content(Some(&format!("The web lab did not start: {e:?}")));
            }
        } else if let Some(el) = document.get_element_by_id("ltlab_status") {
            el.remove();
        }
    });
}
