//! Local response normalization across channels (ONNX LRN).

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LrnParams {
    pub size: usize,
    pub alpha: f32,
    pub beta: f32,
    pub bias: f32,
}

/// `y = x / (bias + alpha/size · Σ x²)^beta`, the sum over the channels
/// `c − floor((size−1)/2) ..= c + ceil((size−1)/2)` that exist. `x` is
/// `[batch, channels, inner]`.
pub fn lrn(p: &LrnParams, batch: usize, channels: usize, inner: usize, x: &[f32], y: &mut [f32]) {
    let before = (p.size - 1) / 2;
    let after = p.size - 1 - before;
    let scale = p.alpha / p.size as f32;
    for n in 0..batch {
        let xb = &x[n * channels * inner..(n + 1) * channels * inner];
        let yb = &mut y[n * channels * inner..(n + 1) * channels * inner];
        for c in 0..channels {
            let lo = c.saturating_sub(before);
            let hi = (c + after).min(channels - 1);
            for i in 0..inner {
                let mut sq = 0.0f32;
                for cc in lo..=hi {
                    let v = xb[cc * inner + i];
                    sq += v * v;
                }
                let v = xb[c * inner + i];
                yb[c * inner + i] = v / (p.bias + scale * sq).powf(p.beta);
            }
        }
    }
}
