//! Grouped convolutions of narrow groups (RegNet's groups of 8 channels,
//! ResNeXt's of 4): a direct kernel with a group's output channels as the
//! vector lanes.
//!
//! As a GEMM, each group is a product of `M` = 8 rows: the im2col panel of
//! B costs as much to pack as the product costs to compute, and eight rows
//! fill a 6-row tile and a third of another (RegNetX at 4–10 GFLOP/s on
//! these layers, onnxruntime 5–8× faster). Here a task fills the band of
//! its group's input planes once, as the depthwise kernel lays them out
//! ([`DwPlan`]: every tap of every output a fixed offset from the output's
//! flat index), and each output pixel takes every (input channel, tap) as
//! one input value broadcast to the eight lanes, times the eight output
//! channels' weights: a multiply and an add (not fused: every variant
//! gives the same values), eight pixels at a time. The pixels' lanes are
//! then split back into the output planes.

use super::conv::{Conv2dShape, ConvOp};
use super::depthwise::{deinterleave, fill, DwPlan, DwRows, FloatRows, LANES};
use super::{gemm, Activation, Isa};
use crate::{Parallel, Scratch, SharedMut};

/// Most input channels per group this kernel takes.
const MAX_CG: usize = 16;
/// Pixels computed at once: eight independent chains of adds, enough to
/// cover the add latency (with four, the kernel ran at half the rate).
const PIXELS: usize = 8;
/// Most weights per output channel (`cg · taps`).
const MAX_K: usize = 16 * 9;

/// The plan of a grouped convolution this kernel takes, or `None`.
fn plan(s: &Conv2dShape) -> Option<DwPlan> {
    let (cg, mg) = (s.in_channels / s.groups.max(1), s.out_channels / s.groups.max(1));
    let k = cg * s.kernel_h * s.kernel_w;
    if s.groups < 2 || s.is_depthwise() || mg > LANES || cg > MAX_CG || k > MAX_K {
        return None;
    }
    DwPlan::sized(s, cg, LANES)
}

/// Whether [`conv`] takes this convolution.
pub(crate) fn fits(s: &Conv2dShape) -> bool {
    plan(s).is_some()
}

/// Scratch floats per worker (0 where [`conv`] does not take it): the
/// plan's bands, the weights in lanes, and one output row of the group's
/// planes.
pub(crate) fn scratch_floats(s: &Conv2dShape) -> usize {
    plan(s).map_or(0, |p| p.floats() + MAX_K * LANES + LANES * s.out_w)
}

/// Where a grouped convolution's inputs, weights and biases come from and
/// where its outputs go: the float convolution's tensors, or the int8
/// one's (inputs `x − zp` as floats, whose sums are exact integers: at
/// most 144 products of at most 255 · 127).
pub(crate) trait GroupIo: Sync {
    type Rows<'r>: DwRows
    where
        Self: 'r;
    /// Input channel `c` of image `n`.
    fn input(&self, n: usize, c: usize) -> Self::Rows<'_>;
    /// Whether the padding value differs between channels (then every
    /// group writes its bands' padding).
    fn pads_vary(&self) -> bool;
    /// Weight `j` (of `cg · taps`, channel-major) of output channel `oc`.
    fn weight(&self, oc: usize, j: usize) -> f32;
    /// The bias the sums start at.
    fn bias(&self, oc: usize) -> f32;
    /// Output row `oy` of channels `m0..m0 + mg` of image `n`: `rows`
    /// holds them one after the other, `out_w` sums each.
    fn emit(&self, n: usize, m0: usize, oy: usize, rows: &mut [f32]);
    /// After the group's rows, all stored.
    fn finish(&self, n: usize, m0: usize, mg: usize);
}

/// The float convolution's tensors.
struct FloatIo<'a> {
    s: &'a Conv2dShape,
    x: &'a [f32],
    w: &'a [f32],
    b: Option<&'a [f32]>,
    act: Activation,
    de2: super::depthwise::Deinterleave,
    y: SharedMut<'a, f32>,
}

