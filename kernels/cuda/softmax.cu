// Softmax, over contiguous rows or along a strided axis.

// Softmax over contiguous rows: one block of 256 threads per row.
extern "C" __global__ void jrt_softmax_rows_f32(const float* __restrict__ x, float* __restrict__ y, int rows, int n) {
    __shared__ float red[256];
    int r = blockIdx.x;
    if (r >= rows) return;
    const float* xr = x + (i64)r * n;
    float* yr = y + (i64)r * n;
    float m = JRT_NEG_INF;
    for (int i = threadIdx.x; i < n; i += blockDim.x) m = fmaxf(m, xr[i]);
    red[threadIdx.x] = m;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w >>= 1) {
        if (threadIdx.x < w) red[threadIdx.x] = fmaxf(red[threadIdx.x], red[threadIdx.x + w]);
        __syncthreads();
    }
    m = red[0];
    __syncthreads();
    float s = 0.f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        float e = expf(xr[i] - m);
        yr[i] = e;
        s += e;
    }
    red[threadIdx.x] = s;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w >>= 1) {
        if (threadIdx.x < w) red[threadIdx.x] += red[threadIdx.x + w];
        __syncthreads();
    }
    float inv = 1.f / red[0];
    for (int i = threadIdx.x; i < n; i += blockDim.x) yr[i] *= inv;
}

// Softmax along a strided axis: one thread per (outer, inner) pair.
extern "C" __global__ void jrt_softmax_strided_f32(const float* __restrict__ x, float* __restrict__ y, int outer, int n, int inner) {
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= outer * inner) return;
    int o = t / inner, in = t - o * inner;
    const float* xr = x + (i64)o * n * inner + in;
    float* yr = y + (i64)o * n * inner + in;
    float m = JRT_NEG_INF;
    for (int i = 0; i < n; ++i) m = fmaxf(m, xr[(i64)i * inner]);
    float s = 0.f;
    for (int i = 0; i < n; ++i) {
        float e = expf(xr[(i64)i * inner] - m);
        yr[(i64)i * inner] = e;
        s += e;
    }
    float inv = 1.f / s;
    for (int i = 0; i < n; ++i) yr[(i64)i * inner] *= inv;
}
