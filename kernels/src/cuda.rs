//! The CUDA kernels' source (`kernels/cuda/*.cu`), as one translation
//! unit. The runtime compiles it with NVRTC to CUBIN (never PTX: a Jetson
//! may lack the driver's PTX JIT); nothing here talks to a GPU.

/// Every file, in the order they are joined: the prelude first.
pub const FILES: &[(&str, &str)] = &[
    ("prelude.cuh", include_str!("../cuda/prelude.cuh")),
    ("elementwise.cu", include_str!("../cuda/elementwise.cu")),
    ("layout.cu", include_str!("../cuda/layout.cu")),
    ("strided.cu", include_str!("../cuda/strided.cu")),
    ("pool.cu", include_str!("../cuda/pool.cu")),
    ("softmax.cu", include_str!("../cuda/softmax.cu")),
    ("reduce.cu", include_str!("../cuda/reduce.cu")),
    ("resize.cu", include_str!("../cuda/resize.cu")),
    ("lrn.cu", include_str!("../cuda/lrn.cu")),
    ("gemm.cu", include_str!("../cuda/gemm.cu")),
    ("conv.cu", include_str!("../cuda/conv.cu")),
    ("conv_transpose.cu", include_str!("../cuda/conv_transpose.cu")),
    ("fp16.cu", include_str!("../cuda/fp16.cu")),
    ("int8.cu", include_str!("../cuda/int8.cu")),
    ("int4.cu", include_str!("../cuda/int4.cu")),
    ("sparse.cu", include_str!("../cuda/sparse.cu")),
];

/// Entry points the runtime launches; each must exist in the source.
pub const KERNELS: &[&str] = &[
    "jrt_act_f32",
    "jrt_binary_same_f32",
    "jrt_binary_bcast_f32",
    "jrt_affine_f32",
    "jrt_strided_1",
    "jrt_strided_2",
    "jrt_strided_4",
    "jrt_strided_8",
    "jrt_concat_4",
    "jrt_gather_1",
    "jrt_gather_2",
    "jrt_gather_4",
    "jrt_gather_8",
    "jrt_cast",
    "jrt_maxpool_f32",
    "jrt_avgpool_f32",
    "jrt_global_avgpool_f32",
    "jrt_softmax_rows_f32",
    "jrt_softmax_strided_f32",
    "jrt_spgemm",
    "jrt_spconv",
    "jrt_resize2d_f32",
    "jrt_lrn_f32",
    "jrt_gemm_f32",
    "jrt_gemv_f32",
    "jrt_splitk_reduce_f32",
    "jrt_conv_f32",
    "jrt_gemm_f16",
    "jrt_conv_f16",
    "jrt_conv_direct_f32",
    "jrt_conv_transpose_f32",
    "jrt_quantize",
    "jrt_quantize_channels",
    "jrt_dequantize",
    "jrt_maxpool_i8",
    "jrt_qconv",
    "jrt_qsplitk_reduce",
    "jrt_qconv_dw",
    "jrt_qgemm",
    "jrt_q4gemm",
    "jrt_q4gemv",
    "jrt_q4conv",
    "jrt_reduce_f32",
    "jrt_layernorm_f32",
    "jrt_where_1",
    "jrt_where_2",
    "jrt_where_4",
    "jrt_where_8",
    "jrt_pad_1",
    "jrt_pad_2",
    "jrt_pad_4",
    "jrt_pad_8",
];

/// The whole source: the files joined, each preceded by a `#line` so that
/// compiler messages name the file and line.
pub fn source() -> String {
    let mut s = String::new();
    for (name, text) in FILES {
        s.push_str(&format!("#line 1 \"{name}\"\n"));
        s.push_str(text);
        s.push('\n');
    }
    s
}

/// Architectures the `.jrt` files carry CUBINs for: Xavier (sm_72), Orin
/// (sm_87), Thor (sm_110).
pub const JETSON_ARCHS: &[u32] = &[72, 87, 110];

#[cfg(test)]
mod tests {
    #[test]
    fn every_entry_point_is_defined_once() {
        let src = super::source();
        for k in super::KERNELS {
            let n = src.matches(&format!(" {k}(")).count();
            assert_eq!(n, 1, "{k} defined {n} times");
        }
    }
}
