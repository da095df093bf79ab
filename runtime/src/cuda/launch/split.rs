//! Split-K: a convolution with too few output tiles to fill the GPU cuts
//! its reduction into slices summed into a workspace, and a second kernel
//! adds them up.

use jetrt_kernels::cpu::conv::Conv2dShape;

/// Split-K for a tiled float convolution that would give the GPU fewer
/// than two blocks per SM: `(splits, k per split)`, or `None` to run it
/// whole.
pub(crate) fn conv_split(s: &Conv2dShape, sms: usize) -> Option<(usize, usize)> {
    let mg = s.out_channels / s.groups.max(1);
    if mg < 16 {
        return None; // the direct kernel
    }
    split_k(s, sms, s.in_channels / s.groups.max(1) * s.kernel_h * s.kernel_w, 16)
}

/// The same for an int8 convolution: K is the padded row length, slices a
/// multiple of 32 (one step of its kernel).
pub(crate) fn qconv_split(s: &Conv2dShape, sms: usize) -> Option<(usize, usize)> {
    if s.is_depthwise() {
        return None;
    }
    split_k(s, sms, jetrt_kernels::cpu::int8::conv_kp(s), 32)
}

/// Workspace values (f32 or i32) a split needs.
pub(crate) fn split_floats(split: Option<(usize, usize)>, s: &Conv2dShape) -> usize {
    split.map_or(0, |(n, _)| n * s.batch * s.out_channels * s.out_h * s.out_w)
}

fn split_k(s: &Conv2dShape, sms: usize, k: usize, align: usize) -> Option<(usize, usize)> {
    let mg = s.out_channels / s.groups.max(1);
    let blocks = (s.out_h * s.out_w).div_ceil(64) * mg.div_ceil(64) * s.batch * s.groups;
    let target = 2 * sms;
    if blocks >= target || k < 256 {
        return None;
    }
    // Slices of at least 128 (8 steps of 16), a multiple of 16.
    let splits = target.div_ceil(blocks).min(k / 128).max(1);
    let kslice = k.div_ceil(splits).div_ceil(align) * align;
    let splits = k.div_ceil(kslice);
    (splits > 1).then_some((splits, kslice))
}

/// A test convolution: see [`crate::test_util::square_conv`].
#[cfg(test)]
pub(crate) fn conv(c: usize, hw: usize, m: usize, k: usize) -> Conv2dShape {
    crate::test_util::square_conv(c, hw, m, k, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_layers_split_k_to_fill_the_gpu() {
        // ResNet-18's layer4 conv on 132 SMs: 8 blocks whole.
        let s = conv(512, 7, 512, 3);
        let (splits, kslice) = conv_split(&s, 132).unwrap();
        let k = 512 * 9;
        assert_eq!(kslice % 16, 0);
        assert!(splits * kslice >= k && (splits - 1) * kslice < k, "{splits} × {kslice} for {k}");
        assert!(8 * splits >= 132, "{splits} splits leave SMs idle");
        // A wide layer has blocks enough; a small K is not worth splitting;
        // depthwise layers use the direct kernel.
        assert_eq!(conv_split(&conv(64, 224, 64, 3), 132), None);
        assert_eq!(conv_split(&conv(16, 7, 512, 1), 132), None);
        let mut dw = conv(32, 7, 32, 3);
        dw.groups = 32;
        assert_eq!(conv_split(&dw, 132), None);
        // A small GPU (Orin Nano: 8 SMs) splits less.
        assert!(conv_split(&s, 8).map_or(1, |(n, _)| n) <= 2);
        // int8 slices are whole steps of 32.
        let (_, kslice) = qconv_split(&s, 132).unwrap();
        assert_eq!(kslice % 32, 0);
    }
}
