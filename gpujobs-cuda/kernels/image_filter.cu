// Gaussian blur (separable) and Sobel magnitude with OpenCV's semantics: reflect-101
// borders, the host's kernel weights, and the host's order of operations
// (w[r]*x[r] then fma(w[k], x[k] + x[2r-k], acc) for k < r), so the GPU agrees with
// the CPU backend to the last bits where both use FMA.
#include "common.cuh"

// Outputs per thread of the row pass, spaced blockDim.x apart (conflict-free shared
// reads, coalesced stores); a row-pass block covers ROW_OUT * blockDim.x columns.
#define ROW_OUT 4
// Output rows per block of the tiled column pass (16 per thread of a 32x8 block).
#define COL_ROWS 128

// Horizontal pass. Grid: x = image row, y = segment of ROW_OUT * blockDim.x columns.
// Shared memory: the r+1 weights used (symmetry), then the segment with its halo.
// Segments away from the borders load without reflect-101 index arithmetic.
extern "C" __global__ void blur_rows(const float* __restrict__ in, float* __restrict__ out, int h, int w,
                                     const float* __restrict__ weights, int r) {
    extern __shared__ float sh[];
    float* wk = sh;
    float* s = sh + r + 1;
    const int y = blockIdx.x;
    const int seg = ROW_OUT * blockDim.x;
    const int x0 = blockIdx.y * seg;
    const int span = seg + 2 * r;
    const float* row = in + (size_t)y * w;
    for (int i = threadIdx.x; i <= r; i += blockDim.x) wk[i] = weights[i];
    if (x0 - r >= 0 && x0 - r + span <= w) {
        for (int i = threadIdx.x; i < span; i += blockDim.x) s[i] = row[x0 - r + i];
    } else {
        for (int i = threadIdx.x; i < span; i += blockDim.x) s[i] = row[reflect101(x0 + i - r, w)];
    }
    __syncthreads();
#pragma unroll
    for (int j = 0; j < ROW_OUT; j++) {
        const int tx = threadIdx.x + j * blockDim.x;
        const int x = x0 + tx;
        if (x >= w) break;
        const float* p = s + tx;
        float acc = wk[r] * p[r];
        for (int k = 0; k < r; k++) acc = fmaf(wk[k], p[k] + p[2 * r - k], acc);
        out[(size_t)y * w + x] = acc;
    }
}

// Horizontal pass for kernels too wide for shared memory (sigma beyond ~900): one
// output per thread, reading the row from global memory. Grid: x = row, y = segment of
// blockDim.x columns.
extern "C" __global__ void blur_rows_direct(const float* __restrict__ in, float* __restrict__ out, int h, int w,
                                            const float* __restrict__ weights, int r) {
    const int y = blockIdx.x;
    const int x = blockIdx.y * blockDim.x + threadIdx.x;
    if (x >= w) return;
    const float* row = in + (size_t)y * w;
    float acc = __ldg(&weights[r]) * row[x];
    for (int k = 0; k < r; k++) {
        acc = fmaf(__ldg(&weights[k]), row[reflect101(x + k - r, w)] + row[reflect101(x + r - k, w)], acc);
    }
    out[(size_t)y * w + x] = acc;
}

// Vertical pass, tiled. Block 32x8 threads computes 32 columns x COL_ROWS rows
// (COL_ROWS/8 rows per thread); shared memory holds the r+1 weights and the
// (COL_ROWS + 2r) x 32 input rows the tile needs.
extern "C" __global__ void blur_cols(const float* __restrict__ in, float* __restrict__ out, int h, int w,
                                     const float* __restrict__ weights, int r) {
    extern __shared__ float sh[];
    float* wk = sh;
    float* s = sh + r + 1;
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int x = blockIdx.x * 32 + tx;
    const int y0 = blockIdx.y * COL_ROWS;
    const int rows = COL_ROWS + 2 * r;
    for (int i = ty * 32 + tx; i <= r; i += 256) wk[i] = weights[i];
    const bool interior = y0 - r >= 0 && y0 - r + rows <= h;
    for (int i = ty; i < rows; i += 8) {
        int sy = interior ? y0 - r + i : reflect101(y0 + i - r, h);
        s[i * 32 + tx] = x < w ? in[(size_t)sy * w + x] : 0.f;
    }
    __syncthreads();
    if (x >= w) return;
    for (int j = 0; j < COL_ROWS / 8; j++) {
        const int yy = ty + j * 8;
        const int y = y0 + yy;
        if (y >= h) break;
        const float* p = s + yy * 32 + tx;
        float acc = wk[r] * p[r * 32];
        for (int k = 0; k < r; k++) acc = fmaf(wk[k], p[k * 32] + p[(2 * r - k) * 32], acc);
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

// Sobel magnitude, ksize 3. Block 32x8 threads computes a 32x32 tile (4 rows per
// thread) from a 34x34 shared tile with a one-pixel reflected halo; interior tiles load
// without reflect-101 arithmetic. Grid: x = column tiles, y = row tiles.
extern "C" __global__ void sobel(const float* __restrict__ in, float* __restrict__ out, int h, int w) {
    __shared__ float s[34][34];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int x0 = blockIdx.x * 32, y0 = blockIdx.y * 32;
    const bool interior = x0 >= 1 && y0 >= 1 && x0 + 33 <= w && y0 + 33 <= h;
    for (int i = ty; i < 34; i += 8) {
        const int sy = interior ? y0 + i - 1 : reflect101(y0 + i - 1, h);
        const float* row = in + (size_t)sy * w;
        for (int j = tx; j < 34; j += 32) s[i][j] = row[interior ? x0 + j - 1 : reflect101(x0 + j - 1, w)];
    }
    __syncthreads();
    const int x = x0 + tx;
    if (x >= w) return;
    for (int q = 0; q < 4; q++) {
        const int yy = ty + q * 8;
        const int y = y0 + yy;
        if (y >= h) break;
        const float* a = s[yy];
        const float* b = s[yy + 1];
        const float* c = s[yy + 2];
        // Reflect-101 at the image edge makes x-1 and x+1 the same pixel; the halo
        // already holds it, so the interior formula applies everywhere.
        float gx = (a[tx + 2] - a[tx]) + 2.0f * (b[tx + 2] - b[tx]) + (c[tx + 2] - c[tx]);
        float gy = (c[tx] + 2.0f * c[tx + 1] + c[tx + 2]) - (a[tx] + 2.0f * a[tx + 1] + a[tx + 2]);
        out[(size_t)y * w + x] = sqrtf(fmaf(gx, gx, gy * gy));
    }
}
