"""gpujobs.Client against a private Redis served by `gpujobs scheduler` and `gpujobs
worker` processes: every kind against numpy, many jobs, asyncio, graphs, cancel, dead
letters and retry, every error class, a worker SIGKILLed while a client waits."""

from __future__ import annotations

import asyncio
import signal
import time

import numpy as np
import pytest

import gpujobs
from gpujobs import errors

from conftest import Redis, Stack


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_every_kind_matches_numpy_through_redis(client: gpujobs.Client) -> None:
    a = rng(1).standard_normal((96, 64), dtype=np.float32)
    b = rng(2).standard_normal((64, 80), dtype=np.float32)
    r = client.submit("matmul", a=a, b=b).result(timeout=60)
    np.testing.assert_allclose(r.outputs["c"], a @ b, rtol=1e-4, atol=1e-4)
    assert r.worker and r.outputs["c"].flags.writeable
    v = rng(3).standard_normal(5000, dtype=np.float32)
    np.testing.assert_array_equal(client.submit("vector-add", a=v, b=v).result(60)["c"], v + v)
    img = rng(4).random((64, 64), dtype=np.float32)
    blur = client.submit("image-filter", image=img, sigma=2.0, check=True).result(60)
    assert blur.check is not None and blur.check.passed
    x = rng(5).standard_normal((300, 4), dtype=np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model = client.run("mlp-train", x=x, y=y, hidden=[8], epochs=3, timeout=60).model()
    probs = model.predict(x, on=client).probs
    assert probs.shape == (300, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_large_arrays_travel_as_blobs(client: gpujobs.Client) -> None:
    a = rng(6).standard_normal(4_000_000, dtype=np.float32)  # 16 MB each way
    c = client.submit("vector-add", a=a, b=a).result(timeout=120).outputs["c"]
    np.testing.assert_array_equal(c, a + a)


def test_submit_many_and_results(client: gpujobs.Client) -> None:
    a = np.arange(10, dtype=np.float32)
    jobs = client.submit_many([("vector-add", {"a": a, "b": np.full(10, i, np.float32)}) for i in range(200)], priority="high")
    assert len({j.id for j in jobs}) == 200
    for i, r in enumerate(client.results(jobs, timeout=120)):
        np.testing.assert_array_equal(r.outputs["c"], a + i)


def test_a_refused_batch_sends_nothing(client: gpujobs.Client) -> None:
    ok = ("vector-add", {"a": [1.0], "b": [2.0]})
    bad = ("matmul", {"a": np.ones((2, 3), np.float32), "b": np.ones((2, 3), np.float32)})
    before = len(client.lanes())
    with pytest.raises(errors.ValidationError, match="inner dimensions"):
        client.submit_many([ok, bad])
    assert len(client.lanes()) == before


async def test_await_a_job_and_gather_many(client: gpujobs.Client) -> None:
    a = rng(7).standard_normal(100, dtype=np.float32)
    r = await client.submit("vector-add", a=a, b=a)
    np.testing.assert_array_equal(r.outputs["c"], 2 * a)
    jobs = [client.submit("vector-add", a=a, b=np.full(100, i, np.float32)) for i in range(20)]
    # The event loop stays free while they run.
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    ticker = asyncio.create_task(tick())
    results = await asyncio.gather(*jobs)
    ticker.cancel()
    assert ticks > 0
    for i, res in enumerate(results):
        np.testing.assert_allclose(res.outputs["c"], a + i)
    with pytest.raises(errors.TimeoutError):
        await client.submit("matmul", a=np.ones((1500, 1500), np.float32), b=np.ones((1500, 1500), np.float32)).result_async(timeout=0.001)


def test_graph_steps_read_their_parents_outputs(client: gpujobs.Client) -> None:
    img = rng(8).random((128, 96), dtype=np.float32)
    g = gpujobs.Graph()
    blur = g.add("blur", "image-filter", image=img, sigma=2.0, ephemeral=True)
    edges = g.add("edges", "image-filter", image=blur.output("image"), filter="sobel")
    w = rng(9).standard_normal((96, 8), dtype=np.float32)
    g.add("project", "matmul", a=edges.output("image"), b=w)
    run = client.submit_graph(g)
    assert g.leaves() == ["project"] and set(run.jobs) == {"blur", "edges", "project"}
    out = run.results(timeout=120)["project"].outputs["c"]
    # The same chain, one job at a time, in process.
    b1 = gpujobs.run("image-filter", image=img, sigma=2.0).outputs["image"]
    e1 = gpujobs.run("image-filter", image=b1, filter="sobel").outputs["image"]
    np.testing.assert_allclose(out, e1 @ w, rtol=1e-4, atol=1e-4)
    rec = run["edges"].record()
    assert rec is not None and rec["parents"] == [run["blur"].id]


def test_a_graph_that_fails_stops_its_dependants(client: gpujobs.Client) -> None:
    g = gpujobs.Graph()
    big = np.ones((1500, 1500), np.float32)
    # One attempt of 1 ms for a job that takes far longer: it ends dead.
    first = g.add("first", "matmul", a=big, b=big, timeout=0.001, max_attempts=1)
    g.add("second", "matmul", a=first.output("c"), b=big)
    run = client.submit_graph(g)
    with pytest.raises(errors.JobFailed) as e:
        run.results(timeout=60)
    assert e.value.state in ("failed", "dead")


def test_graph_mistakes_are_refused() -> None:
    g = gpujobs.Graph()
    g.add("a", "vector-add", a=[1.0], b=[1.0])
    with pytest.raises(errors.ValidationError, match="two steps"):
        g.add("a", "vector-add", a=[1.0], b=[1.0])
    other = gpujobs.Graph().add("x", "vector-add", a=[1.0], b=[1.0])
    with pytest.raises(errors.ValidationError, match="not a step of this graph"):
        g.add("b", "vector-add", a=other.output("c"), b=[1.0])
    with pytest.raises(errors.ValidationError, match="no output `nope`"):
        g._steps["a"].output("nope")


def test_cancel_and_status(client: gpujobs.Client) -> None:
    big = np.ones((1800, 1800), np.float32)
    jobs = [client.submit("matmul", a=big, b=big, priority="low") for _ in range(6)]
    last = jobs[-1]
    assert last.cancel() in ("cancelled", "requested")
    with pytest.raises(errors.JobCancelled) as e:
        last.result(timeout=120)
    assert e.value.state == "cancelled" and e.value.job_id == last.id
    assert last.state() == "cancelled"
    assert client.cancel("no-such-job") == "not-found"
    assert client.status("no-such-job") is None
    client.results(jobs[:-1], timeout=300)


def test_dead_letters_and_retry(client: gpujobs.Client) -> None:
    big = np.ones((1500, 1500), np.float32)
    job = client.submit("matmul", a=big, b=big, timeout=0.001, max_attempts=1)
    with pytest.raises(errors.JobFailed) as e:
        job.result(timeout=60)
    assert e.value.error_class == "temporary" and e.value.state == "dead"
    dead = [d for d in client.dead_letters() if d["id"] == job.id]
    assert dead and dead[0]["kind"] == "matmul" and dead[0]["reason"]
    # Its inputs were freed when it ended: the queue says so instead of retrying a job
    # that cannot run.
    with pytest.raises(errors.Refused, match="submit it again"):
        client.retry(job.id)
    assert client.retry("never-dead") is False


def test_error_classes(redis: Redis) -> None:
    with pytest.raises(errors.ConnectionError) as e:
        gpujobs.Client("redis://127.0.0.1:1", connect_timeout=0.5)
    assert isinstance(e.value, ConnectionError) and "127.0.0.1:1" in str(e.value)
    with pytest.raises(errors.AuthenticationError):
        gpujobs.Client(f"redis://nobody:wrong@127.0.0.1:{redis.port}")
    with pytest.raises(errors.ConfigurationError):
        gpujobs.Client("http://127.0.0.1:6379")
    c = gpujobs.Client(redis.url, namespace="py-errors")
    with pytest.raises(errors.NotFound):
        c.job("never-submitted").result(timeout=1)
    with pytest.raises(errors.TimeoutError) as t:
        # No worker serves this namespace: the job waits.
        c.submit("vector-add", a=[1.0], b=[1.0]).result(timeout=0.2)
    assert t.value.job_id
    with pytest.raises(errors.ValidationError):
        c.submit("vector-add", a=[1.0, 2.0], b=[1.0])
    # A blob over the queue's limit is refused before anything is stored.
    small = gpujobs.Client(redis.url, namespace="py-errors", max_blob_bytes=1024)
    with pytest.raises(errors.ValidationError):
        small.submit("vector-add", a=np.ones(1000, np.float32), b=np.ones(1000, np.float32))


def test_queue_full_is_its_own_error(redis: Redis) -> None:
    import subprocess

    cli = ["redis-cli", "-p", str(redis.port)]
    c = gpujobs.Client(redis.url, namespace="py-full")
    used = int(subprocess.run([*cli, "info", "memory"], capture_output=True, text=True).stdout.split("used_memory:")[1].split()[0])
    subprocess.run([*cli, "config", "set", "maxmemory", str(used + 200_000)], check=True, capture_output=True)
    try:
        with pytest.raises(errors.QueueFull) as e:
            for _ in range(100):
                c.submit("vector-add", a=np.ones(100_000, np.float32), b=np.ones(100_000, np.float32))
        assert "full" in str(e.value)
    finally:
        subprocess.run([*cli, "config", "set", "maxmemory", "0"], check=True, capture_output=True)
        subprocess.run([*cli, "eval", "for _,k in ipairs(redis.call('keys','{py-full}*')) do redis.call('del',k) end", "0"], capture_output=True)


def test_a_worker_killed_mid_job_does_not_lose_a_waiting_clients_job(redis: Redis) -> None:
    s = Stack(redis, "py-kill")
    try:
        s.scheduler()
        victim = s.worker("--concurrency", "1", "--lease", "1s")
        c = s.client()
        a = rng(10).standard_normal((1600, 1600), dtype=np.float32)
        job = c.submit("matmul", a=a, b=a, max_attempts=3)
        deadline = time.time() + 60
        while job.state() != "running":
            assert time.time() < deadline, "the job never started"
            time.sleep(0.01)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        s.worker("--concurrency", "1", "--lease", "1s")
        r = job.result(timeout=120)
        assert r.attempts == 2
        np.testing.assert_allclose(r.outputs["c"], a @ a, rtol=1e-3, atol=1e-2)
    finally:
        s.close()


def test_environment_variables_are_the_clis(monkeypatch: pytest.MonkeyPatch, stack: Stack) -> None:
    monkeypatch.setenv("GPUJOBS_REDIS_URL", stack.redis.url)
    monkeypatch.setenv("GPUJOBS_NAMESPACE", stack.namespace)
    c = gpujobs.Client()
    assert stack.namespace in repr(c) and "wrong" not in repr(c)
    assert c.submit("vector-add", a=[1.0], b=[2.0]).result(60)["c"].tolist() == [3.0]
    monkeypatch.setenv("GPUJOBS_MAX_BLOB_BYTES", "not-a-size")
    with pytest.raises(errors.ValidationError, match="GPUJOBS_MAX_BLOB_BYTES"):
        gpujobs.Client()
