//! The page's side of the wire, without the browser: it turns the server's hello, live messages
//! and fetched files into the lab's `Intake`, and says what to fetch next. The browser shell
//! (`web.rs`) only moves bytes; everything here is tested natively.
//!
//! Order: the live channel's first event is the hello (the server's state as of message `seq`);
//! messages up to `seq` are already in it and are dropped, later ones are applied. A new hello
//! (the channel reconnected, or this page fell behind) starts the state afresh.
//! A run is handed to the lab once its metrics are read (the server's columns, which may already
//! hold steps that came live); live messages for it wait until then, and steps the columns
//! already had are not added twice.

use ltlab_types::{
    ErrorBody, Event, GridImage, Hello, HostCommand, Intake, LatentMap, Live, LiveMsg, Offer, RunData, RunId, RunSnapshot, SampleSettings, StepRecord,
    ThumbnailShape, Thumbnails, ViewGrid,
};
use std::collections::HashMap;

/// What the page is fetching; the answer comes back with it.
#[derive(Debug, Clone, PartialEq)]
pub enum Fetch {
    /// The run's log in compact columns: first without the detail (the loss curves), then
    /// whole.
    Columns {
        run: RunId,
        detail: bool,
    },
    Grid {
        run: RunId,
        step: u64,
    },
    ViewGrid {
        run: RunId,
        index: usize,
        step: u64,
        settings: SampleSettings,
    },
    Thumbnails {
        run: RunId,
        index: usize,
        shape: ThumbnailShape,
    },
    /// The answer to a command (only errors matter).
    Command,
}

/// A request for the browser to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub url: String,
    /// A JSON body to POST; a GET when `None`.
    pub body: Option<String>,
    pub fetch: Fetch,
}

/// An HTTP answer as the client needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// What the page's lab gets.
// Most messages are `Intake`s, which live one frame; boxing them would gain nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum ToLab {
    /// Forget every run and job (a fresh hello follows).
    Reset,
    /// What the server's new-run controls offer.
    Offer(Box<Offer>),
    Intake(Intake),
}

/// A run whose metrics are still being read.
struct Loading {
    run: RunData,
    held: Vec<LiveMsg>,
}

#[derive(Default)]
pub struct Client {
    /// The hello's `seq`, once it came.
    seq: Option<u64>,
    loading: HashMap<RunId, Loading>,
    /// The newest step each handed-over run has.
    last_step: HashMap<RunId, u64>,
    /// Runs handed over with their curves only, and the steps that came live since: they are
    /// applied again to the whole log when it comes.
    refining: HashMap<RunId, Vec<StepRecord>>,
    /// Commands given before the hello.
    waiting: Vec<HostCommand>,
    /// The dataset preview this page asked for last (other pages' previews are not for it).
    preview_asked: Option<(String, f64)>,
    /// Latent maps waiting for their thumbnails.
    maps: HashMap<(RunId, usize), LatentMap>,
    requests: Vec<Request>,
    out: Vec<ToLab>,
}

impl Client {
    /// The live channel's hello: the server's state, read afresh.
    pub fn hello(&mut self, text: &str) {
        let h: Hello = match serde_json::from_str(text) {
            Ok(h) => h,
            Err(e) => return self.error(format!("the server's hello is unreadable: {e}")),
        };
        let waiting = std::mem::take(&mut self.waiting);
        *self = Self { waiting, ..Self::default() };
        self.out.push(ToLab::Reset);
        self.out.push(ToLab::Offer(Box::new(h.offer)));
        for j in h.jobs {
            self.out.push(ToLab::Intake(Intake::Job(j)));
        }
        for snap in h.runs {
            self.load(snap);
        }
        self.seq = Some(h.seq);
        for c in std::mem::take(&mut self.waiting) {
            self.command(&c);
        }
    }

    /// One message of the live channel (after its hello).
    pub fn live(&mut self, text: &str) {
        let live: Live = match serde_json::from_str(text) {
            Ok(l) => l,
            Err(e) => return self.error(format!("the live channel sent something unreadable: {e}")),
        };
        if self.seq.is_some_and(|seq| live.seq > seq) {
            self.seq = Some(live.seq);
            self.apply(live.msg);
        }
    }

