//! The web lab in a real browser: Debian's Chromium, headless (WebGL on SwiftShader), driven by
//! chromedriver over WebDriver, opens the page from `ltlab serve` while a run trains. The
//! screenshot must show the run's loss curve inside the plot, and the server must have seen the
//! page read the metrics and open the live channel. `tools/test.sh` installs both packages.

mod common;

use common::{Server, request, tiny_start, wait};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A chromedriver process and one browser session.
struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
}

impl Browser {
    fn start(profile: &Path) -> Browser {
        for p in [CHROMIUM, CHROMEDRIVER] {
            assert!(Path::new(p).exists(), "{p} is missing: `apt-get install chromium chromium-driver` (tools/test.sh installs them)");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new(CHROMEDRIVER).arg(format!("--port={port}")).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("chromedriver starts");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        wait(30, "chromedriver", || {
            std::net::TcpStream::connect(addr).ok().and_then(|_| (request(addr, "GET", "/status", &[], b"").json()["value"]["ready"] == true).then_some(()))
        });
        let args = [
            "--headless",
            "--no-sandbox",
            "--enable-unsafe-swiftshader",
            "--use-angle=swiftshader",
            "--window-size=1400,900",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ];
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args.iter().map(|a| a.to_string()).chain([format!("--user-data-dir={}", profile.display())]).collect::<Vec<_>>() },
            "goog:loggingPrefs": { "browser": "ALL" },
        }}});
        let mut b = Browser { driver, addr, session: String::new() };
        let r = b.call("POST", "/session", Some(caps));
        b.session = r["sessionId"].as_str().unwrap_or_else(|| panic!("no browser session: {r}")).to_string();
        b
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let r = request(self.addr, method, path, &[("content-type", "application/json")], body.as_bytes());
        assert_eq!(r.status, 200, "WebDriver {method} {path}: {}", r.text());
        r.json()["value"].clone()
    }

    fn session(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    /// The console lines since the last call.
    fn console(&self) -> Vec<String> {
        let v = self.session("POST", "/se/log", Some(json!({ "type": "browser" })));
        v.as_array().unwrap().iter().filter_map(|e| e["message"].as_str().map(str::to_string)).collect()
    }

    fn screenshot(&self) -> image::RgbaImage {
        let b64 = self.session("GET", "/screenshot", None);
        let png = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64.as_str().unwrap()).unwrap();
        image::load_from_memory(&png).unwrap().to_rgba8()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = request(self.addr, "DELETE", &format!("/session/{}", self.session), &[], b"");
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[test]
fn the_page_shows_a_live_run_from_ltlab_serve_in_chromium() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("runs"), &[]);
    server.command(tiny_start("browser-tiny", 2000));
    let id = server.run_id("browser-tiny", 30);
    let browser = Browser::start(&tmp.path().join("profile"));
    browser.session("POST", "/url", Some(json!({ "url": server.url })));

    // The page logs each newly drawn step; wait until it drew several while the run goes on.
    let mut console = Vec::new();
    let drawn = wait(120, "the page drawing 3 new steps", || {
        console.extend(browser.console());
        let steps: Vec<u64> = console
            .iter()
            .filter(|l| l.contains("ltlab-metric drawn run=browser-tiny"))
            .filter_map(|l| l.split("step=").nth(1)?.split(' ').next()?.parse().ok())
            .collect();
        (steps.len() >= 3).then_some(steps)
    });
    assert!(drawn.windows(2).all(|w| w[1] > w[0]), "steps drawn in order: {drawn:?}");
    assert!(console.iter().any(|l| l.contains("ltlab-metric first-curve")), "{console:?}");
    assert!(!console.iter().any(|l| l.contains("did not start") || l.contains("did not load") || l.contains("panicked")), "{console:?}");

    let shot = browser.screenshot();
    let out = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-lab.png");
    shot.save(&out).unwrap();
    let (w, h) = shot.dimensions();
    assert!(w >= 1000 && h >= 600, "{w} × {h}");
    let distinct: std::collections::HashSet<[u8; 4]> = shot.pixels().step_by(7).map(|p| p.0).collect();
    assert!(distinct.len() > 50, "a blank page ({} colours): {}", distinct.len(), out.display());
    // The run's two terms are drawn in the palette's first two colours, (86, 156, 214) and
    // (230, 126, 34) (DDPM's `mse` equals `total`, so it covers it); the loss plot sits right of
    // the controls, in the upper half, left of the loss-by-t plot.
    let near = |p: &image::Rgba<u8>, c: [i32; 3]| (0..3).all(|i| (p[i] as i32 - c[i]).abs() < 24);
    let (x0, x1, y0, y1) = (w * 27 / 100, w * 76 / 100, h / 8, h * 52 / 100);
    let in_plot = (y0..y1)
        .flat_map(|y| (x0..x1).map(move |x| (x, y)))
        .filter(|&(x, y)| [[86, 156, 214], [230, 126, 34]].iter().any(|&c| near(shot.get_pixel(x, y), c)))
        .count();
    assert!(in_plot > 100, "the loss curve's colour in the plot area: {in_plot} pixels ({})", out.display());

    assert!(server.logged(&format!("GET /api/runs/{id}/columns 200")), "the page read the metrics: {:?}", server.log.lock().unwrap());
    assert!(server.logged("GET /api/events 200"), "the page opened the live channel");
    assert!(server.logged("GET /api/hello 200"));
}
