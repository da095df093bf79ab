// Local response normalization, written to give the CPU's values (no FMA
// contraction, the CPU's order).

// Local response normalization across channels of [batch, channels, inner]:
// y = x / (bias + scale · Σ x²)^beta over channels c − before ..= c + after
// that exist (scale = alpha / size, computed on the host as the CPU does).
extern "C" __global__ void jrt_lrn_f32(const float* __restrict__ x, float* __restrict__ y, int batch, int channels, int inner, int before,
                                       int after, float scale, float bias, float beta) {
    const i64 total = (i64)batch * channels * inner;
    for (i64 idx = (i64)blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += (i64)gridDim.x * blockDim.x) {
        const int i = (int)(idx % inner);
        const i64 r = idx / inner;
        const int c = (int)(r % channels);
        const float* xb = x + (r / channels) * channels * inner;
        const int lo = max(c - before, 0), hi = min(c + after, channels - 1);
        float sq = 0.f;
        for (int cc = lo; cc <= hi; ++cc) {
            const float v = xb[(i64)cc * inner + i];
            sq = __fadd_rn(sq, __fmul_rn(v, v));
        }
        y[idx] = __fdiv_rn(x[idx], powf(__fadd_rn(bias, __fmul_rn(scale, sq)), beta));
    }
}
