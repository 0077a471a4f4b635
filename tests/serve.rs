//! `ltlab serve` over real HTTP on an ephemeral loopback port, with a real tiny run training:
//! the run list, incremental metrics, the live channel, steering, and every refusal.

mod common;

use common::{LiveChannel, Server, request, tiny_start, wait};
use serde_json::json;
use std::time::{Duration, Instant};

fn lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_string).collect()
}

#[test]
fn serve_lists_streams_and_steers_a_live_run() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let server = Server::start(&runs, &[]);
    let live = LiveChannel::open(server.addr, &[]);
    // A second page, open from the start too: it must see the very same messages.
    let other = LiveChannel::open(server.addr, &[]);
    server.command(tiny_start("web-tiny", 400));
    let id = server.run_id("web-tiny", 30);
    let metrics = runs.canonicalize().unwrap().join("web-tiny/metrics.jsonl");

    // The live channel delivers each step soon after the engine wrote its line: watch the file
    // and the channel side by side.
    let mut appeared = std::collections::BTreeMap::new();
    let start = Instant::now();
    while appeared.len() < 8 && start.elapsed() < Duration::from_secs(120) {
        for l in lines(&metrics) {
            let step = serde_json::from_str::<serde_json::Value>(&l).unwrap()["step"].as_u64().unwrap();
            appeared.entry(step).or_insert_with(Instant::now);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(appeared.len() >= 8, "the run logged {} steps in 120 s", appeared.len());
    std::thread::sleep(Duration::from_millis(1100));
    let got = live.messages.lock().unwrap().clone();
    for (step, seen_in_file) in appeared.iter().skip(1) {
        let (arrived, _) = got
            .iter()
            .find(|(_, m)| m["msg"]["Engine"][0] == id && m["msg"]["Engine"][1]["Step"]["step"] == *step)
            .unwrap_or_else(|| panic!("step {step} never came on the live channel"));
        let late = arrived.saturating_duration_since(*seen_in_file);
        assert!(late < Duration::from_secs(1), "step {step} came {late:?} after its line was written");
    }
    let seqs: Vec<u64> = got.iter().map(|(_, m)| m["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "live messages are numbered one by one: {seqs:?}");
    // The channel began with the server's state, and the numbered messages go on from it.
    let hello_seq = live.hellos.lock().unwrap().first().expect("a hello first on the channel")["seq"].as_u64().unwrap();
    assert_eq!(seqs.iter().find(|&&s| s > hello_seq), Some(&(hello_seq + 1)), "no gap after the hello at {hello_seq}: {seqs:?}");

    // Metrics by byte offset: the second read has only what is new, byte for byte.
    let first = server.get(&format!("/api/runs/{id}/metrics?from=0"));
    assert_eq!(first.status, 200, "{}", first.text());
    let next: u64 = first.header("x-next-offset").unwrap().parse().unwrap();
    assert_eq!(next as usize, first.body.len());
    assert!(first.text().ends_with('\n') && first.text().lines().count() >= 8);
    let last_step = |text: &str| serde_json::from_str::<serde_json::Value>(text.lines().last().unwrap()).unwrap()["step"].as_u64().unwrap();
    let had = last_step(&first.text());
    wait(60, "a new step in the file", || (lines(&metrics).len() > first.text().lines().count()).then_some(()));
    let second = server.get(&format!("/api/runs/{id}/metrics?from={next}"));
    let file = std::fs::read(&metrics).unwrap();
    let after: u64 = second.header("x-next-offset").unwrap().parse().unwrap();
    assert_eq!(second.body, file[next as usize..after as usize], "exactly the bytes after the offset");
    let new_steps: Vec<u64> = second.text().lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["step"].as_u64().unwrap()).collect();
    assert!(!new_steps.is_empty() && new_steps[0] == had + 1, "only the new lines: {new_steps:?} after {had}");
    let past = server.get(&format!("/api/runs/{id}/metrics?from={}", file.len() as u64 + 1_000_000));
    assert_eq!(past.status, 409, "{}", past.text());
    assert!(past.error().contains("read it from 0"));

    // The page's columns hold every logged value of the file's lines as f32.
    let cols = server.get(&format!("/api/runs/{id}/columns"));
    assert_eq!((cols.status, cols.header("content-type")), (200, Some("application/octet-stream")));
    let m = ltlab_types::Metrics::decode_columns(&cols.body).unwrap();
    for line in first.text().lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        let row = m.steps().iter().position(|&s| s == r["step"].as_u64().unwrap()).expect("every step of the file is in the columns");
        for (term, v) in r["losses"].as_object().unwrap() {
            assert_eq!(m.term(term).unwrap()[row], v.as_f64().unwrap() as f32, "{term} at step {}", r["step"]);
        }
        assert_eq!(m.images_per_s()[row], r["images_per_s"].as_f64().unwrap() as f32);
    }
    assert_eq!(server.get("/api/runs/99/columns").status, 404);
    let curves = ltlab_types::Metrics::decode_columns(&server.get(&format!("/api/runs/{id}/columns?detail=0")).body).unwrap();
    assert!(curves.steps().starts_with(&m.steps()[..8]) && curves.loss_by_t(0).iter().all(|v| v.is_nan()), "the curves without the loss by t");
    assert_eq!(server.get(&format!("/api/runs/{id}/columns?detail=2")).status, 400);

    // Steering from the page: pause, resume, sample now, stop — through the live channel.
    server.command(json!({ "Pause": id }));
    live.wait_event("Paused", 30);
    server.command(json!({ "Resume": id }));
    live.wait_event("Resumed", 30);
    server.command(json!({ "SampleNow": id }));
    let written = live.wait_event("SamplesWritten", 60);
    let grid_step = written["step"].as_u64().unwrap();
    wait(10, "the grid in the mirror", || {
        live.messages.lock().unwrap().iter().any(|(_, m)| m["msg"]["Grid"][0] == id && m["msg"]["Grid"][1] == grid_step).then_some(())
    });
    let png = server.get(&format!("/api/runs/{id}/grids/{grid_step}"));
    assert_eq!((png.status, png.header("content-type")), (200, Some("image/png")));
    assert_eq!(&png.body[1..4], b"PNG");
    server.command(json!({ "Stop": id }));
    assert_eq!(live.wait_event("Finished", 60)["stopped"], true);
    let hello = server.hello();
    let run = hello["runs"].as_array().unwrap().iter().find(|r| r["id"] == id).unwrap().clone();
    assert_eq!(run["status"], json!({ "Finished": { "stopped": true } }));
    assert!(run["grid_steps"].as_array().unwrap().contains(&json!(grid_step)));
    assert!(hello["seq"].as_u64().unwrap() >= *seqs.last().unwrap());

    // Jobs from the page run on the server's host: a latent map (its thumbnails by URL) and a
    // grid sampled now.
    let ck = run["checkpoints"][0].as_u64().expect("a checkpoint");
    server.command(json!({ "LatentMap": { "run": id, "step": ck, "settings": { "method": "pca", "t": 100, "per_class": 3, "k": 2, "conditional": true } } }));
    let latent = wait(120, "the latent map", || live.messages.lock().unwrap().iter().find_map(|(_, m)| m["msg"].get("Latent").cloned()));
    assert_eq!((latent["run"].as_u64(), latent["map"]["step"].as_u64()), (Some(id), Some(ck)));
    let points = latent["map"]["labels"].as_array().unwrap().len();
    let shape = &latent["thumbnails"];
    let thumbs = server.get(&format!("/api/runs/{id}/latents/{}", latent["index"]));
    assert_eq!(thumbs.status, 200);
    assert_eq!(
        thumbs.body.len() as u64,
        points as u64 * shape["channels"].as_u64().unwrap() * shape["size"].as_u64().unwrap().pow(2),
        "N × C × S × S thumbnails"
    );
    server.command(json!({ "Sample": { "run": id, "step": ck, "settings": { "sampler": "ddim:5:clip", "omega": 1.0, "per_class": 1 } } }));
    let view = wait(120, "the grid sampled now", || live.messages.lock().unwrap().iter().find_map(|(_, m)| m["msg"].get("ViewGrid").cloned()));
    assert_eq!((view["step"].as_u64(), view["settings"]["sampler"].as_str()), (Some(ck), Some("ddim:5:clip")));
    let png = server.get(&format!("/api/runs/{id}/view-grids/{}", view["index"]));
    assert_eq!((png.status, &png.body[1..4]), (200, &b"PNG"[..]));
    let jobs: Vec<String> = live.messages.lock().unwrap().iter().filter_map(|(_, m)| m["msg"]["Job"]["label"].as_str().map(str::to_string)).collect();
    assert!(jobs.iter().any(|l| l.to_lowercase().contains("pca")), "the page sees the jobs' progress: {jobs:?}");
    assert!(server.get(&format!("/api/runs/{id}/view-grids/99")).status == 404);

    let (a, b): (Vec<_>, Vec<_>) =
        (live.messages.lock().unwrap().iter().map(|m| m.1.clone()).collect(), other.messages.lock().unwrap().iter().map(|m| m.1.clone()).collect());
    let n = a.len().min(b.len());
    assert!(n > 20 && a[..n] == b[..n], "two pages see the same {n} messages");

    // Files inside the runs folder only.
    let config = server.get("/files/web-tiny/config.toml");
    assert_eq!(config.status, 200);
    assert_eq!(config.body, std::fs::read(runs.join("web-tiny/config.toml")).unwrap());
    std::fs::write(tmp.path().join("secret.txt"), "outside").unwrap();
    std::os::unix::fs::symlink(tmp.path().join("secret.txt"), runs.join("web-tiny/escape")).unwrap();
    for path in [
        "/files/../secret.txt",
        "/files/web-tiny/../../secret.txt",
        "/files/..%2fsecret.txt",
        "/files/web-tiny%2f..%2f..%2fsecret.txt",
        "/files/%2e%2e/secret.txt",
        "/files/%2fetc%2fpasswd",
        "/files/web-tiny/escape",
    ] {
        let r = server.get(path);
        assert!(r.status == 403 || r.status == 404, "{path}: {} {}", r.status, r.text());
        assert!(!r.text().contains("outside") && !r.text().contains("root:"), "{path} leaked: {}", r.text());
        assert!(!r.error().is_empty());
    }
    assert_eq!(server.get("/files/web-tiny/none.png").status, 404);

    // Malformed, unknown and oversize requests: 4xx with a JSON reason, and the server goes on.
    let r = server.post("/api/command", "{\"Pause\":");
    assert_eq!(r.status, 400);
    assert!(r.error().contains("not a command"), "{}", r.error());
    let r = server.post("/api/command", "{\"Launch\": []}");
    assert_eq!(r.status, 400);
    assert!(r.error().contains("unknown variant"), "{}", r.error());
    let r = server.post("/api/command", &format!("{{\"Start\": [\"{}\"]}}", "x".repeat(100_000)));
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.error().contains("length limit"), "{}", r.error());
    let r = server.post("/api/command", "{\"Pause\": 999}");
    assert_eq!(r.status, 404);
    assert!(r.error().contains("no run 999"));
    let r = server.post("/api/command", &json!({ "Open": tmp.path().display().to_string() }).to_string());
    assert_eq!(r.status, 403, "{}", r.text());
    let r = server.get("/api/runs/abc/metrics");
    assert_eq!(r.status, 400);
    assert!(r.error().contains("run id `abc`"));
    let r = server.get(&format!("/api/runs/{id}/metrics?from=-1"));
    assert_eq!(r.status, 400);
    let r = server.get("/api/nothing");
    assert_eq!((r.status, r.error()), (404, "no such route".to_string()));
    let r = server.get("/api/command");
    assert_eq!(r.status, 405);
    let start = server.post("/api/command", &json!({ "Start": ["ltlab", "train", "--steps", "many"] }).to_string());
    assert_eq!(start.status, 202, "the host reports a bad start on the live channel");
    wait(10, "the start error", || {
        live.messages.lock().unwrap().iter().find_map(|(_, m)| m["msg"]["Error"].as_str().filter(|e| e.contains("many")).map(str::to_string))
    });
    assert_eq!(server.get("/api/hello").status, 200, "still serving");
}

