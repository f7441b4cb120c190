"""gpujobs.run and Cluster: every kind against numpy, inputs of every dtype and layout."""

from __future__ import annotations

import threading
import time
import warnings

import numpy as np
import pytest

import gpujobs
from gpujobs.errors import PrecisionWarning, ValidationError


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_matmul_matches_numpy() -> None:
    a = rng(1).standard_normal((130, 70), dtype=np.float32)
    b = rng(2).standard_normal((70, 90), dtype=np.float32)
    r = gpujobs.run("matmul", a=a, b=b, check=True)
    c = r.outputs["c"]
    assert c.dtype == np.float32 and c.shape == (130, 90)
    np.testing.assert_allclose(c, a @ b, rtol=1e-4, atol=1e-4)
    assert r.check is not None and r.check.passed and r.check.skipped is None
    assert r["c"] is c
    assert r.kind == "matmul" and r.attempts == 1 and r.device.startswith("cpu")
    assert set(r.timings) >= {"queue_wait_s", "compute_s", "total_s"}


def test_vector_add_matches_numpy() -> None:
    a = rng(3).standard_normal(100_003, dtype=np.float32)
    b = rng(4).standard_normal(100_003, dtype=np.float32)
    np.testing.assert_array_equal(gpujobs.run("vector-add", a=a, b=b).outputs["c"], a + b)


def test_gaussian_blur_and_sobel_shapes_and_values() -> None:
    img = rng(5).random((97, 131), dtype=np.float32)
    blur = gpujobs.run("image-filter", image=img, filter="gaussian-blur", sigma=1.5, check=True)
    out = blur.outputs["image"]
    assert out.shape == img.shape and blur.check is not None and blur.check.passed
    # A blur keeps the mean (away from the edges) and lowers the variance.
    assert abs(float(out[20:-20, 20:-20].mean()) - float(img[20:-20, 20:-20].mean())) < 0.01
    assert out.std() < img.std()
    sobel = gpujobs.run("image-filter", image=np.ones((32, 32), np.float32), filter="sobel")
    np.testing.assert_allclose(sobel.outputs["image"][2:-2, 2:-2], 0.0, atol=1e-6)


def test_pil_images_are_grey_levels() -> None:
    from PIL import Image

    rgb = Image.fromarray((rng(6).random((40, 50, 3)) * 255).astype(np.uint8), "RGB")
    r = gpujobs.run("image-filter", image=rgb, filter="sobel")
    assert r.outputs["image"].shape == (40, 50)
    grey = np.asarray(rgb.convert("L"), dtype=np.float32) / 255
    direct = gpujobs.run("image-filter", image=grey, filter="sobel")
    np.testing.assert_array_equal(r.outputs["image"], direct.outputs["image"])


@pytest.mark.parametrize(
    "dtype",
    ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", ">f4", ">i8", "<f8"],
)
def test_every_numeric_dtype_is_converted_like_astype(dtype: str) -> None:
    a = (rng(7).random(257) * 100).astype(dtype)
    b = np.arange(257).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrecisionWarning)
        c = gpujobs.run("vector-add", a=a, b=b).outputs["c"]
    np.testing.assert_array_equal(c, a.astype(np.float32) + b.astype(np.float32))


def test_lossy_conversions_warn_at_the_callers_line() -> None:
    with pytest.warns(PrecisionWarning, match="a: converted from dtype float64") as w:
        gpujobs.run("vector-add", a=np.ones(4), b=np.ones(4, np.float32))
    assert w[0].filename == __file__


@pytest.mark.parametrize("dtype", ["bool", "complex64", "object", "U3", "datetime64[s]"])
def test_unsupported_dtypes_are_refused_with_the_clis_message(dtype: str) -> None:
    a = np.zeros(3, dtype=dtype)
    with pytest.raises(ValidationError, match=r"dtype `.*` is not supported \(use float32; float64 and integer arrays are converted\)"):
        gpujobs.run("vector-add", a=a, b=np.zeros(3, np.float32))


