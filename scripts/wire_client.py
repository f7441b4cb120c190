#!/usr/bin/env python3
"""A client in another language, written from docs/wire-format.md alone: it submits every
built-in kind with plain Redis commands (redis-py), reads every output back, and checks
the numbers with numpy. Run by scripts/check-wire.sh against a private Redis with a
scheduler and a worker. Usage: wire_client.py REDIS_URL
"""

import json
import sys
import time
import uuid

import numpy as np
import redis

NS = "gpujobs"
TERMINAL = {"succeeded", "failed", "dead", "cancelled"}


def partition_of(job_id, n):
    open_, close = job_id.find("{"), -1
    if open_ >= 0:
        close = job_id.find("}", open_ + 1)
    if close > open_ + 1:
        job_id = job_id[open_ + 1:close]
    h = 0x811C9DC5
    for b in job_id.encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h % n


class Client:
    def __init__(self, url):
        self.r = redis.Redis.from_url(url)
        self.n = int(self.r.hget("{%s}:meta" % NS, "partitions") or 1)

    def prefix(self, job_id):
        p = partition_of(job_id, self.n)
        return "{%s}" % NS if p == 0 else "{%s:%d}" % (NS, p)

    def blob(self, job_id, name, array):
        """Stores a tensor as a blob; returns its reference for the payload."""
        a = np.ascontiguousarray(array, dtype="<f4")
        self.r.set(f"{self.prefix(job_id)}:blob:{job_id}:{name}", a.tobytes(), px=3_600_000)
        return {"shape": list(a.shape), "blob": name}

    def submit(self, kind, payload, job_id=None, **extra):
        job_id = job_id or f"py-{uuid.uuid4()}"
        env = {"version": 1, "id": job_id, "kind": kind, "payload": payload, **extra}
        self.r.xadd(f"{self.prefix(job_id)}:submit", {"job": json.dumps(env)})
        return job_id

    def wait(self, job_id, timeout=120):
        key = f"{self.prefix(job_id)}:job:{job_id}"
        deadline = time.time() + timeout
        while time.time() < deadline:
            state = self.r.hget(key, "state")
            if state and state.decode() in TERMINAL:
                return {k.decode(): v.decode() for k, v in self.r.hgetall(key).items()}
            time.sleep(0.05)
        raise AssertionError(f"{job_id} did not finish in {timeout} s")

    def output(self, job_id, rec):
        """The record's output, with every tensor read back from its blob."""
        assert rec["state"] == "succeeded", rec
        result = json.loads(rec["result"])

        def load(v):
            if isinstance(v, dict) and "blob" in v:
                raw = self.r.get(f"{self.prefix(job_id)}:blob:{job_id}:out:{v['blob']}")
                return np.frombuffer(raw, dtype="<f4").reshape(v["shape"])
            if isinstance(v, dict):
                return {k: load(x) for k, x in v.items()}
            if isinstance(v, list):
                return [load(x) for x in v]
            return v

        return load(result["output"]), result


def close(a, b, tol):
    err = float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
    assert err <= tol, f"max abs error {err} > {tol}"


