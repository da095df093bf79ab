//! The panel path of dense int8 convolutions on x86-64: patches laid out
//! four bytes of K by a block of pixels, multiplied by broadcast weights.

use super::*;

/// Whether a dense convolution runs the panel path: patches laid out 4
/// bytes of K × [`PIXEL_BLOCK`] pixels, multiplied as outer products by
/// broadcast weights (no horizontal sums, and the patches gathered one
/// contiguous input span at a time).
///
/// Only where output rows are wide (32 pixels or more): a block is then
/// one row, each K row of the patches one span of an input line. On
/// narrow rows (ResNet's 14×14 and 7×7 layers) a block spans many rows,
/// the gather many spans, and 16-pixel tiles waste lanes; measured on
/// ResNet-18, the row kernel is faster there. x86-64 only for now: the
/// NEON variant keeps the row kernel.
pub(super) fn uses_panel(q: QIsa, s: &Conv2dShape) -> bool {
    #[cfg(target_arch = "x86_64")]
    if matches!(q, QIsa::Avx2 | QIsa::Avx512Vnni) && s.out_w >= 32 {
        return true;
    }
    let _ = (q, s);
    false
}

/// Pixels of one panel tile.
pub(super) const PANEL_NR: usize = 16;

/// Patches of output pixels `p0 .. p0 + np` in panel layout:
/// `panel[g · 4·PIXEL_BLOCK + p · 4 + j]` holds K index `4g + j` of pixel
/// `p` (zero past K). Built four K rows at a time, each row one pass over
/// the block's output rows, then interleaved.
#[allow(clippy::too_many_arguments)]
pub(super) fn gather_panel(
    s: &Conv2dShape,
    xg: &[i8],
    pad: &dyn Fn(usize) -> i8,
    p0: usize,
    np: usize,
    k: usize,
    kp: usize,
    panel: &mut [i8],
) {
    let hw = s.in_h * s.in_w;
    // The block's output-row segments: (first pixel, length, oy, ox).
    let mut segs = [(0usize, 0usize, 0usize, 0usize); PIXEL_BLOCK];
    let mut nseg = 0;
    let mut p = 0;
    while p < np {
        let (oy, ox) = ((p0 + p) / s.out_w, (p0 + p) % s.out_w);
        let n = (s.out_w - ox).min(np - p);
        segs[nseg] = (p, n, oy, ox);
        nseg += 1;
        p += n;
    }
    let segs = &segs[..nseg];
    // Each tap's span of output columns inside the image (see tap_span),
    // for the common widths without a division per K row.
    let span = |kx: usize| {
        let off = (kx * s.dilation_w) as isize - s.pad_left as isize;
        crate::cpu::conv::tap_span(off, s.stride_w, s.in_w, s.out_w).unwrap_or((0, 0))
    };
    let mut spans = [(0usize, 0usize); 16];
    spans.iter_mut().take(s.kernel_w).enumerate().for_each(|(kx, sp)| *sp = span(kx));
    let mut rows = [[0i8; ROW_LEN]; 4];
    let width = np.next_multiple_of(PANEL_NR);
    // (c, ky, kx) of K index 4g + j, advanced without divisions.
    let (mut c, mut ky, mut kx) = (0, 0, 0);
    for g in 0..kp / 4 {
        for (j, row) in rows.iter_mut().enumerate() {
            if 4 * g + j >= k {
                row[..width].fill(0);
                continue;
            }
            let plane = &xg[c * hw..];
            let pv = pad(c);
            let off = (kx * s.dilation_w) as isize - s.pad_left as isize;
            let (lo, hi) = if kx < spans.len() { spans[kx] } else { span(kx) };
            for &(p, n, oy, ox) in segs {
                let iy = (oy * s.stride_h + ky * s.dilation_h) as isize - s.pad_top as isize;
                if iy < 0 || iy >= s.in_h as isize {
                    row[p..p + n].fill(pv);
                    continue;
                }
                let a = lo.clamp(ox, ox + n);
                let b = hi.clamp(a, ox + n);
                let start = iy as usize * s.in_w + ((a * s.stride_w) as isize + off) as usize;
                let dst = &mut row[p + a - ox..];
                if s.stride_w == 1 {
                    if start + PIXEL_BLOCK <= plane.len() {
                        // A fixed-size copy (two vector moves, not a memcpy
                        // call); the bytes past this segment are written
                        // again by the next segment or the right padding.
                        dst[..PIXEL_BLOCK].copy_from_slice(&plane[start..start + PIXEL_BLOCK]);
                    } else {
                        dst[..b - a].copy_from_slice(&plane[start..start + (b - a)]);
                    }
                } else if s.stride_w == 2 && start + 2 * PIXEL_BLOCK <= plane.len() {
                    // Every other byte, fixed-size so it vectorizes.
                    let src: &[i8; 2 * PIXEL_BLOCK] = plane[start..start + 2 * PIXEL_BLOCK].try_into().expect("fixed size");
                    let d: &mut [i8; PIXEL_BLOCK] = (&mut dst[..PIXEL_BLOCK]).try_into().expect("fixed size");
                    for (i, v) in d.iter_mut().enumerate() {
                        *v = src[2 * i];
                    }
                } else {
                    let src = plane[start..].iter().step_by(s.stride_w);
                    dst[..b - a].iter_mut().zip(src).for_each(|(d, &v)| *d = v);
                }
                // Padding only at the image's borders: mostly skipped.
                if a > ox {
                    row[p..p + a - ox].fill(pv);
                }
                if ox + n > b {
                    row[p + b - ox..p + n].fill(pv);
                }
            }
            kx += 1;
            if kx == s.kernel_w {
                kx = 0;
                ky += 1;
                if ky == s.kernel_h {
                    ky = 0;
                    c += 1;
                }
            }
        }
        interleave4(&rows, width, &mut panel[g * 4 * PIXEL_BLOCK..][..4 * width]);
    }
}

