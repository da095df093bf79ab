//! Int8 convolutions through the float direct kernels (depthwise:
//! [`crate::cpu::depthwise`]; narrow groups: [`crate::cpu::grouped`]) on
//! `x − zp` as floats. A product is at most 255 · 127 and an output sums
//! at most 518 of them (depthwise) or 144 (grouped), so every sum is an
//! integer below 2^24: exact, in any order, on every variant, the i32 sum.
//! The int8 row loop these replace ran stride-2 depthwise planes at
//! 1 GFLOP/s on AVX2, and 8-row int8 GEMMs made RegNetX's int8 slower than
//! its fp32.

use super::*;
use crate::cpu::depthwise::{DwRows, DwTask, MAX_TAPS};
use crate::cpu::grouped::GroupIo;
use crate::cpu::Isa;

/// The float variant that goes with int8 variant `q`, for the float
/// kernels int8 convolutions run on exact integer sums.
pub(super) fn float_isa(q: QIsa) -> Isa {
    match q {
        QIsa::Avx512Vnni if Isa::Avx512.supported() => Isa::Avx512,
        QIsa::Avx2 | QIsa::Avx512Vnni if Isa::Avx2Fma.supported() => Isa::Avx2Fma,
        QIsa::NeonDot | QIsa::NeonI8mm if Isa::Neon.supported() => Isa::Neon,
        _ => Isa::Generic,
    }
}

/// An int8 convolution's tensors: input `x` with zero point `zp` and the
/// padding value of each channel (`zp` for all when `None`), weights `w`
/// of `[M, kp]`, the epilogue and the output.
pub(super) struct ByteConv<'a> {
    pub(super) s: &'a Conv2dShape,
    pub(super) x: &'a [i8],
    pub(super) zp: i8,
    pub(super) x_pad: Option<&'a [i8]>,
    pub(super) w: &'a [i8],
    pub(super) kp: usize,
    pub(super) ep: &'a QEpilogue<'a>,
    pub(super) out: &'a SharedOut<'a>,
}

impl ByteConv<'_> {
    /// Input channel `ic` of image `n`.
    #[inline(always)]
    pub(super) fn plane(&self, n: usize, ic: usize) -> &[i8] {
        let hw_in = self.s.in_h * self.s.in_w;
        &self.x[(n * self.s.in_channels + ic) * hw_in..][..hw_in]
    }

    /// Output channel `oc`'s weights (without the padding to `kp`).
    #[inline(always)]
    pub(super) fn weights(&self, oc: usize) -> &[i8] {
        let k = (self.s.in_channels / self.s.groups) * self.s.kernel_h * self.s.kernel_w;
        &self.w[oc * self.kp..][..k]
    }

    /// What input channel `ic`'s padding reads.
    #[inline(always)]
    pub(super) fn pad_byte(&self, ic: usize) -> i8 {
        self.x_pad.map_or(self.zp, |p| p[ic])
    }

    /// Input channel `ic` of image `n` as floats `x − zp`.
    #[inline(always)]
    fn rows(&self, n: usize, ic: usize) -> ByteRows<'_> {
        let pad = (self.pad_byte(ic) as i32 - self.zp as i32) as f32;
        ByteRows { x: self.plane(n, ic), width: self.s.in_w, zp: self.zp as f32, pad }
    }

    /// Dequantizes a row of output channel `oc` (exact sums of
    /// `(x − zp)·w`), the bias with its `zp · Σw` term put back, the
    /// activation, and stores it at output element `at`.
    #[inline(always)]
    fn emit_row(&self, oc: usize, at: usize, sums: &mut [f32]) {
        let wsum: i32 = self.weights(oc).iter().map(|&v| v as i32).sum();
        let deq = self.ep.deq[oc];
        let bias = self.ep.bias[oc] + (self.zp as i32 * wsum) as f32 * deq;
        for v in sums.iter_mut() {
            *v = *v * deq + bias;
        }
        self.ep.act.apply_slice(sums);
        // SAFETY: the callers' tasks own the rows they emit.
        unsafe { store(self.out, at, sums) };
    }

    /// Plane q's channels: (image, input channel, output channel).
    fn channels(&self, q: usize) -> (usize, usize, usize) {
        let s = self.s;
        let (n, oc) = (q / s.out_channels, q % s.out_channels);
        (n, oc / (s.out_channels / s.groups), oc)
    }
}