#[test]
fn off_loopback_every_request_needs_the_token_and_read_only_refuses_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let open = Server::start(&runs, &["--addr", "0.0.0.0:0"]);
    let token = open.url.split("?token=").nth(1).expect("a token is generated and printed").to_string();
    assert_eq!(token.len(), 32);
    let addr = open.addr;
    for path in ["/", "/api/hello", "/api/events", "/files/x"] {
        let r = request(addr, "GET", path, &[], b"");
        assert_eq!(r.status, 401, "{path}");
        assert!(r.error().contains("token"));
    }
    assert_eq!(request(addr, "GET", "/api/hello", &[("authorization", "Bearer wrong-token-123")], b"").status, 401);
    let auth = format!("Bearer {token}");
    assert_eq!(request(addr, "GET", "/api/hello", &[("authorization", &auth)], b"").status, 200);
    let page = request(addr, "GET", &format!("/?token={token}"), &[], b"");
    assert_eq!(page.status, 200);
    let cookie = page.header("set-cookie").expect("the page's own requests carry the token as a cookie");
    assert!(cookie.contains("HttpOnly"));
    let cookie = cookie.split(';').next().unwrap().to_string();
    assert_eq!(request(addr, "GET", "/ltlab_web_bg.wasm", &[("cookie", &cookie)], b"").status, 200);
    assert!(!open.log.lock().unwrap().iter().any(|l| l.contains(&token)), "the token never goes to the log");
    drop(open);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ltlab")).args(["serve", "--runs", runs.to_str().unwrap(), "--token", "short"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--token"), "{}", String::from_utf8_lossy(&out.stderr));

    // A finished run in the folder: a read-only server lists it and serves its files.
    let run_dir = runs.join("done");
    let train = std::process::Command::new(env!("CARGO_BIN_EXE_ltlab"))
        .args(["train", "--config", "demo-synthetic", "--preset", "small", "--image-size", "8", "--batch", "4", "--steps", "3", "--checkpoint-every", "3"])
        .args(["--set", "log.early_marks=[]", "--set", "name=\"done\"", "--out", run_dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(train.status.success(), "{}", String::from_utf8_lossy(&train.stderr));
    let ro = Server::start(&runs, &["--read-only", "--addr", "0.0.0.0:0"]);
    assert!(!ro.url.contains("token"), "read-only needs no token: {}", ro.url);
    let hello = ro.hello();
    assert_eq!(hello["read_only"], true);
    let id = ro.run_id("done", 30);
    for c in [json!({ "Pause": id }), json!({ "Start": ["ltlab", "train"] }), json!({ "Open": "done" })] {
        let r = ro.post("/api/command", &c.to_string());
        assert_eq!(r.status, 403, "{c}");
        assert!(r.error().contains("read-only"));
    }
    let m = ro.get(&format!("/api/runs/{id}/metrics?from=0"));
    assert_eq!(m.text().lines().count(), 3);
    assert_eq!(ro.get("/files/done/config.toml").status, 200);
}

/// What any web page the user visits could send to a loopback server without a token: a
/// cross-site "simple" POST (text/plain), a JSON POST from a foreign Origin, a POST that only
/// says Sec-Fetch-Site: cross-site, and any request naming a foreign Host (DNS rebinding). All
/// refused with a JSON error before they reach a handler; the page's own requests still work.
#[test]
fn cross_site_requests_and_foreign_hosts_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Server::start(&tmp.path().join("runs"), &["--allow-host", "gpu-box"]);
    let (addr, own) = (s.addr, format!("http://{}", s.addr));
    let foreign_host = format!("evil.example:{}", addr.port());
    let pause = br#"{"Pause": 1}"#;
    type Request<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>);
    let refused: [Request; 5] = [
        ("POST", "/api/command", vec![("content-type", "text/plain"), ("origin", "http://evil.example")]),
        ("POST", "/api/command", vec![("content-type", "text/plain")]),
        ("POST", "/api/command", vec![("content-type", "application/json"), ("origin", "http://evil.example")]),
        ("POST", "/api/command", vec![("content-type", "application/json"), ("sec-fetch-site", "cross-site")]),
        ("GET", "/api/hello", vec![("host", foreign_host.as_str())]),
    ];
    for (method, path, headers) in &refused {
        let r = request(addr, method, path, headers, pause);
        assert_eq!(r.status, 403, "{method} {path} {headers:?}");
        assert!(!r.error().is_empty(), "a JSON error says why");
    }
    assert!(request(addr, "GET", "/", &[("host", &foreign_host)], b"").error().contains("--allow-host evil.example"));
    // The page's own: same origin (also through a tunnel's other port), JSON. Run 1 does not
    // exist, so the command gets as far as the handler: 404, not 403.
    let tunnel = "localhost:59999".to_string();
    let tunnel_origin = format!("http://{tunnel}");
    for headers in [
        vec![("content-type", "application/json"), ("origin", own.as_str())],
        vec![("content-type", "application/json"), ("host", tunnel.as_str()), ("origin", tunnel_origin.as_str())],
        vec![("content-type", "application/json"), ("sec-fetch-site", "same-origin")],
    ] {
        assert_eq!(request(addr, "POST", "/api/command", &headers, pause).status, 404, "{headers:?}");
    }
    assert_eq!(request(addr, "GET", "/api/hello", &[("host", "gpu-box")], b"").status, 200, "--allow-host");
    assert_eq!(request(addr, "GET", "/api/hello", &[], b"").status, 200);
}

