// Gaussian blur (separable) and Sobel magnitude with OpenCV's semantics: reflect-101
// borders, the host's kernel weights, and the host's order of operations
// (w[r]*x[r] then fma(w[k], x[k] + x[2r-k], acc) for k < r), so the GPU agrees with
// the CPU backend to the last bits where both use FMA.
#include "common.cuh"

// Horizontal pass. Grid: x = image row, y = segment of blockDim.x output columns.
// Shared memory: blockDim.x + 2r floats (the segment and its reflected halo).
extern "C" __global__ void blur_rows(const float* __restrict__ in, float* __restrict__ out, int h, int w,
                                     const float* __restrict__ weights, int r) {
    extern __shared__ float s[];
    const int y = blockIdx.x;
    const int x0 = blockIdx.y * blockDim.x;
    const float* row = in + (size_t)y * w;
    for (int i = threadIdx.x; i < (int)blockDim.x + 2 * r; i += blockDim.x) {
        s[i] = row[reflect101(x0 + i - r, w)];
    }
    __syncthreads();
    const int x = x0 + threadIdx.x;
    if (x >= w) return;
    const float* p = s + threadIdx.x;
    float acc = __ldg(&weights[r]) * p[r];
    for (int k = 0; k < r; k++) acc = fmaf(__ldg(&weights[k]), p[k] + p[2 * r - k], acc);
    out[(size_t)y * w + x] = acc;
}

// Vertical pass, tiled. Block 32x8 threads computes 32 columns x 64 rows (8 rows per
// thread); shared memory holds the (64 + 2r) x 32 input rows it needs.
extern "C" __global__ void blur_cols(const float* __restrict__ in, float* __restrict__ out, int h, int w,
                                     const float* __restrict__ weights, int r) {
    extern __shared__ float s[];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int x = blockIdx.x * 32 + tx;
    const int y0 = blockIdx.y * 64;
    const int rows = 64 + 2 * r;
    for (int i = ty; i < rows; i += 8) {
        int sy = reflect101(y0 + i - r, h);
        s[i * 32 + tx] = x < w ? in[(size_t)sy * w + x] : 0.f;
    }
    __syncthreads();
    if (x >= w) return;
    for (int j = 0; j < 8; j++) {
        const int yy = ty + j * 8;
        const int y = y0 + yy;
        if (y >= h) break;
        const float* p = s + yy * 32 + tx;
        float acc = __ldg(&weights[r]) * p[r * 32];
        for (int k = 0; k < r; k++) acc = fmaf(__ldg(&weights[k]), p[k * 32] + p[(2 * r - k) * 32], acc);
        out[(size_t)y * w + x] = acc;
    }
}

// Vertical pass for kernels too wide for shared memory (sigma beyond ~40): one output
// per thread, reading the column straight from global memory (coalesced across x).
extern "C" __global__ void blur_cols_direct(const float* __restrict__ in, float* __restrict__ out, int h, int w,
                                            const float* __restrict__ weights, int r) {
    const int x = blockIdx.x * blockDim.x + threadIdx.x;
    if (x >= w) return;
    for (int y = blockIdx.y; y < h; y += gridDim.y) {
        float acc = __ldg(&weights[r]) * in[(size_t)y * w + x];
        for (int k = 0; k < r; k++) {
            float lo = in[(size_t)reflect101(y + k - r, h) * w + x];
            float hi = in[(size_t)reflect101(y + r - k, h) * w + x];
            acc = fmaf(__ldg(&weights[k]), lo + hi, acc);
        }
        out[(size_t)y * w + x] = acc;
    }
}

// Sobel magnitude, ksize 3. Block 32x8 threads with a one-pixel reflected halo in
// shared memory. Grid: x = column tiles, y = row tiles.
extern "C" __global__ void sobel(const float* __restrict__ in, float* __restrict__ out, int h, int w) {
    __shared__ float s[10][34];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int x0 = blockIdx.x * 32, y0 = blockIdx.y * 8;
    for (int i = ty; i < 10; i += 8) {
        const float* row = in + (size_t)reflect101(y0 + i - 1, h) * w;
        for (int j = tx; j < 34; j += 32) s[i][j] = row[reflect101(x0 + j - 1, w)];
    }
    __syncthreads();
    const int x = x0 + tx, y = y0 + ty;
    if (x >= w || y >= h) return;
    const float* a = s[ty];
    const float* b = s[ty + 1];
    const float* c = s[ty + 2];
    // Reflect-101 at the image edge makes x-1 and x+1 the same pixel; the halo already
    // holds it, so the interior formula applies everywhere.
    float gx = (a[tx + 2] - a[tx]) + 2.0f * (b[tx + 2] - b[tx]) + (c[tx + 2] - c[tx]);
    float gy = (c[tx] + 2.0f * c[tx + 1] + c[tx + 2]) - (a[tx] + 2.0f * a[tx + 1] + a[tx + 2]);
    out[(size_t)y * w + x] = sqrtf(fmaf(gx, gx, gy * gy));
}
