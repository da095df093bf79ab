//! Graph passes, one file each, named by what they do. Each returns how many
//! nodes it removed or fused, for the conversion report.

pub(crate) mod fold;
pub mod fold_affine_into_conv;
pub mod fuse_activation;
pub mod per_channel_to_affine;

use crate::graph::Graph;

/// The passes in the order they run, with the number of nodes each removed
/// or fused.
pub fn optimize(g: &mut Graph) -> Vec<(&'static str, usize)> {
    // In this order: per-channel ops become affines, affines fold into
    // convolutions, then activations fuse into whatever is left.
    vec![
        ("per_channel_to_affine", per_channel_to_affine::run(g)),
        ("fold_affine_into_conv", fold_affine_into_conv::run(g)),
        ("fuse_activation", fuse_activation::run(g)),
        ("remove_dead_nodes", g.remove_dead_nodes()),
    ]
}