def test_fortran_and_strided_arrays_are_read_in_c_order() -> None:
    base = rng(8).standard_normal((64, 48), dtype=np.float32)
    f = np.asfortranarray(base)
    strided = rng(9).standard_normal((128, 96), dtype=np.float64)[::2, ::2]
    t = rng(10).standard_normal((48, 64), dtype=np.float32).T  # a transposed view
    for a in (f, t):
        np.testing.assert_allclose(gpujobs.run("matmul", a=a, b=base.T).outputs["c"], a @ base.T, rtol=1e-4, atol=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrecisionWarning)
        c = gpujobs.run("vector-add", a=strided.ravel()[::3], b=np.zeros_like(strided.ravel()[::3])).outputs["c"]
    np.testing.assert_array_equal(c, strided.ravel()[::3].astype(np.float32))


def test_lists_are_arrays() -> None:
    assert gpujobs.run("vector-add", a=[1, 2, 3], b=[0.5, 0.5, 0.5]).outputs["c"].tolist() == [1.5, 2.5, 3.5]


def test_bad_input_is_refused_before_anything_runs() -> None:
    with pytest.raises(ValidationError, match="inner dimensions differ"):
        gpujobs.run("matmul", a=np.ones((3, 4), np.float32), b=np.ones((5, 6), np.float32))
    with pytest.raises(ValidationError, match="matmul takes a, b; unknown argument c"):
        gpujobs.run("matmul", a=np.ones((2, 2), np.float32), b=np.ones((2, 2), np.float32), c=1)
    with pytest.raises(ValidationError, match="vector-add needs b"):
        gpujobs.run("vector-add", a=np.ones(3, np.float32))
    with pytest.raises(ValidationError, match="unknown|kind"):
        gpujobs.run("no-such-kind", a=np.ones(3, np.float32))
    with pytest.raises(ValidationError, match="sigma"):
        gpujobs.run("image-filter", image=np.ones((8, 8), np.float32), sigma=float("nan"))
    with pytest.raises(ValidationError, match="priority must be"):
        gpujobs.run("vector-add", a=[1.0], b=[1.0], priority="urgent")
    with pytest.raises(ValidationError):
        gpujobs.run("vector-add", a=np.ones((2, 2), np.float32), b=np.ones((2, 2), np.float32))
    # Errors are also the built-in classes a caller may already catch.
    with pytest.raises(ValueError):
        gpujobs.run("matmul", a=np.ones((3, 4), np.float32), b=np.ones((5, 6), np.float32))


def test_absurd_sizes_are_refused_not_attempted() -> None:
    huge = np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), shape=(1 << 20, 1 << 20), strides=(0, 0))
    with pytest.raises(ValidationError):
        gpujobs.run("matmul", a=huge, b=huge)


def test_no_gpu_when_asked_for_one_is_a_clear_error() -> None:
    if gpujobs.cuda_devices():
        pytest.skip("this machine has a GPU")
    with pytest.raises(gpujobs.errors.DeviceUnavailable, match="no GPU available"):
        gpujobs.Cluster(device="gpu")


def test_mlp_train_predict_and_safetensors(tmp_path: "object") -> None:
    import safetensors.numpy

    g = rng(11)
    x = g.standard_normal((800, 6), dtype=np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int32)
    r = gpujobs.run("mlp-train", x=x[:600], y=y[:600], x_test=x[600:], y_test=y[600:], hidden=[32], epochs=8, lr=0.2)
    assert len(r.epochs) == 8 and r.epochs[-1]["test_accuracy"] > 0.85
    model = r.model()
    assert model.dims == [6, 32, 2]
    pred = model.predict(x[600:])
    assert pred.probs.shape == (200, 2) and pred.labels.dtype == np.int64
    assert (pred.labels == y[600:]).mean() > 0.85
    # The forward pass in numpy from the saved file gives the same probabilities.
    path = f"{tmp_path}/model.safetensors"
    model.save(path)
    tensors = safetensors.numpy.load_file(path)
    h = x[600:]
    for i in range(2):
        w = tensors[f"{2 * i}.weight"].T
        h = h @ w + tensors[f"{2 * i}.bias"]
        if i == 0:
            h = np.maximum(h, 0)
    e = np.exp(h - h.max(axis=1, keepdims=True))
    np.testing.assert_allclose(pred.probs, e / e.sum(axis=1, keepdims=True), atol=1e-5)
    loaded = gpujobs.Model.load(path)
    np.testing.assert_array_equal(loaded.weights[0], model.weights[0])
    again = gpujobs.run("mlp-predict", model=path, x=x[600:]).outputs["probs"]
    np.testing.assert_array_equal(again, pred.probs)


