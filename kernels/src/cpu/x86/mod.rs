//! x86-64 micro-kernels, one file per register width: `avx2` (AVX2 + FMA)
//! and `avx512` (AVX-512F, VNNI, VBMI). Each is selected at run time by
//! [`super::Isa`] / [`super::int8::QIsa`] only where the CPU has it.

mod avx2;
mod avx512;

pub(crate) use avx2::{deinterleave8, interleave4_avx2, interleave8, qdot_2x4_avx2, qpanel_4x16_avx2, AVX2_FMA};
pub(crate) use avx512::{dw_plane_vbmi, qdot_4x4_vnni512, qpanel_4xn_vnni512, row_sum_vnni512, AVX512, DW_MAX_GROUPS, DW_MAX_WORDS};
