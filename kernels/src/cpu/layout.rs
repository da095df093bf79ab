//! Data movement: concatenation, transposition, deinterleaving.

/// Copies one input of a concatenation into its place in the output.
/// The output is `[outer, total, inner]`; this input is `[outer, len, inner]`
/// and starts at `offset` along the concatenated axis.
pub fn concat_part(x: &[f32], outer: usize, len: usize, offset: usize, total: usize, inner: usize, y: &mut [f32]) {
    let run = len * inner;
    for o in 0..outer {
        let dst = (o * total + offset) * inner;
        y[dst..dst + run].copy_from_slice(&x[o * run..(o + 1) * run]);
    }
}

/// Maximum rank of a transposition.
pub const MAX_RANK: usize = 8;

/// `y = x.transpose(perm)`: output axis `i` is input axis `perm[i]`.
pub fn transpose(x: &[f32], in_shape: &[usize], perm: &[usize], y: &mut [f32]) {
    let rank = in_shape.len();
    assert!(rank <= MAX_RANK && perm.len() == rank, "transpose: rank {rank} with perm {perm:?}");
    let mut in_strides = [0usize; MAX_RANK];
    let mut acc = 1;
    for i in (0..rank).rev() {
        in_strides[i] = acc;
        acc *= in_shape[i];
    }
    // Output dims and the input stride of each output axis.
    let mut dims = [1usize; MAX_RANK];
    let mut strides = [0usize; MAX_RANK];
    for (i, &p) in perm.iter().enumerate() {
        dims[i] = in_shape[p];
        strides[i] = in_strides[p];
    }
    let total: usize = dims[..rank].iter().product();
    if total == 0 {
        return;
    }
    if rank == 0 {
        y[0] = x[0];
        return;
    }
    let inner = dims[rank - 1];
    let inner_stride = strides[rank - 1];
    let mut idx = [0usize; MAX_RANK];
    let mut out = 0;
    while out < total {
        let mut src = 0;
        for a in 0..rank - 1 {
            src += idx[a] * strides[a];
        }
        if inner_stride == 1 {
            y[out..out + inner].copy_from_slice(&x[src..src + inner]);
        } else {
            for (j, v) in y[out..out + inner].iter_mut().enumerate() {
                *v = x[src + j * inner_stride];
            }
        }
        out += inner;
        // Advance the odometer over the outer axes.
        let mut a = rank - 1;
        while a > 0 {
            a -= 1;
            idx[a] += 1;
            if idx[a] < dims[a] {
                break;
            }
            idx[a] = 0;
        }
    }
}

/// `dst[i] = src[2 i]`: sixteen at a time from 32 (shuffles), the tail
/// (at most sixteen: callers give `dst` at most half of `src`, rounded
/// up) the same way from a padded copy.
#[inline(always)]
pub(crate) fn deinterleave2(src: &[f32], dst: &mut [f32]) {
    let mut i = 0;
    while i + 16 <= dst.len() && 2 * i + 32 <= src.len() {
        let c: &[f32; 32] = src[2 * i..2 * i + 32].try_into().expect("32 floats");
        let d: &mut [f32; 16] = (&mut dst[i..i + 16]).try_into().expect("16 floats");
        for l in 0..16 {
            d[l] = c[2 * l];
        }
        i += 16;
    }
    // The tail through a zero-padded copy, as one more block of sixteen.
    let rest = dst.len() - i;
    if rest > 0 {
        let mut c = [0.0f32; 32];
        let n = (src.len() - 2 * i).min(32);
        c[..n].copy_from_slice(&src[2 * i..2 * i + n]);
        let mut d = [0.0f32; 16];
        for l in 0..16 {
            d[l] = c[2 * l];
        }
        dst[i..].copy_from_slice(&d[..rest.min(16)]);
    }
}

#[cfg(test)]
mod tests {
    use crate::cpu::{gemm, Isa};

    /// Every variant's stride-2 split this machine runs gives `src[2 i]`,
    /// at every length around its vector widths, with `src` as short as
    /// allowed (`2 n − 1`) and longer.
    #[test]
    fn deinterleave2_matches_definition_on_every_variant() {
        for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
            let de2 = gemm::variant(isa).de2;
            for n in 0usize..70 {
                for extra in [0, 1, 2, 17] {
                    let src: Vec<f32> = (0..(2 * n).saturating_sub(1) + extra).map(|v| v as f32 + 0.5).collect();
                    let mut dst = vec![f32::NAN; n];
                    de2(&src, &mut dst);
                    let want: Vec<f32> = (0..n).map(|i| src[2 * i]).collect();
                    assert_eq!(dst, want, "{isa:?}: n = {n}, src of {}", src.len());
                }
            }
        }
    }
}