    /// Asks the host to do something. Before the hello, the command waits: its results come on
    /// the live channel, which only then surely listens.
    pub fn command(&mut self, c: &HostCommand) {
        if self.seq.is_none() {
            return self.waiting.push(c.clone());
        }
        if let HostCommand::PreviewData { config, imbalance } = c {
            self.preview_asked = Some((config.clone(), *imbalance));
        }
        let body = serde_json::to_string(c).expect("commands serialise");
        self.requests.push(Request { url: "/api/command".into(), body: Some(body), fetch: Fetch::Command });
    }

    /// The browser's answer to a request (`Err`: it could not be made at all).
    pub fn fetched(&mut self, fetch: Fetch, answer: Result<Answer, String>) {
        let answer = match answer {
            Ok(a) if (200..300).contains(&a.status) => a,
            Ok(a) => {
                let why = serde_json::from_slice::<ErrorBody>(&a.body).map(|b| b.error).unwrap_or_else(|_| String::from_utf8_lossy(&a.body).into_owned());
                return self.failed(fetch, format!("HTTP {}: {why}", a.status));
            }
            Err(e) => return self.failed(fetch, e),
        };
        match fetch {
            Fetch::Columns { run, detail: false } => self.curves(run, &answer.body),
            Fetch::Columns { run, detail: true } => self.whole(run, &answer.body),
            Fetch::Grid { run, step } => match decode_png(&answer.body) {
                Ok(img) => self.grid(run, step, img),
                Err(e) => self.error(format!("grid of run {} at step {step}: {e}", run.0)),
            },
            Fetch::ViewGrid { run, index: _, step, settings } => match decode_png(&answer.body) {
                Ok(image) => self.view_grid(run, ViewGrid { step, settings, image }),
                Err(e) => self.error(format!("view grid of run {} at step {step}: {e}", run.0)),
            },
            Fetch::Thumbnails { run, index, shape } => self.thumbnails(run, index, shape, answer.body),
            Fetch::Command => {}
        }
    }

    /// Requests to send now.
    pub fn take_requests(&mut self) -> Vec<Request> {
        std::mem::take(&mut self.requests)
    }

    /// Messages for the lab, in order.
    pub fn take_out(&mut self) -> Vec<ToLab> {
        std::mem::take(&mut self.out)
    }

    fn get(&mut self, url: String, fetch: Fetch) {
        self.requests.push(Request { url, body: None, fetch });
    }

    fn error(&mut self, e: String) {
        self.out.push(ToLab::Intake(Intake::Error(e)));
    }

    fn failed(&mut self, fetch: Fetch, why: String) {
        match fetch {
            Fetch::Columns { run, detail } => {
                self.error(format!("metrics of run {}: {why}", run.0));
                // Hand the run over with what it has, rather than never.
                if detail {
                    self.refining.remove(&run);
                } else {
                    self.hand_over(run);
                }
            }
            Fetch::Thumbnails { run, index, .. } => {
                if let Some(map) = self.maps.remove(&(run, index)) {
                    self.out.push(ToLab::Intake(Intake::Latent(run, map)));
                }
            }
            Fetch::Command => self.error(format!("command refused: {why}")),
            other => self.error(format!("{other:?}: {why}")),
        }
    }

    /// Starts reading a run: its metrics and its images.
    fn load(&mut self, snap: RunSnapshot) {
        let id = snap.header.id;
        for &step in &snap.grid_steps {
            self.get(format!("/api/runs/{}/grids/{step}", id.0), Fetch::Grid { run: id, step });
        }
        for (index, (step, settings)) in snap.view_grids.iter().enumerate() {
            self.get(format!("/api/runs/{}/view-grids/{index}", id.0), Fetch::ViewGrid { run: id, index, step: *step, settings: settings.clone() });
        }
        for (index, (map, shape)) in snap.latent_maps.iter().enumerate() {
            if let Some(shape) = *shape {
                self.maps.insert((id, index), map.clone());
                self.get(format!("/api/runs/{}/latents/{index}", id.0), Fetch::Thumbnails { run: id, index, shape });
            }
        }
        self.last_step.remove(&id);
        self.loading.insert(id, Loading { run: snap.into_run(), held: Vec::new() });
        self.get(format!("/api/runs/{}/columns?detail=0", id.0), Fetch::Columns { run: id, detail: false });
    }

