// c = a + b: 16-byte loads and stores, grid-stride, scalar tail. The buffers come from
// cuMemAlloc (256-byte aligned), so the float4 casts are aligned.
#include "common.cuh"

extern "C" __global__ void vector_add(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ c, u64 n) {
    const u64 stride = (u64)gridDim.x * blockDim.x;
    const u64 tid = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    const u64 n4 = n / 4;
    const float4* a4 = reinterpret_cast<const float4*>(a);
    const float4* b4 = reinterpret_cast<const float4*>(b);
    float4* c4 = reinterpret_cast<float4*>(c);
    for (u64 i = tid; i < n4; i += stride) {
        float4 x = a4[i];
        float4 y = b4[i];
        c4[i] = make_float4(x.x + y.x, x.y + y.y, x.z + y.z, x.w + y.w);
    }
    for (u64 i = n4 * 4 + tid; i < n; i += stride) {
        c[i] = a[i] + b[i];
    }
}
