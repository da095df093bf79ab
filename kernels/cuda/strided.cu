// Strided data movement of any element size: views (Transpose, Slice,
// Broadcast), Gather, Where and Pad. One thread per output element, its
// source found from strides.

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
