// fp16 matrix products and convolutions on the tensor cores (`--fp16`):
// operands are read as float32, rounded to fp16 (nearest even) as they go
// into shared memory, multiplied by warp-wide 16×16×16 tensor-core
// operations and accumulated in float32; bias, activation and split-K are
// applied to the float32 sums as in gemm.cu. Weights and activations stay
// float32 in memory, so the memory plan is the fp32 one.
//
// The tensor-core operations are written as PTX (wmma, sm_70 and newer):
// the kernels compile without CUDA's headers (mma.h, cuda_fp16.h), which a
// board does not have.
//
// Tiles as in gemm.cu: a block of 256 threads (8 warps) computes a 64×64
// tile of the output in steps of 16 along K. Warp w owns the 16×32 strip at
// rows 16·(w/2), columns 32·(w%2): one A fragment, two B fragments, two
// accumulators. At the end the accumulators go through shared memory so
// that each thread finishes the same elements as in the fp32 kernels.
//
// The matrix product reuses gemm.cu's loaders and store (JrtStridedMat,
// JrtGemmStore). The convolution repeats jrt_conv_f32's window set-up and
// loader rather than sharing them: jrt_conv_f32 has been checked on a GPU
// and stays as it is until this kernel has been too.

// Row pitches, in elements: multiples of 8 halves (4 floats) as wmma
// requires, and each fragment's origin 32-byte aligned.
#define JRT_HA 24 // A tile [64][24] halves: row r, column k
#define JRT_HB 72 // B tile [16][72] halves: row k, column n
#define JRT_HC 68 // C tile [64][68] floats

__device__ __forceinline__ unsigned short jrt_f2h(float x) {
    unsigned short h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(x));
    return h;
}

struct JrtTileF16 {
    __align__(32) unsigned short a[JRT_TM][JRT_HA];
    __align__(32) unsigned short b[JRT_TK][JRT_HB];
    __align__(32) float c[JRT_TM][JRT_HC];
};

// acc[f] += A[16·(w/2) .., 0..16] · B[0..16, 32·(w%2) + 16·f ..] for this
// warp's two fragments f.
__device__ __forceinline__ void jrt_wmma_step(const JrtTileF16& s, float (&acc)[2][8]) {
    const int w = threadIdx.x >> 5;
    const unsigned short* pa = &s.a[16 * (w >> 1)][0];
    unsigned a[8];
    asm volatile("wmma.load.a.sync.aligned.row.m16n16k16.f16 {%0,%1,%2,%3,%4,%5,%6,%7}, [%8], %9;"
                 : "=r"(a[0]), "=r"(a[1]), "=r"(a[2]), "=r"(a[3]), "=r"(a[4]), "=r"(a[5]), "=r"(a[6]), "=r"(a[7])
                 : "l"(pa), "r"(JRT_HA));
#pragma unroll
    for (int f = 0; f < 2; ++f) {
        const unsigned short* pb = &s.b[0][32 * (w & 1) + 16 * f];
        unsigned b[8];
        asm volatile("wmma.load.b.sync.aligned.row.m16n16k16.f16 {%0,%1,%2,%3,%4,%5,%6,%7}, [%8], %9;"
                     : "=r"(b[0]), "=r"(b[1]), "=r"(b[2]), "=r"(b[3]), "=r"(b[4]), "=r"(b[5]), "=r"(b[6]), "=r"(b[7])
                     : "l"(pb), "r"(JRT_HB));
        float* d = acc[f];
        asm volatile("wmma.mma.sync.aligned.row.row.m16n16k16.f32.f32 {%0,%1,%2,%3,%4,%5,%6,%7}, {%8,%9,%10,%11,%12,%13,%14,%15}, "
                     "{%16,%17,%18,%19,%20,%21,%22,%23}, {%0,%1,%2,%3,%4,%5,%6,%7};"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(a[4]), "r"(a[5]), "r"(a[6]), "r"(a[7]), "r"(b[0]), "r"(b[1]),
                       "r"(b[2]), "r"(b[3]), "r"(b[4]), "r"(b[5]), "r"(b[6]), "r"(b[7]));
    }
}

// Writes the warp's accumulators to s.c (then the block synchronises).
__device__ __forceinline__ void jrt_wmma_store(JrtTileF16& s, const float (&acc)[2][8]) {
    const int w = threadIdx.x >> 5;
#pragma unroll
    for (int f = 0; f < 2; ++f) {
        float* pc = &s.c[16 * (w >> 1)][32 * (w & 1) + 16 * f];
        const float* d = acc[f];
        asm volatile("wmma.store.d.sync.aligned.row.m16n16k16.f32 [%0], {%1,%2,%3,%4,%5,%6,%7,%8}, %9;"
                     :
                     : "l"(pc), "f"(d[0]), "f"(d[1]), "f"(d[2]), "f"(d[3]), "f"(d[4]), "f"(d[5]), "f"(d[6]), "f"(d[7]), "r"(JRT_HC)
                     : "memory");
    }
    __syncthreads();
}