impl GroupIo for FloatIo<'_> {
    type Rows<'r>
        = FloatRows<'r>
    where
        Self: 'r;

    #[inline(always)]
    fn input(&self, n: usize, c: usize) -> FloatRows<'_> {
        let hw_in = self.s.in_h * self.s.in_w;
        FloatRows { x: &self.x[(n * self.s.in_channels + c) * hw_in..][..hw_in], width: self.s.in_w, de2: self.de2 }
    }

    fn pads_vary(&self) -> bool {
        false
    }

    #[inline(always)]
    fn weight(&self, oc: usize, j: usize) -> f32 {
        let k = (self.s.in_channels / self.s.groups) * self.s.kernel_h * self.s.kernel_w;
        self.w[oc * k + j]
    }

    #[inline(always)]
    fn bias(&self, oc: usize) -> f32 {
        self.b.map_or(0.0, |b| b[oc])
    }

    #[inline(always)]
    fn emit(&self, n: usize, m0: usize, oy: usize, rows: &mut [f32]) {
        let (s, hw_out) = (self.s, self.s.out_h * self.s.out_w);
        for (m, row) in rows.chunks_exact(s.out_w).enumerate() {
            // SAFETY: the task of this group alone writes its planes.
            let dst = unsafe { self.y.slice_mut((n * s.out_channels + m0 + m) * hw_out + oy * s.out_w, s.out_w) };
            super::depthwise::copy_short(row, dst);
        }
    }

    #[inline(always)]
    fn finish(&self, n: usize, m0: usize, mg: usize) {
        let hw_out = self.s.out_h * self.s.out_w;
        // SAFETY: as in emit; the group's planes, hot in cache, in one pass.
        self.act.apply_slice(unsafe { self.y.slice_mut((n * self.s.out_channels + m0) * hw_out, mg * hw_out) });
    }
}

/// A grouped convolution with at most eight output and sixteen input
/// channels per group (see the module doc). Same arguments as
/// [`super::conv::conv2d`].
pub(crate) fn conv(op: &ConvOp<'_>, y: &mut [f32]) {
    let ConvOp { isa, par, scratch, s, x, w, bias, act } = *op;
    let de2 = gemm::variant(isa).de2;
    let hw_out = s.out_h * s.out_w;
    let io = FloatIo { s, x, w, b: bias, act, de2, y: SharedMut::new(&mut y[..s.batch * s.out_channels * hw_out]) };
    run(isa, par, scratch, s, &io);
}

/// Runs every group of every image of `io` on the workers.
pub(crate) fn run<T: GroupIo>(isa: Isa, par: &dyn Parallel, scratch: &Scratch, s: &Conv2dShape, io: &T) {
    let plan = plan(s).expect("grouped: a convolution this kernel does not take").with_de2(gemm::variant(isa).de2);
    assert!(scratch.floats_per_worker() >= scratch_floats(s) && scratch.workers() >= par.workers(), "grouped: scratch too small");
    let units = s.batch * s.groups;
    let values = s.batch * s.out_channels * s.out_h * s.out_w * (s.in_channels / s.groups) * plan.taps;
    let (per, tasks) = crate::split_units(par, values, units);
    par.run(tasks, &|t, worker| {
        scratch.with(worker, |buf| {
            for (i, u) in (t * per..((t + 1) * per).min(units)).enumerate() {
                // Where the padding lies is the same for every group: with
                // one band per plane and one padding value, the task's
                // first group writes it.
                let pads = i == 0 || !plan.one_band(s) || io.pads_vary();
                let job = Group { s, plan: &plan, n: u / s.groups, g: u % s.groups, pads };
                match isa {
                    // SAFETY: the session chose a variant with these
                    // features, which it does only where the CPU has them.
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512 => unsafe { group_avx512(isa, &job, io, buf) },
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2Fma => unsafe { group_avx2(isa, &job, io, buf) },
                    _ => group(isa, &job, io, buf),
                }
            }
        });
    });
}

