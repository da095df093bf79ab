// Int8 execution: quantize/dequantize at the edges of integer regions,
// convolutions and matrix products with dp4a (four i8 products summed into
// an i32 per instruction, sm_61 and newer), int8 max pooling.
//
// The float parts (epilogue, requantization) round exactly as the CPU
// kernels do: products and sums are separate (__fmul_rn, __fadd_rn, never
// contracted into an FMA), rounding is half to even, so a GPU session gives
// the CPU's int8 values.

// float16 bits → float (no cuda_fp16.h: NVRTC needs no toolkit headers).
__device__ __forceinline__ float jrt_f16(unsigned short h) {
    unsigned int sign = (unsigned int)(h & 0x8000u) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0) {
        // Zero or subnormal: m · 2^-24, exact in float.
        float v = (float)m * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    unsigned int bits = e == 31 ? (sign | 0x7f800000u | (m << 13)) : (sign | ((e + 112) << 23) | (m << 13));
    return __uint_as_float(bits);
}

// clamp(round_half_even(v · inv) + zp, −128, 127); NaN gives −128 + zp
// clamped, as quantize_one on the CPU.
__device__ __forceinline__ signed char jrt_quant(float v, float inv, int zp) {
    float t = fminf(fmaxf(__fmul_rn(v, inv), -512.f), 512.f);
    float q = fminf(fmaxf(__fadd_rn(rintf(t), (float)zp), -128.f), 127.f);
    return (signed char)(int)q;
}

// act(acc · deq + bias), stored as float or requantized.
__device__ __forceinline__ void jrt_qstore(void* y, i64 at, int acc, float deq, float bias, int kind, float a, float b, int out_i8, float inv,
                                           int zp) {
    float v = jrt_act(__fadd_rn(__fmul_rn((float)acc, deq), bias), kind, a, b);
    if (out_i8)
        ((signed char*)y)[at] = jrt_quant(v, inv, zp);
    else
        ((float*)y)[at] = v;
}

extern "C" __global__ void jrt_quantize(const float* __restrict__ x, signed char* __restrict__ y, int n, float inv, int zp) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) y[i] = jrt_quant(x[i], inv, zp);
}

// Per channel: q = quant((x · mul[c] + add[c]) / scale), the division
// folded into mul and add as the CPU does.
extern "C" __global__ void jrt_quantize_channels(const float* __restrict__ x, const unsigned short* __restrict__ mul,
                                                 const unsigned short* __restrict__ add, signed char* __restrict__ y, int n, int inner,
                                                 int channels, float inv, int zp) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        int c = (i / inner) % channels;
        float m = __fmul_rn(jrt_f16(mul[c]), inv), a = __fmul_rn(jrt_f16(add[c]), inv);
        y[i] = jrt_quant(__fadd_rn(__fmul_rn(x[i], m), a), 1.f, zp);
    }
}

extern "C" __global__ void jrt_dequantize(const signed char* __restrict__ x, float* __restrict__ y, int n, float scale, int zp) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) y[i] = __fmul_rn((float)((int)x[i] - zp), scale);
}

// Padding never wins; an empty window gives −128.
extern "C" __global__ void jrt_maxpool_i8(const signed char* __restrict__ x, signed char* __restrict__ y, JrtPool p) {
    int n = p.planes * p.oh * p.ow;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        int ox = i % p.ow, oy = (i / p.ow) % p.oh, pl = i / (p.ow * p.oh);
        const signed char* xp = x + (i64)pl * p.h * p.w;
        int m = -128;
        for (int ky = 0; ky < p.kh; ++ky) {
            int iy = oy * p.sh - p.pt + ky * p.dh;
            if ((unsigned)iy >= (unsigned)p.h) continue;
            for (int kx = 0; kx < p.kw; ++kx) {
                int ix = ox * p.sw - p.pl + kx * p.dw;
                if ((unsigned)ix < (unsigned)p.w) m = max(m, (int)xp[iy * p.w + ix]);
            }
        }
        y[i] = (signed char)m;
    }
}

