// Reductions (Reduce*, LayerNormalization). They visit their values in the
// CPU kernels' order, with the same accumulator precision, so results
// agree to rounding.

// Output dims collapse the reduced axes; `axes` is a bit mask.
struct JrtReduce {
    int rank, axes;
    int dims[JRT_MAX_RANK];
};

// One thread per output value.
extern "C" __global__ void jrt_reduce_f32(const float* __restrict__ x, float* __restrict__ y, int nout, int window, JrtReduce r, int op) {
    for (int o = blockIdx.x * blockDim.x + threadIdx.x; o < nout; o += gridDim.x * blockDim.x) {
        // The input offset of the output's kept coordinates.
        i64 base = 0, stride = 1;
        int rest = o;
        i64 strides[JRT_MAX_RANK];
        for (int a = r.rank - 1; a >= 0; --a) {
            strides[a] = stride;
            if (!(r.axes & (1 << a))) {
                int c = rest % r.dims[a];
                rest /= r.dims[a];
                base += c * stride;
            }
            stride *= r.dims[a];
        }
        float acc = (op == 2 || op == 9) ? JRT_NEG_INF : (op == 3 ? __int_as_float(0x7f800000) : (op == 4 ? 1.f : 0.f));
        for (int w = 0; w < window; ++w) {
            i64 off = base;
            int wr = w;
            for (int a = r.rank - 1; a >= 0; --a) {
                if (r.axes & (1 << a)) {
                    off += (i64)(wr % r.dims[a]) * strides[a];
                    wr /= r.dims[a];
                }
            }
            float v = x[off];
            switch (op) {
            case 0: case 1: case 8: acc = __fadd_rn(acc, v); break;                 // Sum, Mean, LogSum
            case 2: if (v > acc || isnan(v)) acc = v; break;                       // Max
            case 3: if (v < acc || isnan(v)) acc = v; break;                       // Min
            case 4: acc = __fmul_rn(acc, v); break;                                // Prod
            case 5: acc = __fadd_rn(acc, fabsf(v)); break;                         // L1
            case 6: case 7: acc = __fadd_rn(acc, __fmul_rn(v, v)); break;          // L2, SumSquare
            case 9: {                                                              // LogSumExp
                if (acc == JRT_NEG_INF) acc = v;
                else if (isnan(v) || isnan(acc)) acc = __int_as_float(0x7fc00000);
                else if (acc == v) acc = acc + 0.69314718055994531f;
                else acc = fmaxf(acc, v) + log1pf(expf(-fabsf(acc - v)));
                break;
            }
            }
        }
        if (op == 1) acc = acc / (float)window;
        else if (op == 6) acc = sqrtf(acc);
        else if (op == 8) acc = logf(acc);
        y[o] = acc;
    }
}

// One block of 256 threads per row of n values: mean and variance in
// double (as the CPU), then ((x − mean)·inv)·scale + bias.
extern "C" __global__ void jrt_layernorm_f32(const float* __restrict__ x, const float* __restrict__ scale, const float* __restrict__ bias,
                                             float* __restrict__ y, int rows, int n, int scale_stride, int bias_stride, float eps) {
    __shared__ double red[256];
    int r = blockIdx.x;
    if (r >= rows) return;
    const float* xr = x + (i64)r * n;
    float* yr = y + (i64)r * n;
    double s = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) s += (double)xr[i];
    red[threadIdx.x] = s;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w >>= 1) {
        if (threadIdx.x < w) red[threadIdx.x] += red[threadIdx.x + w];
        __syncthreads();
    }
    double mean = red[0] / (double)n;
    __syncthreads();
    double q = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        double d = (double)xr[i] - mean;
        q += d * d;
    }
    red[threadIdx.x] = q;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w >>= 1) {
        if (threadIdx.x < w) red[threadIdx.x] += red[threadIdx.x + w];
        __syncthreads();
    }
    double inv = 1.0 / sqrt(red[0] / (double)n + (double)eps);
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        float t = (float)(((double)xr[i] - mean) * inv);
        float b = bias ? bias[i * bias_stride] : 0.f;
        yr[i] = __fadd_rn(__fmul_rn(t, scale[i * scale_stride]), b);
    }
}
