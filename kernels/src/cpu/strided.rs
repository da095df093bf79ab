//! Byte-level data movement for any element type: strided copies (Slice,
//! Expand), Gather, and Where. Element sizes are in bytes; strides and
//! offsets in elements.

/// Strides (in elements) of a row-major tensor of shape `dims`, with 0 on
/// axes of length 1 so it broadcasts, aligned to the last `rank` axes.
pub fn broadcast_strides(dims: &[usize], rank: usize) -> [isize; 8] {
    let mut s = [0isize; 8];
    let lead = rank - dims.len();
    let mut acc = 1isize;
    for a in (0..dims.len()).rev() {
        s[lead + a] = if dims[a] == 1 { 0 } else { acc };
        acc *= dims[a] as isize;
    }
    s
}

/// `y[i] = x[base + Σ i_a · strides[a]]` for every index `i` of `out_dims`
/// (row-major), elements of `elem` bytes. The caller guarantees every
/// source index lies inside `x`.
pub fn strided_copy(elem: usize, x: &[u8], base: isize, strides: &[isize], out_dims: &[usize], y: &mut [u8]) {
    let rank = out_dims.len();
    if rank == 0 {
        let b = base as usize * elem;
        y[..elem].copy_from_slice(&x[b..b + elem]);
        return;
    }
    let inner = out_dims[rank - 1];
    let s_in = strides[rank - 1];
    let rows: usize = out_dims[..rank - 1].iter().product();
    if inner == 0 || rows == 0 {
        return;
    }
    let mut idx = [0usize; 8];
    let mut off = base;
    let row_bytes = inner * elem;
    for r in 0..rows {
        let out = &mut y[r * row_bytes..(r + 1) * row_bytes];
        if s_in == 1 {
            let b = off as usize * elem;
            out.copy_from_slice(&x[b..b + row_bytes]);
        } else {
            for (j, o) in out.chunks_exact_mut(elem).enumerate() {
                let b = (off + j as isize * s_in) as usize * elem;
                o.copy_from_slice(&x[b..b + elem]);
            }
        }
        for a in (0..rank - 1).rev() {
            idx[a] += 1;
            off += strides[a];
            if idx[a] < out_dims[a] {
                break;
            }
            off -= strides[a] * out_dims[a] as isize;
            idx[a] = 0;
        }
    }
}

/// ONNX Gather along one axis: data viewed as `[outer, axis_len, inner]`
/// elements; `y` is `[outer, indices.len(), inner]`. Negative indices count
/// from the end. Returns the first index out of range, if any (then `y` is
/// partly written).
pub fn gather(elem: usize, data: &[u8], outer: usize, axis_len: usize, inner: usize, indices: &[i64], y: &mut [u8]) -> Result<(), i64> {
    let block = inner * elem;
    let mut o = 0usize;
    for out in 0..outer {
        for &i in indices {
            let k = if i < 0 { i + axis_len as i64 } else { i };
            if k < 0 || k >= axis_len as i64 {
                return Err(i);
            }
            let src = (out * axis_len + k as usize) * block;
            y[o..o + block].copy_from_slice(&data[src..src + block]);
            o += block;
        }
    }
    Ok(())
}

