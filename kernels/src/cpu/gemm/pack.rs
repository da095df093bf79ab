//! Packing A and B blocks into the micro-kernel's panels, and the im2col
//! rows a convolution's B is gathered from.

use super::*;

/// Packs `A[i0.., k0..]` (`mc × kc`) into MR-row panels, `kc × mr` each,
/// zero-padded below the last row.
pub(super) fn pack_a(mr: usize, a: &ASource<'_>, i0: usize, mc: usize, k0: usize, kc: usize, out: &mut [f32]) {
    let panels = mc.div_ceil(mr);
    let mut line = [0.0f32; MAX_KC];
    for p in 0..panels {
        let dst = &mut out[p * kc * mr..(p + 1) * kc * mr];
        let rows = mr.min(mc - p * mr);
        let base = i0 + p * mr;
        let a = match a {
            ASource::Mat(m) => m,
            ASource::Packed(q) => {
                for r in 0..rows {
                    q.decode(base + r, k0, &mut line[..kc]);
                    for (kk, &x) in line[..kc].iter().enumerate() {
                        dst[kk * mr + r] = x;
                    }
                }
                if rows < mr {
                    for kk in 0..kc {
                        dst[kk * mr + rows..(kk + 1) * mr].fill(0.0);
                    }
                }
                continue;
            }
        };
        if a.cs == 1 {
            for r in 0..rows {
                let src = &a.data[(base + r) * a.rs + k0..][..kc];
                for (kk, &x) in src.iter().enumerate() {
                    dst[kk * mr + r] = x;
                }
            }
        } else {
            for r in 0..rows {
                for kk in 0..kc {
                    dst[kk * mr + r] = a.at(base + r, k0 + kk);
                }
            }
        }
        if rows < mr {
            for kk in 0..kc {
                dst[kk * mr + rows..(kk + 1) * mr].fill(0.0);
            }
        }
    }
}

/// Widest B block any variant packs.
const MAX_NC: usize = 256;
/// Deepest K block any variant packs.
pub(super) const MAX_KC: usize = 256;

/// Packs `B[k0.., j0..]` (`kc × nc`) into NR-column panels, `kc × nr` each,
/// zero-padded right of the last column.
///
/// Works row by row: each row of the block is read front to back (a dense
/// row, or one row of the im2col matrix gathered from the image), then
/// split into the panels. Walking B column-panel by column-panel instead
/// reads one cache line per row of a wide matrix, each on another page,
/// and stalls on memory.
pub(super) fn pack_b(v: &Variant, b: &BSource<'_>, k0: usize, kc: usize, j0: usize, nc: usize, out: &mut [f32]) {
    let nr = v.nr;
    assert!(nc <= MAX_NC && kc <= MAX_KC, "B block of {kc}×{nc}");
    let mut row = [0.0f32; MAX_NC];
    if let BSource::PackedT(q) = b {
        // Column j of B is row j of the packed matrix: decode it along K and
        // scatter it into its panel.
        let mut line = [0.0f32; MAX_KC];
        for (q_, panel) in out.chunks_mut(kc * nr).take(nc.div_ceil(nr)).enumerate() {
            let cols = nr.min(nc - q_ * nr);
            for c in 0..cols {
                q.decode(j0 + q_ * nr + c, k0, &mut line[..kc]);
                for (kk, &x) in line[..kc].iter().enumerate() {
                    panel[kk * nr + c] = x;
                }
            }
            for kk in 0..kc {
                panel[kk * nr + cols..(kk + 1) * nr].fill(0.0);
            }
        }
        return;
    }
    if let BSource::Mat(m) = b {
        if m.rs == 1 && m.cs != 1 {
            // Column j of B is contiguous (B is a transposed row-major
            // matrix: a Linear layer's [out, in] weights): read each
            // column along K and scatter it into its panel. Gathered row by
            // row instead, element by element through the strides, a ViT
            // layer's GEMM ran at 40 GFLOP/s against 100 with B row-major.
            for (q_, panel) in out.chunks_mut(kc * nr).take(nc.div_ceil(nr)).enumerate() {
                let cols = nr.min(nc - q_ * nr);
                for c in 0..cols {
                    let col = &m.data[(j0 + q_ * nr + c) * m.cs + k0..][..kc];
                    for (kk, &x) in col.iter().enumerate() {
                        panel[kk * nr + c] = x;
                    }
                }
                for kk in 0..kc {
                    panel[kk * nr + cols..(kk + 1) * nr].fill(0.0);
                }
            }
            return;
        }
    }
    for kk in 0..kc {
        let src: &[f32] = match b {
            BSource::Mat(m) if m.cs == 1 => &m.data[(k0 + kk) * m.rs + j0..][..nc],
            BSource::Mat(m) => {
                for (c, r) in row[..nc].iter_mut().enumerate() {
                    *r = m.at(k0 + kk, j0 + c);
                }
                &row[..nc]
            }
            BSource::Im2col(im) => {
                im2col_row(im, k0 + kk, j0, &mut row[..nc], v.de2);
                &row[..nc]
            }
            BSource::PackedT(_) => unreachable!("packed above"),
        };
        match nr {
            8 => split_row::<8>(src, kc, kk, out),
            16 => split_row::<16>(src, kc, kk, out),
            32 => split_row::<32>(src, kc, kk, out),
            _ => {
                for (q, chunk) in src.chunks(nr).enumerate() {
                    let d = &mut out[q * kc * nr + kk * nr..][..nr];
                    d[..chunk.len()].copy_from_slice(chunk);
                    d[chunk.len()..].fill(0.0);
                }
            }
        }
    }
}

