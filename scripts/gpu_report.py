"""Merges gpu-check.json (gpujobs) and anchors.json (PyTorch/cuBLAS) into the Markdown
report of one GPU check: correctness, timings, and every ratio against its anchor.
Usage: python3 gpu_report.py OUTDIR > OUTDIR/gpu-report.md
"""
import json
import os
import sys

out = sys.argv[1]
chk = json.load(open(os.path.join(out, "gpu-check.json")))
anc = json.load(open(os.path.join(out, "anchors.json")))
smi = open(os.path.join(out, "nvidia-smi.txt")).read().strip() if os.path.exists(os.path.join(out, "nvidia-smi.txt")) else ""
copy = chk["copy_bandwidth_bytes_per_s"]


def fmt_s(s):
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


cublas = {(r["m"], r["k"], r["n"]): r["tflops"] for r in anc["sgemm"]}
print(f"GPU: {chk['gpu']}  ")
print(f"nvidia-smi: {smi}  ")
print(f"CPU (same machine): {chk['cpu']}  ")
print(f"PyTorch {anc['torch']} (CUDA {anc['cuda']}), cuBLAS SGEMM with TF32 off  ")
print(f"Seed of the random inputs: {chk['seed']}; GPU timings: CUDA events, 1 warm-up, median of {chk['reps']} (MLP: 5)\n")
print("## Ceilings measured in the same call\n")
print("| ceiling | gpujobs probe | PyTorch |")
print("|---|---|---|")
print(f"| device-to-device copy (read+write) | {copy / 1e9:.0f} GB/s | {anc['d2d_bytes_per_s'] / 1e9:.0f} GB/s |")
print(f"| host-to-device, pinned | - | {anc['h2d_pinned_bytes_per_s'] / 1e9:.1f} GB/s |")
print(f"| device-to-host, pinned | - | {anc['d2h_pinned_bytes_per_s'] / 1e9:.1f} GB/s |")
for (m, k, n), t in sorted(cublas.items()):
    print(f"| cuBLAS SGEMM {m}x{k}x{n} | - | {t:.1f} TFLOP/s |")
print("\n## Correctness: GPU against the CPU backend (and the f64 reference)\n")
print("| kind | size | GPU vs CPU | tolerance | GPU vs f64 reference | result |")
print("|---|---|---|---|---|---|")
bad = 0
for c in chk["cases"]:
    ref = c.get("reference")
    refs = f"{ref['metric']} {ref['error']:.1e} (tol {ref['tolerance']:.0e})" if ref else "not run (too large for the f64 reference)"
    ok = c["passed"] and (ref is None or ref["passed"])
    bad += not ok
    print(f"| {c['kind']} | {c['size']} | {c['metric']} {c['error']:.1e} | {c['tolerance']:.0e} | {refs} | {'pass' if ok else 'FAIL'} |")
print("\n## Timings\n")
print("| kind | size | CPU compute | GPU kernel | GPU end to end (h2d / d2h) | GPU kernel rate | vs anchor | speedup kernel | speedup end to end |")
print("|---|---|---|---|---|---|---|---|---|")
for c in chk["cases"]:
    anchor = "-"
    if c["kind"] == "matmul":
        m, k, n = (int(x) for x in c["size"].split("x"))
        if (m, k, n) in cublas:
            anchor = f"{100 * c['gpu_kernel_rate'] / 1e3 / cublas[(m, k, n)]:.0f}% of cuBLAS"
    elif c["kernel_bytes"] > 0:
        anchor = f"{100 * c['kernel_bytes'] / copy / c['gpu_kernel_s']:.0f}% of copy BW"
    rate = c["gpu_kernel_rate"]
    unit = c["unit"]
    if unit == "GFLOP/s":
        rate_s = f"{rate / 1e3:.2f} TFLOP/s"
    else:
        rate_s = f"{rate:.1f} {unit}"
    e2e = f"{fmt_s(c['gpu_e2e_s'])} ({fmt_s(c['gpu_h2d_s'])} / {fmt_s(c['gpu_d2h_s'])})"
    print(f"| {c['kind']} | {c['size']} | {fmt_s(c['cpu_compute_s'])} | {fmt_s(c['gpu_kernel_s'])} | {e2e} | {rate_s} | {anchor} | {c['speedup_kernel']:.1f}x | {c['speedup_e2e']:.1f}x |")
print("\n## SGEMM variants (median of 10)\n")
print("| variant | n | TFLOP/s | of cuBLAS |")
print("|---|---|---|---|")
for v in chk["sgemm_variants"]:
    cb = cublas.get((v["n"], v["n"], v["n"]))
    print(f"| {v['variant']} | {v['n']} | {v['tflops']:.2f} | {100 * v['tflops'] / cb:.0f}% |" if cb else f"| {v['variant']} | {v['n']} | {v['tflops']:.2f} | - |")
print(f"\n{len(chk['cases']) - bad} of {len(chk['cases'])} cases passed.")
