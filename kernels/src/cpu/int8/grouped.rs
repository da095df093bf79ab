//! Int8 grouped convolutions of narrow groups through the float grouped
//! kernel ([`crate::cpu::grouped`]) on `x − zp` as floats: at most 144
//! products of at most 255 · 127 per output, so the sums are the exact i32
//! sums on every variant. As int8 GEMMs of 8 rows each, RegNetX's grouped
//! layers made its int8 slower than its fp32.

use super::depthwise::ByteRows;
use super::*;
use crate::cpu::grouped::GroupIo;

/// An int8 grouped convolution's tensors (see [`GroupIo`]).
pub(super) struct ByteGroups<'a> {
    pub(super) s: &'a Conv2dShape,
    pub(super) x: &'a [i8],
    pub(super) zp: i8,
    pub(super) x_pad: Option<&'a [i8]>,
    pub(super) w: &'a [i8],
    pub(super) ep: &'a QEpilogue<'a>,
    pub(super) out: &'a SharedOut<'a>,
    /// Weights per output channel, and the row length they are padded to.
    pub(super) k: usize,
    pub(super) kp: usize,
}

impl ByteGroups<'_> {
    /// Output channel `oc`'s weights (without the padding to `Kp`).
    #[inline(always)]
    fn weights(&self, oc: usize) -> &[i8] {
        &self.w[oc * self.kp..][..self.k]
    }
}

impl GroupIo for ByteGroups<'_> {
    type Rows<'r>
        = ByteRows<'r>
    where
        Self: 'r;

    #[inline(always)]
    fn input(&self, n: usize, c: usize) -> ByteRows<'_> {
        let hw_in = self.s.in_h * self.s.in_w;
        let pad = self.x_pad.map_or(self.zp, |p| p[c]);
        ByteRows {
            x: &self.x[(n * self.s.in_channels + c) * hw_in..][..hw_in],
            width: self.s.in_w,
            zp: self.zp as f32,
            pad: (pad as i32 - self.zp as i32) as f32,
        }
    }

    fn pads_vary(&self) -> bool {
        self.x_pad.is_some()
    }

    #[inline(always)]
    fn weight(&self, oc: usize, j: usize) -> f32 {
        self.weights(oc)[j] as f32
    }

    fn bias(&self, _oc: usize) -> f32 {
        0.0
    }

    /// Dequantizes each channel's row (exact sums of `(x − zp)·w`), the
    /// bias with its `zp · Σw` term put back, the activation, the store.
    #[inline(always)]
    fn emit(&self, n: usize, m0: usize, oy: usize, rows: &mut [f32]) {
        let (s, hw_out) = (self.s, self.s.out_h * self.s.out_w);
        for (m, row) in rows.chunks_exact_mut(s.out_w).enumerate() {
            let oc = m0 + m;
            let wsum: i32 = self.weights(oc).iter().map(|&v| v as i32).sum();
            let deq = self.ep.deq[oc];
            let bias = self.ep.bias[oc] + (self.zp as i32 * wsum) as f32 * deq;
            for v in row.iter_mut() {
                *v = *v * deq + bias;
            }
            self.ep.act.apply_slice(row);
            // SAFETY: the task of this group alone writes its planes.
            unsafe { store(self.out, (n * s.out_channels + oc) * hw_out + oy * s.out_w, row) };
        }
    }

    fn finish(&self, _n: usize, _m0: usize, _mg: usize) {}
}