// jrt_tiled with fp16 products: the same loaders, stores and tiles.
template <typename LoadA, typename LoadB, typename Store>
__device__ __forceinline__ void jrt_tiled_f16(int M, int N, int kb, int ke, const LoadA& la, const LoadB& lb, const Store& st) {
    __shared__ JrtTileF16 s;
    const int t = threadIdx.x, tx = t & 15, ty = t >> 4;
    const int m0 = blockIdx.y * JRT_TM, n0 = blockIdx.x * JRT_TN;
    float acc[2][8];
#pragma unroll
    for (int f = 0; f < 2; ++f)
#pragma unroll
        for (int e = 0; e < 8; ++e) acc[f][e] = 0.f;
    for (int k0 = kb; k0 < ke; k0 += JRT_TK) {
#pragma unroll
        for (int l = 0; l < 4; ++l) {
            int idx = t + 256 * l;
            int r = idx >> 4, k = idx & 15;
            s.a[r][k] = jrt_f2h((m0 + r < M && k0 + k < ke) ? la(m0 + r, k0 + k) : 0.f);
            int kr = idx >> 6, c = idx & 63;
            s.b[kr][c] = jrt_f2h((n0 + c < N && k0 + kr < ke) ? lb(k0 + kr, n0 + c) : 0.f);
        }
        __syncthreads();
        jrt_wmma_step(s, acc);
        __syncthreads();
    }
    jrt_wmma_store(s, acc);
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            int m = m0 + ty + 16 * i, n = n0 + tx + 16 * j;
            if (m < M && n < N) st(m, n, s.c[ty + 16 * i][tx + 16 * j]);
        }
}

// jrt_gemm_f32 with fp16 products: the same parameters and result layout.
extern "C" __global__ void __launch_bounds__(256) jrt_gemm_f16(const float* a, const float* b, const float* bias, float* y, int M, int N, int K,
                                                               int ars, int acs, int brs, int bcs, int bias_rs, int bias_cs, float alpha,
                                                               float beta, int kind, float p0, float p1) {
    JrtStridedMat la{a, ars, acs}, lb{b, brs, bcs};
    JrtGemmStore st{y, bias, N, bias_rs, bias_cs, kind, alpha, beta, p0, p1};
    jrt_tiled_f16(M, N, 0, K, la, lb, st);
}

// jrt_conv_f32 with fp16 products: the same parameters, grid, split-K
// workspace and result layout (jrt_splitk_reduce_f32 finishes a split).
extern "C" __global__ void __launch_bounds__(256) jrt_conv_f16(const float* __restrict__ x, const float* __restrict__ w,
                                                               const float* __restrict__ bias, float* __restrict__ y, JrtConv g, int kind,
                                                               float p0, float p1, int splits, int kslice, float* __restrict__ ws) {
    __shared__ JrtTileF16 s;
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
    const int col = t & 63, p = n0 + col;
    const bool pin = p < P;
    const int oy = pin ? p / g.ow : 0, ox = pin ? p - oy * g.ow : 0;
    const int iy0 = oy * g.sh - g.pt, ix0 = ox * g.sw - g.pl;
    float acc[2][8];
#pragma unroll
    for (int f = 0; f < 2; ++f)
#pragma unroll
        for (int e = 0; e < 8; ++e) acc[f][e] = 0.f;
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
            s.a[r][k] = jrt_f2h((m0 + r < mg && k0 + k < ke) ? wg[(i64)(m0 + r) * K + k0 + k] : 0.f);
            int kr = (t >> 6) + 4 * l;
            float v = 0.f;
            if (pin && k0 + kr < ke) {
                int iy = iy0 + kdy[kr], ix = ix0 + kdx[kr];
                if ((unsigned)iy < (unsigned)g.h && (unsigned)ix < (unsigned)g.w) v = xg[koff[kr] + iy * g.w + ix];
            }
            s.b[kr][col] = jrt_f2h(v);
        }
        __syncthreads();
        jrt_wmma_step(s, acc);
        __syncthreads();
    }
    jrt_wmma_store(s, acc);
    const i64 out0 = ((i64)img * g.m + (i64)grp * mg) * P;
    float* dst = splits == 1 ? y + out0 : ws + (i64)split * g.n * g.m * P + out0;
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            int m = m0 + ty + 16 * i, n = n0 + tx + 16 * j;
            if (m < mg && n < P) {
                float v = s.c[ty + 16 * i][tx + 16 * j];
                if (splits == 1) {
                    if (bias) v += bias[grp * mg + m];
                    v = jrt_act(v, kind, p0, p1);
                }
                dst[(i64)m * P + n] = v;
            }
        }
}