def main():
    c = Client(sys.argv[1])
    rng = np.random.default_rng(3)
    jobs = {}

    # vector-add, inline numbers (one beyond f32's range becomes +inf, as documented)
    a = rng.random(1000, dtype=np.float32)
    b = rng.random(1000, dtype=np.float32)
    data_a = a.tolist()
    data_a[0] = 1e39
    jobs["vector-add"] = c.submit("vector-add", {"a": {"shape": [1000], "data": data_a},
                                                 "b": {"shape": [1000], "data": b.tolist()}})
    # matmul, both operands as blobs (stored before the XADD)
    ma, mb = rng.random((37, 50), dtype=np.float32), rng.random((50, 23), dtype=np.float32)
    mid = f"py-{uuid.uuid4()}"
    jobs["matmul"] = c.submit("matmul", {"a": c.blob(mid, "t0", ma), "b": c.blob(mid, "t1", mb)},
                              job_id=mid, priority="high")
    # image-filter, synthetic input generated where it runs
    jobs["image-filter"] = c.submit("image-filter", {
        "image": {"shape": [64, 80], "synthetic": {"seed": 5, "lo": 0, "hi": 1}},
        "filter": {"op": "sobel"}})
    # mlp-train on blobs, with held-out data
    centres = rng.normal(0, 3, (3, 6))
    y = rng.integers(0, 3, 600)
    x = (centres[y] + rng.normal(0, 0.5, (600, 6))).astype(np.float32)
    tid = f"py-{uuid.uuid4()}"
    jobs["mlp-train"] = c.submit("mlp-train", {
        "data": {"source": "tensors", "x": c.blob(tid, "t0", x[:500]),
                 "y": c.blob(tid, "t1", y[:500].astype(np.float32))},
        "test": {"x": c.blob(tid, "t2", x[500:]), "y": c.blob(tid, "t3", y[500:].astype(np.float32))},
        "classes": 3, "hidden": [16], "epochs": 5, "batch": 50, "lr": 0.1, "seed": 1}, job_id=tid)
    # a blob of the wrong length fails its own job, with the reason
    bad = f"py-{uuid.uuid4()}"
    c.r.set(f"{c.prefix(bad)}:blob:{bad}:t0", b"1234567")
    jobs["bad-blob"] = c.submit("vector-add", {"a": {"shape": [2], "blob": "t0"},
                                               "b": {"shape": [2], "data": [1, 2]}}, job_id=bad)
    # an entry that is not JSON, with no readable id: dead-lettered, nothing else stops
    c.r.xadd("{%s}:submit" % NS, {"job": "not json at all"})

    out, res = c.output(jobs["vector-add"], c.wait(jobs["vector-add"]))
    expected = a + b
    expected[0] = np.inf
    assert np.isinf(out["c"][0]), out["c"][:3]
    close(out["c"][1:], expected[1:], 0.0)
    assert res["device"]["class"] in ("cpu", "gpu") and res["timings"]["total_s"] > 0, res

    out, _ = c.output(jobs["matmul"], c.wait(jobs["matmul"]))
    close(out["c"], ma.astype(np.float64) @ mb, 1e-4)

    out, _ = c.output(jobs["image-filter"], c.wait(jobs["image-filter"]))
    assert out["image"].shape == (64, 80) and np.all(out["image"] >= 0)

    rec = c.wait(jobs["mlp-train"])
    trained, _ = c.output(jobs["mlp-train"], rec)
    epochs = trained["epochs"]
    assert len(epochs) == 5 and epochs[-1]["test_accuracy"] > 0.9, epochs
    weights, biases = trained["weights"], trained["biases"]
    assert [w.shape for w in weights] == [(6, 16), (16, 3)], [w.shape for w in weights]
    # Input blobs are deleted once the job has ended.
    assert not c.r.exists(f"{c.prefix(tid)}:blob:{tid}:t0")

    # mlp-predict with the trained weights, sent back as blobs of a new job
    pid = f"py-{uuid.uuid4()}"
    model = {"weights": [c.blob(pid, f"w{i}", w) for i, w in enumerate(weights)],
             "biases": [c.blob(pid, f"b{i}", b_) for i, b_ in enumerate(biases)]}
    jobs["mlp-predict"] = c.submit("mlp-predict", {"model": model, "x": c.blob(pid, "x", x[500:])},
                                   job_id=pid)
    out, _ = c.output(pid, c.wait(pid))
    h = np.maximum(x[500:].astype(np.float64) @ weights[0] + biases[0], 0) @ weights[1] + biases[1]
    p = np.exp(h - h.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    close(out["probs"], p, 1e-5)
    assert np.array_equal(out["labels"].astype(int), p.argmax(axis=1))

    rec = c.wait(jobs["bad-blob"])
    assert rec["state"] == "failed", rec
    assert "f32" in json.loads(rec["error"])["message"], rec["error"]

    dead = c.r.xrange("{%s}:dead" % NS)
    assert any(b"not json" in dict(f).get(b"raw", b"") for _, f in dead), dead
    print(f"wire-format client: {len(jobs)} jobs of every kind submitted with plain Redis "
          "commands, every output read back and checked: ok")


if __name__ == "__main__":
    main()
