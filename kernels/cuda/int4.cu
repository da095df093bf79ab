// Int4 weight-only products: weights stay packed (two per byte, low nibble
// first, stored as q + 8) with a float16 scale per group of K; each block
// decodes the values it needs into shared memory as it goes, so no
// dequantized copy of the weights ever exists. Activations are float32.

// Weight (row, k) of packed rows of `kb` bytes and `groups` scales each.
struct JrtQ4Rows {
    const unsigned char* packed;
    const unsigned short* scales;
    int kb, groups, group;
    __device__ float operator()(int row, int k) const {
        unsigned int byte = packed[(i64)row * kb + (k >> 1)];
        int q = (int)((k & 1) ? (byte >> 4) : (byte & 15u)) - 8;
        return (float)q * jrt_f16(scales[(i64)row * groups + k / group]);
    }
};

// Row-major weights as the A side of a product: A(m, k) = W(m, k).
struct JrtQ4AsA {
    JrtQ4Rows w;
    __device__ float operator()(int m, int k) const { return w(m, k); }
};

// Transposed, as the B side: B(k, n) = W(n, k).
struct JrtQ4AsB {
    JrtQ4Rows w;
    __device__ float operator()(int k, int n) const { return w(n, k); }
};

// y[M, N] = act(A·Wᵀ + bias) for A float [M, K], W int4 rows [N, K].
// Grid: (ceil(N/64), ceil(M/64)).
extern "C" __global__ void __launch_bounds__(256) jrt_q4gemm(const float* a, const unsigned char* packed, const unsigned short* scales,
                                                             const float* bias, float* y, int M, int N, int K, int group, int kind,
                                                             float p0, float p1) {
    JrtStridedMat la{a, K, 1};
    JrtQ4AsB lb{{packed, scales, (K + 1) / 2, (K + group - 1) / group, group}};
    JrtGemmStore st{y, bias, N, 0, 1, kind, 1.f, 1.f, p0, p1};
    jrt_tiled(M, N, 0, K, la, lb, st);
}

// Few rows: one warp per output, lanes over the packed bytes.
extern "C" __global__ void jrt_q4gemv(const float* __restrict__ a, const unsigned char* __restrict__ packed,
                                      const unsigned short* __restrict__ scales, const float* __restrict__ bias, float* __restrict__ y, int M,
                                      int N, int K, int group, int kind, float p0, float p1) {
    int wid = (blockIdx.x * blockDim.x + threadIdx.x) >> 5, lane = threadIdx.x & 31;
    if (wid >= M * N) return;
    int r = wid / N, c = wid - r * N;
    const int kb = (K + 1) / 2, groups = (K + group - 1) / group;
    const float* ar = a + (i64)r * K;
    const unsigned char* wr = packed + (i64)c * kb;
    const unsigned short* sr = scales + (i64)c * groups;
    float s = 0.f;
    for (int b = lane; b < kb; b += 32) {
        unsigned int byte = wr[b];
        int k = 2 * b;
        s = fmaf(ar[k], (float)((int)(byte & 15u) - 8) * jrt_f16(sr[k / group]), s);
        if (k + 1 < K) s = fmaf(ar[k + 1], (float)((int)(byte >> 4) - 8) * jrt_f16(sr[(k + 1) / group]), s);
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    if (lane == 0) {
        if (bias) s += bias[c];
        y[(i64)r * N + c] = jrt_act(s, kind, p0, p1);
    }
}

// The patches of one image as the B side of a convolution's product.
struct JrtPatches {
    const float* x;
    JrtConv g;
    __device__ float operator()(int k, int p) const {
        int khw = g.kh * g.kw;
        int c = k / khw, r = k - c * khw;
        int ky = r / g.kw, kx = r - ky * g.kw;
        int oy = p / g.ow, ox = p - oy * g.ow;
        int iy = oy * g.sh - g.pt + ky * g.dh, ix = ox * g.sw - g.pl + kx * g.dw;
        if ((unsigned)iy >= (unsigned)g.h || (unsigned)ix >= (unsigned)g.w) return 0.f;
        return x[((i64)c * g.h + iy) * g.w + ix];
    }
};

struct JrtImageStore {
    float* y;  // this image's first output channel
    const float* bias;
    int hw, kind;
    float a, b;
    __device__ void operator()(int m, int p, float v) const {
        if (bias) v += bias[m];
        y[(i64)m * hw + p] = jrt_act(v, kind, a, b);
    }
};

// A convolution (one group) with int4 weights [M, C·kh·kw].
// Grid: (ceil(OH·OW / 64), ceil(M / 64), N).
extern "C" __global__ void __launch_bounds__(256) jrt_q4conv(const float* x, const unsigned char* packed, const unsigned short* scales,
                                                             const float* bias, float* y, JrtConv g, int group, int kind, float p0, float p1) {
    const int K = g.c * g.kh * g.kw, P = g.oh * g.ow, img = blockIdx.z;
    JrtQ4AsA la{{packed, scales, (K + 1) / 2, (K + group - 1) / group, group}};
    JrtPatches lb{x + (i64)img * g.c * g.h * g.w, g};
    JrtImageStore st{y + (i64)img * g.m * P, bias, P, kind, p0, p1};
    jrt_tiled(g.m, P, 0, K, la, lb, st);
}