// Int8 convolution as a tiled product of the weights [M/g, Kp] (rows
// padded with zeros to a multiple of 4) and the input's patches, 64×64
// outputs per block, 32 of K per step, four K at a time per dp4a. Padding
// reads `pad[c]` (or x_zp). Split-K as jrt_conv_f32: slices of `kslice`
// (a multiple of 32) write i32 partial sums to ws, jrt_qsplitk_reduce
// finishes. Grid: (ceil(OH·OW / 64), ceil(M/g / 64), N·g·splits).
extern "C" __global__ void __launch_bounds__(256) jrt_qconv(const signed char* __restrict__ x, const signed char* __restrict__ w,
                                                            const float* __restrict__ bias, const float* __restrict__ deq,
                                                            const signed char* __restrict__ pad, void* __restrict__ y, JrtConv g, int kp,
                                                            int x_zp, int kind, float p0, float p1, int out_i8, float inv, int zp,
                                                            int splits, int kslice, int* __restrict__ ws) {
    __shared__ int Aq[8][64];
    __shared__ int Bq[8][64];
    __shared__ int koff[32], kdy[32], kdx[32], kpv[32];
    const int groups = g.groups, cg = g.c / groups, mg = g.m / groups;
    const int z = blockIdx.z / splits, split = blockIdx.z - z * splits;
    const int img = z / groups, grp = z - img * groups;
    const int khw = g.kh * g.kw, K = cg * khw, P = g.oh * g.ow, hw = g.h * g.w;
    const int kb = splits == 1 ? 0 : split * kslice, ke = splits == 1 ? kp : min(kp, kb + kslice);
    const signed char* wg = w + (i64)grp * mg * kp;
    const signed char* xg = x + ((i64)img * g.c + (i64)grp * cg) * hw;
    const int t = threadIdx.x, tx = t & 15, ty = t >> 4;
    const int m0 = blockIdx.y * 64, n0 = blockIdx.x * 64;
    const int col = t & 63, p = n0 + col;
    const bool pin = p < P;
    const int oy = pin ? p / g.ow : 0, ox = pin ? p - oy * g.ow : 0;
    const int iy0 = oy * g.sh - g.pt, ix0 = ox * g.sw - g.pl;
    int acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = 0;
    for (int k0 = kb; k0 < ke; k0 += 32) {
        if (t < 32) {
            int k = k0 + t;
            int c = k / khw, r = k - c * khw;
            int ky = r / g.kw, kx = r - ky * g.kw;
            koff[t] = k < K ? c * hw : -1;  // -1: past K (zero weights)
            kdy[t] = ky * g.dh;
            kdx[t] = kx * g.dw;
            kpv[t] = k < K ? (pad ? (int)pad[grp * cg + c] : x_zp) : 0;
        }
        __syncthreads();
#pragma unroll
        for (int l = 0; l < 2; ++l) {
            int idx = t + 256 * l;
            int r = idx >> 3, q = idx & 7, k = k0 + 4 * q;
            Aq[q][r] = (m0 + r < mg && k < ke) ? *(const int*)(wg + (i64)(m0 + r) * kp + k) : 0;
            int qb = (t >> 6) + 4 * l;
            unsigned int packed = 0;
            if (pin) {
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                    int kk = 4 * qb + j;
                    int v = 0;
                    if (k0 + kk < ke && koff[kk] >= 0) {
                        int iy = iy0 + kdy[kk], ix = ix0 + kdx[kk];
                        v = ((unsigned)iy < (unsigned)g.h && (unsigned)ix < (unsigned)g.w) ? (int)xg[koff[kk] + iy * g.w + ix] : kpv[kk];
                    }
                    packed |= ((unsigned int)v & 0xffu) << (8 * j);
                }
            }
            Bq[qb][col] = (int)packed;
        }
        __syncthreads();
#pragma unroll
        for (int q = 0; q < 8; ++q) {
            int a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; ++i) a[i] = Aq[q][ty + 16 * i];
#pragma unroll
            for (int j = 0; j < 4; ++j) b[j] = Bq[q][tx + 16 * j];
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) acc[i][j] = __dp4a(a[i], b[j], acc[i][j]);
        }
        __syncthreads();
    }
    const i64 out0 = ((i64)img * g.m + (i64)grp * mg) * P;
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            int m = m0 + ty + 16 * i, n = n0 + tx + 16 * j;
            if (m < mg && n < P) {
                i64 at = out0 + (i64)m * P + n;
                if (splits == 1) {
                    int oc = grp * mg + m;
                    jrt_qstore(y, at, acc[i][j], deq[oc], bias[oc], kind, p0, p1, out_i8, inv, zp);
                } else {
                    ws[(i64)split * g.n * g.m * P + at] = acc[i][j];
                }
            }
        }
}

