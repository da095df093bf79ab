// Float32 matrix products and convolutions as tiled matrix products.
//
// One block of 256 threads computes a 64×64 tile of the output in steps of
// 16 along K through shared memory; thread (tx, ty) holds rows ty + 16·i and
// columns tx + 16·j (i, j < 4), so that a warp's stores are consecutive.
// A convolution is the product of its weights [M/g, K] with the patches of
// its input [K, OH·OW], gathered on the fly (implicit GEMM): no im2col
// buffer exists.

#define JRT_TM 64
#define JRT_TN 64
#define JRT_TK 16

template <typename LoadA, typename LoadB, typename Store>
__device__ __forceinline__ void jrt_tiled(int M, int N, int K, const LoadA& la, const LoadB& lb, const Store& st) {
    __shared__ float As[JRT_TK][JRT_TM];
    __shared__ float Bs[JRT_TK][JRT_TN];
    const int t = threadIdx.x, tx = t & 15, ty = t >> 4;
    const int m0 = blockIdx.y * JRT_TM, n0 = blockIdx.x * JRT_TN;
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = 0.f;
    for (int k0 = 0; k0 < K; k0 += JRT_TK) {
#pragma unroll
        for (int l = 0; l < 4; ++l) {
            int idx = t + 256 * l;
            int r = idx >> 4, k = idx & 15;
            As[k][r] = (m0 + r < M && k0 + k < K) ? la(m0 + r, k0 + k) : 0.f;
            int kb = idx >> 6, c = idx & 63;
            Bs[kb][c] = (n0 + c < N && k0 + kb < K) ? lb(k0 + kb, n0 + c) : 0.f;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < JRT_TK; ++kk) {
            float a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; ++i) a[i] = As[kk][ty + 16 * i];
#pragma unroll
            for (int j = 0; j < 4; ++j) b[j] = Bs[kk][tx + 16 * j];
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            int m = m0 + ty + 16 * i, n = n0 + tx + 16 * j;
            if (m < M && n < N) st(m, n, acc[i][j]);
        }
}

struct JrtStridedMat {
    const float* p;
    int rs, cs;
    __device__ float operator()(int r, int c) const { return p[(i64)r * rs + (i64)c * cs]; }
};

struct JrtGemmStore {
    float* y;
    const float* bias;
    int n, brs, bcs, kind;
    float alpha, beta, a, b;
    __device__ void operator()(int r, int c, float v) const {
        v *= alpha;
        if (bias) v += beta * bias[(i64)r * brs + (i64)c * bcs];
        y[(i64)r * n + c] = jrt_act(v, kind, a, b);
    }
};

// y[M, N] = act(alpha · A·B + beta · bias), A(i, k) = a[i·ars + k·acs],
// B(k, j) = b[k·brs + j·bcs] (transposes are strides), bias by strides
// (null for none).
extern "C" __global__ void __launch_bounds__(256) jrt_gemm_f32(const float* a, const float* b, const float* bias, float* y, int M, int N, int K,
                                                               int ars, int acs, int brs, int bcs, int bias_rs, int bias_cs, float alpha,
                                                               float beta, int kind, float p0, float p1) {
    JrtStridedMat la{a, ars, acs}, lb{b, brs, bcs};
    JrtGemmStore st{y, bias, N, bias_rs, bias_cs, kind, alpha, beta, p0, p1};
    jrt_tiled(M, N, K, la, lb, st);
}

struct JrtPatch {
    const float* x;  // this image and group's first channel
    JrtConv g;
    int khw;
    __device__ float operator()(int k, int p) const {
        int c = k / khw, r = k - c * khw;
        int ky = r / g.kw, kx = r - ky * g.kw;
        int oy = p / g.ow, ox = p - oy * g.ow;
        int iy = oy * g.sh - g.pt + ky * g.dh, ix = ox * g.sw - g.pl + kx * g.dw;
        if ((unsigned)iy >= (unsigned)g.h || (unsigned)ix >= (unsigned)g.w) return 0.f;
        return x[((i64)c * g.h + iy) * g.w + ix];
    }
};

struct JrtConvStore {
    float* y;  // this image and group's first output channel
    const float* bias;  // this group's first bias, or null
    int hw, kind;
    float a, b;
    __device__ void operator()(int m, int p, float v) const {
        if (bias) v += bias[m];
        y[(i64)m * hw + p] = jrt_act(v, kind, a, b);
    }
};

// Grid: (ceil(OH·OW / 64), ceil(M/g / 64), N·g).
extern "C" __global__ void __launch_bounds__(256) jrt_conv_f32(const float* x, const float* w, const float* bias, float* y, JrtConv g,
                                                               int kind, float p0, float p1) {
    const int groups = g.groups, cg = g.c / groups, mg = g.m / groups;
    const int img = blockIdx.z / groups, grp = blockIdx.z - img * groups;
    const int khw = g.kh * g.kw, K = cg * khw, P = g.oh * g.ow;
    JrtStridedMat la{w + (i64)grp * mg * K, K, 1};
    JrtPatch lb{x + ((i64)img * g.c + (i64)grp * cg) * g.h * g.w, g, khw};
    JrtConvStore st{y + ((i64)img * g.m + (i64)grp * mg) * P, bias ? bias + grp * mg : nullptr, P, kind, p0, p1};
    jrt_tiled(mg, P, K, la, lb, st);
}

// Convolutions with few output channels per group (depthwise): one thread
// per output value.
extern "C" __global__ void jrt_conv_direct_f32(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ bias,
                                               float* __restrict__ y, JrtConv g, int kind, float p0, float p1) {
    const int cg = g.c / g.groups, mg = g.m / g.groups, P = g.oh * g.ow;
    const int total = g.n * g.m * P;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
        int p = i % P, m = (i / P) % g.m, img = i / (P * g.m);
        int oy = p / g.ow, ox = p - oy * g.ow, grp = m / mg;
        const float* xs = x + ((i64)img * g.c + (i64)grp * cg) * g.h * g.w;
        const float* ws = w + (i64)m * cg * g.kh * g.kw;
        float s = 0.f;
        for (int c = 0; c < cg; ++c)
            for (int ky = 0; ky < g.kh; ++ky) {
                int iy = oy * g.sh - g.pt + ky * g.dh;
                if ((unsigned)iy >= (unsigned)g.h) continue;
                for (int kx = 0; kx < g.kw; ++kx) {
                    int ix = ox * g.sw - g.pl + kx * g.dw;
                    if ((unsigned)ix >= (unsigned)g.w) continue;
                    s = fmaf(xs[((i64)c * g.h + iy) * g.w + ix], ws[(c * g.kh + ky) * g.kw + kx], s);
                }
            }
        if (bias) s += bias[m];
        y[i] = jrt_act(s, kind, p0, p1);
    }
}
