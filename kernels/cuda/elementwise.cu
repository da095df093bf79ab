// Elementwise kernels: activations, broadcast binary ops, per-channel affine.

extern "C" __global__ void jrt_act_f32(const float* __restrict__ x, float* __restrict__ y, int n, int kind, float a, float b) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        y[i] = jrt_act(x[i], kind, a, b);
}

// `op` is the file's binary op code (jetrt-format's BINARY_OPS table).
__device__ __forceinline__ float jrt_binary(int op, float a, float b) {
    switch (op) {
    case 1: return a + b;
    case 2: return a - b;
    case 3: return a * b;
    case 4: return a / b;
    case 5: return (isnan(a) || isnan(b)) ? __int_as_float(0x7fc00000) : fmaxf(a, b);
    case 6: return (isnan(a) || isnan(b)) ? __int_as_float(0x7fc00000) : fminf(a, b);
    case 7: return powf(a, b);
    case 8: return a < 0.f ? a * b : a;                       // PRelu
    case 9: { float r = fmodf(a, b); return (r != 0.f && ((r < 0.f) != (b < 0.f))) ? r + b : r; }
    case 10: return fmodf(a, b);
    default: return a;
    }
}

// Same-shape operands (the common case): no index arithmetic.
extern "C" __global__ void jrt_binary_same_f32(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ y, int n,
                                               int op, int kind, float p0, float p1) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        y[i] = jrt_act(jrt_binary(op, a[i], b[i]), kind, p0, p1);
}

extern "C" __global__ void jrt_binary_bcast_f32(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ y, int n,
                                                JrtBcast g, int op, int kind, float p0, float p1) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        int rest = i, ia = 0, ib = 0;
        for (int d = g.rank - 1; d >= 0; --d) {
            int q = rest / g.out[d];
            int r = rest - q * g.out[d];
            ia += r * g.sa[d];
            ib += r * g.sb[d];
            rest = q;
        }
        y[i] = jrt_act(jrt_binary(op, a[ia], b[ib]), kind, p0, p1);
    }
}

// y = act(x * scale[c] + shift[c]) over [outer, channels, inner]; a scale
// or shift of one value has stride 0.
extern "C" __global__ void jrt_affine_f32(const float* __restrict__ x, const float* __restrict__ scale, const float* __restrict__ shift,
                                          float* __restrict__ y, int n, int channels, int inner, int scale_stride, int shift_stride,
                                          int kind, float a, float b) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        int c = (i / inner) % channels;
        y[i] = jrt_act(x[i] * scale[c * scale_stride] + shift[c * shift_stride], kind, a, b);
    }
}