/// ONNX Where with numpy broadcasting: `out[i] = cond[i] ? x[i] : y[i]`;
/// each operand's strides come from [`broadcast_strides`] for `out_dims`.
pub fn select(elem: usize, cond: (&[u8], &[isize]), x: (&[u8], &[isize]), y: (&[u8], &[isize]), out_dims: &[usize], out: &mut [u8]) {
    let rank = out_dims.len();
    let mut idx = [0usize; 8];
    let (mut oc, mut ox, mut oy) = (0isize, 0isize, 0isize);
    for o in out.chunks_exact_mut(elem) {
        let (src, off) = if cond.0[oc as usize] != 0 { (x.0, ox) } else { (y.0, oy) };
        let b = off as usize * elem;
        o.copy_from_slice(&src[b..b + elem]);
        for a in (0..rank).rev() {
            idx[a] += 1;
            oc += cond.1[a];
            ox += x.1[a];
            oy += y.1[a];
            if idx[a] < out_dims[a] {
                break;
            }
            let n = out_dims[a] as isize;
            oc -= cond.1[a] * n;
            ox -= x.1[a] * n;
            oy -= y.1[a] * n;
            idx[a] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(v: &[u16]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn strided_copy_slices_and_broadcasts() {
        // [3, 4] of u16, take rows 2..0 step -1, columns 1..4 step 2.
        let x = bytes(&(0..12).collect::<Vec<_>>());
        let mut y = vec![0u8; 2 * 2 * 2];
        strided_copy(2, &x, 2 * 4 + 1, &[-4, 2], &[2, 2], &mut y);
        assert_eq!(y, bytes(&[9, 11, 5, 7]));
        // [3] broadcast to [2, 3].
        let s = broadcast_strides(&[3], 2);
        let mut y = vec![0u8; 12];
        strided_copy(2, &bytes(&[1, 2, 3]), 0, &s[..2], &[2, 3], &mut y);
        assert_eq!(y, bytes(&[1, 2, 3, 1, 2, 3]));
    }

    #[test]
    fn gather_and_select() {
        let data = bytes(&[10, 11, 12, 20, 21, 22]); // [2, 3]
        let mut y = vec![0u8; 2 * 2 * 2];
        gather(2, &data, 2, 3, 1, &[2, -3], &mut y).unwrap();
        assert_eq!(y, bytes(&[12, 10, 22, 20]));
        assert_eq!(gather(2, &data, 2, 3, 1, &[3], &mut y), Err(3));
        let cond = [1u8, 0];
        let (cs, xs, ys) = (broadcast_strides(&[2], 2), broadcast_strides(&[2, 2], 2), broadcast_strides(&[1], 2));
        let mut out = vec![0u8; 8];
        select(2, (&cond, &cs), (&bytes(&[1, 2, 3, 4]), &xs), (&bytes(&[9]), &ys), &[2, 2], &mut out);
        assert_eq!(out, bytes(&[1, 9, 3, 9]));
    }
}

/// How [`pad`] fills positions outside the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PadMode {
    /// A fixed value.
    #[default]
    Constant,
    /// Mirrored about the edge element, which is not repeated.
    Reflect,
    /// The edge element repeated.
    Edge,
    /// Periodic: the input tiled.
    Wrap,
}

/// Source index along one axis for output position `o` (`None`: the
/// constant). `len` is at least 1 for the modes that read the input
/// (checked by the caller); reflect needs at least 2 when it mirrors.
#[inline(always)]
fn pad_source(mode: PadMode, o: isize, begin: isize, len: isize) -> Option<isize> {
    let i = o - begin;
    if (0..len).contains(&i) {
        return Some(i);
    }
    match mode {
        PadMode::Constant => None,
        PadMode::Edge => Some(i.clamp(0, len - 1)),
        PadMode::Wrap => Some(i.rem_euclid(len)),
        PadMode::Reflect => {
            if len == 1 {
                return Some(0);
            }
            let period = 2 * (len - 1);
            let r = i.rem_euclid(period);
            Some(if r < len { r } else { period - r })
        }
    }
}

/// ONNX Pad (non-negative pads): `y` of shape `out_dims` holds `x` (shape
/// `in_dims`) at offset `begin` per axis; other positions follow `mode`
/// (`value` is one element's bytes for [`PadMode::Constant`]).
pub fn pad(elem: usize, x: &[u8], in_dims: &[usize], begin: &[usize], mode: PadMode, value: &[u8], out_dims: &[usize], y: &mut [u8]) {
    let rank = out_dims.len();
    let mut in_strides = [0usize; 8];
    let mut acc = 1;
    for a in (0..rank).rev() {
        in_strides[a] = acc;
        acc *= in_dims[a];
    }
    let mut idx = [0usize; 8];
    for o in y.chunks_exact_mut(elem) {
        let mut src = Some(0usize);
        for a in 0..rank {
            src = match (src, pad_source(mode, idx[a] as isize, begin[a] as isize, in_dims[a] as isize)) {
                (Some(s), Some(i)) => Some(s + i as usize * in_strides[a]),
                _ => None,
            };
        }
        match src {
            Some(s) => o.copy_from_slice(&x[s * elem..(s + 1) * elem]),
            None => o.copy_from_slice(value),
        }
        for a in (0..rank).rev() {
            idx[a] += 1;
            if idx[a] < out_dims[a] {
                break;
            }
            idx[a] = 0;
        }
    }
}

#[cfg(test)]
mod pad_tests {
    use super::*;

    #[test]
    fn pads_every_mode_like_numpy() {
        // [1, 2, 3] padded 2 before, 3 after.
        let x: Vec<u8> = vec![1, 2, 3];
        let cases = [
            (PadMode::Constant, vec![9, 9, 1, 2, 3, 9, 9, 9]),
            (PadMode::Edge, vec![1, 1, 1, 2, 3, 3, 3, 3]),
            (PadMode::Reflect, vec![3, 2, 1, 2, 3, 2, 1, 2]),
            (PadMode::Wrap, vec![2, 3, 1, 2, 3, 1, 2, 3]),
        ];
        for (mode, want) in cases {
            let mut y = vec![0u8; 8];
            pad(1, &x, &[3], &[2], mode, &[9], &[8], &mut y);
            assert_eq!(y, want, "{mode:?}");
        }
        // 2-D, constant, only the last axis.
        let mut y = vec![0u8; 2 * 4];
        pad(1, &[1, 2, 3, 4], &[2, 2], &[0, 1], PadMode::Constant, &[0], &[2, 4], &mut y);
        assert_eq!(y, [0, 1, 2, 0, 0, 3, 4, 0]);
    }
}