/// Length of a K row being gathered: a block's pixels plus room for a
/// fixed-size copy starting at any of them.
pub(super) const ROW_LEN: usize = 2 * PIXEL_BLOCK;

/// `dst[4p + j] = rows[j][p]` for pixels `p < n` (a multiple of 16).
pub(super) fn interleave4(rows: &[[i8; ROW_LEN]; 4], n: usize, dst: &mut [i8]) {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: the panel path is chosen only with AVX2 (uses_panel);
        // interleave4_avx2 checks n and the length of dst.
        unsafe { crate::cpu::x86::interleave4_avx2(rows, n, dst) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (rows, n, dst);
        unreachable!("the panel path is x86-64 only");
    }
}

/// `acc[m · PIXEL_BLOCK + p] = Σ_k panel(p, k) · w[m][k]` for `mc` weight
/// rows and `np` pixels: AVX2 in tiles of 4 rows × 16 pixels, AVX-512
/// VNNI in tiles of 4 rows × the whole block.
pub(super) fn panel_block(q: QIsa, kp: usize, panel: &[i8], np: usize, w: &[i8], mc: usize, acc: &mut [i32]) {
    assert!(panel.len() >= PIXEL_BLOCK * kp && w.len() >= mc * kp && acc.len() >= mc * PIXEL_BLOCK, "panel_block: operands too short");
    assert!(kp.is_multiple_of(4) && np <= PIXEL_BLOCK);
    // Only x86-64 takes the panel path (uses_panel).
    #[cfg(not(target_arch = "x86_64"))]
    let _ = q;
    let mut m0 = 0;
    while m0 < mc {
        let rows = 4.min(mc - m0);
        // A short tile repeats its last row; those results are dropped.
        let wr: [*const i8; 4] = std::array::from_fn(|i| w[(m0 + i.min(rows - 1)) * kp..].as_ptr());
        #[cfg(target_arch = "x86_64")]
        if q == QIsa::Avx512Vnni {
            assert!(q.supported(), "int8 variant {} is not supported here", q.name());
            let mut tile = [[0i32; PIXEL_BLOCK]; 4];
            // SAFETY: supported (asserted); the panel holds kp/4 groups of
            // 4·PIXEL_BLOCK bytes and each weight row kp bytes (asserted
            // above); np.div_ceil(16) ≤ 4 chunks of 16 pixels.
            unsafe { crate::cpu::x86::qpanel_4xn_vnni512(kp / 4, panel.as_ptr(), 4 * PIXEL_BLOCK, np.div_ceil(PANEL_NR), &wr, &mut tile) };
            for (i, t) in tile.iter().enumerate().take(rows) {
                // The kernel reads the panel as unsigned (a + 128): take
                // 128 · Σ w off (see QVariant::shifted).
                let sh = 128 * row_sum(q, &w[(m0 + i) * kp..(m0 + i + 1) * kp]);
                acc[(m0 + i) * PIXEL_BLOCK..][..np].iter_mut().zip(t).for_each(|(a, &v)| *a = v - sh);
            }
            m0 += rows;
            continue;
        }
        for pc in 0..np.div_ceil(PANEL_NR) {
            let mut tile = [[0i32; PANEL_NR]; 4];
            panel_tile(kp / 4, &panel[pc * 4 * PANEL_NR..], &wr, &mut tile);
            let n = PANEL_NR.min(np - pc * PANEL_NR);
            for (i, t) in tile.iter().enumerate().take(rows) {
                acc[(m0 + i) * PIXEL_BLOCK + pc * PANEL_NR..][..n].copy_from_slice(&t[..n]);
            }
        }
        m0 += rows;
    }
}

/// One 4 × 16 tile of [`panel_block`].
pub(super) fn panel_tile(kg: usize, panel: &[i8], w: &[*const i8; 4], tile: &mut [[i32; PANEL_NR]; 4]) {
    #[cfg(target_arch = "x86_64")]
    {
        assert!(kg == 0 || panel.len() >= (kg - 1) * 4 * PIXEL_BLOCK + 4 * PANEL_NR);
        // SAFETY: the panel path is chosen only with AVX2 (uses_panel);
        // the panel holds kg groups of 4·PIXEL_BLOCK bytes from this
        // tile's first pixel on (asserted), each weight row 4·kg bytes
        // (panel_block's assertion).
        unsafe { crate::cpu::x86::qpanel_4x16_avx2(kg, panel.as_ptr(), 4 * PIXEL_BLOCK, w, tile) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (kg, panel, w, tile);
        unreachable!("the panel path is x86-64 only");
    }
}
