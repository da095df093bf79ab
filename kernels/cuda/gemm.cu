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
