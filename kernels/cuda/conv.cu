// Float32 convolutions: the tiled implicit GEMM of gemm.cu over patches
// gathered on the fly, its split-K reduction, and the direct kernel of
// depthwise layers.

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
