// Products with pruned weights stored sparse: per row a bit per value (bit
// k % 8 of byte k / 8), the non-zero values in row order, and where each
// row's values start. A host-built table gives, per mask byte, the set bits
// before it in its row, so any weight is found in O(1) and each block
// decodes only what it reads; no dense copy of the weights exists.

struct JrtSpRows {
    const unsigned char* mask;
    const float* values;
    const unsigned int* row_start;
    const unsigned int* before;  // rows × mb: set bits in the row before each mask byte
    int mb;
    i64 nnz;
    __device__ float operator()(int row, int k) const {
        const i64 b = (i64)row * mb + (k >> 3);
        const unsigned int m = mask[b];
        const int bit = k & 7;
        if (!((m >> bit) & 1u)) return 0.f;
        const i64 vi = (i64)row_start[row] + before[b] + __popc(m & ((1u << bit) - 1u));
        // A value index past the values (a hostile file) reads as 0, as on the CPU.
        return vi < nnz ? values[vi] : 0.f;
    }
};

struct JrtSpAsA {
    JrtSpRows w;
    __device__ float operator()(int m, int k) const { return w(m, k); }
};

struct JrtSpAsB {
    JrtSpRows w;
    __device__ float operator()(int k, int n) const { return w(n, k); }
};

// y[M, N] = act(A·Wᵀ + bias) for A float [M, K], W sparse rows [N, K].
// Grid: (ceil(N/64), ceil(M/64)).
extern "C" __global__ void __launch_bounds__(256) jrt_spgemm(const float* a, const unsigned char* mask, const float* values,
                                                             const unsigned int* row_start, const unsigned int* before, i64 nnz,
                                                             const float* bias, float* y, int M, int N, int K, int kind, float p0, float p1) {
    JrtStridedMat la{a, K, 1};
    JrtSpAsB lb{{mask, values, row_start, before, (K + 7) / 8, nnz}};
    JrtGemmStore st{y, bias, N, 0, 1, kind, 1.f, 1.f, p0, p1};
    jrt_tiled(M, N, 0, K, la, lb, st);
}

// A convolution (one group) with sparse weights [M, C·kh·kw].
// Grid: (ceil(OH·OW / 64), ceil(M / 64), N).
extern "C" __global__ void __launch_bounds__(256) jrt_spconv(const float* x, const unsigned char* mask, const float* values,
                                                             const unsigned int* row_start, const unsigned int* before, i64 nnz,
                                                             const float* bias, float* y, JrtConv g, int kind, float p0, float p1) {
    const int K = g.c * g.kh * g.kw, P = g.oh * g.ow, img = blockIdx.z;
    JrtSpAsA la{{mask, values, row_start, before, (K + 7) / 8, nnz}};
    JrtPatches lb{x + (i64)img * g.c * g.h * g.w, g};
    JrtImageStore st{y + (i64)img * g.m * P, bias, P, kind, p0, p1};
    jrt_tiled(g.m, P, 0, K, la, lb, st);
}
