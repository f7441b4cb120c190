// Synthetic data on the device, bit-identical to gpujobs_core::synth on the host:
// element i of stream `seed` is the SplitMix64 finaliser of seed + (i + 1) * golden,
// whose top 24 bits make an exact f32 in [0, 1), then lo + (hi - lo) * unit with each
// operation rounded separately (no FMA contraction), as the host computes it.
#include "common.cuh"

__device__ __forceinline__ u64 splitmix64(u64 z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

extern "C" __global__ void fill_uniform(float* __restrict__ out, u64 n, u64 seed, u64 start, float lo, float hi) {
    const u64 stride = (u64)gridDim.x * blockDim.x;
    const float span = __fsub_rn(hi, lo);
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        u64 bits = splitmix64(seed + (start + i + 1) * 0x9E3779B97F4A7C15ULL);
        float unit = (float)(bits >> 40) * (1.0f / 16777216.0f);
        out[i] = __fadd_rn(lo, __fmul_rn(span, unit));
    }
}