def test_outputs_own_their_buffers_without_a_copy() -> None:
    r = gpujobs.run("vector-add", a=np.ones(1000, np.float32), b=np.ones(1000, np.float32))
    c = r.outputs["c"]
    assert c.base is not None and type(c.base).__name__ == "PooledBuffer"
    del r
    assert float(c.sum()) == 2000.0


def test_the_gil_is_released_while_a_job_runs() -> None:
    ticks = 0
    stop = False

    def count() -> None:
        nonlocal ticks
        while not stop:
            ticks += 1
            time.sleep(0.001)

    t = threading.Thread(target=count)
    t.start()
    a = rng(12).standard_normal((1024, 1024), dtype=np.float32)
    started = time.perf_counter()
    gpujobs.run("matmul", a=a, b=a)
    took = time.perf_counter() - started
    stop = True
    t.join()
    # A thread that needs the GIL kept running while the job did.
    assert ticks >= max(3, int(took / 0.001 * 0.1))


def test_a_cluster_runs_many_jobs_and_reports_its_workers(cluster: gpujobs.Cluster) -> None:
    a = rng(13).standard_normal(1000, dtype=np.float32)
    jobs = cluster.submit_many([("vector-add", {"a": a, "b": a * i}) for i in range(50)])
    results = cluster.results(jobs, timeout=60)
    for i, r in enumerate(results):
        np.testing.assert_allclose(r.outputs["c"], a + a * i, rtol=1e-6)
    assert cluster.workers() and "Cluster(embedded" in repr(cluster)


def test_hostile_arguments_are_refused_by_name() -> None:
    with gpujobs.Cluster(concurrency=1) as c:
        with pytest.raises(ValidationError, match="a: expected a numpy array"):
            c.submit("vector-add", a=object(), b=[1.0])
        with pytest.raises(ValidationError, match="params: keys must be strings"):
            c.submit("my-kind", x=np.ones(3, np.float32), params={1: 2})
        with pytest.raises(ValidationError, match="params.p: a object cannot be sent"):
            c.submit("my-kind", x=np.ones(3, np.float32), params={"p": object()})
        with pytest.raises(ValidationError, match="unknown kind|my-kind"):
            c.submit("my-kind", x=np.ones(3, np.float32), params={"p": 1})
        with pytest.raises(ValidationError, match="id must be"):
            c.submit("vector-add", a=[1.0], b=[2.0], id="bad id\n")
        with pytest.raises(ValidationError, match="max_attempts must be at least 1"):
            c.submit("vector-add", a=[1.0], b=[2.0], max_attempts=0)
        with pytest.raises(ValidationError, match="timeout must be a positive"):
            c.submit("vector-add", a=[1.0], b=[2.0], timeout=-1)


def test_an_id_submitted_twice_runs_once() -> None:
    with gpujobs.Cluster(concurrency=1) as c:
        first = c.submit("vector-add", a=[1.0], b=[2.0], id="py-same-id")
        second = c.submit("vector-add", a=[5.0], b=[2.0], id="py-same-id")
        assert first.id == second.id == "py-same-id"
        assert second.result(30)["c"].tolist() == [3.0]


def test_a_closed_cluster_refuses_work_instead_of_hanging() -> None:
    c = gpujobs.Cluster(concurrency=1)
    job = c.submit("vector-add", a=[1.0], b=[2.0])
    assert job.result(30)["c"].tolist() == [3.0]
    c.close()
    c.close()  # idempotent
    with pytest.raises(gpujobs.GpujobsError, match="closed"):
        c.submit("vector-add", a=[1.0], b=[2.0])
    with pytest.raises(gpujobs.GpujobsError, match="closed"):
        job.result(1)


def test_a_results_record_is_the_wire_formats() -> None:
    r = gpujobs.run("vector-add", a=[1.0, 2.0], b=[3.0, 4.0])
    rec = r.record
    assert rec["id"] == r.id and rec["state"] == "succeeded" and rec["kind"] == "vector-add"
    assert rec["result"]["timings"]["total_s"] == r.timings["total_s"]
    assert r.record is rec  # built once
    assert r.output["c"]["shape"] == [2] and r.summary
