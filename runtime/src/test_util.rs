//! Helpers of the unit tests.

use jetrt_kernels::cpu::conv::Conv2dShape;

/// A square `k × k` convolution of `c` channels at `hw × hw` to `m`, stride
/// 1, "same" padding, in `groups` groups.
pub(crate) fn square_conv(c: usize, hw: usize, m: usize, k: usize, groups: usize) -> Conv2dShape {
    Conv2dShape {
        batch: 1,
        in_channels: c,
        in_h: hw,
        in_w: hw,
        out_channels: m,
        out_h: hw,
        out_w: hw,
        kernel_h: k,
        kernel_w: k,
        stride_h: 1,
        stride_w: 1,
        dilation_h: 1,
        dilation_w: 1,
        pad_top: k / 2,
        pad_left: k / 2,
        groups,
    }
}
