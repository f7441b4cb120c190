// SGEMM, row-major: C = alpha * A(MxK) * B(KxN) + beta * C, any M, N, K.
//
// One block computes a BM x BN tile of C with (BM/TM)*(BN/TN) threads; each thread
// keeps a TM x TN register tile, laid out as 4x4 sub-blocks spaced BM/(TM/4) rows and
// BN/(TN/4) columns apart, so its shared-memory reads are float4 loads that a warp
// issues without bank conflicts. A's tile is stored transposed (k-major) in shared
// memory. Tiles of K are double-buffered: the next tile is loaded from global memory
// into registers while the current one is multiplied, then stored to the other buffer,
// with one barrier per step. VEC variants use 16-byte global loads and stores and need
// K, N and the leading dimensions to be multiples of 4; scalar variants take any shape.
// Out-of-range elements are loaded as zeros and never stored. With beta == 0, C is not
// read (it may hold garbage).
#include "common.cuh"

template <int BM, int BN, int BK, int TM, int TN, bool VEC>
__device__ __forceinline__ void sgemm_tile(int M, int N, int K, float alpha, const float* __restrict__ A, int lda,
                                           const float* __restrict__ B, int ldb, float beta, float* __restrict__ C, int ldc) {
    constexpr int NT = (BM / TM) * (BN / TN);
    constexpr int FA = BM * BK / 4, FB = BK * BN / 4;  // float4s per tile of A and B
    constexpr int LA = (FA + NT - 1) / NT;            // ... per thread (the last round may be partial)
    constexpr int LB = (FB + NT - 1) / NT;
    constexpr int RG = TM / 4, CG = TN / 4;
    static_assert(TM % 4 == 0 && TN % 4 == 0 && BK % 4 == 0, "register tiles are made of 4x4 blocks");

    __shared__ __align__(16) float As[2][BK][BM];
    __shared__ __align__(16) float Bs[2][BK][BN];

    const int tid = threadIdx.x;
    const int tx = tid % (BN / TN);
    const int ty = tid / (BN / TN);
    const int bm = blockIdx.y * BM;
    const int bn = blockIdx.x * BN;

    float acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; i++)
