"""Times dashboard pages: p50 and p95 of 100 requests each over one keep-alive
connection, run by benches/dashboard-load.sh. Prints a Markdown table."""

import http.client
import re
import sys
import time
import urllib.parse

base, worker = sys.argv[1], sys.argv[2]
u = urllib.parse.urlparse(base)
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)


def fetch(path: str) -> tuple[float, str]:
    t = time.perf_counter()
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read().decode()
    took = time.perf_counter() - t
    if r.status != 200:
        raise SystemExit(f"{path}: HTTP {r.status}: {body[:300]}")
    return took, body


_, first = fetch("/jobs?kind=vector-add&state=succeeded&limit=50")
ids = re.findall(r'href="/jobs/([^"/]+)"', first)
nxt = re.search(r'id="next" href="([^"]+)"', first)
pages = {
    "overview `/`": "/",
    "overview, 7 days of series": "/?hours=168",
    "workers": "/workers",
    "search: ended jobs, newest 50": "/jobs",
    "search: kind=vector-add state=succeeded": "/jobs?kind=vector-add&state=succeeded&limit=50",
    "search: its second page": nxt.group(1).replace("&amp;", "&") if nxt else "/jobs",
    "search: worker + state + lane": f"/jobs?worker={urllib.parse.quote(worker)}&state=succeeded&lane=cpu&limit=50",
    "search: a one-hour window": "/jobs?from=" + time.strftime("%Y-%m-%dT%H:%M", time.gmtime(time.time() - 3600)),
    "search: by id": f"/jobs?id={ids[10]}",
    "search: running (lane heads)": "/jobs?state=placed&lane=gpu&limit=50",
    "job page": f"/jobs/{ids[10]}",
}
print("| page | p50 ms | p95 ms |")
print("|---|---|---|")
for name, path in pages.items():
    times = sorted(fetch(path)[0] * 1000 for _ in range(100))
    print(f"| {name} | {times[49]:.1f} | {times[94]:.1f} |")
