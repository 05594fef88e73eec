#!/usr/bin/env python3
"""Browser test of the in-browser demo (run after web/build.sh).

Serves web/ on 127.0.0.1 and opens the page in headless Chromium with WebGPU (--headless=new
--enable-unsafe-webgpu) through chromedriver twice: index.html?tiny&run (a tiny NAS-Bench-201
search and PT selection) and index.html?tiny&run&space=darts (a tiny DARTS-space job: op and
topology decisions), each run to completion on WebGPU by the engine's one job. Passes when the page
reports a WebGPU adapter and, for NAS-Bench-201, valid NAS-Bench-201 strings and the PT cell's
CIFAR-10 accuracy from the embedded table; for DARTS, valid DARTS genotypes (two inputs per node).
Speaks the W3C WebDriver protocol with Python's standard library only.

Environment: CHROMIUM (default /usr/bin/chromium), CHROMEDRIVER (default /usr/bin/chromedriver),
DARTS_PT_BROWSER_TIMEOUT (seconds per page, default 2400), DARTS_PT_BROWSER_JOBS (which pages:
`nb201,darts` by default).
"""

import functools
import http.server
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

WEB = os.path.dirname(os.path.abspath(__file__))
OPS = {"none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def valid_nb201(arch):
    """`|op~0|+|op~0|op~1|+|op~0|op~1|op~2|` with NAS-Bench-201's op names."""
    nodes = arch.split("+")
    if len(nodes) != 3:
        return False
    for i, node in enumerate(nodes):
        if not (node.startswith("|") and node.endswith("|")):
            return False
        edges = node[1:-1].split("|")
        if len(edges) != i + 1:
            return False
        for j, e in enumerate(edges):
            op, _, src = e.partition("~")
            if op not in OPS or src != str(j):
                return False
    return True


DARTS_OPS = {"none", "skip_connect", "max_pool_3x3", "avg_pool_3x3", "sep_conv_3x3",
             "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"}


def valid_darts(text):
    """`Genotype(normal=[('op', j), ...], normal_concat=..., reduce=[...], ...)`: 8 edges per cell
    with DARTS op names, two per intermediate node i = 0..3, from inputs j < i + 2."""
    cells = re.findall(r"(normal|reduce)=\[([^\]]*)\]", text)
    if not text.startswith("Genotype(") or [c for c, _ in cells] != ["normal", "reduce"]:
        return False
    for _, body in cells:
        edges = re.findall(r"\('([a-z0-9_]+)', (\d+)\)", body)
        if len(edges) != 8:
            return False
        for k, (op, j) in enumerate(edges):
            if op not in DARTS_OPS or int(j) >= k // 2 + 2:
                return False
    return True


class WebDriver:
    def __init__(self, url):
        self.url = url
        self.session = None

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as r:
            return json.loads(r.read() or b"{}").get("value")

    def start(self, chromium, args):
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}}
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def s(self, method, path, body=None):
        return self.call(method, f"/session/{self.session}{path}", body)

    def script(self, js):
        return self.s("POST", "/execute/sync", {"script": js, "args": []})

    def quit(self):
        if self.session:
            try:
                self.call("DELETE", f"/session/{self.session}")
            except Exception:
                pass