/// Row `kk` of a B block into its `NR`-column panels (`kc × NR` each):
/// whole panels as fixed-size copies, which compile to a few vector moves
/// (a `memcpy` call per 32 floats was 4–8 % of a convolution).
#[inline(always)]
fn split_row<const NR: usize>(src: &[f32], kc: usize, kk: usize, out: &mut [f32]) {
    let mut chunks = src.chunks_exact(NR);
    for (q, chunk) in (&mut chunks).enumerate() {
        let d: &mut [f32; NR] = (&mut out[q * kc * NR + kk * NR..][..NR]).try_into().expect("a whole panel row");
        d.copy_from_slice(chunk);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let d = &mut out[(src.len() / NR) * kc * NR + kk * NR..][..NR];
        d[..rest.len()].copy_from_slice(rest);
        d[rest.len()..].fill(0.0);
    }
}

/// Columns `j0 .. j0 + out.len()` of row `k` of the im2col matrix, read
/// from the image a run of output pixels at a time.
fn im2col_row(im: &Im2col<'_>, k: usize, j0: usize, out: &mut [f32], de2: fn(&[f32], &mut [f32])) {
    let khw = im.kh * im.kw;
    let (ch, r) = (k / khw, k % khw);
    let (ky, kx) = (r / im.kw, r % im.kw);
    let plane = &im.x[ch * im.h * im.w..(ch + 1) * im.h * im.w];
    let dy = (ky * im.dh) as isize - im.pad_top as isize;
    let dx = (kx * im.dw) as isize - im.pad_left as isize;
    let (h, w, sw) = (im.h as isize, im.w as isize, im.sw as isize);
    // Output columns ox whose input column ox·sw + dx lies in 0..w.
    let lo_all = if dx >= 0 { 0 } else { ((-dx) + sw - 1) / sw };
    let hi_all = if w - 1 - dx < 0 { 0 } else { ((w - 1 - dx) / sw + 1).min(im.ow as isize) };
    let mut t = 0;
    let mut j = j0;
    while t < out.len() {
        let oy = j / im.ow;
        let ox0 = j - oy * im.ow;
        let n = (out.len() - t).min(im.ow - ox0);
        let seg = &mut out[t..t + n];
        let iy = (oy * im.sh) as isize + dy;
        if iy < 0 || iy >= h || lo_all >= hi_all {
            seg.fill(0.0);
        } else {
            let row = &plane[(iy * w) as usize..((iy + 1) * w) as usize];
            let lo = (lo_all as usize).clamp(ox0, ox0 + n);
            let hi = (hi_all as usize).clamp(lo, ox0 + n);
            seg[..lo - ox0].fill(0.0);
            seg[hi - ox0..].fill(0.0);
            if hi == lo {
                // No input column of this run lies inside the image.
            } else if im.sw == 1 {
                let start = (lo as isize + dx) as usize;
                seg[lo - ox0..hi - ox0].copy_from_slice(&row[start..start + (hi - lo)]);
            } else if im.sw == 2 {
                let start = (lo as isize * sw + dx) as usize;
                de2(&row[start..], &mut seg[lo - ox0..hi - ox0]);
            } else {
                let start = (lo as isize * sw + dx) as usize;
                seg[lo - ox0..hi - ox0].iter_mut().zip(row[start..].iter().step_by(im.sw)).for_each(|(d, &v)| *d = v);
            }
        }
        t += n;
        j += n;
    }
}
