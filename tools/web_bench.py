#!/usr/bin/env python3
"""The web lab's figures, measured in headless Chromium (chromedriver) on loopback against
`ltlab serve`:

- page load → first loss curve drawn (the page's own `performance.now()`, from navigation
  start), for a live tiny run and for stored long runs (`--long DIR`, e.g. from long_run.py);
- step logged → drawn: the moment each step's line appears in metrics.jsonl (polled every
  2 ms here) against the page's `Date.now()` when it drew that step;
- frame times with a latent map of N points (`--latent-run DIR`, the view opened with
  `?view=latent&frames=continuous`, the pointer sweeping the map so that hovering is paid);
- the bundle's size, raw and gzipped.

    python3 tools/web_bench.py --ltlab target/release/ltlab [--long runs/long-a] [--latent-run runs/x]

Prints one JSON object. Nothing here asserts: the figures go in the closing note.
"""
import argparse, base64, gzip, json, os, re, shutil, socket, statistics, subprocess, sys, tempfile, time, urllib.request

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARGS = ["--headless", "--no-sandbox", "--enable-unsafe-swiftshader", "--use-angle=swiftshader", "--window-size=1400,900",
        "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def http(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read() or b"null")


class Browser:
    def __init__(self, profile):
        port = free_port()
        self.driver = subprocess.Popen([CHROMEDRIVER, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if http("GET", self.base + "/status")["value"]["ready"]:
                    break
            except Exception:
                time.sleep(0.05)
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome",
                                                 "goog:chromeOptions": {"binary": CHROMIUM, "args": ARGS + [f"--user-data-dir={profile}"]},
                                                 "goog:loggingPrefs": {"browser": "ALL"}}}}
        self.session = http("POST", self.base + "/session", caps)["value"]["sessionId"]
        self.lines = []

    def call(self, method, path, body=None):
        return http(method, f"{self.base}/session/{self.session}{path}", body)["value"]

    def go(self, url):
        self.lines = []
        self.call("POST", "/url", {"url": url})

    def console(self):
        for e in self.call("POST", "/se/log", {"type": "browser"}):
            self.lines.append((time.time(), e["message"]))
        return self.lines

    def wait_line(self, pattern, secs):
        end = time.time() + secs
        while time.time() < end:
            for _, l in self.console():
                m = re.search(pattern, l)
                if m:
                    return m
            time.sleep(0.05)
        raise SystemExit(f"waited {secs} s for {pattern!r}; console: {[l for _, l in self.lines][-5:]}")

    def screenshot(self, path):
        with open(path, "wb") as f:
            f.write(base64.b64decode(self.call("GET", "/screenshot")))

    def sweep(self, x0, y0, x1, y1, n):
        """Moves the pointer over n points of a grid in the rectangle (hover on the map)."""
        actions = []
        k = int(n ** 0.5)
        for i in range(k):
            for j in range(k):
                actions.append({"type": "pointerMove", "duration": 16, "origin": "viewport",
                                "x": int(x0 + (x1 - x0) * j / max(k - 1, 1)), "y": int(y0 + (y1 - y0) * i / max(k - 1, 1))})
        self.call("POST", "/actions", {"actions": [{"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"}, "actions": actions}]})

    def close(self):
        try:
            http("DELETE", f"{self.base}/session/{self.session}")
        finally:
            self.driver.kill()


