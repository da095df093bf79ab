//! Tables the GPU steps read besides their operands, built on the host and
//! uploaded once per session: the tap tables of Resize and, for sparse
//! weights, the set bits before each mask byte.

use super::args::fits;
use jetrt_kernels::cpu::resize::AxisTaps;

/// Appends the tap tables of a Resize step to `host`, as
/// `jrt_resize2d_f32` reads them: for the rows, then the columns, the
/// input positions (i32, `out × taps`), their weights (f32) and whether
/// each output coordinate extrapolates (i32, `out`). Returns the six
/// tables' byte offsets.
pub(crate) fn resize_tables(host: &mut Vec<u8>, ty: &AxisTaps, tx: &AxisTaps) -> Result<[u64; 6], String> {
    let mut o = [0u64; 6];
    for (a, taps) in [ty, tx].into_iter().enumerate() {
        let outs = 0..taps.out_len();
        o[3 * a] = host.len() as u64;
        for k in outs.clone() {
            for &i in taps.at(k).0 {
                host.extend_from_slice(&fits(i)?.to_le_bytes());
            }
        }
        o[3 * a + 1] = host.len() as u64;
        for k in outs.clone() {
            for &w in taps.at(k).1 {
                host.extend_from_slice(&w.to_le_bytes());
            }
        }
        o[3 * a + 2] = host.len() as u64;
        for k in outs {
            host.extend_from_slice(&(taps.extrapolates(k) as i32).to_le_bytes());
        }
    }
    Ok(o)
}