/// One int8 input plane as floats `x − zp`, its padding `pad − zp`.
pub(super) struct ByteRows<'a> {
    x: &'a [i8],
    width: usize,
    zp: f32,
    pad: f32,
}

impl DwRows for ByteRows<'_> {
    /// Sixteen values at a time from fixed-size blocks (which compile to
    /// widening moves and, at stride 2, byte shuffles: as a strided
    /// iterator, one scalar load and store per value), the tail one by one.
    #[inline(always)]
    fn row(&self, iy: usize, start: usize, step: usize, dst: &mut [f32]) {
        let src = &self.x[iy * self.width + start..(iy + 1) * self.width];
        let zp = self.zp;
        let mut i = 0;
        match step {
            1 => {
                while i + 16 <= dst.len() {
                    let c: &[i8; 16] = src[i..i + 16].try_into().expect("16 bytes");
                    let d: &mut [f32; 16] = (&mut dst[i..i + 16]).try_into().expect("16 floats");
                    for l in 0..16 {
                        d[l] = c[l] as f32 - zp;
                    }
                    i += 16;
                }
            }
            2 => {
                while i + 16 <= dst.len() && 2 * i + 32 <= src.len() {
                    let c: &[i8; 32] = src[2 * i..2 * i + 32].try_into().expect("32 bytes");
                    let d: &mut [f32; 16] = (&mut dst[i..i + 16]).try_into().expect("16 floats");
                    for l in 0..16 {
                        d[l] = c[2 * l] as f32 - zp;
                    }
                    i += 16;
                }
            }
            _ => {}
        }
        for (j, d) in dst.iter_mut().enumerate().skip(i) {
            *d = src[j * step] as f32 - zp;
        }
    }

    #[inline(always)]
    fn pad(&self) -> f32 {
        self.pad
    }
}

impl DwTask for ByteConv<'_> {
    type Rows<'r>
        = ByteRows<'r>
    where
        Self: 'r;

    #[inline(always)]
    fn source(&self, q: usize, w: &mut [f32; MAX_TAPS]) -> (ByteRows<'_>, f32) {
        let (n, ic, oc) = self.channels(q);
        for (d, &v) in w.iter_mut().zip(self.weights(oc)) {
            *d = v as f32;
        }
        (self.rows(n, ic), 0.0)
    }

    #[inline(always)]
    fn pad(&self, q: usize) -> f32 {
        (self.pad_byte(self.channels(q).1) as i32 - self.zp as i32) as f32
    }

    #[inline(always)]
    fn planes_f32<'s>(&'s self, q0: usize, lanes: usize, tmp: &'s mut [f32]) -> &'s [f32] {
        let hw_in = self.s.in_h * self.s.in_w;
        for (c, dst) in tmp[..lanes * hw_in].chunks_exact_mut(hw_in.max(1)).enumerate() {
            let (n, ic, _) = self.channels(q0 + c);
            // The plane as one row.
            ByteRows { x: self.plane(n, ic), width: hw_in, zp: self.zp as f32, pad: 0.0 }.row(0, 0, 1, dst);
        }
        &tmp[..lanes * hw_in]
    }

    #[inline(always)]
    fn emit(&self, q: usize, oy: usize, sums: &mut [f32]) {
        // The task of plane q alone writes its rows.
        self.emit_row(self.channels(q).2, q * self.s.out_h * self.s.out_w + oy * self.s.out_w, sums);
    }

    fn finish(&self, _planes: std::ops::Range<usize>) {}
}

impl GroupIo for ByteConv<'_> {
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

    #[inline(always)]
    fn emit(&self, n: usize, m0: usize, oy: usize, rows: &mut [f32]) {
        let (s, hw_out) = (self.s, self.s.out_h * self.s.out_w);
        for (m, row) in rows.chunks_exact_mut(s.out_w).enumerate() {
            // The task of this group alone writes its planes.
            self.emit_row(m0 + m, (n * s.out_channels + m0 + m) * hw_out + oy * s.out_w, row);
        }
    }

    fn finish(&self, _n: usize, _m0: usize, _mg: usize) {}
}