/// A page's Start stays inside what the server was given: `--root /etc` (the file-system probe
/// a page could make), a config file by path, `--out`, a run name with `..`: 403 naming the
/// option, and nothing is written. A folder under `--data-root` is taken.
#[test]
fn a_pages_start_reads_only_the_data_roots_and_writes_only_the_runs_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let (runs, data) = (tmp.path().join("runs"), tmp.path().join("data"));
    std::fs::create_dir_all(data.join("shapes")).unwrap();
    let s = Server::start(&runs, &["--data-root", data.to_str().unwrap()]);
    let start = |extra: &[&str]| -> common::Reply {
        let args: Vec<&str> = ["ltlab", "train", "--config", "demo-synthetic", "--steps", "1"].iter().copied().chain(extra.iter().copied()).collect();
        s.post("/api/command", &json!({ "Start": args }).to_string())
    };
    for (extra, option) in [
        (&["--dataset", "folder", "--root", "/etc"][..], "--root"),
        (&["--set", "data.root=\"/etc\"", "--dataset", "folder"][..], "--root"),
        (&["--config", "/etc/passwd"][..], "--config"),
        (&["--out", "/tmp/elsewhere"][..], "--out"),
        (&["--set", "name=\"../outside\""][..], "name"),
    ] {
        let r = start(extra);
        assert_eq!(r.status, 403, "{extra:?}");
        assert!(r.error().contains(option), "{extra:?}: {}", r.error());
    }
    assert_eq!(std::fs::read_dir(&runs).unwrap().count(), 0, "nothing written for a refused Start");
    assert!(!tmp.path().join("outside").exists());
    let inside = data.join("shapes").display().to_string();
    assert_eq!(start(&["--dataset", "folder", "--root", &inside]).status, 202, "a folder under --data-root is taken");
    // That folder holds no images: the run fails, says why in its status, and leaves no half
    // run directory behind.
    let why = wait(60, "the start to fail", || {
        let hello = s.hello().to_string();
        hello.contains("Failed").then_some(hello)
    });
    assert!(why.contains("shapes"), "the error names the folder: {why}");
    assert_eq!(std::fs::read_dir(&runs).unwrap().count(), 0, "a failed Start leaves nothing behind");
}
