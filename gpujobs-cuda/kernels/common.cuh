// Helpers shared by the kernels. Every kernel is `extern "C"` so its PTX entry keeps
// its plain name, which the Rust side looks up and the signature test checks.
#pragma once

typedef unsigned long long u64;

// OpenCV's borderInterpolate(p, n, BORDER_REFLECT_101), applied repeatedly when the
// kernel is wider than the image; a 1-pixel dimension always maps to 0.
__device__ __forceinline__ int reflect101(int p, int n) {
    if (n == 1) return 0;
    while (p < 0 || p >= n) {
        p = p < 0 ? -p : 2 * n - 2 - p;
    }
    return p;
}