def run_page(wd, name, url, timeout):
    """Open `url`, wait until the page's job ends, check its result; True when it passed."""
    t0 = time.time()
    wd.s("POST", "/url", {"url": url})
    title, last, last_print = "", "", -100.0
    while time.time() - t0 < timeout:
        # The page's thread can be busy for a while (kernel compilation on the first
        # evaluation of each shape); a poll that times out is simply repeated.
        try:
            title = wd.s("GET", "/title")
            status = wd.script("return document.getElementById('status').textContent")
        except (urllib.error.URLError, TimeoutError, OSError) as e:
            print(f"browser test: {name}: [{time.time() - t0:6.1f} s] page busy ({e})", flush=True)
            time.sleep(2)
            continue
        if status != last and time.time() - t0 - last_print >= 10:
            print(f"browser test: {name}: [{time.time() - t0:6.1f} s] {title} | {status}", flush=True)
            last = status
            last_print = time.time() - t0
        if title in ("darts-pt: done", "darts-pt: failed", "darts-pt: no WebGPU"):
            break
        time.sleep(2)
    elapsed = time.time() - t0
    info = wd.script("""
        const r = document.getElementById('result');
        return {adapter: document.getElementById('adapter').textContent,
                status: document.getElementById('status').textContent,
                text: r.textContent, pt: r.dataset.pt || '', space: r.dataset.space || '',
                acc: r.dataset.ptCifar10 || '', magnitude: r.dataset.magnitude || '',
                seconds: r.dataset.seconds || '', figures: r.dataset.figures || ''};""")
    print(f"browser test: {name}: title '{title}' after {elapsed:.1f} s")
    print(f"browser test: {name}: adapter: {info['adapter']}")
    print(f"browser test: {name}: result:\n" + info["text"])
    problems = []
    # The report's figures, drawn in the page as SVG (issue 18).
    drawn = dict(f.split(":") for f in info["figures"].split()) if info["figures"] else {}
    print(f"browser test: {name}: figures: {info['figures']}")
    for fig in ("curves", "alpha", "pt_scores", "cells"):
        if int(drawn.get(fig, "0")) < 1000:
            problems.append(f"the page drew no {fig} figure (figures: '{info['figures']}')")
    if title != "darts-pt: done":
        problems.append(f"the page did not finish (title '{title}', status '{info['status']}')")
    if not info["adapter"] or info["adapter"] == "(not yet)":
        problems.append("no WebGPU adapter reported")
    if name == "NAS-Bench-201":
        if not valid_nb201(info["pt"]):
            problems.append(f"PT genotype is not a NAS-Bench-201 string: '{info['pt']}'")
        if not valid_nb201(info["magnitude"]):
            problems.append(f"magnitude genotype is not a NAS-Bench-201 string: '{info['magnitude']}'")
        if not re.fullmatch(r"\d{1,2}\.\d\d", info["acc"]) or not 0 < float(info["acc"]) < 100:
            problems.append(f"no CIFAR-10 accuracy for the PT cell: '{info['acc']}'")
    else:
        if info["space"] != "darts":
            problems.append(f"the page searched space '{info['space']}', not darts")
        for kind in ("pt", "magnitude"):
            if not valid_darts(info[kind]):
                problems.append(f"{kind} genotype is not a DARTS genotype: '{info[kind]}'")
    if problems:
        try:
            for entry in wd.s("GET", "/se/log", None) or []:
                print("console:", entry.get("message"))
        except Exception:
            try:
                logs = wd.s("POST", "/se/log", {"type": "browser"}) or []
                for entry in logs[-40:]:
                    print("console:", entry.get("message"))
            except Exception as e:
                print("browser test: no console log:", e)
        for p in problems:
            print(f"browser test: {name}: FAIL:", p)
        return False
    print(f"browser test: {name}: ok: tiny search + PT in the page took {info['seconds']} s "
          f"(page load to result {elapsed:.1f} s)")
    return True


def main():
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    chromedriver = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
    timeout = float(os.environ.get("DARTS_PT_BROWSER_TIMEOUT", "2400"))
    if not os.path.isfile(os.path.join(WEB, "pkg", "darts_pt_web_bg.wasm")):
        sys.exit("browser test: web/pkg is missing; run web/build.sh first")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=WEB)
    http_port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", http_port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    drv_port = free_port()
    # DARTS_PT_BROWSER_LOG=FILE keeps ChromeDriver's and Chromium's own log (GPU process included).
    log_path = os.environ.get("DARTS_PT_BROWSER_LOG")
    driver_args = [chromedriver, f"--port={drv_port}"]
    if log_path:
        driver_args += [f"--log-path={log_path}", "--verbose"]
    driver_proc = subprocess.Popen(driver_args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wd = WebDriver(f"http://127.0.0.1:{drv_port}")
    profile = tempfile.mkdtemp(prefix="darts-pt-chromium-")
    ok = False
    try:
        for _ in range(100):
            try:
                wd.call("GET", "/status")
                break
            except Exception:
                time.sleep(0.1)
        wd.start(chromium, [
            "--headless=new", "--enable-unsafe-webgpu", "--no-sandbox", "--disable-gpu-sandbox",
            "--enable-unsafe-swiftshader", "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-quic", f"--user-data-dir={profile}",
            "--window-size=1280,800", "--disable-background-timer-throttling",
            "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows",
        ] + (["--enable-logging=stderr", "--v=0"] if log_path else []) + [
        ])
        wd.s("POST", "/timeouts", {"script": 600_000, "pageLoad": 600_000})
        results = []
        jobs = os.environ.get("DARTS_PT_BROWSER_JOBS", "nb201,darts").split(",")
        for name, query in [("NAS-Bench-201", "tiny&run&ui=webgl"),
                            ("DARTS", "tiny&run&space=darts&ui=webgl")]:
            if ("nb201" if name == "NAS-Bench-201" else "darts") not in jobs:
                continue
            results.append(run_page(wd, name, f"http://127.0.0.1:{http_port}/index.html?{query}",
                                    timeout))
        ok = all(results)
    finally:
        wd.quit()
        driver_proc.terminate()
        server.shutdown()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
