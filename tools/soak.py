#!/usr/bin/env python3
"""Soak `ltlab serve` on loopback: K runs training in the server, N pages each holding a live
channel (as the web lab does: hello, every run's columns, the live channel, grids fetched when
written), some of them reloading every few seconds, and one page that stops reading its live
channel. For a bounded time it watches every run's metrics.jsonl and every page's channel and
prints one JSON object:

- delivery: for every step, the time from its line appearing in metrics.jsonl to its live
  message reaching each reading page (p50, p95, max; `missing` counts steps a page that was
  connected the whole time never got);
- rss_mb: the server's resident memory after the warm-up, at the end, and its maximum;
- the stalled page: what the server did with it (a fresh hello in place of what it missed, or
  the channel closed);
- panics in the server's log.

    python3 tools/soak.py --ltlab target/release/ltlab --tiny              # 20 pages, 4 runs, 10 min
    python3 tools/soak.py --ltlab target/debug/ltlab --short               # the test command's

Exits 1 when a step came later than --max-delay, a page missed a step, the server panicked, its
memory grew by more than --max-rss-growth-mb, or a run did not train.
"""
import argparse, http.client, json, os, re, shutil, socket, statistics, subprocess, sys, tempfile, threading, time

TINY = ["--preset", "small", "--image-size", "8", "--batch", "4", "--checkpoint-every", "50", "--sample-every", "25",
        "--grid-per-class", "1", "--grid-sampler", "ddim:5:clip", "--set", "log.early_marks=[]"]


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def percentile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


