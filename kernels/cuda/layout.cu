// Data movement that keeps values whole: Concat (one launch per input) and
// Cast.

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
