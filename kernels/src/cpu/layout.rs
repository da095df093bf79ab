//! Data movement: concatenation and transposition.

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
