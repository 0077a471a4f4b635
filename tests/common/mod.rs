//! What the binary's tests share: a tiny run's options, an `ltlab serve` process on an ephemeral loopback port, and a
//! plain HTTP/1.0 client (requests written byte for byte, so that `..` reaches the server
//! unnormalised).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    /// The URL it printed (with `?token=` when it has one).
    pub url: String,
    /// Its request log (stderr), line by line.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub fn start(runs: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ltlab"))
            .args(["serve", "--runs", runs.to_str().unwrap()])
            .args(if extra.contains(&"--addr") { &[][..] } else { &["--addr", "127.0.0.1:0"][..] })
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ltlab serve starts");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let url = line.trim().strip_prefix("ltlab serve: ").unwrap_or_else(|| panic!("not the URL line: {line:?}")).to_string();
        let host = url.trim_start_matches("http://").split('/').next().unwrap();
        let addr: SocketAddr = host.parse().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (stderr, sink) = (child.stderr.take().unwrap(), log.clone());
        std::thread::spawn(move || {
            for l in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(l);
            }
        });
        std::thread::spawn(move || for _ in stdout.lines() {});
        Server { child, addr, url, log }
    }

    pub fn get(&self, path: &str) -> Reply {
        request(self.addr, "GET", path, &[], b"")
    }

    pub fn post(&self, path: &str, body: &str) -> Reply {
        request(self.addr, "POST", path, &[("content-type", "application/json")], body.as_bytes())
    }

    /// Sends a command; panics unless accepted.
    pub fn command(&self, c: serde_json::Value) {
        let r = self.post("/api/command", &c.to_string());
        assert_eq!(r.status, 202, "{c}: {}", r.text());
    }

    pub fn hello(&self) -> serde_json::Value {
        let r = self.get("/api/hello");
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    }

    /// The id of the run named `name`, waiting up to `secs` for the server to have it.
    pub fn run_id(&self, name: &str, secs: u64) -> u64 {
        wait(secs, &format!("run {name} in the hello"), || {
            self.hello()["runs"].as_array().unwrap().iter().find(|r| r["name"] == name).and_then(|r| r["id"].as_u64())
        })
    }

    pub fn logged(&self, needle: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(needle))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    /// The `error` of a JSON error body.
    pub fn error(&self) -> String {
        assert!(self.header("content-type").is_some_and(|c| c.starts_with("application/json")), "{:?}", self.headers);
        self.json()["error"].as_str().unwrap_or_else(|| panic!("no error field: {}", self.text())).to_string()
    }
}

/// One HTTP/1.1 request with `Connection: close` (the server closes the connection after the
/// answer).
pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut s = TcpStream::connect(addr).expect("the server listens");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    // A refused body may close the connection before all of it is written.
    let _ = s.write_all(body);
    // Read to the end of the head, then Content-Length bytes (some servers keep the connection
    // open), or to the close.
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let split = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => panic!("no HTTP answer to {method} {path}: {:?}", String::from_utf8_lossy(&raw)),
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    };
    let length = String::from_utf8_lossy(&raw[..split])
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.trim().eq_ignore_ascii_case("content-length")).and_then(|(_, v)| v.trim().parse::<usize>().ok()));
    match length {
        Some(n) => {
            while raw.len() < split + 4 + n {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => raw.extend_from_slice(&buf[..k]),
                }
            }
        }
        None => {
            let _ = s.read_to_end(&mut raw);
        }
    }
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|c| c.parse().ok()).expect("a status line");
    let headers: Vec<(String, String)> = lines.filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))).collect();
    let mut body = raw[split + 4..].to_vec();
    if headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked")) {
        body = dechunk(&body);
    }
    Reply { status, headers, body }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&raw[..eol]).split(';').next().unwrap().trim(), 16).expect("a chunk size");
        if size == 0 {
            break;
        }
        out.extend_from_slice(&raw[eol + 2..eol + 2 + size]);
        raw = &raw[eol + 2 + size + 2..];
    }
    out
}

/// The live channel, read on a thread: every message with the moment it arrived.
pub struct LiveChannel {
    /// The numbered messages.
    pub messages: Arc<Mutex<Vec<(Instant, serde_json::Value)>>>,
    /// The `hello` events (the first thing on the channel).
    pub hellos: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl LiveChannel {
    pub fn open(addr: SocketAddr, headers: &[(&str, &str)]) -> LiveChannel {
        let mut s = TcpStream::connect(addr).unwrap();
        let mut head = format!("GET /api/events HTTP/1.0\r\nHost: {addr}\r\nAccept: text/event-stream\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).unwrap();
        let mut reader = BufReader::new(s);
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        assert!(status.contains(" 200 "), "live channel: {status}");
        let (messages, hellos) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(Vec::new())));
        let (sink, hello_sink) = (messages.clone(), hellos.clone());
        std::thread::spawn(move || {
            let mut event = String::new();
            for line in reader.lines().map_while(Result::ok) {
                if let Some(name) = line.strip_prefix("event:") {
                    event = name.trim().to_string();
                } else if let Some(data) = line.strip_prefix("data: ").or_else(|| line.strip_prefix("data:"))
                    && let Ok(v) = serde_json::from_str(data)
                {
                    if event == "hello" { hello_sink.lock().unwrap().push(v) } else { sink.lock().unwrap().push((Instant::now(), v)) }
                } else if line.is_empty() {
                    event.clear();
                }
            }
        });
        LiveChannel { messages, hellos }
    }

    /// The first engine event of `kind` (`Step`, `Paused`, …) after `from` messages.
    pub fn wait_event(&self, kind: &str, secs: u64) -> serde_json::Value {
        wait(secs, &format!("a {kind} event on the live channel"), || {
            self.messages.lock().unwrap().iter().find_map(|(_, m)| m["msg"]["Engine"][1].get(kind).cloned())
        })
    }
}

/// Polls `f` every 20 ms until it gives something, for at most `secs`.
pub fn wait<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < Duration::from_secs(secs), "waited {secs} s for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `ltlab train` options of a tiny, fast run on 8×8 synthetic images (small preset:
/// dropout on), with only the checkpoints and grids asked for (no early marks of the demo
/// preset).
pub fn tiny_train_options(steps: u32, checkpoint_every: u32, sample_every: u32, grid_sampler: &str) -> Vec<String> {
    let (steps, checkpoint_every, sample_every) = (steps.to_string(), checkpoint_every.to_string(), sample_every.to_string());
    let options = ["--config", "demo-synthetic", "--preset", "small", "--image-size", "8", "--batch", "4", "--steps", &steps];
    let marks = ["--checkpoint-every", &checkpoint_every, "--sample-every", &sample_every, "--grid-per-class", "1", "--grid-sampler", grid_sampler];
    options.iter().chain(&marks).chain(&["--set", "log.early_marks=[]"]).map(|s| s.to_string()).collect()
}

/// The `ltlab train` arguments of a tiny run (as the page's Start sends them).
pub fn tiny_start(name: &str, steps: u32) -> serde_json::Value {
    let mut args: Vec<String> = vec!["ltlab".into(), "train".into()];
    args.extend(tiny_train_options(steps, 10, 10, "ddim:5:clip"));
    args.extend(["--set".into(), format!("name=\"{name}\"")]);
    serde_json::json!({ "Start": args })
}
