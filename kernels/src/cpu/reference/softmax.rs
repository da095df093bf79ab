//! Softmax along one axis of a tensor seen as `[outer, n, inner]`.

pub fn softmax(outer: usize, n: usize, inner: usize, x: &[f32], y: &mut [f32]) {
    for o in 0..outer {
        for i in 0..inner {
            let base = o * n * inner + i;
            let at = |j: usize| base + j * inner;
            let mut max = f32::NEG_INFINITY;
            for j in 0..n {
                max = max.max(x[at(j)]);
            }
            let mut sum = 0.0f32;
            for j in 0..n {
                let e = (x[at(j)] - max).exp();
                y[at(j)] = e;
                sum += e;
            }
            let inv = 1.0 / sum;
            for j in 0..n {
                y[at(j)] *= inv;
            }
        }
    }
}
