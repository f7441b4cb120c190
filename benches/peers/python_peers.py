#!/usr/bin/env python3
"""The Python package against its peers and floors, side by side in one run on one
machine, through the paths users run: `gpujobs.run` in-process, and `gpujobs.Client`
against `gpujobs scheduler` + two `gpujobs worker` processes on a fresh private
redis-server per system.

  import       `import gpujobs` over a bare interpreter start (best of 5)
  tiny         N no-op jobs submitted and awaited from Python, jobs/s:
                 gpujobs  one-element vector adds: Client.submit_many + Client.results
                 Celery   `celery worker -P prefork -c 2`, Redis broker and result
                          backend, `noop.delay()` × N then `.get()` each
                 RQ       two `rq worker` processes, `enqueue_many` then polling
                          `Job.fetch_many` until all finished
                 Ray      `ray.init(num_cpus=2)`, `ray.get([noop.remote() ...])`
  blob-redis   a vector add of two 256 MB float32 arrays through Redis (submit → worker
               → result) against redis-py moving the same bytes: SET a, SET b, GET a,
               GET b (the worker's reads), SET c, GET c
  blob-local   the same job with `gpujobs.run` (in-process) against Ray's `put` of one
               256 MB array + an identity task + `get`
  matmul       gpujobs.run("matmul") 2048³ against numpy.matmul (OpenBLAS, same
               threads), alternated

Each figure is the best of ROUNDS (2) alternated rounds. Usage, with the package, redis,
celery, rq and ray installed in this interpreter (benches/peers/python-peers.sh sets
that up):

    GPUJOBS_BIN=target/release/gpujobs python benches/peers/python_peers.py [N] [ROUNDS]

Two narrower runs, for looking into a figure:

    ... python_peers.py phases [N]       the tiny-job path by phase (prepare, submit,
                                         wait for results, re-read finished results),
                                         then `gpujobs submit --count N --wait` (which
                                         reads no records) on the same stack
    ... python_peers.py blob-redis [R]   the blob-redis pair R times (default 3)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator, List, Tuple

import numpy as np

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A fresh redis-server without persistence; yields its URL."""
    work = tempfile.mkdtemp()
    port = free_port()
    p = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", work],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.1):
                break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}"
    finally:
        p.terminate()
        p.wait()
        shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def processes(*commands: List[str], env: dict, cwd: Path = HERE) -> Iterator[None]:
    procs = [subprocess.Popen(c, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for c in commands]
    try:
        yield
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def gpujobs_bin() -> str:
    return os.environ.get("GPUJOBS_BIN", str(HERE.parents[1] / "target" / "release" / "gpujobs"))


def tiny_gpujobs(n: int) -> float:
    import gpujobs

    with redis_server() as url:
        env = {**os.environ, "GPUJOBS_REDIS_URL": url, "RUST_LOG": "warn"}
        b = gpujobs_bin()
        worker = [b, "worker", "--backend", "cpu", "--concurrency", "64"]
        with processes([b, "scheduler"], worker, worker, env=env):
            client = gpujobs.Client(url, connect_timeout=10)
            client.run("vector-add", a=[1.0], b=[1.0], timeout=60)
            one = np.ones(1, np.float32)
            t = time.perf_counter()
            jobs = client.submit_many([("vector-add", {"a": one, "b": one})] * n)
            client.results(jobs, timeout=600)
            return n / (time.perf_counter() - t)


def tiny_celery(n: int) -> float:
    with redis_server() as url:
        env = {**os.environ, "PEERS_REDIS": url, "PYTHONPATH": str(HERE)}
        celery = str(Path(sys.executable).with_name("celery"))
        with processes([celery, "-A", "py_tasks", "worker", "-P", "prefork", "-c", "2", "--loglevel", "warning"], env=env):
            os.environ["PEERS_REDIS"] = url
            sys.path.insert(0, str(HERE))
            import importlib

            import py_tasks

            importlib.reload(py_tasks)
            py_tasks.noop.delay().get(timeout=60)
            t = time.perf_counter()
            results = [py_tasks.noop.delay() for _ in range(n)]
            for r in results:
                r.get(timeout=600)
            rate = n / (time.perf_counter() - t)
            py_tasks.app.close()
            return rate


def tiny_rq(n: int) -> float:
    import redis
    from rq import Queue
    from rq.job import Job, JobStatus

    with redis_server() as url:
        env = {**os.environ, "PYTHONPATH": str(HERE)}
        rq = str(Path(sys.executable).with_name("rq"))
        worker = [rq, "worker", "--url", url, "--quiet"]
        with processes(worker, worker, env=env):
            sys.path.insert(0, str(HERE))
            import py_tasks

            conn = redis.Redis.from_url(url)
            q = Queue(connection=conn)
            t = time.perf_counter()
            jobs = q.enqueue_many([Queue.prepare_data(py_tasks.rq_noop) for _ in range(n)])
            ids = [j.id for j in jobs]
            pending = ids
            while pending:
                time.sleep(0.05)
                fetched = Job.fetch_many(pending, connection=conn)
                pending = [i for i, j in zip(pending, fetched) if j is None or j.get_status() != JobStatus.FINISHED]
            return n / (time.perf_counter() - t)


RAY_TINY = """
import sys, time, ray
n = int(sys.argv[1])
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
@ray.remote
def noop():
    return None
ray.get([noop.remote() for _ in range(200)])
t = time.perf_counter()
ray.get([noop.remote() for _ in range(n)])
print(n / (time.perf_counter() - t))
"""

RAY_BLOB = """
import time, numpy as np, ray
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
@ray.remote
def identity(x):
    return x
x = np.random.default_rng(0).standard_normal(64 * 1024 * 1024, dtype=np.float32)
ray.get(identity.remote(ray.put(np.ones(10, np.float32))))
best = 1e9
for _ in range(3):
    t = time.perf_counter()
    y = ray.get(identity.remote(ray.put(x)))
    best = min(best, time.perf_counter() - t)
    del y
print(best)
"""


def ray_figure(script: str, *args: str) -> float:
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, check=True, timeout=900)
    return float(out.stdout.strip().splitlines()[-1])


