// The element-wise steps of MLP training (the products run on the sgemm kernels),
// following gpujobs_core::jobs::mlp_train step for step.
#include "common.cuh"

// out[r][c] = x[idx[r]][c]: the minibatch rows in the epoch's order.
extern "C" __global__ void gather_rows(const float* __restrict__ x, const unsigned* __restrict__ idx,
                                       float* __restrict__ out, int rows, int cols) {
    const u64 n = (u64)rows * cols;
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (u64)gridDim.x * blockDim.x) {
        const u64 r = i / cols, c = i % cols;
        out[i] = x[(u64)idx[r] * cols + c];
    }
}

// z[r][c] = z[r][c] + b[c], then ReLU when `relu` is set.
extern "C" __global__ void bias_act(float* __restrict__ z, const float* __restrict__ b, int rows, int cols, int relu) {
    const u64 n = (u64)rows * cols;
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (u64)gridDim.x * blockDim.x) {
        float v = z[i] + b[i % cols];
        z[i] = relu ? fmaxf(v, 0.f) : v;
    }
}

// One warp per row: softmax cross-entropy of the logits against labels[idx[row]],
// its gradient (p - onehot) * inv_bs into grad, and the row's loss and whether its
// argmax (first maximum) is right added to the epoch's totals.
extern "C" __global__ void softmax_xent(const float* __restrict__ logits, const unsigned* __restrict__ labels,
                                        const unsigned* __restrict__ idx, float* __restrict__ grad, int rows,
                                        int classes, float inv_bs, double* loss_sum, unsigned long long* correct) {
    const int warp = (blockIdx.x * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x % 32;
    if (warp >= rows) return;
    const float* l = logits + (u64)warp * classes;
    float mx = -INFINITY;
    int arg = 0x7fffffff;
    for (int c = lane; c < classes; c += 32) {
        if (l[c] > mx) { mx = l[c]; arg = c; }
    }
    for (int o = 16; o > 0; o /= 2) {
        float om = __shfl_xor_sync(0xffffffff, mx, o);
        int oa = __shfl_xor_sync(0xffffffff, arg, o);
        if (om > mx || (om == mx && oa < arg)) { mx = om; arg = oa; }
    }
    float sum = 0.f;
    for (int c = lane; c < classes; c += 32) sum += expf(l[c] - mx);
    for (int o = 16; o > 0; o /= 2) sum += __shfl_xor_sync(0xffffffff, sum, o);
    const unsigned label = labels[idx[warp]];
    float* g = grad + (u64)warp * classes;
    for (int c = lane; c < classes; c += 32) {
        float p = expf(l[c] - mx) / sum;
        g[c] = (p - (c == (int)label ? 1.f : 0.f)) * inv_bs;
    }
    if (lane == 0) {
        atomicAdd(loss_sum, (double)(-(l[label] - mx - logf(sum))));
        if (arg == (int)label) atomicAdd(correct, 1ULL);
    }
}

// g[i] = 0 where the layer's ReLU output h[i] was not positive.
extern "C" __global__ void relu_mask(float* __restrict__ g, const float* __restrict__ h, u64 n) {
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (u64)gridDim.x * blockDim.x) {
        if (h[i] <= 0.f) g[i] = 0.f;
    }
}

// b[c] -= lr * (sum over rows of g[r][c]), rows summed in order and each operation
// rounded separately, as on the host.
extern "C" __global__ void bias_sgd(float* __restrict__ b, const float* __restrict__ g, int rows, int cols, float lr) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    float s = 0.f;
    for (int r = 0; r < rows; r++) s = __fadd_rn(s, g[(u64)r * cols + c]);
    b[c] = __fsub_rn(b[c], __fmul_rn(lr, s));
}

// out = in^T for a rows x cols matrix, through a 32x33 shared tile.
extern "C" __global__ void transpose(const float* __restrict__ in, float* __restrict__ out, int rows, int cols) {
    __shared__ float t[32][33];
    const int x = blockIdx.x * 32 + threadIdx.x;
    const int y = blockIdx.y * 32 + threadIdx.y;
    for (int j = 0; j < 32; j += 8) {
        if (x < cols && y + j < rows) t[threadIdx.y + j][threadIdx.x] = in[(u64)(y + j) * cols + x];
    }
    __syncthreads();
    const int ox = blockIdx.y * 32 + threadIdx.x;
    const int oy = blockIdx.x * 32 + threadIdx.y;
    for (int j = 0; j < 32; j += 8) {
        if (ox < rows && oy + j < cols) out[(u64)(oy + j) * rows + ox] = t[threadIdx.x][threadIdx.y + j];
    }
}

// One warp per row: softmax probabilities of the logits into probs, and the row's
// label (the first largest logit) into labels as a float, as the host does.
extern "C" __global__ void softmax_rows(const float* __restrict__ logits, float* __restrict__ probs,
                                        float* __restrict__ labels, int rows, int classes) {
    const int warp = (blockIdx.x * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x % 32;
    if (warp >= rows) return;
    const float* l = logits + (u64)warp * classes;
    float mx = -INFINITY;
    int arg = 0x7fffffff;
    for (int c = lane; c < classes; c += 32) {
        if (l[c] > mx) { mx = l[c]; arg = c; }
    }
    for (int o = 16; o > 0; o /= 2) {
        float om = __shfl_xor_sync(0xffffffff, mx, o);
        int oa = __shfl_xor_sync(0xffffffff, arg, o);
        if (om > mx || (om == mx && oa < arg)) { mx = om; arg = oa; }
    }
    float sum = 0.f;
    for (int c = lane; c < classes; c += 32) sum += expf(l[c] - mx);
    for (int o = 16; o > 0; o /= 2) sum += __shfl_xor_sync(0xffffffff, sum, o);
    float* p = probs + (u64)warp * classes;
    for (int c = lane; c < classes; c += 32) p[c] = expf(l[c] - mx) / sum;
    if (lane == 0) labels[warp] = (float)arg;
}