/// One group of one image.
struct Group<'a> {
    s: &'a Conv2dShape,
    plan: &'a DwPlan,
    n: usize,
    g: usize,
    /// Whether to write the bands' padding.
    pads: bool,
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn group_avx512<T: GroupIo>(isa: Isa, job: &Group<'_>, io: &T, buf: &mut [f32]) {
    group(isa, job, io, buf)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn group_avx2<T: GroupIo>(isa: Isa, job: &Group<'_>, io: &T, buf: &mut [f32]) {
    group(isa, job, io, buf)
}

/// The weights in lanes, the bands of the group's input planes, the
/// pixels, and their lanes split back into rows for `io.emit`.
#[inline(always)]
fn group<T: GroupIo>(isa: Isa, job: &Group<'_>, io: &T, buf: &mut [f32]) {
    let (s, p) = (job.s, job.plan);
    let (cg, mg) = (s.in_channels / s.groups, s.out_channels / s.groups);
    let taps = p.taps;
    let k = cg * taps;
    let (w8, rest) = buf.split_at_mut(MAX_K * LANES);
    let (bands, rest) = rest.split_at_mut(cg * p.phase_floats());
    let (out, rest) = rest.split_at_mut(LANES * (p.band * p.len + 16));
    let row_out = &mut rest[..mg * s.out_w];
    // w8[(c·taps + t)·8 + m] = weight of output channel m, input c, tap t.
    let m0 = job.g * mg;
    w8[..k * LANES].fill(0.0);
    let mut b8 = [0.0f32; LANES];
    for m in 0..mg {
        for j in 0..k {
            w8[j * LANES + m] = io.weight(m0 + m, j);
        }
        b8[m] = io.bias(m0 + m);
    }
    let (w8, c0) = (&w8[..k * LANES], job.g * cg);
    let max_off = p.offs[..taps].iter().max().copied().unwrap_or(0);
    let mut oy0 = 0;
    while oy0 < s.out_h {
        let rows = p.band.min(s.out_h - oy0);
        for c in 0..cg {
            let src = io.input(job.n, c0 + c);
            fill(s, p, &src, oy0, job.pads, &mut bands[c * p.phase_floats()..(c + 1) * p.phase_floats()]);
        }
        let nflat = rows * p.len;
        let bands = &*bands;
        // Every read of the pixels below stays inside the bands.
        assert!(nflat == 0 || (cg - 1) * p.phase_floats() + nflat - 1 + max_off < bands.len(), "grouped: a tap reads past the band");
        if nflat < PIXELS {
            for f in 0..nflat {
                pixels::<1>(bands, f, p, cg, w8, b8, &mut out[f * LANES..]);
            }
        } else {
            // Eight pixels at a time, the last eight ending at the last one
            // (overlapping those before: the same values again).
            let mut f = 0;
            while f < nflat {
                let at = f.min(nflat - PIXELS);
                pixels::<PIXELS>(bands, at, p, cg, w8, b8, &mut out[at * LANES..]);
                f += PIXELS;
            }
        }
        for r in 0..rows {
            deinterleave(isa, &out[r * p.len * LANES..], mg, s.out_w, row_out, s.out_w);
            io.emit(job.n, m0, oy0 + r, row_out);
        }
        oy0 += rows;
    }
    io.finish(job.n, m0, mg);
}

/// `NV` consecutive flat outputs from `f0`: bias, then for each input
/// channel and tap, the input value times the lanes' weights.
#[inline(always)]
fn pixels<const NV: usize>(bands: &[f32], f0: usize, p: &DwPlan, cg: usize, w8: &[f32], b8: [f32; LANES], out: &mut [f32]) {
    let mut acc = [b8; NV];
    let pf = p.phase_floats();
    for c in 0..cg {
        for (t, &off) in p.offs[..p.taps].iter().enumerate() {
            let wv: &[f32; LANES] = w8[(c * p.taps + t) * LANES..][..LANES].try_into().expect("eight lanes");
            for (v, a) in acc.iter_mut().enumerate() {
                // SAFETY: c·pf + f0 + v + off ≤ (cg − 1)·pf + nflat − 1 +
                // max_off < bands.len(), asserted by the caller.
                let x = unsafe { *bands.get_unchecked(c * pf + f0 + v + off) };
                for l in 0..LANES {
                    a[l] += wv[l] * x;
                }
            }
        }
    }
    for (o, a) in out[..NV * LANES].chunks_exact_mut(LANES).zip(&acc) {
        let o: &mut [f32; LANES] = o.try_into().expect("eight lanes");
        *o = *a;
    }
}
