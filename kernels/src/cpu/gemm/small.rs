//! Products too thin to pack: a few rows of A (a fully connected layer at
//! batch 1) or one column of B (a matrix times a vector).

use super::*;

/// `c[i] = finish(A[i] · b)`: one dot product per row, rows split over
/// the workers when there are enough of them.
pub(super) fn gemv(v: &Variant, par: &dyn Parallel, a: MatRef<'_>, b: &[f32], ep: &Epilogue<'_>, c: &mut [f32]) {
    let (m, k) = (a.rows, a.cols);
    let tasks = if par.workers() > 1 && m * k >= 1 << 15 { (par.workers() * 4).min(m) } else { 1 };
    let chunk = m.div_ceil(tasks);
    let cshared = SharedMut::new(&mut c[..m]);
    let task = |t: usize, _worker: usize| {
        let (i0, i1) = (t * chunk, ((t + 1) * chunk).min(m));
        // SAFETY: tasks own disjoint row ranges i0..i1.
        let out = unsafe { cshared.slice_mut(i0, i1 - i0) };
        for (i, o) in (i0..i1).zip(out) {
            *o = ep.finish((v.dot)(&a.data[i * a.rs..i * a.rs + k], b), i, 0);
        }
    };
    if tasks == 1 {
        task(0, 0);
    } else {
        par.run(m.div_ceil(chunk), &task);
    }
}

/// B of the small-m path.
#[derive(Clone, Copy)]
pub(super) enum SmallB<'a> {
    Mat(MatRef<'a>),
    PackedT(Rows<'a>),
}

/// `m ≤ SMALL_M`: every element of B is read once, straight from memory.
pub(super) fn gemm_small_m(v: &Variant, par: &dyn Parallel, a: MatRef<'_>, b: SmallB<'_>, ep: &Epilogue<'_>, c: &mut [f32]) {
    let (m, k) = (a.rows, a.cols);
    let n = match b {
        SmallB::Mat(b) => b.cols,
        SmallB::PackedT(q) => q.rows(),
    };
    let workers = par.workers();
    let chunk = if workers > 1 { n.div_ceil(workers * 4).max(16) } else { n };
    let tasks = n.div_ceil(chunk);
    let cshared = SharedMut::new(&mut c[..m * n]);
    let task = |t: usize, _worker: usize| {
        let j0 = t * chunk;
        let j1 = (j0 + chunk).min(n);
        let b = match b {
            SmallB::Mat(b) => b,
            SmallB::PackedT(q) => {
                // Each weight row is decoded once, a block of K at a time,
                // and dotted with every row of A.
                let mut line = [0.0f32; MAX_KC];
                for j in j0..j1 {
                    let mut acc = [0.0f32; SMALL_M];
                    let mut k0 = 0;
                    while k0 < k {
                        let kc = MAX_KC.min(k - k0);
                        q.decode(j, k0, &mut line[..kc]);
                        for (i, s) in acc[..m].iter_mut().enumerate() {
                            *s += (v.dot)(&a.data[i * a.rs + k0..i * a.rs + k0 + kc], &line[..kc]);
                        }
                        k0 += kc;
                    }
                    for (i, &s) in acc[..m].iter().enumerate() {
                        // SAFETY: tasks own disjoint column ranges j0..j1.
                        let cc = unsafe { cshared.slice_mut(i * n + j, 1) };
                        cc[0] = ep.finish(s, i, j);
                    }
                }
                return;
            }
        };
        for i in 0..m {
            let arow = &a.data[i * a.rs..i * a.rs + k];
            // SAFETY: tasks own disjoint column ranges j0..j1 of each row.
            let crow = unsafe { cshared.slice_mut(i * n + j0, j1 - j0) };
            if b.rs == 1 {
                // B's columns are contiguous (a transposed weight matrix).
                for (x, cc) in crow.iter_mut().enumerate() {
                    let j = j0 + x;
                    let bcol = &b.data[j * b.cs..j * b.cs + k];
                    *cc = ep.finish((v.dot)(arow, bcol), i, j);
                }
            } else {
                crow.fill(0.0);
                for (kk, &av) in arow.iter().enumerate() {
                    let brow = &b.data[kk * b.rs + j0..kk * b.rs + j1];
                    crow.iter_mut().zip(brow).for_each(|(cc, &bv)| *cc += av * bv);
                }
                ep.finish_row(crow, i, j0);
            }
        }
    };
    if tasks == 1 {
        task(0, 0);
    } else {
        par.run(tasks, &task);
    }
}
