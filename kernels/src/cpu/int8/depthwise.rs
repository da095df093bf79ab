//! Depthwise int8 convolutions: a direct loop per output plane (rows of
//! i32 sums), or, on AVX-512 VBMI, whole planes through byte permutes.

use super::*;

/// Depthwise int8 convolution: a direct loop per output plane, in i32.
/// The loop runs over valid positions with `x − x_zp`, and adds back the
/// bias's `−x_zp · Σw` term. Padding contributes `(pad − x_zp) · w`: zero
/// unless the channel's padding value differs, then added at the borders.
#[allow(clippy::too_many_arguments)]
pub(super) fn qdepthwise(
    q: QIsa,
    par: &dyn Parallel,
    scratch: &Scratch,
    s: &Conv2dShape,
    x: &[i8],
    x_zp: i8,
    x_pad: Option<&[i8]>,
    w: &[i8],
    ep: &QEpilogue<'_>,
    out: &SharedOut<'_>,
) {
    let mult = s.out_channels / s.groups;
    let (hw_in, hw_out) = (s.in_h * s.in_w, s.out_h * s.out_w);
    let khw = s.kernel_h * s.kernel_w;
    let kp = conv_kp(s);
    let planes = s.batch * s.out_channels;
    let ow = s.out_w;
    let zp = x_zp as i32;
    let windows = dw_windows(q, s);
    let (rows, stride) = dw_padded(s);
    let task = |p: usize, worker: usize| {
        let (n, oc) = (p / s.out_channels, p % s.out_channels);
        let ic = oc / mult;
        let xp = &x[(n * s.in_channels + ic) * hw_in..][..hw_in];
        let wk = &w[oc * kp..oc * kp + khw];
        let wsum: i32 = wk.iter().map(|&v| v as i32).sum();
        let deq = ep.deq[oc];
        let pad_byte = x_pad.map_or(x_zp, |p| p[ic]);
        let pad = pad_byte as i32 - zp;
        // The loops sum (x − zp)·w, so the bias's −zp·Σw·deq is put back.
        let bias = ep.bias[oc] + (zp * wsum) as f32 * deq;
        scratch.with(worker, |buf| {
            let (accf, rest) = buf.split_at_mut(s.out_w.next_multiple_of(16));
            let acc: &mut [i32] = bytemuck::cast_slice_mut(accf);
            // Float epilogue of output row oy, from its sums in acc.
            let finish = |oy: usize, acc: &mut [i32]| {
                // Reuse the accumulator row as floats, in place.
                let row: &mut [f32] = bytemuck::cast_slice_mut(&mut acc[..ow]);
                for v in row.iter_mut() {
                    *v = v.to_bits() as i32 as f32 * deq + bias;
                }
                ep.act.apply_slice(row);
                // SAFETY: task p alone writes output plane p.
                unsafe { store(out, p * hw_out + oy * ow, row) };
            };
            #[cfg(target_arch = "x86_64")]
            if windows {
                let plane: &mut [i8] = &mut bytemuck::cast_slice_mut::<f32, i8>(rest)[..rows * stride];
                pad_plane(s, xp, pad_byte, stride, plane);
                // The kernel reads bytes as unsigned (x + 128): its sums
                // are Σ (x − zp)·w + (128 + zp)·Σw.
                let shift = (128 + zp) * wsum;
                let mut row_done = |oy: usize, acc: &mut [i32]| {
                    acc[..ow].iter_mut().for_each(|a| *a -= shift);
                    finish(oy, acc)
                };
                // SAFETY: dw_windows checked the CPU features and the
                // window reach; the plane is laid out by dw_padded.
                unsafe { crate::cpu::x86::dw_plane_vbmi(plane, stride, s, wk, acc, &mut row_done) };
                return;
            }
            #[cfg(not(target_arch = "x86_64"))]
            let _ = (rest, rows, stride, windows);
            for oy in 0..s.out_h {
                match q {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: the caller chose an ISA this CPU supports, and
                    // both x86 int8 variants imply AVX2.
                    QIsa::Avx2 | QIsa::Avx512Vnni => unsafe { dw_row_avx2(&mut acc[..ow], xp, wk, s, oy, zp, pad) },
                    _ => dw_row(&mut acc[..ow], xp, wk, s, oy, zp, pad),
                }
                finish(oy, acc);
            }
        });
    };
    par.run(planes, &task);
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
#[allow(clippy::too_many_arguments)]
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

/// [`dw_row`] compiled for AVX2 (the portable build targets baseline
/// x86-64: 8 lanes of i16, not 16).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn dw_row_avx2(acc: &mut [i32], xp: &[i8], wk: &[i8], s: &Conv2dShape, oy: usize, zp: i32, pad: i32) {
    dw_row(acc, xp, wk, s, oy, zp, pad)
}