    /// The loss curves: the run goes to the lab now, its whole log is asked for next.
    fn curves(&mut self, run: RunId, bytes: &[u8]) {
        let Some(loading) = self.loading.get_mut(&run) else { return };
        match ltlab_types::Metrics::decode_columns(bytes) {
            Ok(m) => {
                loading.run.metrics = m;
                self.refining.insert(run, Vec::new());
                self.get(format!("/api/runs/{}/columns", run.0), Fetch::Columns { run, detail: true });
            }
            Err(e) => self.error(format!("metrics of run {}: {e}", run.0)),
        }
        self.hand_over(run);
    }

    /// The whole log, in place of the curves; the steps that came live meanwhile after it.
    fn whole(&mut self, run: RunId, bytes: &[u8]) {
        let Some(since) = self.refining.remove(&run) else { return };
        match ltlab_types::Metrics::decode_columns(bytes) {
            Ok(m) => {
                let last = m.last_step().unwrap_or(0);
                self.out.push(ToLab::Intake(Intake::Metrics(run, Box::new(m))));
                for r in since.into_iter().filter(|r| r.step > last) {
                    self.out.push(ToLab::Intake(Intake::Engine(run, Event::Step(r))));
                }
            }
            Err(e) => self.error(format!("metrics of run {}: {e}", run.0)),
        }
    }

    /// The run goes to the lab, then what came for it while it was read.
    fn hand_over(&mut self, run: RunId) {
        let Some(l) = self.loading.remove(&run) else { return };
        self.last_step.insert(run, l.run.last_step());
        self.out.push(ToLab::Intake(Intake::Opened(Box::new(l.run))));
        for msg in l.held {
            self.apply(msg);
        }
    }

    fn apply(&mut self, msg: LiveMsg) {
        let run = match &msg {
            LiveMsg::Engine(r, _) | LiveMsg::Grid(r, _) | LiveMsg::Transfer(r, _) | LiveMsg::Entanglement(r, ..) => Some(*r),
            LiveMsg::Latent { run, .. } | LiveMsg::ViewGrid { run, .. } => Some(*run),
            _ => None,
        };
        // Images are fetched at once either way; the rest waits for a run being read.
        if let (Some(r), false) = (run, matches!(msg, LiveMsg::Grid(..) | LiveMsg::ViewGrid { .. } | LiveMsg::Latent { .. }))
            && let Some(l) = self.loading.get_mut(&r)
        {
            l.held.push(msg);
            return;
        }
        let intake = match msg {
            LiveMsg::Run(snap) => return self.load(snap),
            LiveMsg::Engine(id, ev) => {
                let last = self.last_step.entry(id).or_insert(0);
                match &ev {
                    Event::Step(r) if r.step <= *last => return,
                    Event::Step(r) => {
                        *last = r.step;
                        if let Some(since) = self.refining.get_mut(&id) {
                            since.push(r.clone());
                        }
                    }
                    Event::Started { first_step, .. } => *last = (*last).min(*first_step),
                    _ => {}
                }
                Intake::Engine(id, ev)
            }
            LiveMsg::Grid(id, step) => return self.get(format!("/api/runs/{}/grids/{step}", id.0), Fetch::Grid { run: id, step }),
            LiveMsg::ViewGrid { run, index, step, settings } => {
                return self.get(format!("/api/runs/{}/view-grids/{index}", run.0), Fetch::ViewGrid { run, index, step, settings });
            }
            LiveMsg::Latent { run, index, map, thumbnails } => match thumbnails {
                Some(shape) => {
                    self.maps.insert((run, index), map);
                    return self.get(format!("/api/runs/{}/latents/{index}", run.0), Fetch::Thumbnails { run, index, shape });
                }
                None => Intake::Latent(run, map),
            },
            LiveMsg::DataPreview(p) if self.preview_asked.as_ref().is_some_and(|(c, i)| *c == p.config && *i == p.imbalance) => Intake::DataPreview(p),
            LiveMsg::DataPreview(_) => return,
            LiveMsg::Transfer(id, a) => Intake::Transfer(id, a),
            LiveMsg::Entanglement(id, t, c, list) => Intake::Entanglement(id, t, c, list),
            LiveMsg::Job(j) => Intake::Job(j),
            LiveMsg::JobEnded(id) => Intake::JobEnded(id),
            LiveMsg::Error(e) => Intake::Error(e),
        };
        self.out.push(ToLab::Intake(intake));
    }

