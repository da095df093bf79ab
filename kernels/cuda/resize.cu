// Resize, written to give the CPU's values: every product and sum is rounded
// on its own (__fmul_rn, __fadd_rn: no FMA contraction), in the CPU's order.

// Resize over the two innermost axes of [planes, in_h, in_w]. Each output
// coordinate of an axis reads `ty` (rows) or `tx` (columns) input positions
// with fixed weights, from tables built on the host as the CPU builds them
// (iy/wy/ey: out_h × ty positions, weights, and whether the row takes the
// extrapolation value; ix/wx/ex for the columns):
// y[p, oy, ox] = Σ_j wx_j · (Σ_i wy_i · x[p, iy_i, ix_j]), rows first.
extern "C" __global__ void jrt_resize2d_f32(const float* __restrict__ x, float* __restrict__ y, int planes, int in_h, int in_w, int out_h,
                                            int out_w, const int* __restrict__ iy, const float* __restrict__ wy,
                                            const int* __restrict__ ey, int ty, const int* __restrict__ ix,
                                            const float* __restrict__ wx, const int* __restrict__ ex, int tx, float extrapolation) {
    const i64 total = (i64)planes * out_h * out_w;
    for (i64 idx = (i64)blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += (i64)gridDim.x * blockDim.x) {
        const int ox = (int)(idx % out_w);
        const i64 r = idx / out_w;
        const int oy = (int)(r % out_h);
        const i64 p = r / out_h;
        if (ey[oy] || ex[ox]) {
            y[idx] = extrapolation;
            continue;
        }
        const float* xp = x + p * in_h * in_w;
        const int* ry = iy + (i64)oy * ty;
        const float* rw = wy + (i64)oy * ty;
        const int* cx = ix + (i64)ox * tx;
        const float* cw = wx + (i64)ox * tx;
        float acc = 0.f;
        for (int j = 0; j < tx; ++j) {
            const float* col = xp + cx[j];
            float v = __fmul_rn(rw[0], col[(i64)ry[0] * in_w]);
            for (int i = 1; i < ty; ++i) v = __fadd_rn(v, __fmul_rn(rw[i], col[(i64)ry[i] * in_w]));
            acc = j == 0 ? __fmul_rn(cw[0], v) : __fadd_rn(acc, __fmul_rn(cw[j], v));
        }
        y[idx] = acc;
    }
}
