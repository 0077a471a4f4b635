#!/usr/bin/env python3
"""The web lab as a user meets it: `ltlab serve` on a fresh runs folder, the page in headless
Chromium, a click on the controls' Start (at its place in a 1400×900 window once the dataset
preview is in), then a screenshot after `--wait` seconds of live training.

    python3 tools/web_start_from_page.py --ltlab target/release/ltlab --out docs/screenshots/x.png

The click is by position: if the controls' layout changes, `--start-at X,Y` moves it.
"""
import argparse, os, sys, tempfile, time

sys.path.insert(0, os.path.dirname(__file__))
import web_bench as wb

ap = argparse.ArgumentParser()
ap.add_argument("--ltlab", required=True)
ap.add_argument("--out", required=True)
ap.add_argument("--wait", type=float, default=40)
ap.add_argument("--start-at", default="29,567")
a = ap.parse_args()
x, y = (int(v) for v in a.start_at.split(","))
tmp = tempfile.mkdtemp()
server, url = wb.serve(a.ltlab, os.path.join(tmp, "runs"))
b = wb.Browser(os.path.join(tmp, "profile"))
try:
    b.go(url)
    time.sleep(6)  # the dataset preview arrives and the controls settle
    b.call("POST", "/actions", {"actions": [{"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"}, "actions": [
        {"type": "pointerMove", "duration": 50, "origin": "viewport", "x": x, "y": y},
        {"type": "pointerDown", "button": 0}, {"type": "pause", "duration": 80}, {"type": "pointerUp", "button": 0}]}]})
    b.wait_line(r"first-curve ms=(\d+)", 120)
    time.sleep(a.wait)
    b.screenshot(a.out)
    print("runs started from the page:", os.listdir(os.path.join(tmp, "runs")))
finally:
    b.close()
    server.kill()
