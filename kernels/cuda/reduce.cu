// Reductions (Reduce*, LayerNormalization) and the remaining data movement
// (Where, Pad). Reductions visit their values in the CPU kernels' order,
// with the same accumulator precision, so results agree to rounding.

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

// Where: y = cond ? a : b with broadcasting (element strides per operand).
struct JrtWhere {
    int rank;
    int out[JRT_MAX_RANK];
    int sc[JRT_MAX_RANK];
    int sa[JRT_MAX_RANK];
    int sb[JRT_MAX_RANK];
};

template <typename T>
__device__ void jrt_where(const unsigned char* c, const T* a, const T* b, T* y, int n, const JrtWhere& g) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        int rest = i, ic = 0, ia = 0, ib = 0;
        for (int d = g.rank - 1; d >= 0; --d) {
            int q = rest / g.out[d], r = rest - q * g.out[d];
            ic += r * g.sc[d];
            ia += r * g.sa[d];
            ib += r * g.sb[d];
            rest = q;
        }
        y[i] = c[ic] ? a[ia] : b[ib];
    }
}

extern "C" __global__ void jrt_where_1(const unsigned char* c, const unsigned char* a, const unsigned char* b, unsigned char* y, int n, JrtWhere g) { jrt_where(c, a, b, y, n, g); }
extern "C" __global__ void jrt_where_2(const unsigned char* c, const unsigned short* a, const unsigned short* b, unsigned short* y, int n, JrtWhere g) { jrt_where(c, a, b, y, n, g); }
extern "C" __global__ void jrt_where_4(const unsigned char* c, const unsigned int* a, const unsigned int* b, unsigned int* y, int n, JrtWhere g) { jrt_where(c, a, b, y, n, g); }
extern "C" __global__ void jrt_where_8(const unsigned char* c, const u64* a, const u64* b, u64* y, int n, JrtWhere g) { jrt_where(c, a, b, y, n, g); }

// Pad: in dims, begin offsets and out dims per axis; mode 0 constant,
// 1 reflect, 2 edge, 3 wrap; `value` is the constant's bits.
struct JrtPad {
    int rank, mode;
    int in[JRT_MAX_RANK];
    int begin[JRT_MAX_RANK];
    int out[JRT_MAX_RANK];
};

__device__ __forceinline__ int jrt_pad_src(int mode, int o, int begin, int len) {
    int i = o - begin;
    if (i >= 0 && i < len) return i;
    switch (mode) {
    case 2: return i < 0 ? 0 : len - 1;
    case 3: { int r = i % len; return r < 0 ? r + len : r; }
    case 1: {
        if (len == 1) return 0;
        int period = 2 * (len - 1);
        int r = i % period;
        if (r < 0) r += period;
        return r < len ? r : period - r;
    }
    default: return -1;
    }
}

template <typename T>
__device__ void jrt_pad(const T* x, T* y, int n, const JrtPad& g, T value) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        int rest = i;
        i64 src = 0, stride = 1;
        bool inside = true;
        for (int d = g.rank - 1; d >= 0; --d) {
            int q = rest / g.out[d], o = rest - q * g.out[d];
            rest = q;
            int s = jrt_pad_src(g.mode, o, g.begin[d], g.in[d]);
            if (s < 0) inside = false;
            src += (i64)s * stride;
            stride *= g.in[d];
        }
        y[i] = inside ? x[src] : value;
    }
}

extern "C" __global__ void jrt_pad_1(const unsigned char* x, unsigned char* y, int n, JrtPad g, u64 v) { jrt_pad(x, y, n, g, (unsigned char)v); }
extern "C" __global__ void jrt_pad_2(const unsigned short* x, unsigned short* y, int n, JrtPad g, u64 v) { jrt_pad(x, y, n, g, (unsigned short)v); }
extern "C" __global__ void jrt_pad_4(const unsigned int* x, unsigned int* y, int n, JrtPad g, u64 v) { jrt_pad(x, y, n, g, (unsigned int)v); }
extern "C" __global__ void jrt_pad_8(const u64* x, u64* y, int n, JrtPad g, u64 v) { jrt_pad(x, y, n, g, v); }
