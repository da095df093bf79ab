// Data movement: strided views (Transpose, Slice, Broadcast) of any element
// size, and Concat.

template <typename T>
__device__ void jrt_strided(const T* __restrict__ x, T* __restrict__ y, int n, const JrtStrided& g) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        int rest = i;
        i64 off = g.base;
        for (int d = g.rank - 1; d >= 0; --d) {
            int q = rest / g.out[d];
            off += (i64)(rest - q * g.out[d]) * g.st[d];
            rest = q;
        }
        y[i] = x[off];
    }
}

extern "C" __global__ void jrt_strided_1(const unsigned char* x, unsigned char* y, int n, JrtStrided g) { jrt_strided(x, y, n, g); }
extern "C" __global__ void jrt_strided_2(const unsigned short* x, unsigned short* y, int n, JrtStrided g) { jrt_strided(x, y, n, g); }
extern "C" __global__ void jrt_strided_4(const unsigned int* x, unsigned int* y, int n, JrtStrided g) { jrt_strided(x, y, n, g); }
extern "C" __global__ void jrt_strided_8(const u64* x, u64* y, int n, JrtStrided g) { jrt_strided(x, y, n, g); }

// One input of a Concat: x is [outer, chunk] and lands in y [outer, total]
// at column `offset` (all in elements of 4 bytes).
extern "C" __global__ void jrt_concat_4(const unsigned int* __restrict__ x, unsigned int* __restrict__ y, int outer, int chunk, int total,
                                        int offset) {
    int n = outer * chunk;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        int o = i / chunk;
        y[(i64)o * total + offset + (i - o * chunk)] = x[i];
    }
}

// Gather along one axis: y[o][j][i] = x[o][idx[j]][i] (`inner` elements of
// T per index), negative indices counting from the end. An out-of-range
// index writes nothing and records (step + 1, index) in err[0..2] (the
// first to get there); the runtime turns that into the same error as the
// CPU backend's.
template <typename T>
__device__ void jrt_gather(const T* x, const void* idx, int wide, T* y, int outer, int n_idx, int axis_len, int inner, u64* err, int step) {
    int n = outer * n_idx * inner;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        int in = i % inner, j = (i / inner) % n_idx, o = i / (inner * n_idx);
        i64 k = wide ? ((const i64*)idx)[j] : (i64)((const int*)idx)[j];
        i64 kk = k < 0 ? k + axis_len : k;
        if (kk < 0 || kk >= axis_len) {
            if (atomicCAS(err, 0ull, (u64)(step + 1)) == 0ull) err[1] = (u64)k;
            continue;
        }
        y[i] = x[((i64)o * axis_len + kk) * inner + in];
    }
}

extern "C" __global__ void jrt_gather_1(const unsigned char* x, const void* idx, int wide, unsigned char* y, int outer, int n_idx, int axis_len, int inner, u64* err, int step) { jrt_gather(x, idx, wide, y, outer, n_idx, axis_len, inner, err, step); }
extern "C" __global__ void jrt_gather_2(const unsigned short* x, const void* idx, int wide, unsigned short* y, int outer, int n_idx, int axis_len, int inner, u64* err, int step) { jrt_gather(x, idx, wide, y, outer, n_idx, axis_len, inner, err, step); }
extern "C" __global__ void jrt_gather_4(const unsigned int* x, const void* idx, int wide, unsigned int* y, int outer, int n_idx, int axis_len, int inner, u64* err, int step) { jrt_gather(x, idx, wide, y, outer, n_idx, axis_len, inner, err, step); }
extern "C" __global__ void jrt_gather_8(const u64* x, const void* idx, int wide, u64* y, int outer, int n_idx, int axis_len, int inner, u64* err, int step) { jrt_gather(x, idx, wide, y, outer, n_idx, axis_len, inner, err, step); }

// Rust's `f64 as i64`: toward zero, saturating, NaN to 0.
__device__ __forceinline__ i64 jrt_f2i64(double d) {
    if (isnan(d)) return 0;
    if (d >= 9.2233720368547758e18) return 0x7fffffffffffffffll;
    if (d <= -9.2233720368547758e18) return (i64)0x8000000000000000ull;
    return (i64)d;
}

// Cast as the CPU does (every value through f64 or i64 first). Type
// codes: 0 f32, 1 f64, 2 i64, 3 i32, 4 i8, 5 u8, 6 bool.
extern "C" __global__ void jrt_cast(const void* x, void* y, int n, int from, int to) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        double f = 0.0;
        i64 v = 0;
        const bool fl = from <= 1;
        switch (from) {
        case 0: f = (double)((const float*)x)[i]; break;
        case 1: f = ((const double*)x)[i]; break;
        case 2: v = ((const i64*)x)[i]; break;
        case 3: v = ((const int*)x)[i]; break;
        case 4: v = ((const signed char*)x)[i]; break;
        default: v = ((const unsigned char*)x)[i]; break;
        }
        switch (to) {
        case 0: ((float*)y)[i] = fl ? (float)f : (float)(double)v; break;
        case 1: ((double*)y)[i] = fl ? f : (double)v; break;
        case 6: ((unsigned char*)y)[i] = fl ? (f != 0.0) : (v != 0); break;
        default: {
            i64 w = fl ? jrt_f2i64(f) : v;
            switch (to) {
            case 2: ((i64*)y)[i] = w; break;
            case 3: ((int*)y)[i] = (int)(unsigned int)(u64)w; break;
            case 4: ((signed char*)y)[i] = (signed char)(unsigned char)(u64)w; break;
            default: ((unsigned char*)y)[i] = (unsigned char)(u64)w; break;
            }
        }
        }
    }
}
