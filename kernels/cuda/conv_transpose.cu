// Transposed convolution (ConvTranspose).

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