#pragma unroll
        for (int j = 0; j < TN; j++) acc[i][j] = 0.f;

    float4 ra[LA], rb[LB];

    auto load = [&](int k0) {
#pragma unroll
        for (int l = 0; l < LA; l++) {
            int f = tid + l * NT;
            if (FA % NT != 0 && f >= FA) break;
            int row = f / (BK / 4), kc = (f % (BK / 4)) * 4;
            int gr = bm + row, gk = k0 + kc;
            if (VEC) {
                ra[l] = (gr < M && gk < K) ? *reinterpret_cast<const float4*>(&A[(size_t)gr * lda + gk]) : make_float4(0.f, 0.f, 0.f, 0.f);
            } else {
                const float* p = &A[(size_t)gr * lda + gk];
                bool ok = gr < M;
                ra[l].x = (ok && gk + 0 < K) ? p[0] : 0.f;
                ra[l].y = (ok && gk + 1 < K) ? p[1] : 0.f;
                ra[l].z = (ok && gk + 2 < K) ? p[2] : 0.f;
                ra[l].w = (ok && gk + 3 < K) ? p[3] : 0.f;
            }
        }
#pragma unroll
        for (int l = 0; l < LB; l++) {
            int f = tid + l * NT;
            if (FB % NT != 0 && f >= FB) break;
            int kr = f / (BN / 4), nc = (f % (BN / 4)) * 4;
            int gk = k0 + kr, gn = bn + nc;
            if (VEC) {
                rb[l] = (gk < K && gn < N) ? *reinterpret_cast<const float4*>(&B[(size_t)gk * ldb + gn]) : make_float4(0.f, 0.f, 0.f, 0.f);
            } else {
                const float* p = &B[(size_t)gk * ldb + gn];
                bool ok = gk < K;
                rb[l].x = (ok && gn + 0 < N) ? p[0] : 0.f;
                rb[l].y = (ok && gn + 1 < N) ? p[1] : 0.f;
                rb[l].z = (ok && gn + 2 < N) ? p[2] : 0.f;
                rb[l].w = (ok && gn + 3 < N) ? p[3] : 0.f;
            }
        }
    };
    auto store = [&](int buf) {
#pragma unroll
        for (int l = 0; l < LA; l++) {
            int f = tid + l * NT;
            if (FA % NT != 0 && f >= FA) break;
            int row = f / (BK / 4), kc = (f % (BK / 4)) * 4;
            As[buf][kc + 0][row] = ra[l].x;
            As[buf][kc + 1][row] = ra[l].y;
            As[buf][kc + 2][row] = ra[l].z;
            As[buf][kc + 3][row] = ra[l].w;
        }
#pragma unroll
        for (int l = 0; l < LB; l++) {
            int f = tid + l * NT;
            if (FB % NT != 0 && f >= FB) break;
            int kr = f / (BN / 4), nc = (f % (BN / 4)) * 4;
            *reinterpret_cast<float4*>(&Bs[buf][kr][nc]) = rb[l];
        }
    };

    load(0);
    store(0);
    __syncthreads();
    int cur = 0;
    for (int k0 = 0; k0 < K; k0 += BK) {
        const bool next = k0 + BK < K;
        if (next) load(k0 + BK);
#pragma unroll
        for (int kk = 0; kk < BK; kk++) {
            float a[TM], b[TN];
#pragma unroll
            for (int g = 0; g < RG; g++) {
                float4 v = *reinterpret_cast<const float4*>(&As[cur][kk][g * (BM / RG) + ty * 4]);
                a[g * 4 + 0] = v.x; a[g * 4 + 1] = v.y; a[g * 4 + 2] = v.z; a[g * 4 + 3] = v.w;
            }
#pragma unroll
            for (int g = 0; g < CG; g++) {
                float4 v = *reinterpret_cast<const float4*>(&Bs[cur][kk][g * (BN / CG) + tx * 4]);
                b[g * 4 + 0] = v.x; b[g * 4 + 1] = v.y; b[g * 4 + 2] = v.z; b[g * 4 + 3] = v.w;
            }
#pragma unroll
            for (int i = 0; i < TM; i++)
#pragma unroll
                for (int j = 0; j < TN; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
        if (next) store(cur ^ 1);
        __syncthreads();
        cur ^= 1;
    }

#pragma unroll
    for (int i = 0; i < TM; i++) {
        const int row = bm + (i / 4) * (BM / RG) + ty * 4 + (i % 4);
        if (row >= M) continue;
#pragma unroll
        for (int g = 0; g < CG; g++) {
            const int col = bn + g * (BN / CG) + tx * 4;
            float* c = &C[(size_t)row * ldc + col];
            float v[4];
#pragma unroll
            for (int j = 0; j < 4; j++) v[j] = alpha * acc[i][g * 4 + j];
            if (VEC) {
                if (col < N) {
                    if (beta != 0.f) {
                        float4 old = *reinterpret_cast<const float4*>(c);
                        v[0] = fmaf(beta, old.x, v[0]); v[1] = fmaf(beta, old.y, v[1]);
                        v[2] = fmaf(beta, old.z, v[2]); v[3] = fmaf(beta, old.w, v[3]);
                    }
                    *reinterpret_cast<float4*>(c) = make_float4(v[0], v[1], v[2], v[3]);
                }
            } else {
#pragma unroll
                for (int j = 0; j < 4; j++) {
                    if (col + j < N) c[j] = beta != 0.f ? fmaf(beta, c[j], v[j]) : v[j];
                }
            }
        }
    }
}

#define SGEMM_VARIANT(NAME, BM, BN, BK, TM, TN, VEC)                                                              \
    extern "C" __global__ void __launch_bounds__((BM / TM) * (BN / TN))                                            \
        NAME(int M, int N, int K, float alpha, const float* __restrict__ A, int lda, const float* __restrict__ B, \
             int ldb, float beta, float* __restrict__ C, int ldc) {                                                \
        sgemm_tile<BM, BN, BK, TM, TN, VEC>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);                        \
    }

SGEMM_VARIANT(sgemm_128x128x8_vec, 128, 128, 8, 8, 8, true)
SGEMM_VARIANT(sgemm_128x128x16_vec, 128, 128, 16, 8, 8, true)
SGEMM_VARIANT(sgemm_128x64x8_vec, 128, 64, 8, 8, 4, true)
SGEMM_VARIANT(sgemm_64x64x8_vec, 64, 64, 8, 4, 4, true)
SGEMM_VARIANT(sgemm_128x128x8_scalar, 128, 128, 8, 8, 8, false)
SGEMM_VARIANT(sgemm_64x64x8_scalar, 64, 64, 8, 4, 4, false)
