"""Fixtures: a private redis-server on a free loopback port in a temporary folder, and
`gpujobs scheduler` / `gpujobs worker` processes of the binary in $GPUJOBS_BIN (or the
workspace's debug build) serving it. Nothing here uses the Redis on 6379."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterator, List

import pytest

import gpujobs

ROOT = Path(__file__).resolve().parents[2]


def _bin() -> str:
    found = os.environ.get("GPUJOBS_BIN") or str(ROOT / "target" / "debug" / "gpujobs")
    if not os.access(found, os.X_OK):
        pytest.fail(f"no gpujobs binary at {found}: build it (cargo build -p gpujobs-cli) or set GPUJOBS_BIN")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Redis:
    """A redis-server of the test's own, which a test may stop and start again."""

    def __init__(self) -> None:
        if shutil.which("redis-server") is None:
            pytest.fail("redis-server is not installed (Debian: redis-server)")
        self.dir = tempfile.mkdtemp(prefix="gpujobs-py-redis-")
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.proc: "subprocess.Popen[bytes] | None" = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Stack:
    """A scheduler and workers on one namespace of a private Redis."""

    def __init__(self, redis: Redis, namespace: str) -> None:
        self.redis = redis
        self.namespace = namespace
        self.bin = _bin()
        self.procs: List["subprocess.Popen[bytes]"] = []
        self.log = Path(redis.dir) / f"{namespace}.log"
        self.env = {**os.environ, "GPUJOBS_REDIS_URL": redis.url, "GPUJOBS_NAMESPACE": namespace, "RUST_LOG": "warn"}

    def spawn(self, *args: str) -> "subprocess.Popen[bytes]":
        with open(self.log, "ab") as log:
            p = subprocess.Popen([self.bin, *args], env=self.env, stdout=log, stderr=log)
        self.procs.append(p)
        return p

    def scheduler(self) -> "subprocess.Popen[bytes]":
        return self.spawn("scheduler")

    def worker(self, *extra: str) -> "subprocess.Popen[bytes]":
        return self.spawn("worker", "--backend", "cpu", *extra)

    def client(self) -> gpujobs.Client:
        return gpujobs.Client(self.redis.url, namespace=self.namespace)

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture(scope="session")
def redis() -> Iterator[Redis]:
    r = Redis()
    yield r
    r.close()


@pytest.fixture(scope="module")
def stack(redis: Redis) -> Iterator[Stack]:
    """A scheduler and a CPU worker (concurrency 4) on a namespace of its own."""
    s = Stack(redis, f"py-{uuid.uuid4().hex[:8]}")
    s.scheduler()
    s.worker("--concurrency", "4")
    yield s
    s.close()


@pytest.fixture(scope="module")
def client(stack: Stack) -> gpujobs.Client:
    return stack.client()


@pytest.fixture(scope="session")
def cluster() -> Iterator[gpujobs.Cluster]:
    with gpujobs.Cluster(concurrency=2) as c:
        yield c