def serve(ltlab, runs):
    p = subprocess.Popen([ltlab, "serve", "--runs", runs, "--addr", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = p.stdout.readline().strip().split("ltlab serve: ")[1]
    return p, url


def command(url, c):
    http("POST", url.rstrip("/") + "/api/command", c)


def latent_json(run):
    d = os.path.join(run, "analysis")
    return os.path.join(d, sorted(f for f in os.listdir(d) if f.startswith("latents-") and f.endswith(".json"))[-1])


def percentile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ltlab", required=True)
    ap.add_argument("--long", nargs="*", default=[], help="stored run directories to open (copied into the served folder by symlink)")
    ap.add_argument("--latent-run", help="a run directory whose analysis/ holds the latent map to draw")
    ap.add_argument("--steps", type=int, default=20, help="steps of the live run to time")
    ap.add_argument("--shots", default="", help="folder for screenshots")
    ap.add_argument("--no-live", action="store_true", help="skip the live run (only the stored runs and the bundle)")
    a = ap.parse_args()
    out = {}
    tmp = tempfile.mkdtemp()
    browser = Browser(os.path.join(tmp, "profile"))
    try:
        # 1. A live tiny run, started through the page's command route.
        if not a.no_live:
            runs = os.path.join(tmp, "runs")
            server, url = serve(a.ltlab, runs)
            args = ["ltlab", "train", "--config", "demo-synthetic", "--steps", "100000", "--set", 'name="live"']
            command(url, {"Start": args})
            metrics = os.path.join(runs, "live", "metrics.jsonl")
            while not (os.path.exists(metrics) and os.path.getsize(metrics) > 0):
                time.sleep(0.01)
            browser.go(url)
            m = browser.wait_line(r"first-curve ms=(\d+)", 60)
            out["live_first_curve_ms"] = int(m.group(1))
            appeared, pos = {}, 0
            end = time.time() + 600
            while len(appeared) < a.steps and time.time() < end:
                with open(metrics, "rb") as f:
                    f.seek(pos)
                    chunk = f.read()
                now = time.time()
                whole = chunk.rfind(b"\n") + 1
                for line in chunk[:whole].splitlines():
                    appeared[json.loads(line)["step"]] = now
                pos += whole
                time.sleep(0.002)
            time.sleep(1.5)
            drawn = {}
            for _, l in browser.console():
                mm = re.search(r"drawn run=live step=(\d+) epoch_ms=(\d+)", l)
                if mm:
                    drawn.setdefault(int(mm.group(1)), int(mm.group(2)) / 1000.0)
            lat = [1000 * (drawn[s] - t) for s, t in appeared.items() if s in drawn]
            out["step_to_drawn_ms"] = {"steps": len(lat), "p50": round(statistics.median(lat), 1), "p95": round(percentile(lat, 0.95), 1), "max": round(max(lat), 1)} if lat else None
            if a.shots:
                browser.screenshot(os.path.join(a.shots, "web-lab-live.png"))
            server.kill()

        # 2. Stored long runs: page load → first curve.
        if a.long:
            runs2 = os.path.join(tmp, "long")
            os.makedirs(runs2)
            for d in a.long:
                os.symlink(os.path.abspath(d), os.path.join(runs2, os.path.basename(d.rstrip("/"))))
            server, url = serve(a.ltlab, runs2)
            time.sleep(1.0)  # the server reads the runs first
            n = 0
            while n < len(a.long):
                n = len(http("GET", url.rstrip("/") + "/api/hello")["runs"])
                time.sleep(0.1)
            browser.go(url)
            m = browser.wait_line(r"first-curve ms=(\d+) run=\S+ points=(\d+)", 300)
            out["long_first_curve_ms"] = {"ms": int(m.group(1)), "points": int(m.group(2)), "runs": len(a.long)}
            # Every run's curve: a stored run logs one "drawn" line (its step never changes; names
            # may repeat), so the last of N lines, against the page's time origin.
            end = time.time() + 300
            while time.time() < end:
                drawn = [int(mm.group(1)) for _, l in browser.console() for mm in [re.search(r"drawn run=\S+ step=\d+ epoch_ms=(\d+)", l)] if mm]
                if len(drawn) >= len(a.long):
                    break
                time.sleep(0.1)
            origin = browser.call("POST", "/execute/sync", {"script": "return performance.timeOrigin;", "args": []})
            out["long_all_curves_ms"] = {"ms": round(max(drawn[:len(a.long)]) - origin), "runs_drawn": len(drawn)}
            server.kill()

        # 3. Frame times with the latent map.
        if a.latent_run:
            runs3 = os.path.join(tmp, "latent")
            os.makedirs(runs3)
            os.symlink(os.path.abspath(a.latent_run), os.path.join(runs3, "latent"))
            server, url = serve(a.ltlab, runs3)
            while not http("GET", url.rstrip("/") + "/api/hello")["runs"]:
                time.sleep(0.1)
            # The panel shows the map whose settings it holds: put them in the page's storage
            # (eframe keeps the lab's settings as RON under "app") from a page of the same origin
            # that is not the lab (the lab would save its own over them when left), then load it.
            browser.go(url.rstrip("/") + "/api/hello")
            m = json.load(open(latent_json(a.latent_run)))
            ron = f'(view: LatentMap, latent: (method: "{m["method"].lower()}", t: {m["t"]}, per_class: {m["per_class"]}, k: {m["entanglement"]["k"]}, conditional: {str(m["conditional"]).lower()}))'
            browser.call("POST", "/execute/sync", {"script": "localStorage.setItem('app', arguments[0]);", "args": [ron]})
            browser.go(url + "?view=latent&frames=continuous")
            browser.wait_line(r"first-curve", 120)
            time.sleep(6)
            browser.sweep(500, 250, 1100, 700, 400)
            m = browser.wait_line(r"frames p50=([\d.]+) p95=([\d.]+) max=([\d.]+) view=LatentMap latent_points=(\d+)", 30)
            lines = [l for _, l in browser.lines if "view=LatentMap" in l]
            last = re.search(r"frames p50=([\d.]+) p95=([\d.]+) max=([\d.]+) view=LatentMap latent_points=(\d+)", lines[-1])
            out["latent_frames_ms"] = {"p50": float(last.group(1)), "p95": float(last.group(2)), "max": float(last.group(3)), "points": int(last.group(4))}
            if a.shots:
                browser.screenshot(os.path.join(a.shots, "web-lab-latent-map.png"))
            server.kill()
    finally:
        browser.close()
        shutil.rmtree(tmp, ignore_errors=True)

    # 4. The bundle, as served.
    server, url = serve(a.ltlab, os.path.join(tempfile.mkdtemp(), "runs"))
    sizes = {}
    for name in ["ltlab_web_bg.wasm", "ltlab_web.js", ""]:
        body = urllib.request.urlopen(url.rstrip("/") + "/" + name).read()
        sizes[name or "index.html"] = {"bytes": len(body), "gzip": len(gzip.compress(body, 9))}
    server.kill()
    out["bundle"] = sizes
    out["bundle_gzip_total_mb"] = round(sum(v["gzip"] for v in sizes.values()) / 1e6, 2)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
