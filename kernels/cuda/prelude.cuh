// Shared by every jetrt CUDA kernel. The runtime compiles prelude.cuh and
// the .cu files of this folder as one translation unit (NVRTC, no headers
// from a CUDA toolkit), so a board needs nothing but the driver.
//
// Conventions: tensors are dense, row-major, float32 unless a name says
// otherwise; sizes fit in 32 bits (the runtime checks); every kernel
// guards its own bounds, so the launch shape only has to cover the work.

typedef long long i64;
typedef unsigned long long u64;
#define JRT_MAX_RANK 8
#define JRT_NEG_INF __int_as_float(0xff800000)

// Activation codes: the Rust side's `cuda::act_code` maps onto these.
__device__ __forceinline__ float jrt_sigmoid(float x) {
    if (x >= 0.f) return 1.f / (1.f + __expf(-x));
    float e = __expf(x);
    return e / (1.f + e);
}

__device__ __forceinline__ float jrt_softplus(float x) { return x > 20.f ? x : log1pf(expf(x)); }

// The rest of the activations: out of line, so that the transcendental
// code exists once rather than in every kernel's epilogue.
__device__ __noinline__ float jrt_act_rare(float x, int kind, float a, float b);

// `kind` is the file's activation code (jetrt-format's activation table).
__device__ __forceinline__ float jrt_act(float x, int kind, float a, float b) {
    switch (kind) {
    case 0: return x;
    case 1: return fmaxf(x, 0.f);
    case 2: return x < 0.f ? x * a : x;                       // LeakyRelu
    case 3: { float v = x < a ? a : x; return v > b ? b : v; } // Clip (NaN stays)
    default: return jrt_act_rare(x, kind, a, b);
    }
}

__device__ __noinline__ float jrt_act_rare(float x, int kind, float a, float b) {
    switch (kind) {
    case 4: return jrt_sigmoid(x);
    case 5: return tanhf(x);
    case 6: return fminf(fmaxf(a * x + b, 0.f), 1.f);         // HardSigmoid
    case 7: return x * fminf(fmaxf(x / 6.f + 0.5f, 0.f), 1.f); // HardSwish
    case 8: return x * jrt_sigmoid(x);                        // Silu
    case 9: return 0.5f * x * (1.f + erff(x * 0.70710678118654752f));
    case 10: return 0.5f * x * (1.f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
    case 11: return erff(x);
    case 12: return sqrtf(x);
    case 13: return expf(x);
    case 14: return logf(x);
    case 15: return fabsf(x);
    case 16: return -x;
    case 17: return 1.f / x;
    case 18: return floorf(x);
    case 19: return ceilf(x);
    case 20: return rintf(x);                                 // half to even
    case 21: return x > 0.f ? 1.f : (x < 0.f ? -1.f : x);
    case 22: return jrt_softplus(x);
    case 23: return x / (1.f + fabsf(x));
    case 24: return x < 0.f ? a * expm1f(x) : x;              // Elu
    case 25: return x <= 0.f ? b * a * expm1f(x) : b * x;     // Selu (a alpha, b gamma)
    case 26: return fmaxf(x, 0.f) + fminf(a * expm1f(x / a), 0.f); // Celu
    case 27: return x > a ? x : 0.f;                          // ThresholdedRelu
    case 28: return x * tanhf(jrt_softplus(x));               // Mish
    case 29: return sinf(x);
    case 30: return cosf(x);
    default: return x;
    }
}

// Broadcasting: output dims and, per operand, element strides (0 on
// broadcast axes), right-aligned to `rank`.
struct JrtBcast {
    int rank;
    int out[JRT_MAX_RANK];
    int sa[JRT_MAX_RANK];
    int sb[JRT_MAX_RANK];
};

// A strided view: y[i] = x[base + sum_a idx_a * st[a]] over `out` dims.
struct JrtStrided {
    i64 base;
    i64 st[JRT_MAX_RANK];
    int out[JRT_MAX_RANK];
    int rank;
    int pad_;
};

// Convolution geometry (one image; groups split channels).
struct JrtConv {
    int n, c, h, w;      // input
    int m, oh, ow;       // output channels and size
    int kh, kw, sh, sw, dh, dw, pt, pl;
    int groups;
};

// Pooling geometry.
struct JrtPool {
    int planes, h, w, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
};