def blob_redis() -> Tuple[float, float]:
    import gpujobs
    import redis

    rng = np.random.default_rng(0)
    x = rng.standard_normal(64 * 1024 * 1024, dtype=np.float32)
    y = rng.standard_normal(64 * 1024 * 1024, dtype=np.float32)
    with redis_server() as url:
        env = {**os.environ, "GPUJOBS_REDIS_URL": url, "RUST_LOG": "warn"}
        b = gpujobs_bin()
        with processes([b, "scheduler"], [b, "worker", "--backend", "cpu"], env=env):
            client = gpujobs.Client(url, connect_timeout=10)
            client.run("vector-add", a=[1.0], b=[1.0], timeout=60)
            r = redis.Redis.from_url(url)
            raw = x.tobytes()

            def plain() -> None:
                r.set("a", raw)
                r.set("b", raw)
                r.get("a")
                r.get("b")
                r.set("c", raw)
                r.get("c")
                r.delete("a", "b", "c")

            g = best_of(lambda: client.run("vector-add", a=x, b=y, timeout=600), 2)
            p = best_of(plain, 2)
            return g, p


def best_of(f: Callable[[], object], n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def import_cost() -> float:
    def run(code: str) -> float:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - t

    return min(run("import gpujobs") - run("pass") for _ in range(5))


def phases(n: int) -> None:
    import gpujobs

    with redis_server() as url:
        env = {**os.environ, "GPUJOBS_REDIS_URL": url, "RUST_LOG": "warn"}
        b = gpujobs_bin()
        worker = [b, "worker", "--backend", "cpu", "--concurrency", "64"]
        with processes([b, "scheduler"], worker, worker, env=env):
            client = gpujobs.Client(url, connect_timeout=10)
            client.run("vector-add", a=[1.0], b=[1.0], timeout=60)
            one = np.ones(1, np.float32)
            t0 = time.perf_counter()
            prepared = [client._prepare("vector-add", {"a": one, "b": one}, {}) for _ in range(n)]
            t1 = time.perf_counter()
            ids = client._core.submit_many(prepared)
            t2 = time.perf_counter()
            client._core.wait_many(ids, 600)
            t3 = time.perf_counter()
            client._core.wait_many(ids, 600)
            t4 = time.perf_counter()
            print(f"prepare {t1 - t0:.3f} s, submit {t2 - t1:.3f} s, results {t3 - t2:.3f} s: {n / (t3 - t0):,.0f} jobs/s; re-reading {n} finished results {t4 - t3:.3f} s")
            t = time.perf_counter()
            subprocess.run([b, "submit", "vector-add", "--len", "1", "--count", str(n), "--wait"], env=env, stdout=subprocess.DEVNULL, check=True)
            print(f"gpujobs submit --count {n} --wait on the same stack: {n / (time.perf_counter() - t):,.0f} jobs/s")


def main() -> None:
    import gpujobs

    if len(sys.argv) > 1 and sys.argv[1] == "phases":
        phases(int(sys.argv[2]) if len(sys.argv) > 2 else 20000)
        return
    if len(sys.argv) > 1 and sys.argv[1] == "blob-redis":
        for _ in range(int(sys.argv[2]) if len(sys.argv) > 2 else 3):
            g, p = blob_redis()
            print(f"gpujobs {g:.3f} s, redis-py SET+GET {p:.3f} s: {g / p:.2f}x its time")
        return
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    rows = [("import gpujobs", f"{import_cost() * 1e3:.1f} ms", "target < 100 ms", "")]

    tiny = {"gpujobs": [], "Celery": [], "RQ": [], "Ray": []}
    for _ in range(rounds):
        tiny["gpujobs"].append(tiny_gpujobs(n))
        tiny["Celery"].append(tiny_celery(n))
        tiny["Ray"].append(ray_figure(RAY_TINY, str(n)))
    tiny["RQ"].append(tiny_rq(min(n, 2000)))  # fork per job: slow; its rate from 2,000
    ours = max(tiny["gpujobs"])
    rows.append((f"{n} tiny jobs, gpujobs", f"{ours:,.0f} jobs/s", "", ""))
    for peer in ("Celery", "RQ", "Ray"):
        theirs = max(tiny[peer])
        rows.append((f"{n} tiny jobs, {peer}", f"{theirs:,.0f} jobs/s", "", f"gpujobs {ours / theirs:.1f}×"))

    g, p = blob_redis()
    rows.append(("256 MB vector add via Redis", f"{g:.3f} s", f"redis-py SET+GET {p:.3f} s", f"{g / p:.2f}× its time"))

    rng = np.random.default_rng(1)
    x = rng.standard_normal(64 * 1024 * 1024, dtype=np.float32)
    y = rng.standard_normal(64 * 1024 * 1024, dtype=np.float32)
    gpujobs.run("vector-add", a=x[:10], b=y[:10])
    local = best_of(lambda: gpujobs.run("vector-add", a=x, b=y), 3)
    ray_blob = ray_figure(RAY_BLOB)
    rows.append(("256 MB vector add in-process", f"{local:.3f} s", f"Ray put+task+get {ray_blob:.3f} s", f"{local / ray_blob:.2f}× its time"))

    a = rng.standard_normal((2048, 2048), dtype=np.float32)
    b = rng.standard_normal((2048, 2048), dtype=np.float32)
    gpujobs.run("matmul", a=a, b=b)
    gm, nm = [], []
    for _ in range(3):
        gm.append(best_of(lambda: gpujobs.run("matmul", a=a, b=b), 1))
        nm.append(best_of(lambda: np.matmul(a, b), 1))
    rows.append(("matmul 2048³ in-process", f"{min(gm):.3f} s", f"numpy {min(nm):.3f} s", f"{min(nm) / min(gm):.2f}× numpy"))

    print(f"{'measure':<32} {'gpujobs / peer':>16} {'anchor':>30} {'ratio':>16}")
    for row in rows:
        print(f"{row[0]:<32} {row[1]:>16} {row[2]:>30} {row[3]:>16}")


if __name__ == "__main__":
    main()