extern "C" __global__ void jrt_qsplitk_reduce(const int* __restrict__ ws, const float* __restrict__ bias, const float* __restrict__ deq,
                                              void* __restrict__ y, int n, int splits, int m, int hw, int kind, float p0, float p1,
                                              int out_i8, float inv, int zp) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        int s = 0;
        for (int k = 0; k < splits; ++k) s += ws[(i64)k * n + i];
        int oc = (i / hw) % m;
        jrt_qstore(y, i, s, deq[oc], bias[oc], kind, p0, p1, out_i8, inv, zp);
    }
}

// Depthwise (one input channel per group, `mult` outputs each): one thread
// per output, summing (x − zp)·w as the CPU does, with (pad − zp)·w for
// taps in the padding and zp·Σw·deq put back into the bias.
extern "C" __global__ void jrt_qconv_dw(const signed char* __restrict__ x, const signed char* __restrict__ w, const float* __restrict__ bias,
                                        const float* __restrict__ deq, const signed char* __restrict__ pad, void* __restrict__ y, JrtConv g,
                                        int kp, int x_zp, int kind, float p0, float p1, int out_i8, float inv, int zp) {
    const int mult = g.m / g.groups, P = g.oh * g.ow;
    const int total = g.n * g.m * P;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
        int p = i % P, oc = (i / P) % g.m, img = i / (P * g.m);
        int oy = p / g.ow, ox = p - oy * g.ow, ic = oc / mult;
        const signed char* xs = x + ((i64)img * g.c + ic) * g.h * g.w;
        const signed char* wk = w + (i64)oc * kp;
        int padz = pad ? (int)pad[ic] - x_zp : 0;
        int acc = 0, wsum = 0;
        for (int ky = 0; ky < g.kh; ++ky) {
            int iy = oy * g.sh - g.pt + ky * g.dh;
            for (int kx = 0; kx < g.kw; ++kx) {
                int ix = ox * g.sw - g.pl + kx * g.dw;
                int wv = wk[ky * g.kw + kx];
                wsum += wv;
                bool in = (unsigned)iy < (unsigned)g.h && (unsigned)ix < (unsigned)g.w;
                acc += wv * (in ? (int)xs[iy * g.w + ix] - x_zp : padz);
            }
        }
        float d = deq[oc];
        float b = __fadd_rn(bias[oc], __fmul_rn((float)(x_zp * wsum), d));
        jrt_qstore(y, i, acc, d, b, kind, p0, p1, out_i8, inv, zp);
    }
}

// y[i][j] = act(Σ_k a[i][k] · w[j][k] · deq[j] + bias[j]) for a i8 [M, K]
// (unpadded rows) and w i8 [N, Kp]: one warp per output.
extern "C" __global__ void jrt_qgemm(const signed char* __restrict__ a, const signed char* __restrict__ w, const float* __restrict__ bias,
                                     const float* __restrict__ deq, void* __restrict__ y, int M, int N, int K, int kp, int kind, float p0,
                                     float p1, int out_i8, float inv, int zp) {
    int wid = (blockIdx.x * blockDim.x + threadIdx.x) >> 5, lane = threadIdx.x & 31;
    if (wid >= M * N) return;
    int r = wid / N, c = wid - r * N;
    const signed char* ar = a + (i64)r * K;
    const signed char* wr = w + (i64)c * kp;
    int s = 0;
    for (int k = lane; k < K; k += 32) s += (int)ar[k] * (int)wr[k];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    if (lane == 0) jrt_qstore(y, (i64)r * N + c, s, deq[c], bias[c], kind, p0, p1, out_i8, inv, zp);
}
