"""Times numpy (OpenBLAS) and OpenCV on the cases of benches/cpu_anchors.rs.

Same protocol: inputs made once, 2 warm-up calls, median of `reps` calls, each call
allocating its output. Prints one JSON object per line.
"""
import json
import sys
import time

import cv2
import numpy as np


def median_secs(reps, f):
    f()
    f()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    ts.sort()
    return ts[len(ts) // 2]


def emit(case, secs, work, unit):
    print(json.dumps({"case": case, "seconds": secs, "work": work, "unit": unit}), flush=True)


def main():
    wanted = lambda c: len(sys.argv) < 2 or any(f in c for f in sys.argv[1:])
    rng = np.random.default_rng(1)
    for n in (1024, 2048):
        case = f"matmul_{n}"
        if wanted(case):
            a = rng.uniform(-1, 1, (n, n)).astype(np.float32)
            b = rng.uniform(-1, 1, (n, n)).astype(np.float32)
            emit(case, median_secs(7 if n > 1024 else 15, lambda: a @ b), 2.0 * n**3, "flop")
    if wanted("vector_add_50m"):
        n = 50_000_000
        a = rng.uniform(-1, 1, n).astype(np.float32)
        b = rng.uniform(-1, 1, n).astype(np.float32)
        emit("vector_add_50m", median_secs(9, lambda: a + b), 12.0 * n, "byte")
    n = 4096
    img = rng.uniform(0, 1, (n, n)).astype(np.float32)
    if wanted("gaussian_blur_4096"):
        emit("gaussian_blur_4096", median_secs(9, lambda: cv2.GaussianBlur(img, (0, 0), 2.0)), n * n, "pixel")
    if wanted("sobel_4096"):
        def sobel():
            gx = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3)
            gy = cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3)
            return cv2.magnitude(gx, gy)
        emit("sobel_4096", median_secs(9, sobel), n * n, "pixel")
    for rows in (16384, 131072):
        case = f"mlp_predict_{rows}x784-h1024-10"
        if not wanted(case):
            continue
        x = rng.uniform(-1, 1, (rows, 784)).astype(np.float32)
        w1 = rng.uniform(-0.05, 0.05, (784, 1024)).astype(np.float32)
        b1 = np.zeros(1024, np.float32)
        w2 = rng.uniform(-0.05, 0.05, (1024, 10)).astype(np.float32)
        b2 = np.zeros(10, np.float32)
        def predict():
            h = np.maximum(x @ w1 + b1, 0)
            z = h @ w2 + b2
            e = np.exp(z - z.max(axis=1, keepdims=True))
            p = e / e.sum(axis=1, keepdims=True)
            return p, p.argmax(axis=1)
        emit(case, median_secs(7 if rows <= 16384 else 3, predict), 2.0 * rows * (784 * 1024 + 1024 * 10), "flop")


if __name__ == "__main__":
    main()
