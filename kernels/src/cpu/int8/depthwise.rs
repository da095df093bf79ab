//! Depthwise int8 convolutions: the float depthwise kernels on exact sums
//! ([`super::direct`]), whole planes through byte permutes on AVX-512
//! VBMI, or a row loop of i32 sums for kernels and strides the float
//! kernels do not take.

use super::direct::{float_isa, ByteConv};
use super::*;
use crate::cpu::depthwise::{DwPlan, DwTask};

/// Depthwise int8 convolution. On AVX-512 VBMI, whole planes through byte
/// permutes ([`crate::cpu::x86::dw_plane_vbmi`]); elsewhere the float
/// depthwise kernel on `x − x_zp` as floats, whose sums are exact integers
/// (see [`crate::cpu::depthwise`]): the i32 sums, at the float kernel's
/// speed (the row loop it replaces, in i16 and i32, ran stride-2 planes at
/// 1 GFLOP/s on AVX2). Kernels over 256 taps or strides over 16 run that
/// row loop ([`dw_row`]). The sums are of `x − x_zp`, so the bias's
/// `−x_zp · Σw` term is added back; padding contributes
/// `(pad − x_zp) · w`: zero unless the channel's padding value differs.
pub(super) fn qdepthwise(q: QIsa, par: &dyn Parallel, scratch: &Scratch, task: &ByteConv<'_>) {
    let s = task.s;
    let planes = s.batch * s.out_channels;
    if !dw_windows(q, s) {
        if let Some(plan) = DwPlan::new(s) {
            return crate::cpu::depthwise::run(float_isa(q), par, scratch, s, &plan, task);
        }
    }
    let (rows, stride) = dw_padded(s);
    par.run(planes, &|p: usize, worker: usize| {
        let (n, oc) = (p / s.out_channels, p % s.out_channels);
        let ic = oc / (s.out_channels / s.groups);
        let xp = task.plane(n, ic);
        let wk = task.weights(oc);
        let pad_byte = task.pad_byte(ic);
        let zp = task.zp as i32;
        scratch.with(worker, |buf| {
            let (accf, rest) = buf.split_at_mut(s.out_w.next_multiple_of(16));
            let acc: &mut [i32] = bytemuck::cast_slice_mut(accf);
            #[cfg(target_arch = "x86_64")]
            if dw_windows(q, s) {
                let plane: &mut [i8] = &mut bytemuck::cast_slice_mut::<f32, i8>(rest)[..rows * stride];
                pad_plane(s, xp, pad_byte, stride, plane);
                // The kernel reads bytes as unsigned (x + 128): its sums
                // are Σ (x − zp)·w + (128 + zp)·Σw.
                let shift = (128 + zp) * wk.iter().map(|&v| v as i32).sum::<i32>();
                let mut row_done = |oy: usize, acc: &mut [i32]| {
                    let row: &mut [f32] = bytemuck::cast_slice_mut(&mut acc[..s.out_w]);
                    for v in row.iter_mut() {
                        *v = (v.to_bits() as i32 - shift) as f32;
                    }
                    task.emit(p, oy, row);
                };
                // SAFETY: dw_windows checked the CPU features and the
                // window reach; the plane is laid out by dw_padded.
                unsafe { crate::cpu::x86::dw_plane_vbmi(plane, stride, s, wk, acc, &mut row_done) };
                return;
            }
            let _ = (rest, rows, stride);
            for oy in 0..s.out_h {
                let acc = &mut acc[..s.out_w];
                dw_row(acc, xp, wk, s, oy, zp, pad_byte as i32 - zp);
                let row: &mut [f32] = bytemuck::cast_slice_mut(acc);
                for v in row.iter_mut() {
                    *v = v.to_bits() as i32 as f32;
                }
                task.emit(p, oy, row);
            }
        });
    });
}

/// Whether a depthwise convolution runs the AVX-512 VBMI window kernel
/// ([`crate::cpu::x86::dw_plane_vbmi`]): 16 output pixels per register, each
/// pixel's 4 taps of a kernel row gathered by one `vpermb` from one 64-byte
/// load and summed by one `vpdpbusd`. The 16 windows of a group must lie
/// within those 64 bytes.
pub(super) fn dw_windows(q: QIsa, s: &Conv2dShape) -> bool {
    #[cfg(target_arch = "x86_64")]
    if q == QIsa::Avx512Vnni && std::arch::is_x86_feature_detected!("avx512vbmi") {
        let groups = s.kernel_w.div_ceil(4);
        return groups <= crate::cpu::x86::DW_MAX_GROUPS
            && s.kernel_h * groups <= crate::cpu::x86::DW_MAX_WORDS
            && 15 * s.stride_w + s.dilation_w * (4 * groups - 1) < 64;
    }
    let _ = (q, s);
    false
}

