"""Drives the gpujobs dashboard in headless Chromium (Selenium), as scripts/check-dashboard.sh
sets it up: submits a mixed batch with the `gpujobs` binary ($GPUJOBS_BIN), then checks
every view against what the CLI says, the retry from the page, the refusals, and XSS.
Saves a screenshot of each view. Exits non-zero with the first failed check."""

import argparse
import http.server
import json
import os
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

BIN = os.environ["GPUJOBS_BIN"]
XSS = "<script>alert(1)</script>"


def gpujobs(*args: str) -> str:
    out = subprocess.run([BIN, *args], check=True, capture_output=True, text=True)
    return out.stdout


def write_npy(path: Path, shape: tuple, values: list) -> None:
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % (
        "".join(f"{s}, " for s in shape)
    )
    header += " " * (63 - (len(header) + 10) % 64) + "\n"
    data = struct.pack(f"<{len(values)}f", *values)
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + data)


def wait(what: str, ok, timeout: float = 30.0):
    deadline = time.time() + timeout
    while True:
        got = ok()
        if got:
            return got
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


def check(cond: bool, what: str) -> None:
    if not cond:
        raise AssertionError(what)
    print(f"ok: {what}")


def submit_batch(objects: Path, work: Path) -> dict:
    ids = {}
    ids["adds"] = gpujobs("submit", "vector-add", "--len", "1000", "--count", "40").split()
    ids["muls"] = gpujobs("submit", "matmul", "--m", "128", "--count", "6").split()
    ids["image"] = gpujobs("submit", "image-filter", "--height", "384", "--width", "512", "--op", "sobel").split()[0]
    # A job that dead-letters: its input object appears only later.
    jobs = work / "jobs.jsonl"
    jobs.write_text(
        json.dumps({"id": "needs-input", "kind": "matmul", "max_attempts": 1, "payload": {
            "a": {"shape": [2, 2], "url": f"file://{objects}/a.npy"},
            "b": {"shape": [2, 2], "data": [1, 0, 0, 1]}}}) + "\n"
        + json.dumps({"id": XSS, "kind": "vector-add", "payload": {
            "a": {"shape": [2], "data": [1, 2]}, "b": {"shape": [2], "data": [3, 4]}}}) + "\n")
    gpujobs("submit", "--file", str(jobs))
    # A graph: blur (kept in its worker's cache) -> edges succeeds; `broken` reads a
    # missing object and fails, and `combine` (reading edges and broken) fails with it.
    graph = work / "graph.json"
    graph.write_text(json.dumps({"jobs": [
        {"name": "blur", "kind": "image-filter", "ephemeral": True, "payload": {
            "image": {"shape": [256, 256], "synthetic": {"seed": 1}},
            "filter": {"op": "gaussian-blur", "sigma": 2.0}}},
        {"name": "edges", "kind": "image-filter", "payload": {
            "image": {"shape": [256, 256], "from": {"job": "blur", "output": "image"}},
            "filter": {"op": "sobel"}}},
        {"name": "broken", "kind": "image-filter", "max_attempts": 1, "payload": {
            "image": {"shape": [256, 256], "url": f"file://{objects}/missing.npy"},
            "filter": {"op": "sobel"}}},
        {"name": "combine", "kind": "matmul", "payload": {
            "a": {"shape": [256, 256], "from": {"job": "edges", "output": "image"}},
            "b": {"shape": [256, 256], "from": {"job": "broken", "output": "image"}}}},
    ]}))
    names = dict(line.split(" ", 1) for line in gpujobs("submit", "--graph", str(graph)).splitlines())
    ids["graph"] = names
    return ids


def status(job: str) -> dict:
    return json.loads(gpujobs("status", job, "--json"))


def browser() -> webdriver.Chrome:
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def no_alert(d: webdriver.Chrome) -> bool:
    try:
        d.switch_to.alert
        return False
    except NoAlertPresentException:
        return True