/// Per mask byte of sparse weight rows (`mb` bytes each), the set bits
/// before it in its row: what `JrtSpRows` in kernels/cuda/sparse.cu adds
/// to the row's start to find a weight.
pub(crate) fn bits_before(mask: &[u8], mb: usize) -> Vec<u32> {
    let mut out = Vec::with_capacity(mask.len());
    for row in mask.chunks_exact(mb.max(1)) {
        let mut n = 0u32;
        for &b in row {
            out.push(n);
            n += b.count_ones();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn resize_from_the_tables_equals_the_cpu_bit_for_bit() {
        use jetrt_kernels::cpu::resize::{axis_taps, resize2d, CoordTransform as C, ResizeMode as M, ResizeParams};
        // jrt_resize2d_f32 in kernels/cuda/resize.cu, step for step, on the
        // bytes uploaded (no FMA: Rust does not contract).
        fn kernel(
            t: &[u8],
            o: [u64; 6],
            planes: usize,
            (in_h, in_w): (usize, usize),
            (oh, ow): (usize, usize),
            taps: (usize, usize),
            ext: f32,
            x: &[f32],
        ) -> Vec<f32> {
            let i32_at = |off: u64, n: usize| i32::from_le_bytes(t[off as usize + 4 * n..off as usize + 4 * n + 4].try_into().unwrap());
            let f32_at = |off: u64, n: usize| f32::from_le_bytes(t[off as usize + 4 * n..off as usize + 4 * n + 4].try_into().unwrap());
            let (ty, tx) = taps;
            let mut y = vec![0.0; planes * oh * ow];
            for (idx, out) in y.iter_mut().enumerate() {
                let (ox, r) = (idx % ow, idx / ow);
                let (oy, p) = (r % oh, r / oh);
                if i32_at(o[2], oy) != 0 || i32_at(o[5], ox) != 0 {
                    *out = ext;
                    continue;
                }
                let xp = &x[p * in_h * in_w..];
                let mut acc = 0.0f32;
                for j in 0..tx {
                    let col = i32_at(o[3], ox * tx + j) as usize;
                    let mut v = f32_at(o[1], oy * ty) * xp[col + i32_at(o[0], oy * ty) as usize * in_w];
                    for i in 1..ty {
                        v += f32_at(o[1], oy * ty + i) * xp[col + i32_at(o[0], oy * ty + i) as usize * in_w];
                    }
                    acc = if j == 0 { f32_at(o[4], ox * tx) * v } else { acc + f32_at(o[4], ox * tx + j) * v };
                }
                *out = acc;
            }
            y
        }
        let (planes, in_h, in_w) = (3, 5, 7);
        let x: Vec<f32> = (0..planes * in_h * in_w).map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0).collect();
        for (mode, coord, out, scales, roi) in [
            (M::Nearest, C::Asymmetric, (10, 14), (2.0, 2.0), (0.0, 1.0)),
            (M::Linear, C::HalfPixel, (8, 4), (1.6, 4.0 / 7.0), (0.0, 1.0)),
            (M::Cubic, C::AlignCorners, (9, 11), (1.8, 11.0 / 7.0), (0.0, 1.0)),
            (M::Linear, C::TfCropAndResize, (6, 6), (1.2, 6.0 / 7.0), (-0.25, 1.25)),
        ] {
            let p = ResizeParams { mode, coord, extrapolation_value: -9.0, ..ResizeParams::default() };
            let ty = axis_taps(&p, in_h, out.0, scales.0, roi);
            let tx = axis_taps(&p, in_w, out.1, scales.1, roi);
            let mut want = vec![0.0; planes * out.0 * out.1];
            resize2d(&jetrt_kernels::Serial, planes, in_h, in_w, &ty, &tx, p.extrapolation_value, &x, &mut want);
            let mut host = vec![0u8; 12]; // not at the start of the allocation
            let o = super::resize_tables(&mut host, &ty, &tx).unwrap();
            let got = kernel(&host, o, planes, (in_h, in_w), out, (ty.taps(), tx.taps()), p.extrapolation_value, &x);
            assert!(got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "{mode:?} {coord:?}: {got:?} vs {want:?}");
        }
    }

    #[test]
    fn sparse_lookups_find_what_the_cpu_decodes() {
        use jetrt_kernels::cpu::packed::SpRef;
        // JrtSpRows::operator() in kernels/cuda/sparse.cu, step for step.
        fn lookup(mask: &[u8], values: &[f32], starts: &[u32], before: &[u32], mb: usize, row: usize, k: usize) -> f32 {
            let b = row * mb + (k >> 3);
            let (m, bit) = (mask[b] as u32, k & 7);
            if (m >> bit) & 1 == 0 {
                return 0.0;
            }
            let vi = starts[row] as u64 + before[b] as u64 + (m & ((1u32 << bit) - 1)).count_ones() as u64;
            values.get(vi as usize).copied().unwrap_or(0.0)
        }
        let (rows, k) = (5usize, 37usize);
        let mb = k.div_ceil(8);
        // A deterministic pattern with empty rows, full bytes and a ragged end.
        let mut mask = vec![0u8; rows * mb];
        let (mut values, mut starts) = (Vec::new(), vec![0u32]);
        for r in 0..rows {
            for c in 0..k {
                if r != 2 && (c * 7 + r * 3) % 5 < 3 {
                    mask[r * mb + c / 8] |= 1 << (c % 8);
                    values.push((r * 100 + c) as f32);
                }
            }
            starts.push(values.len() as u32);
        }
        let before = super::bits_before(&mask, mb);
        let sp = SpRef { mask: &mask, values: &values, row_start: &starts, rows, k };
        let mut row = vec![0.0; k];
        for r in 0..rows {
            sp.decode(r, 0, &mut row);
            for (c, &want) in row.iter().enumerate() {
                assert_eq!(lookup(&mask, &values, &starts, &before, mb, r, c), want, "row {r} column {c}");
            }
        }
        // A hostile row start past the values reads 0 on both.
        let bad = vec![0, 1000, 1000, 1000, 1000, 1000];
        let sp = SpRef { mask: &mask, values: &values, row_start: &bad, rows, k };
        sp.decode(1, 0, &mut row);
        assert!(row.iter().all(|&v| v == 0.0));
        assert!((0..k).all(|c| lookup(&mask, &values, &bad, &before, mb, 1, c) == 0.0));
    }
}