class Server:
    def __init__(self, ltlab, runs):
        self.proc = subprocess.Popen([ltlab, "serve", "--runs", runs, "--addr", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        url = self.proc.stdout.readline().strip().split("ltlab serve: ")[1]
        self.host, self.port = re.match(r"http://([^:/]+):(\d+)", url).groups()
        self.port = int(self.port)
        self.log = []
        threading.Thread(target=self._read_log, daemon=True).start()

    def _read_log(self):
        for line in self.proc.stderr:
            self.log.append(line)

    def request(self, method, path, body=None):
        c = http.client.HTTPConnection(self.host, self.port, timeout=120)
        headers = {"content-type": "application/json"} if body is not None else {}
        c.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        r = c.getresponse()
        data = r.read()
        c.close()
        if r.status >= 300:
            raise RuntimeError(f"{method} {path}: {r.status} {data[:300]!r}")
        return data


class Page(threading.Thread):
    """One browser page: hello, columns, the live channel; `reload` > 0 reconnects that often."""

    def __init__(self, server, name, end, reload=0.0):
        super().__init__(daemon=True)
        self.server, self.name, self.end, self.reload = server, name, end, reload
        self.arrivals = {}  # (run name, step) -> time
        self.connected = []  # [start, stop] of each live channel
        self.names = {}  # run id -> name
        self.hellos = 0
        self.errors = []
        self.column_bytes = 0

    def load(self, hello):
        """A hello: the runs as of its `seq`, each read as the page reads it (its columns)."""
        self.hellos += 1
        for r in hello["runs"]:
            self.names[r["id"]] = r["name"]
            self.column_bytes += len(self.server.request("GET", f"/api/runs/{r['id']}/columns"))

    def run(self):
        while time.time() < self.end:
            try:
                self.session()
            except Exception as e:  # a page shows the error and reloads
                self.errors.append(repr(e))
                time.sleep(0.5)

    def session(self):
        stop_at = min(self.end, time.time() + self.reload) if self.reload else self.end
        c = http.client.HTTPConnection(self.server.host, self.server.port, timeout=30)
        c.request("GET", "/api/events", headers={"accept": "text/event-stream"})
        r = c.getresponse()
        window = [time.time(), None]
        self.connected.append(window)
        event = None
        try:
            while time.time() < stop_at:
                line = r.readline()  # the server's keep-alive comes every 15 s
                if not line:
                    raise RuntimeError("the live channel closed")
                line = line.decode().rstrip("\n")
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    if event == "hello":
                        self.load(json.loads(line[5:]))
                    else:
                        self.message(json.loads(line[5:]))
                elif not line:
                    event = None
        finally:
            window[1] = time.time()
            c.close()

    def message(self, live):
        now = time.time()
        msg = live["msg"]
        if "Run" in msg:
            self.names[msg["Run"]["id"]] = msg["Run"]["name"]
        elif "Engine" in msg and "Step" in msg["Engine"][1]:
            name = self.names.get(msg["Engine"][0])
            self.arrivals.setdefault((name, msg["Engine"][1]["Step"]["step"]), now)
        elif "Grid" in msg:
            run, step = msg["Grid"]
            self.server.request("GET", f"/api/runs/{run}/grids/{step}")


class Stalled(threading.Thread):
    """A page that opens its live channel and then never reads it."""

    def __init__(self, server):
        super().__init__(daemon=True)
        self.server = server
        self.sock = None

    def run(self):
        # A small receive buffer (set before connecting, so that TCP's window is sized by it;
        # STALL_RCVBUF overrides it): the server's writes back up soon, and its channel buffer
        # runs past this page once the kernel's buffers are full.
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, int(os.environ.get("STALL_RCVBUF", 256 * 1024)))
        self.sock.connect((self.server.host, self.server.port))
        self.sock.sendall(f"GET /api/events HTTP/1.1\r\nHost: {self.server.host}:{self.server.port}\r\nAccept: text/event-stream\r\n\r\n".encode())

    def outcome(self, secs=30.0):
        """Reads what was queued for it, for up to `secs`: whether the server sent a fresh hello
        after the first (the page fell behind the channel's buffer), or closed the channel."""
        self.sock.settimeout(5.0)
        data, end = b"", time.time() + secs
        out = lambda closed: {"closed_by_server": closed, "bytes_read": len(data), "hellos": data.count(b"event: hello")}
        try:
            while time.time() < end and data.count(b"event: hello") < 2:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    return out(True)
                data += chunk
        except socket.timeout:
            pass
        return out(False)


def watch(runs_dir, names, appeared, end):
    """When each step's line appears in each run's metrics.jsonl (polled every 5 ms)."""
    pos = {n: 0 for n in names}
    while time.time() < end:
        for n in names:
            path = os.path.join(runs_dir, n, "metrics.jsonl")
            try:
                with open(path, "rb") as f:
                    f.seek(pos[n])
                    chunk = f.read()
            except FileNotFoundError:
                continue
            now = time.time()
            whole = chunk.rfind(b"\n") + 1
            for line in chunk[:whole].splitlines():
                appeared.setdefault((n, json.loads(line)["step"]), now)
            pos[n] += whole
        time.sleep(0.005)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ltlab", required=True)
    ap.add_argument("--pages", type=int, default=20)
    ap.add_argument("--reloading", type=int, default=4, help="how many of the pages reload")
    ap.add_argument("--reload-every", type=float, default=3.0, help="seconds")
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--warmup", type=float, default=60,
                    help="seconds before the first RSS figure and the delivery count (the runs' first grids and checkpoints allocate what they keep)")
    ap.add_argument("--tiny", action="store_true", help="tiny runs (8×8 images, batch 4) instead of the demo preset")
    ap.add_argument("--short", action="store_true", help="the test command's: 5 pages (2 reloading), 2 tiny runs, 75 s")
    ap.add_argument("--max-delay", type=float, default=1.0)
    ap.add_argument("--max-rss-growth-mb", type=float, default=64)
    a = ap.parse_args()
    if a.short:
        a.pages, a.reloading, a.runs, a.seconds, a.warmup, a.tiny = 5, 2, 2, 75, 45, True

    tmp = tempfile.mkdtemp()
    runs_dir = os.path.join(tmp, "runs")
    server = Server(a.ltlab, runs_dir)
    out = {"pages": a.pages, "reloading": a.reloading, "runs": a.runs, "seconds": a.seconds}
    try:
        names = [f"soak-{k}" for k in range(a.runs)]
        for n in names:
            args = ["ltlab", "train", "--config", "demo-synthetic", "--steps", "1000000"] + (TINY if a.tiny else []) + ["--set", f'name="{n}"']
            server.request("POST", "/api/command", {"Start": args})
        t0 = time.time()
        end = t0 + a.seconds
        appeared = {}
        threading.Thread(target=watch, args=(runs_dir, names, appeared, end + 2), daemon=True).start()
        pages = [Page(server, f"page-{k}", end, a.reload_every if k < a.reloading else 0.0) for k in range(a.pages)]
        stalled = Stalled(server)
        for p in pages + [stalled]:
            p.start()
        rss = []
        while time.time() < end:
            rss.append((time.time() - t0, rss_mb(server.proc.pid)))
            time.sleep(1.0)
        time.sleep(2.0)  # the last steps' messages
        rss.append((time.time() - t0, rss_mb(server.proc.pid)))
        for p in pages:
            p.join(10)

        # Every step that appeared while a page was connected (from a second after it connected
        # to a second before it left) must have reached it, within --max-delay.
        delays, missing = [], 0
        counted_from = t0 + a.warmup
        for p in pages:
            windows = [(s + 1.0, (e or end) - a.max_delay) for s, e in p.connected]
            for key, t in appeared.items():
                if t < counted_from or not any(s <= t <= e for s, e in windows):
                    continue
                if key in p.arrivals:
                    delays.append(max(0.0, p.arrivals[key] - t))
                else:
                    missing += 1
        steps = {n: max([s for (m, s) in appeared if m == n], default=0) for n in names}
        after_warmup = [m for t, m in rss if t >= a.warmup] or [rss[-1][1]]
        out["steps_per_run"] = steps
        out["delivery_ms"] = {
            "messages": len(delays),
            "p50": round(1000 * statistics.median(delays), 1) if delays else None,
            "p95": round(1000 * percentile(delays, 0.95), 1) if delays else None,
            "max": round(1000 * max(delays), 1) if delays else None,
            "missing": missing,
        }
        every = max(1, len(rss) // 10)
        out["rss_mb"] = {"start": round(after_warmup[0], 1), "end": round(after_warmup[-1], 1), "max": round(max(after_warmup), 1),
                         "over_time": [[round(t), round(m)] for t, m in rss[::every]]}
        out["page_reloads"] = sum(len(p.connected) for p in pages) - len(pages)
        out["page_errors"] = sorted({e for p in pages for e in p.errors})[:5]
        out["hellos_of_reading_pages"] = sum(p.hellos for p in pages)
        out["columns_mb_read"] = round(sum(p.column_bytes for p in pages) / 1e6, 1)
        out["stalled_page"] = stalled.outcome()
    finally:
        server.proc.terminate()
        try:
            server.proc.wait(10)
        except subprocess.TimeoutExpired:
            server.proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    panics = [l.strip() for l in server.log if "panicked" in l]
    out["panics"] = panics[:5]
    print(json.dumps(out, indent=1))
    problems = []
    if panics:
        problems.append("the server panicked")
    if out["delivery_ms"]["max"] is None or out["delivery_ms"]["max"] > 1000 * a.max_delay:
        problems.append(f"a step reached a page later than {a.max_delay} s (or none did)")
    if out["delivery_ms"]["missing"]:
        problems.append(f"{out['delivery_ms']['missing']} steps never reached a connected page")
    if out["rss_mb"]["end"] - out["rss_mb"]["start"] > a.max_rss_growth_mb:
        problems.append(f"the server's memory grew by more than {a.max_rss_growth_mb} MB")
    if min(steps.values()) == 0:
        problems.append("a run did not train")
    if problems:
        sys.exit("soak: " + "; ".join(problems))


if __name__ == "__main__":
    main()
