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

// Products over k in [kb, ke): split-K launches give each block a slice.
template <typename LoadA, typename LoadB, typename Store>
__device__ __forceinline__ void jrt_tiled(int M, int N, int kb, int ke, const LoadA& la, const LoadB& lb, const Store& st) {
    __shared__ float As[JRT_TK][JRT_TM];
    __shared__ float Bs[JRT_TK][JRT_TN];
    const int t = threadIdx.x, tx = t & 15, ty = t >> 4;
    const int m0 = blockIdx.y * JRT_TM, n0 = blockIdx.x * JRT_TN;
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = 0.f;
    for (int k0 = kb; k0 < ke; k0 += JRT_TK) {
#pragma unroll
        for (int l = 0; l < 4; ++l) {
            int idx = t + 256 * l;
            int r = idx >> 4, k = idx & 15;
            As[k][r] = (m0 + r < M && k0 + k < ke) ? la(m0 + r, k0 + k) : 0.f;
            int kr = idx >> 6, c = idx & 63;
            Bs[kr][c] = (n0 + c < N && k0 + kr < ke) ? lb(k0 + kr, n0 + c) : 0.f;
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
    jrt_tiled(M, N, 0, K, la, lb, st);
}

// Few rows (a classifier's last layer at batch 1): one warp per output,
// its lanes splitting K, so that every SM has work.
extern "C" __global__ void jrt_gemv_f32(const float* a, const float* b, const float* bias, float* y, int M, int N, int K, int ars, int acs,
                                        int brs, int bcs, int bias_rs, int bias_cs, float alpha, float beta, int kind, float p0, float p1) {
    int w = (blockIdx.x * blockDim.x + threadIdx.x) >> 5, lane = threadIdx.x & 31;
    if (w >= M * N) return;
    int r = w / N, c = w - r * N;
    const float* ar = a + (i64)r * ars;
    const float* bc = b + (i64)c * bcs;
    float s = 0.f;
    for (int k = lane; k < K; k += 32) s = fmaf(ar[(i64)k * acs], bc[(i64)k * brs], s);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    if (lane == 0) {
        s *= alpha;
        if (bias) s += beta * bias[(i64)r * bias_rs + (i64)c * bias_cs];
        y[(i64)r * N + c] = jrt_act(s, kind, p0, p1);
    }
}




// Grid: (ceil(OH·OW / 64), ceil(M/g / 64), N·g·splits). With `splits` >
// 1, slice s of K (`kslice` long, a multiple of 16) writes its partial sums
// to ws[s][N][M][OH·OW] and jrt_splitk_reduce_f32 finishes; small layers
// (7×7 at batch 1) would otherwise give a few blocks to a GPU of many SMs.
//
// The patch gather avoids integer division in the loop: each thread's
// output pixel is fixed (its column of the tile), so its window origin is
// computed once, and each K step's (channel, ky, kx) offsets are tabulated
// in shared memory by 16 threads.
extern "C" __global__ void __launch_bounds__(256) jrt_conv_f32(const float* __restrict__ x, const float* __restrict__ w,
                                                               const float* __restrict__ bias, float* __restrict__ y, JrtConv g, int kind,
                                                               float p0, float p1, int splits, int kslice, float* __restrict__ ws) {
    __shared__ float As[JRT_TK][JRT_TM];
    __shared__ float Bs[JRT_TK][JRT_TN];
    __shared__ int koff[JRT_TK], kdy[JRT_TK], kdx[JRT_TK];
    const int groups = g.groups, cg = g.c / groups, mg = g.m / groups;
    const int z = blockIdx.z / splits, split = blockIdx.z - z * splits;
    const int img = z / groups, grp = z - img * groups;
    const int khw = g.kh * g.kw, K = cg * khw, P = g.oh * g.ow, hw = g.h * g.w;
    const int kb = splits == 1 ? 0 : split * kslice, ke = splits == 1 ? K : min(K, kb + kslice);
    const float* wg = w + (i64)grp * mg * K;
    const float* xg = x + ((i64)img * g.c + (i64)grp * cg) * hw;
    const int t = threadIdx.x, tx = t & 15, ty = t >> 4;
    const int m0 = blockIdx.y * JRT_TM, n0 = blockIdx.x * JRT_TN;
    // This thread's B column (the same for its four loads) and its window.
    const int col = t & 63, p = n0 + col;
    const bool pin = p < P;
    const int oy = pin ? p / g.ow : 0, ox = pin ? p - oy * g.ow : 0;
    const int iy0 = oy * g.sh - g.pt, ix0 = ox * g.sw - g.pl;
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = 0.f;
    for (int k0 = kb; k0 < ke; k0 += JRT_TK) {
        if (t < JRT_TK) {
            int k = k0 + t;
            int c = k / khw, r = k - c * khw;
            int ky = r / g.kw, kx = r - ky * g.kw;
            koff[t] = c * hw;
            kdy[t] = ky * g.dh;
            kdx[t] = kx * g.dw;
        }
        __syncthreads();
#pragma unroll
        for (int l = 0; l < 4; ++l) {
            int idx = t + 256 * l;
            int r = idx >> 4, k = idx & 15;
            As[k][r] = (m0 + r < mg && k0 + k < ke) ? wg[(i64)(m0 + r) * K + k0 + k] : 0.f;
            int kr = (t >> 6) + 4 * l;
            float v = 0.f;
            if (pin && k0 + kr < ke) {
                int iy = iy0 + kdy[kr], ix = ix0 + kdx[kr];
                if ((unsigned)iy < (unsigned)g.h && (unsigned)ix < (unsigned)g.w) v = xg[koff[kr] + iy * g.w + ix];
            }
            Bs[kr][col] = v;
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
    const i64 out0 = ((i64)img * g.m + (i64)grp * mg) * P;
    float* dst = splits == 1 ? y + out0 : ws + (i64)split * g.n * g.m * P + out0;
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            int m = m0 + ty + 16 * i, n = n0 + tx + 16 * j;
            if (m < mg && n < P) {
                float v = acc[i][j];
                if (splits == 1) {
                    if (bias) v += bias[grp * mg + m];
                    v = jrt_act(v, kind, p0, p1);
                }
                dst[(i64)m * P + n] = v;
            }
        }
}

// y[i] = act(sum_s ws[s][i] + bias[channel of i]) over N·M·P outputs.
extern "C" __global__ void jrt_splitk_reduce_f32(const float* __restrict__ ws, const float* __restrict__ bias, float* __restrict__ y, int n,
                                                 int splits, int m, int hw, int kind, float p0, float p1) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        float s = 0.f;
        for (int k = 0; k < splits; ++k) s += ws[(i64)k * n + i];
        if (bias) s += bias[(i / hw) % m];
        y[i] = jrt_act(s, kind, p0, p1);
    }
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

// Transposed convolution, one thread per output value, summing in the CPU
// kernel's order (kernel row, input channel, kernel column). `g` is the
// transposed shape: input (n, c, h, w), output (m, oh, ow).
extern "C" __global__ void jrt_conv_transpose_f32(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ bias,
                                                  float* __restrict__ y, JrtConv g) {
    const int cg = g.c / g.groups, mg = g.m / g.groups, P = g.oh * g.ow;
    const int total = g.n * g.m * P;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
        int ox = i % g.ow, oy = (i / g.ow) % g.oh, oc = (i / P) % g.m, img = i / (P * g.m);
        int grp = oc / mg, m = oc - grp * mg;
        float s = bias ? bias[oc] : 0.f;
        for (int ky = 0; ky < g.kh; ++ky) {
            int t = oy + g.pt - ky * g.dh;
            if (t < 0 || t % g.sh != 0 || t / g.sh >= g.h) continue;
            int ih = t / g.sh;
            for (int c = 0; c < cg; ++c) {
                int ic = grp * cg + c;
                const float* xr = x + (((i64)img * g.c + ic) * g.h + ih) * g.w;
                const float* wk = w + (((i64)ic * mg + m) * g.kh + ky) * g.kw;
                for (int kx = 0; kx < g.kw; ++kx) {
                    int u = ox + g.pl - kx * g.dw;
                    if (u < 0 || u % g.sw != 0 || u / g.sw >= g.w) continue;
                    s = __fadd_rn(s, __fmul_rn(xr[u / g.sw], wk[kx]));
                }
            }
        }
        y[i] = s;
    }
}