def evil_site(target: str) -> http.server.ThreadingHTTPServer:
    """Another origin (localhost vs 127.0.0.1) serving a form that posts to the dashboard."""
    page = f"""<!doctype html><form method="post" action="{target}">
<button id="go" type="submit">win a prize</button></form>""".encode()

    class Evil(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dashboard", required=True)
    ap.add_argument("--token-file", required=True)
    ap.add_argument("--objects", required=True)
    ap.add_argument("--shots", required=True)
    a = ap.parse_args()
    base, token = a.dashboard, Path(a.token_file).read_text().strip()
    objects, shots = Path(a.objects), Path(a.shots)
    ids = submit_batch(objects, objects.parent)
    gpujobs("wait", *ids["adds"], *ids["muls"], ids["image"], XSS)
    wait("the dead letter", lambda: status("needs-input")["status"] in ("dead", "failed"))
    wait("the graph to end", lambda: status(ids["graph"]["combine"])["status"] in ("dead", "failed"))
    d = browser()
    d.set_page_load_timeout(30)
    try:
        # Overview: the counters match the CLI's view (gpujobs watch --once --json).
        def overview_matches():
            d.get(base + "/")
            cards = {c.find_element(By.TAG_NAME, "span").text: c.find_element(By.TAG_NAME, "b").text
                     for c in d.find_elements(By.CSS_SELECTOR, ".card")}
            watch = json.loads(gpujobs("watch", "--once", "--json").splitlines()[-1])
            return cards if cards.get("dead letters") == str(watch["dead_letters"]) else None
        cards = wait("the overview's dead letters to match `gpujobs watch`", overview_matches)
        check(cards["dead letters"] == "3", f"overview: 3 dead letters (needs-input, broken, combine): {cards}")
        check(int(cards["succeeded"]) >= 49, f"overview: the successes are counted: {cards}")
        wait("the charts to show the successes", lambda: (d.get(base + "/"), d.find_elements(By.CSS_SELECTOR, "figure.chart rect.ok"))[1])
        d.save_screenshot(str(shots / "overview.png"))

        # Workers: the worker is listed and live.
        d.get(base + "/workers")
        rows = d.find_elements(By.CSS_SELECTOR, "#workers tbody tr")
        check(len(rows) == 1 and "cpu" in rows[0].text and "stale" not in (rows[0].get_attribute("class") or ""),
              "workers: one live cpu worker")
        d.save_screenshot(str(shots / "workers.png"))

        # Jobs: search by kind through the form finds exactly the matmul jobs that succeeded.
        d.get(base + "/jobs")
        d.find_element(By.NAME, "kind").send_keys("matmul")
        d.find_element(By.CSS_SELECTOR, "#search select[name=state] option[value=succeeded]").click()
        d.find_element(By.CSS_SELECTOR, "#search button").click()
        wait("the search results", lambda: "kind=matmul" in d.current_url)
        found = {a.text for a in d.find_elements(By.CSS_SELECTOR, "#results tbody td:first-child a")}
        check(found == set(ids["muls"]), f"search kind=matmul state=succeeded lists the {len(ids['muls'])} matmul jobs")
        d.get(base + "/jobs?kind=vector-add&limit=500")
        d.save_screenshot(str(shots / "jobs.png"))
        d.get(base + "/jobs?id=" + urllib.parse.quote(ids["adds"][7]))
        found = [a.text for a in d.find_elements(By.CSS_SELECTOR, "#results tbody td:first-child a")]
        check(found == [ids["adds"][7]], "search by id finds that job")

        # A job's page agrees with `gpujobs status`; the image output has a preview.
        d.get(base + "/jobs/" + urllib.parse.quote(ids["image"], safe=""))
        check(d.find_element(By.ID, "state").text == status(ids["image"])["status"], "job page state = gpujobs status")
        img = wait("the preview image", lambda: d.find_elements(By.CSS_SELECTOR, "figure.preview img"))[0]
        check(d.execute_script("return arguments[0].naturalWidth", img) == 512, "the image preview loads (512 px wide)")
        check(bool(d.find_elements(By.ID, "waterfall")), "the timing waterfall is drawn")
        d.save_screenshot(str(shots / "job.png"))

        # Graph: the failed step and its dependant are shown failed, the rest succeeded.
        d.get(base + "/jobs/" + urllib.parse.quote(ids["graph"]["edges"], safe="") + "/graph")
        states = {n.get_attribute("data-id"): n.get_attribute("data-state")
                  for n in d.find_elements(By.CSS_SELECTOR, "svg#graph a.node")}
        g = ids["graph"]
        check(states.get(g["blur"]) == "succeeded" and states.get(g["edges"]) == "succeeded",
              f"graph: blur and edges succeeded {states}")
        check(states.get(g["broken"]) in ("failed", "dead") and states.get(g["combine"]) in ("failed", "dead"),
              f"graph: the failed step and its dependant are shown failed {states}")
        check(bool(d.find_elements(By.CSS_SELECTOR, "svg#graph rect.ephemeral")), "graph: the resident (ephemeral) step is marked")
        d.save_screenshot(str(shots / "graph.png"))

        # XSS: the id renders as text, no script ran.
        d.get(base + "/jobs/" + urllib.parse.quote(XSS, safe=""))
        check(no_alert(d) and XSS in d.find_element(By.TAG_NAME, "h1").text, "an XSS payload in a job id renders as text")
        d.get(base + "/jobs?kind=vector-add&limit=500")
        check(no_alert(d) and XSS in d.find_element(By.ID, "results").text, "... in the search results too")

        # Dead letters: retry without signing in is refused.
        d.get(base + "/dead")
        d.save_screenshot(str(shots / "dead.png"))
        row = [r for r in d.find_elements(By.CSS_SELECTOR, "#dead tbody tr") if "needs-input" in r.text][0]
        row.find_element(By.CSS_SELECTOR, "button").click()
        wait("the refusal page", lambda: d.current_url.endswith("/retry"))
        refusal = d.find_element(By.TAG_NAME, "main").text
        check("sign in with the access token" in refusal, f"an action without the token is refused: {refusal[:200]}")
        check(status("needs-input")["status"] in ("dead", "failed"), "... and nothing happened")

        # A forged cross-site POST (another origin's page) is refused, even signed in.
        d.get(base + "/dead")
        d.find_element(By.NAME, "token").send_keys(token)
        d.find_element(By.CSS_SELECTOR, "header .auth button").click()
        wait("signing in", lambda: d.find_elements(By.XPATH, "//button[text()='Sign out']"))
        evil = evil_site(base + "/jobs/needs-input/retry")
        d.get(f"http://localhost:{evil.server_address[1]}/")
        d.find_element(By.ID, "go").click()
        wait("the forged request's answer", lambda: d.current_url.startswith(base))
        body = d.find_element(By.TAG_NAME, "body").text
        check("cross-site request refused: Sec-Fetch-Site is cross-site" in body,
              "a forged cross-site POST is refused: " + body.splitlines()[-1][:200])
        check(status("needs-input")["status"] in ("dead", "failed"), "... and nothing happened")
        evil.shutdown()

        # Retry from the page, once the missing input exists: the job succeeds.
        write_npy(objects / "a.npy", (2, 2), [1.0, 2.0, 3.0, 4.0])
        d.get(base + "/dead")
        row = [r for r in d.find_elements(By.CSS_SELECTOR, "#dead tbody tr") if "needs-input" in r.text][0]
        row.find_element(By.CSS_SELECTOR, "button").click()
        wait("the job page", lambda: "/jobs/needs-input" in d.current_url)
        gpujobs("wait", "needs-input")
        d.refresh()
        check(d.find_element(By.ID, "state").text == "succeeded" == status("needs-input")["status"],
              "retry from the page made the job succeed")
    finally:
        d.quit()
    print("dashboard browser check: all passed")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
