// Pooling: max, average and global average.

extern "C" __global__ void jrt_maxpool_f32(const float* __restrict__ x, float* __restrict__ y, JrtPool p) {
    int n = p.planes * p.oh * p.ow;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        int ox = i % p.ow, oy = (i / p.ow) % p.oh, pl = i / (p.ow * p.oh);
        const float* xp = x + (i64)pl * p.h * p.w;
        float m = JRT_NEG_INF;
        bool nan = false;
        for (int ky = 0; ky < p.kh; ++ky) {
            int iy = oy * p.sh - p.pt + ky * p.dh;
            if (iy < 0 || iy >= p.h) continue;
            for (int kx = 0; kx < p.kw; ++kx) {
                int ix = ox * p.sw - p.pl + kx * p.dw;
                if (ix < 0 || ix >= p.w) continue;
                float v = xp[iy * p.w + ix];
                nan |= isnan(v);
                m = fmaxf(m, v);
            }
        }
        y[i] = nan ? __int_as_float(0x7fc00000) : m;
    }
}

extern "C" __global__ void jrt_avgpool_f32(const float* __restrict__ x, float* __restrict__ y, JrtPool p, int count_include_pad) {
    int n = p.planes * p.oh * p.ow;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        int ox = i % p.ow, oy = (i / p.ow) % p.oh, pl = i / (p.ow * p.oh);
        const float* xp = x + (i64)pl * p.h * p.w;
        int hs = oy * p.sh - p.pt, ws = ox * p.sw - p.pl;
        int he = min(hs + p.kh, p.h + p.pb), we = min(ws + p.kw, p.w + p.pr);
        int h0 = max(hs, 0), h1 = max(min(he, p.h), 0), w0 = max(ws, 0), w1 = max(min(we, p.w), 0);
        float s = 0.f;
        for (int iy = h0; iy < h1; ++iy)
            for (int ix = w0; ix < w1; ++ix) s += xp[iy * p.w + ix];
        int count = count_include_pad ? max((he - hs) * (we - ws), 0) : max(h1 - h0, 0) * max(w1 - w0, 0);
        y[i] = count == 0 ? 0.f : s / (float)count;
    }
}

// One block of 256 threads per plane.
extern "C" __global__ void jrt_global_avgpool_f32(const float* __restrict__ x, float* __restrict__ y, int planes, int len) {
    __shared__ float part[256];
    int pl = blockIdx.x;
    if (pl >= planes) return;
    const float* xp = x + (i64)pl * len;
    float s = 0.f;
    for (int i = threadIdx.x; i < len; i += blockDim.x) s += xp[i];
    part[threadIdx.x] = s;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w >>= 1) {
        if (threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
        __syncthreads();
    }
    if (threadIdx.x == 0) y[pl] = len == 0 ? 0.f : part[0] / (float)len;
}
