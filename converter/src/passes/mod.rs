//! Graph passes, one file each, named by what they do. Each returns how many
//! nodes it removed or fused, for the conversion report.

pub mod compact_affine;
pub(crate) mod fold;
pub mod fold_affine_into_conv;
pub mod fold_affine_into_next_conv;
pub mod fuse_activation;
pub mod fuse_gelu;
pub mod fuse_layer_norm;
pub mod matmul_add_to_gemm;
mod pattern;
pub mod per_channel_to_affine;

use crate::graph::Graph;

/// The passes in the order they run, with the number of nodes each removed
/// or fused.
///
/// `quantizing`: the graph will be quantized. Folding an affine forward
/// into the next convolution's input channels is exact in float but mixes
/// per-channel scales inside each weight row, which per-row int8/int4
/// weights then resolve worse (PP-OCRv5 det lost 0.07 of cosine), so it is
/// left out.
pub fn optimize(g: &mut Graph, quantizing: bool) -> Vec<(&'static str, usize)> {
    // In this order: written-out LayerNorm/Gelu/SiLU become single ops
    // (before per-channel constants turn into affines and hide them), bias
    // Adds join their MatMul, per-channel ops become affines, affines fold
    // into convolutions and Gemms, then activations fuse into whatever is
    // left.
    let layer_norm = fuse_layer_norm::run(g);
    let gated = fuse_gelu::run(g);
    vec![
        ("fuse_layer_norm", layer_norm),
        ("fuse_gelu", gated.gelu),
        ("fuse_silu", gated.silu),
        ("fuse_hard_swish", gated.hard_swish),
        ("matmul_add_to_gemm", matmul_add_to_gemm::run(g)),
        ("per_channel_to_affine", per_channel_to_affine::run(g)),
        ("fold_affine_into_conv_gemm", fold_affine_into_conv::run(g)),
        ("fold_affine_into_next_conv", if quantizing { 0 } else { fold_affine_into_next_conv::run(g) }),
        ("fuse_activation", fuse_activation::run(g)),
        ("remove_dead_nodes", g.remove_dead_nodes()),
    ]
}