/// Rows and row stride of the padded input plane the window kernel reads:
/// row `r` holds input row `r − pad_top`, byte `c` input column
/// `c − pad_left`, and every byte outside the image the padding value, far
/// enough that each 64-byte load stays inside.
pub(super) fn dw_padded(s: &Conv2dShape) -> (usize, usize) {
    let rows = (s.out_h.max(1) - 1) * s.stride_h + (s.kernel_h - 1) * s.dilation_h + 1;
    let stride = (s.out_w.next_multiple_of(16) - 16) * s.stride_w + 64;
    (rows, stride)
}

/// Copies an input plane `xp` (`s.in_h × s.in_w`) into `plane`, rows of
/// `width` bytes: row `r` holds input row `r − pad_top`, byte `c` input
/// column `c − pad_left` (cut at `width`), every other byte `pad`.
pub(super) fn pad_plane(s: &Conv2dShape, xp: &[i8], pad: i8, width: usize, plane: &mut [i8]) {
    for (r, row) in plane.chunks_exact_mut(width).enumerate() {
        let iy = r as isize - s.pad_top as isize;
        if iy < 0 || iy >= s.in_h as isize {
            row.fill(pad);
            continue;
        }
        let src = &xp[iy as usize * s.in_w..][..s.in_w];
        let (lo, hi) = (s.pad_left.min(width), (s.pad_left + s.in_w).min(width));
        row[..lo].fill(pad);
        row[lo..hi].copy_from_slice(&src[..hi - lo]);
        row[hi..].fill(pad);
    }
}

/// One output row of a depthwise convolution: `acc[ox] = Σ (x − zp)·w`
/// over the taps, plus `pad · w` for taps in the padding.
#[inline(always)]
pub(super) fn dw_row(acc: &mut [i32], xp: &[i8], wk: &[i8], s: &Conv2dShape, oy: usize, zp: i32, pad: i32) {
    let (h, wi) = (s.in_h as isize, s.in_w as isize);
    let ow = s.out_w;
    acc.fill(0);
    for ky in 0..s.kernel_h {
        let iy = (oy * s.stride_h + ky * s.dilation_h) as isize - s.pad_top as isize;
        if iy < 0 || iy >= h {
            if pad != 0 {
                let row: i32 = wk[ky * s.kernel_w..(ky + 1) * s.kernel_w].iter().map(|&v| v as i32).sum();
                acc.iter_mut().for_each(|a| *a += row * pad);
            }
            continue;
        }
        let xrow = &xp[(iy * wi) as usize..((iy + 1) * wi) as usize];
        for kx in 0..s.kernel_w {
            let wv = wk[ky * s.kernel_w + kx] as i32;
            let off = (kx * s.dilation_w) as isize - s.pad_left as isize;
            let sw = s.stride_w as isize;
            let span = crate::cpu::conv::tap_span(off, s.stride_w, s.in_w, ow);
            if pad != 0 {
                // The output columns whose tap falls in the padding.
                let (lo, hi) = span.unwrap_or((0, 0));
                let (left, rest) = acc.split_at_mut(lo);
                left.iter_mut().chain(&mut rest[hi - lo..]).for_each(|a| *a += wv * pad);
            }
            let Some((lo, hi)) = span else { continue };
            if s.stride_w == 1 {
                let start = (lo as isize + off) as usize;
                let src = &xrow[start..start + (hi - lo)];
                // (x − zp)·w fits an i16 (255 · 127 < 2^15): the
                // product vectorizes as 16-bit multiplies.
                let (w16, z16) = (wv as i16, zp as i16);
                acc[lo..hi].iter_mut().zip(src).for_each(|(a, &v)| *a += (w16 * (v as i16 - z16)) as i32);
            } else {
                for (ox, a) in acc.iter_mut().enumerate().take(hi).skip(lo) {
                    *a += wv * (xrow[(ox as isize * sw + off) as usize] as i32 - zp);
                }
            }
        }
    }
}