    fn view_grid(&mut self, run: RunId, g: ViewGrid) {
        match self.loading.get_mut(&run) {
            Some(l) => l.run.add_view_grid(g),
            None => self.out.push(ToLab::Intake(Intake::ViewGrid(run, g))),
        }
    }

    fn grid(&mut self, run: RunId, step: u64, img: GridImage) {
        match self.loading.get_mut(&run) {
            Some(l) => {
                l.run.grids.insert(step, img);
            }
            None => self.out.push(ToLab::Intake(Intake::Grid(run, step, img))),
        }
    }

    fn thumbnails(&mut self, run: RunId, index: usize, shape: ThumbnailShape, pixels: Vec<u8>) {
        let images = Thumbnails { channels: shape.channels, size: shape.size, pixels };
        if let Some(l) = self.loading.get_mut(&run) {
            if let Some(m) = l.run.latent_maps.get_mut(index) {
                m.images = Some(images);
            }
            self.maps.remove(&(run, index));
            return;
        }
        // A map that came live, or one of a run already handed over (replaces the bare one).
        let map = self.maps.remove(&(run, index));
        if let Some(mut map) = map {
            map.images = Some(images);
            self.out.push(ToLab::Intake(Intake::Latent(run, map)));
        }
    }
}

/// A PNG as RGBA.
pub fn decode_png(bytes: &[u8]) -> Result<GridImage, String> {
    let img = image::load_from_memory_with_format(bytes, image::ImageFormat::Png).map_err(|e| format!("not a PNG: {e}"))?.to_rgba8();
    Ok(GridImage { width: img.width() as usize, height: img.height() as usize, rgba: img.into_raw() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ltlab_types::RunStatus;
    use ltlab_types::{BackendChoice, BackendKind, DeviceClass};
    use std::collections::BTreeMap;

    fn record(step: u64, total: f64) -> StepRecord {
        StepRecord {
            step,
            losses: BTreeMap::from([("total".to_string(), total)]),
            loss_by_t: vec![],
            lr: 1e-4,
            grad_norm: 1.0,
            images_per_s: 10.0,
            uncond_batch: false,
            loss_by_class: vec![],
            transfers: None,
        }
    }

    /// The server's columns of these records.
    fn columns(records: &[StepRecord], detail: bool) -> Vec<u8> {
        let mut m = ltlab_types::Metrics::default();
        records.iter().for_each(|r| m.push(r));
        m.encode_columns(detail)
    }

    fn ok(body: Vec<u8>) -> Result<Answer, String> {
        Ok(Answer { status: 200, body })
    }

    fn snapshot(id: u64) -> RunSnapshot {
        let mut run = RunData::new(RunId(id), format!("run{id}"), format!("runs/run{id}"));
        run.header.status = RunStatus::Training;
        RunSnapshot::of(&run)
    }

    fn hello(seq: u64, runs: Vec<RunSnapshot>) -> String {
        serde_json::to_string(&Hello {
            seq,
            offer: Offer {
                configs: vec!["demo".into()],
                method_params: vec![],
                backends: vec![BackendChoice { kind: BackendKind::Flex, device: "CPU, 2 threads".into(), class: DeviceClass::Cpu }],
            },
            runs,
            jobs: vec![],
            read_only: false,
        })
        .unwrap()
    }

    fn live(seq: u64, msg: LiveMsg) -> String {
        serde_json::to_string(&Live { seq, msg }).unwrap()
    }

    fn intakes(c: &mut Client) -> Vec<Intake> {
        c.take_out().into_iter().filter_map(|o| if let ToLab::Intake(i) = o { Some(i) } else { None }).collect()
    }

    fn steps(i: &[Intake]) -> Vec<u64> {
        i.iter()
            .flat_map(|m| match m {
                Intake::Opened(r) => r.metrics.steps().to_vec(),
                Intake::Engine(_, Event::Step(r)) => vec![r.step],
                _ => vec![],
            })
            .collect()
    }

    #[test]
    fn a_page_sees_each_step_once_whatever_order_the_hello_metrics_and_live_messages_come_in() {
        let mut c = Client::default();
        // Nothing before the hello counts (the channel's first event is its hello).
        c.live(&live(1, LiveMsg::Engine(RunId(1), Event::Step(record(1, 0.9)))));
        c.hello(&hello(4, vec![snapshot(1)]));
        assert!(matches!(c.take_out()[..2], [ToLab::Reset, ToLab::Offer { .. }]));
        // Messages the server sent between subscribing and reading its state: seq 4 is already
        // in the hello, 5 is not.
        c.live(&live(4, LiveMsg::Engine(RunId(1), Event::Step(record(2, 0.5)))));
        c.live(&live(5, LiveMsg::Engine(RunId(1), Event::Step(record(3, 0.4)))));
        let reqs = c.take_requests();
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].url, "/api/runs/1/columns?detail=0");
        c.live(&live(6, LiveMsg::Engine(RunId(1), Event::Step(record(4, 0.3)))));
        assert!(intakes(&mut c).is_empty(), "nothing of run 1 before its metrics are read");

        // The server's curves had steps 1–3 (3 also came live).
        c.fetched(reqs[0].fetch.clone(), ok(columns(&[record(1, 0.6), record(2, 0.5), record(3, 0.4)], false)));
        let got = intakes(&mut c);
        assert!(matches!(&got[0], Intake::Opened(r) if r.header.status == RunStatus::Training));
        assert_eq!(steps(&got), [1, 2, 3, 4], "step 3 once, the held step 4 after the run");
        let whole = c.take_requests();
        assert_eq!(whole.iter().map(|r| r.url.as_str()).collect::<Vec<_>>(), ["/api/runs/1/columns"], "then the whole log");

        // Later messages: a repeated one is dropped, a new step is applied, an old step is not.
        c.live(&live(6, LiveMsg::Engine(RunId(1), Event::Step(record(9, 0.1)))));
        c.live(&live(7, LiveMsg::Engine(RunId(1), Event::Step(record(4, 0.3)))));
        c.live(&live(8, LiveMsg::Engine(RunId(1), Event::Step(record(5, 0.2)))));
        assert_eq!(steps(&intakes(&mut c)), [5]);

        // The whole log (read on the server when it had step 4) replaces the curves; step 5,
        // which came live since, follows it.
        let mut with_t = record(4, 0.3);
        with_t.loss_by_t = vec![Some(0.7); 10];
        c.fetched(whole[0].fetch.clone(), ok(columns(&[record(1, 0.6), record(2, 0.5), record(3, 0.4), with_t], true)));
        let got = intakes(&mut c);
        let [Intake::Metrics(RunId(1), m), Intake::Engine(RunId(1), Event::Step(r))] = &got[..] else { panic!("{got:?}") };
        assert_eq!((m.steps(), m.loss_by_t(3)[0], r.step), (&[1, 2, 3, 4][..], 0.7, 5));

        // A resume goes back to its checkpoint: the steps after it come again and are taken.
        c.live(&live(9, LiveMsg::Engine(RunId(1), Event::Started { run_dir: "x".into(), first_step: 3, total_steps: 10 })));
        c.live(&live(10, LiveMsg::Engine(RunId(1), Event::Step(record(4, 0.25)))));
        assert_eq!(steps(&intakes(&mut c)), [4]);

        // A page that fell behind gets a fresh hello: it starts afresh and reads the runs again;
        // what the channel still had from before that hello is dropped.
        c.hello(&hello(40, vec![snapshot(1)]));
        assert!(matches!(c.take_out()[..2], [ToLab::Reset, ToLab::Offer { .. }]));
        assert_eq!(c.take_requests()[0].url, "/api/runs/1/columns?detail=0");
        c.live(&live(11, LiveMsg::Engine(RunId(1), Event::Step(record(5, 0.2)))));
        assert!(c.take_out().is_empty());
    }

    #[test]
    fn images_are_fetched_by_url_and_arrive_decoded() {
        let mut c = Client::default();
        let mut snap = snapshot(2);
        snap.grid_steps = vec![10];
        c.hello(&hello(0, vec![snap]));
        let reqs = c.take_requests();
        let urls: Vec<&str> = reqs.iter().map(|r| r.url.as_str()).collect();
        assert_eq!(urls, ["/api/runs/2/grids/10", "/api/runs/2/columns?detail=0"]);
        let png = crate::download::download("g.png", ltlab_ui::ExportData::Image { width: 1, height: 1, rgba: vec![9, 8, 7, 255] }).unwrap().bytes;
        // The grid comes before the metrics: it goes into the run handed over.
        c.fetched(reqs[0].fetch.clone(), ok(png.clone()));
        c.fetched(reqs[1].fetch.clone(), ok(columns(&[], false)));
        let got = intakes(&mut c);
        let Intake::Opened(run) = &got[0] else { panic!("{got:?}") };
        assert_eq!(run.grids[&10].rgba, [9, 8, 7, 255]);
        assert_eq!(c.take_requests()[0].url, "/api/runs/2/columns", "the whole log next");

        // A grid written later comes live, then by URL.
        c.live(&live(1, LiveMsg::Grid(RunId(2), 20)));
        let reqs = c.take_requests();
        assert_eq!(reqs[0].url, "/api/runs/2/grids/20");
        c.fetched(reqs[0].fetch.clone(), ok(png));
        assert!(matches!(&intakes(&mut c)[..], [Intake::Grid(RunId(2), 20, g)] if g.width == 1));

        // A latent map with thumbnails waits for them.
        let map = LatentMap {
            step: 20,
            t: 1,
            method: ltlab_types::EmbedMethod::Pca,
            conditional: true,
            per_class: 1,
            class_names: vec!["a".into()],
            train_counts: vec![1],
            labels: vec![0],
            indices: vec![0],
            xy: vec![0.0, 0.0],
            entanglement: ltlab_types::Entanglement { step: 20, t: 1, k: 1, per_class: 1, purity: vec![1.0], silhouette: vec![0.0] },
            images: None,
        };
        let shape = ThumbnailShape { channels: 1, size: 2 };
        c.live(&live(2, LiveMsg::Latent { run: RunId(2), index: 0, map, thumbnails: Some(shape) }));
        assert!(intakes(&mut c).is_empty());
        let reqs = c.take_requests();
        assert_eq!(reqs[0].url, "/api/runs/2/latents/0");
        c.fetched(reqs[0].fetch.clone(), ok(vec![1, 2, 3, 4]));
        let got = intakes(&mut c);
        let [Intake::Latent(RunId(2), m)] = &got[..] else { panic!("{got:?}") };
        assert_eq!(m.images.as_ref().map(|t| (t.size, t.pixels.clone())), Some((2, vec![1, 2, 3, 4])));
    }

    #[test]
    fn a_refused_command_shows_the_servers_reason() {
        let mut c = Client::default();
        c.command(&HostCommand::Pause(RunId(3)));
        assert!(c.take_requests().is_empty(), "a command waits for the hello");
        c.hello(&hello(0, vec![]));
        let reqs = c.take_requests();
        assert_eq!((reqs[0].url.as_str(), reqs[0].body.as_deref()), ("/api/command", Some(r#"{"Pause":3}"#)));
        let body = serde_json::to_vec(&ErrorBody { error: "this server is read-only".into() }).unwrap();
        c.fetched(Fetch::Command, Ok(Answer { status: 403, body }));
        let got = intakes(&mut c);
        assert!(matches!(&got[..], [Intake::Error(e)] if e.contains("403") && e.contains("read-only")), "{got:?}");

        // Dataset previews come to every page; each takes only the one it asked for.
        c.command(&HostCommand::PreviewData { config: "demo".into(), imbalance: 0.1 });
        let preview = |config: &str| ltlab_types::DataPreview {
            config: config.into(),
            imbalance: 0.1,
            dataset: "synthetic".into(),
            class_names: vec![],
            counts: vec![],
            images: vec![],
            channels: 3,
            size: 8,
        };
        c.live(&live(1, LiveMsg::DataPreview(preview("other"))));
        c.live(&live(2, LiveMsg::DataPreview(preview("demo"))));
        assert!(matches!(&intakes(&mut c)[..], [Intake::DataPreview(p)] if p.config == "demo"));
    }
}
