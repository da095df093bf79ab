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
