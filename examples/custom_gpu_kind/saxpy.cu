// The kernel of examples/custom_gpu_kind.rs: y = a * x + y, grid-stride.
// Compiled to saxpy.ptx with: nvcc -ptx -arch=compute_75 -O3 saxpy.cu -o saxpy.ptx
extern "C" __global__ void saxpy(float a, const float* __restrict__ x, float* __restrict__ y, unsigned long long n) {
    const unsigned long long stride = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        y[i] = fmaf(a, x[i], y[i]);
    }
}
