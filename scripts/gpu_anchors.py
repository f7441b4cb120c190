"""GPU anchors measured in the same device call as `gpujobs gpu-check`:
cuBLAS SGEMM through PyTorch (TF32 off, so it is true FP32) at the sizes gpu-check
used, device-to-device copy bandwidth, and pinned host<->device bandwidth.
CUDA events, warm-up, median of 20. Usage: python3 gpu_anchors.py gpu-check.json > anchors.json
"""
import json
import sys

import torch

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.set_float32_matmul_precision("highest")


def median_ms(fn, reps=20, warm=3):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        e.synchronize()
        times.append(s.elapsed_time(e))
    times.sort()
    return times[len(times) // 2]


def main():
    check = json.load(open(sys.argv[1])) if len(sys.argv) > 1 else {"cases": []}
    shapes = {(4096, 4096, 4096), (2048, 2048, 2048), (1024, 1024, 1024)}
    for c in check.get("cases", []):
        if c["kind"] == "matmul":
            m, k, n = (int(x) for x in c["size"].split("x"))
            shapes.add((m, k, n))
    out = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(0),
        "sgemm": [],
    }
    for m, k, n in sorted(shapes):
        a = torch.randn(m, k, device="cuda")
        b = torch.randn(k, n, device="cuda")
        ms = median_ms(lambda: torch.mm(a, b))
        out["sgemm"].append({"m": m, "k": k, "n": n, "ms": ms, "tflops": 2 * m * k * n / ms / 1e9})
        del a, b
    nbytes = 512 << 20
    x = torch.empty(nbytes // 4, device="cuda")
    y = torch.empty_like(x)
    ms = median_ms(lambda: y.copy_(x))
    out["d2d_bytes_per_s"] = 2 * nbytes / (ms / 1e3)
    host = torch.empty(nbytes // 4, pin_memory=True)
    ms = median_ms(lambda: x.copy_(host, non_blocking=True), reps=10)
    out["h2d_pinned_bytes_per_s"] = nbytes / (ms / 1e3)
    ms = median_ms(lambda: host.copy_(x, non_blocking=True), reps=10)
    out["d2h_pinned_bytes_per_s"] = nbytes / (ms / 1e3)
    json.dump(out, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
