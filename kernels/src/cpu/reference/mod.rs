//! Plain scalar kernels: they define what is correct.
//!
//! `gemm` and `conv2d` here are the straight loops, with f64 accumulation, that
//! the blocked versions in [`crate::cpu::gemm`] and [`crate::cpu::conv`] (and
//! the int8 ones, through them) are tested against. The other ops' modules
//! hold their own scalar definitions beside their fast versions.

use super::conv::Conv2dShape;
use super::gemm::{BSource, Epilogue, MatRef};
use super::Activation;

/// `c = act(alpha · a · b + beta · bias)`, the straight triple loop.
pub fn gemm(a: MatRef<'_>, b: BSource<'_>, ep: &Epilogue<'_>, c: &mut [f32]) {
    let (m, k, n) = (a.rows, a.cols, b.cols());
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0f64;
            for kk in 0..k {
                acc += a.at(i, kk) as f64 * b.at(kk, j) as f64;
            }
            let v = ep.alpha as f64 * acc + ep.beta as f64 * ep.bias.at(i, j) as f64;
            c[i * n + j] = ep.act.apply(v as f32);
        }
    }
}

/// Direct convolution, the definition.
pub fn conv2d(s: &Conv2dShape, x: &[f32], w: &[f32], bias: Option<&[f32]>, act: Activation, y: &mut [f32]) {
    let (cg, mg) = (s.in_channels / s.groups, s.out_channels / s.groups);
    for n in 0..s.batch {
        for oc in 0..s.out_channels {
            let g = oc / mg;
            for oy in 0..s.out_h {
                for ox in 0..s.out_w {
                    let mut acc = bias.map_or(0.0, |b| b[oc] as f64);
                    for c in 0..cg {
                        let ic = g * cg + c;
                        for ky in 0..s.kernel_h {
                            for kx in 0..s.kernel_w {
                                let iy = (oy * s.stride_h + ky * s.dilation_h) as isize - s.pad_top as isize;
                                let ix = (ox * s.stride_w + kx * s.dilation_w) as isize - s.pad_left as isize;
                                if iy < 0 || ix < 0 || iy as usize >= s.in_h || ix as usize >= s.in_w {
                                    continue;
                                }
                                let xv = x[((n * s.in_channels + ic) * s.in_h + iy as usize) * s.in_w + ix as usize];
                                let wv = w[((oc * cg + c) * s.kernel_h + ky) * s.kernel_w + kx];
                                acc += xv as f64 * wv as f64;
                            }
                        }
                    }
                    y[((n * s.out_channels + oc) * s.out_h + oy) * s.out_w + ox] = act.apply(acc as f32);
                }
            }
        }
    }
}
