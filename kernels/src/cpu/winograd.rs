//! 3×3 convolutions of stride 1 by Winograd's minimal filtering F(4×4, 3×3)
//! (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks",
//! 2016): each 4×4 block of outputs ("tile") comes from a 6×6 block of input
//! in 36 multiplications per pair of channels instead of 144.
//!
//! A call transforms the weights (`U = G·g·Gᵀ`, 36 values per filter) into
//! the shared scratch. Then, block by block of tile rows, three parallel
//! passes: the input transform (`V = Bᵀ·d·B`) over input channels, the 36
//! products `M[ξ] = U[ξ] · V[ξ]` (output × input channels times input
//! channels × tiles) on the GEMM, one task each, and the transform back
//! (`y = Aᵀ·M·A`) with the bias and the activation, over output channels.
//! The block's `V` and `M` live in the shared scratch too.
//!
//! The transforms work on whole rows, so they vectorize: down the six rows
//! of a tile row first, then across, where the six columns of every tile of
//! the block are read as six runs (`a_q[t] = row[4t + q]`, from four
//! phases of each input row). They are plain
//! multiplies and adds, never fused, so every variant computes the same
//! transforms; only the GEMM's sums differ between variants, as for any
//! convolution.

use super::conv::{Conv2dShape, ConvOp};
use super::gemm::{self, ASource, BSource, Epilogue, MatRef};
use super::{Activation, Isa};
use crate::{Parallel, SharedMut};

/// Transformed points per tile (6 × 6).
const POINTS: usize = 36;
/// Tiles a block aims for: narrower products waste the micro-kernel's
/// columns.
const TARGET_TILES: usize = 64;
/// Most floats of a block's transformed input and products (2 MiB).
const BLOCK_FLOATS: usize = 1 << 19;
/// Filters transformed at once (vectors over filters).
const WCHUNK: usize = 32;
/// Fewest input and output channels worth the transforms.
const MIN_CHANNELS: usize = 8;
/// Fewest tiles per image: below, the GEMMs are too narrow to beat the
/// direct convolution (on a Zen 4 core, 16 tiles broke even, 25 gained
/// 12 %).
const MIN_TILES: usize = 20;
/// Most filters (output × input channels): the transformed weights, 36
/// floats per filter, are shared scratch the session holds (9 MiB here).
const MAX_FILTERS: usize = 256 * 256;

/// Whether this convolution runs here: 3×3, stride 1, no dilation, one
/// group, enough channels and tiles, not too many filters. Padding may be
/// anything.
pub(crate) fn fits(s: &Conv2dShape) -> bool {
    let g = Geometry::new(s);
    s.kernel_h == 3
        && s.kernel_w == 3
        && s.stride_h == 1
        && s.stride_w == 1
        && s.dilation_h == 1
        && s.dilation_w == 1
        && s.groups == 1
        && s.in_channels >= MIN_CHANNELS
        && s.out_channels >= MIN_CHANNELS
        && s.in_channels * s.out_channels <= MAX_FILTERS
        && g.tiles_h * g.tiles_w >= MIN_TILES
}

/// Floats of the shared scratch: the transformed weights, and one block's
/// transformed input and products (every worker writes parts of them).
pub(crate) fn shared_floats(s: &Conv2dShape) -> usize {
    let g = Geometry::new(s);
    POINTS * s.out_channels * s.in_channels + POINTS * (s.in_channels + s.out_channels) * g.block_tiles()
}

/// Floats of each worker's scratch: the transforms' rows and the GEMM's
/// packing.
pub(crate) fn scratch_floats(s: &Conv2dShape) -> usize {
    let g = Geometry::new(s);
    g.work_floats() + gemm::scratch_floats_for(s.out_channels, s.in_channels, g.block_tiles())
}

/// Tiles of the output and how tasks group them.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    tiles_h: usize,
    tiles_w: usize,
    /// Width of a padded input row: the tiles' 6-wide windows, 4 apart,
    /// rounded up to whole groups of four.
    row: usize,
    rows_per_block: usize,
}

impl Geometry {
    fn new(s: &Conv2dShape) -> Self {
        let (tiles_h, tiles_w) = (s.out_h.div_ceil(4).max(1), s.out_w.div_ceil(4).max(1));
        let per_row = POINTS * (s.in_channels + s.out_channels) * tiles_w;
        let max_rows = (BLOCK_FLOATS / per_row.max(1)).clamp(1, tiles_h);
        // Between TARGET_TILES and four times as many tiles, the block
        // whose tiles fill the GEMM's column panels best (32 wide).
        let lo = TARGET_TILES.div_ceil(tiles_w).min(max_rows);
        let hi = (4 * TARGET_TILES / tiles_w).clamp(lo, max_rows);
        let waste = |r: usize| {
            let t = r * tiles_w;
            (t.next_multiple_of(32) - t) as f32 / t as f32
        };
        let rows_per_block = (lo..=hi).min_by(|&a, &b| waste(a).total_cmp(&waste(b))).unwrap_or(lo);
        Geometry { tiles_h, tiles_w, row: 4 * tiles_w + 4, rows_per_block }
    }

    /// Most tiles of a block.
    fn block_tiles(&self) -> usize {
        self.rows_per_block * self.tiles_w
    }

    /// Floats of the transforms' rows: the input's six padded rows, their
    /// 6 × 4 phases and 6 × 6 runs of a block's tiles; the output's 6 × 4
    /// and 4 × 4 runs.
    fn work_floats(&self) -> usize {
        let tiles = self.block_tiles();
        (6 * self.row + 24 * (self.tiles_w + 1) + POINTS * (tiles + 1)).max(40 * tiles)
    }
}

/// `y = act(conv(x, w) + bias)` for a convolution [`fits`] accepts, with
/// `scratch` holding [`shared_floats`] shared and [`scratch_floats`] per
/// worker. Same arguments as [`super::conv::conv2d`].
///
/// Block by block of tile rows, in three parallel passes: the input
/// transform over input channels, the 36 products (one task each), the
/// output transform over output channels. Every pass has many even tasks,
/// so no worker is left alone at the end of a step (splitting the blocks
/// themselves over workers gave tasks of milliseconds, or repeated the
/// input transform, and was slower at two threads than the direct
/// convolution).
pub(crate) fn conv(op: &ConvOp<'_>, y: &mut [f32]) {
    let ConvOp { isa, par, scratch, s, x, w, bias, act } = *op;
    let (c, k) = (s.in_channels, s.out_channels);
    let g = Geometry::new(s);
    assert!(
        scratch.floats_per_worker() >= scratch_floats(s)
            && scratch.shared_floats() >= shared_floats(s)
            && scratch.workers() >= par.workers(),
        "winograd: scratch too small"
    );
    let (hw_in, hw_out) = (s.in_h * s.in_w, s.out_h * s.out_w);
    let ys = SharedMut::new(&mut y[..s.batch * k * hw_out]);
    // Even parts of `n` items for the workers: (parts, part t's range).
    let workers = par.workers();
    let parts = |n: usize| if workers > 1 { n.min(4 * workers) } else { 1 };
    let range = |t: usize, parts: usize, n: usize| (t * n / parts, (t + 1) * n / parts);
    scratch.with_shared_buf(|shared| {
        let (u, rest) = shared.split_at_mut(POINTS * k * c);
        transform_weights(isa, par, w, k, c, u);
        let u = &*u;
        let (vbuf, mbuf) = rest.split_at_mut(POINTS * c * g.block_tiles());
        let blocks = g.tiles_h.div_ceil(g.rows_per_block);
        for n in 0..s.batch {
            for blk in 0..blocks {
                // At most rows_per_block rows: blocks ≥ tiles_h / rows_per_block.
                let tys = (blk * g.tiles_h / blocks, (blk + 1) * g.tiles_h / blocks);
                let tiles = (tys.1 - tys.0) * g.tiles_w;
                // V[c][ξ][tile] = (Bᵀ·d·B)[ξ] for every input channel and tile.
                {
                    let v = SharedMut::new(&mut vbuf[..POINTS * c * tiles]);
                    let pc = parts(c);
                    par.run(pc, &|t, worker| {
                        let (c0, c1) = range(t, pc, c);
                        // SAFETY: task t writes only its channels' transforms.
                        let vt = unsafe { v.slice_mut(c0 * POINTS * tiles, (c1 - c0) * POINTS * tiles) };
                        let xt = &x[(n * c + c0) * hw_in..(n * c + c1) * hw_in];
                        scratch.with(worker, |buf| match isa {
                            // SAFETY: the session chose a variant with these
                            // features, which it does only where the CPU has them.
                            #[cfg(target_arch = "x86_64")]
                            Isa::Avx512 => unsafe { inputs_avx512(s, &g, xt, tys, vt, buf) },
                            #[cfg(target_arch = "x86_64")]
                            Isa::Avx2Fma => unsafe { inputs_avx2(s, &g, xt, tys, vt, buf) },
                            _ => inputs(s, &g, xt, tys, vt, buf),
                        });
                    });
                }
                // M[k][ξ][tile] = U[ξ] · V[ξ]: V is c × (36 · tiles), point
                // ξ its columns ξ · tiles.., and so is M, k × (36 · tiles).
                {
                    let vm = MatRef::row_major(&vbuf[..POINTS * c * tiles], c, POINTS * tiles);
                    let m = SharedMut::new(&mut mbuf[..POINTS * k * tiles]);
                    par.run(POINTS, &|xi, worker| {
                        let a = ASource::Mat(MatRef::row_major(&u[xi * k * c..][..k * c], k, c));
                        scratch.with(worker, |buf| {
                            gemm::gemm_cols(
                                isa,
                                a,
                                BSource::Mat(vm),
                                &Epilogue::plain(),
                                &m,
                                POINTS * tiles,
                                (xi * tiles, (xi + 1) * tiles),
                                buf,
                            )
                        });
                    });
                }
                // y = Aᵀ·M·A, plus bias and activation.
                let mm = &mbuf[..POINTS * k * tiles];
                let pk = parts(k);
                let (r0, r1) = (4 * tys.0, (4 * tys.1).min(s.out_h));
                par.run(pk, &|t, worker| {
                    let (k0, k1) = range(t, pk, k);
                    scratch.with(worker, |buf| {
                        for kk in k0..k1 {
                            // SAFETY: task t writes only rows r0..r1 of its channels.
                            let yp = unsafe { ys.slice_mut(((n * k + kk) * s.out_h + r0) * s.out_w, (r1 - r0) * s.out_w) };
                            let mk = &mm[kk * POINTS * tiles..(kk + 1) * POINTS * tiles];
                            let b = bias.map_or(0.0, |b| b[kk]);
                            match isa {
                                // SAFETY: as above.
                                #[cfg(target_arch = "x86_64")]
                                Isa::Avx512 => unsafe { output_avx512(s, &g, mk, tiles, buf, b, act, yp) },
                                #[cfg(target_arch = "x86_64")]
                                Isa::Avx2Fma => unsafe { output_avx2(s, &g, mk, tiles, buf, b, act, yp) },
                                _ => output_tiles(s, &g, mk, tiles, 0, tiles, buf, b, act, yp),
                            }
                        }
                    });
                });
            }
        }
    });
}

/// The input transforms of tile rows `tys` for the channels of `x` (whole
/// planes), channel after channel into `v` (`36 × tiles` each).
#[inline(always)]
fn inputs(s: &Conv2dShape, g: &Geometry, x: &[f32], tys: (usize, usize), v: &mut [f32], work: &mut [f32]) {
    let hw_in = s.in_h * s.in_w;
    let tiles = (tys.1 - tys.0) * g.tiles_w;
    for (xp, vc) in x.chunks_exact(hw_in).zip(v.chunks_exact_mut(POINTS * tiles)) {
        input_tiles(s, g, xp, tys, work, vc, tiles, 0);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn inputs_avx512(s: &Conv2dShape, g: &Geometry, x: &[f32], tys: (usize, usize), v: &mut [f32], work: &mut [f32]) {
    inputs(s, g, x, tys, v, work)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn inputs_avx2(s: &Conv2dShape, g: &Geometry, x: &[f32], tys: (usize, usize), v: &mut [f32], work: &mut [f32]) {
    inputs(s, g, x, tys, v, work)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn output_avx512(
    s: &Conv2dShape,
    g: &Geometry,
    m: &[f32],
    tiles: usize,
    work: &mut [f32],
    bias: f32,
    act: Activation,
    y: &mut [f32],
) {
    output_tiles(s, g, m, tiles, 0, tiles, work, bias, act, y)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn output_avx2(s: &Conv2dShape, g: &Geometry, m: &[f32], tiles: usize, work: &mut [f32], bias: f32, act: Activation, y: &mut [f32]) {
    output_tiles(s, g, m, tiles, 0, tiles, work, bias, act, y)
}

/// `U[ξ][k][c] = (G·g·Gᵀ)[ξ]` for every filter `g` (3×3) of `w`, over
/// tasks of output channels.
fn transform_weights(isa: Isa, par: &dyn Parallel, w: &[f32], k: usize, c: usize, u: &mut [f32]) {
    let parts = if par.workers() > 1 && k * c >= 4096 { k.min(4 * par.workers()) } else { 1 };
    let step = k.div_ceil(parts);
    let us = SharedMut::new(u);
    let task = |t: usize, _worker: usize| {
        let (k0, k1) = (t * step, ((t + 1) * step).min(k));
        let mut p = k0 * c;
        while p < k1 * c {
            let n = WCHUNK.min(k1 * c - p);
            let mut out = [[0.0f32; WCHUNK]; POINTS];
            match isa {
                // SAFETY: as in `conv`.
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => unsafe { filters_avx512(&w[p * 9..(p + n) * 9], &mut out) },
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2Fma => unsafe { filters_avx2(&w[p * 9..(p + n) * 9], &mut out) },
                _ => filters(&w[p * 9..(p + n) * 9], &mut out),
            }
            for (xi, o) in out.iter().enumerate() {
                // SAFETY: task t writes only filters k0..k1 of each point.
                unsafe { us.slice_mut(xi * k * c + p, n) }.copy_from_slice(&o[..n]);
            }
            p += n;
        }
    };
    par.run(parts, &task);
}

type Lane = [f32; WCHUNK];

/// Transforms up to [`WCHUNK`] filters (9 values each, row-major) at once,
/// one vector lane per filter: `out[ξ][i]` is point ξ of filter `i`.
#[inline(always)]
fn filters(w: &[f32], out: &mut [Lane; POINTS]) {
    let n = w.len() / 9;
    let mut g = [[0.0f32; WCHUNK]; 9];
    for (i, f) in w.chunks_exact(9).enumerate().take(n) {
        for (q, &v) in f.iter().enumerate() {
            g[q][i] = v;
        }
    }
    // G·g, column by column: t[j][r] is row r, column j.
    let mut t = [[[0.0f32; WCHUNK]; 6]; 3];
    for (j, tj) in t.iter_mut().enumerate() {
        apply_g(&g[j], &g[3 + j], &g[6 + j], tj);
    }
    // (G·g)·Gᵀ, row by row.
    for r in 0..6 {
        let mut row = [[0.0f32; WCHUNK]; 6];
        apply_g(&t[0][r], &t[1][r], &t[2][r], &mut row);
        out[r * 6..r * 6 + 6].copy_from_slice(&row);
    }
}

/// `G` (6×3) times the column `(a, b, c)`, lane by lane.
#[inline(always)]
fn apply_g(a: &Lane, b: &Lane, c: &Lane, o: &mut [Lane; 6]) {
    const SIXTH: f32 = 1.0 / 6.0;
    const TWELFTH: f32 = 1.0 / 12.0;
    const TWENTYFOURTH: f32 = 1.0 / 24.0;
    for i in 0..WCHUNK {
        let (a, b, c) = (a[i], b[i], c[i]);
        o[0][i] = a * 0.25;
        o[1][i] = -((a + b + c) * SIXTH);
        o[2][i] = -((a - b + c) * SIXTH);
        o[3][i] = a * TWENTYFOURTH + b * TWELFTH + c * SIXTH;
        o[4][i] = a * TWENTYFOURTH - b * TWELFTH + c * SIXTH;
        o[5][i] = c;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn filters_avx512(w: &[f32], out: &mut [Lane; POINTS]) {
    filters(w, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn filters_avx2(w: &[f32], out: &mut [Lane; POINTS]) {
    filters(w, out)
}

/// `Bᵀ` (6×6) applied to six runs: `o[r][i] = Σ_q Bᵀ[r][q] · x[q][i]`.
#[inline(always)]
fn apply_bt(x: [&[f32]; 6], o: [&mut [f32]; 6]) {
    let n = o[0].len();
    let [x0, x1, x2, x3, x4, x5] = x.map(|r| &r[..n]);
    let [o0, o1, o2, o3, o4, o5] = o;
    let (o0, o1, o2, o3, o4, o5) = (&mut o0[..n], &mut o1[..n], &mut o2[..n], &mut o3[..n], &mut o4[..n], &mut o5[..n]);
    for i in 0..n {
        let (a, b, c, d, e, f) = (x0[i], x1[i], x2[i], x3[i], x4[i], x5[i]);
        o0[i] = 4.0 * a - 5.0 * c + e;
        o1[i] = e + d - 4.0 * (b + c);
        o2[i] = e - d + 4.0 * (b - c);
        o3[i] = e - c + 2.0 * (d - b);
        o4[i] = e - c - 2.0 * (d - b);
        o5[i] = 4.0 * b - 5.0 * d + f;
    }
}

/// `Aᵀ` (4×6) applied to six runs: `o[r][i] = Σ_q Aᵀ[r][q] · m[q][i]`.
#[inline(always)]
fn apply_at(m: [&[f32]; 6], o: [&mut [f32]; 4]) {
    let n = o[0].len();
    let [m0, m1, m2, m3, m4, m5] = m.map(|r| &r[..n]);
    let [o0, o1, o2, o3] = o;
    let (o0, o1, o2, o3) = (&mut o0[..n], &mut o1[..n], &mut o2[..n], &mut o3[..n]);
    for i in 0..n {
        let (p1, q1) = (m1[i] + m2[i], m1[i] - m2[i]);
        let (p3, q3) = (m3[i] + m4[i], m3[i] - m4[i]);
        o0[i] = m0[i] + p1 + p3;
        o1[i] = q1 + 2.0 * q3;
        o2[i] = p1 + 4.0 * p3;
        o3[i] = q1 + 8.0 * q3 + m5[i];
    }
}

/// Six disjoint runs of `len` values, `stride` apart, from `at`.
fn runs<const R: usize>(buf: &mut [f32], at: usize, stride: usize, len: usize) -> [&mut [f32]; R] {
    let mut it = buf[at..].chunks_mut(stride);
    std::array::from_fn(|_| &mut it.next().expect("run inside the buffer")[..len])
}

/// Transforms the tiles of tile rows `tys` of one input plane `xp`: point
/// ξ of the block's tile `t` goes to `v[ξ · stride + at + t]`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn input_tiles(s: &Conv2dShape, g: &Geometry, xp: &[f32], tys: (usize, usize), work: &mut [f32], v: &mut [f32], stride: usize, at: usize) {
    let (wr, tw) = (g.row, g.tiles_w);
    let (tiles, ph) = ((tys.1 - tys.0) * tw, tw + 1);
    let (d, rest) = work.split_at_mut(6 * wr);
    let (p, a) = rest.split_at_mut(24 * ph);
    // a[ξy][q]: column q of every tile's row ξy, one run per (ξy, q) with
    // room for one more value (the phases below write tw + 1).
    let run = tiles + 1;
    let a = &mut a[..POINTS * run];
    let lo = s.pad_left.min(wr);
    let hi = (s.pad_left + s.in_w).min(wr).max(lo);
    for ty in tys.0..tys.1 {
        // The six input rows the tile row reads, zero-padded to whole
        // windows, each split into four phases: p[i][q][tx] = row i at
        // 4·tx + q.
        for (i, row) in d.chunks_exact_mut(wr).enumerate() {
            let iy = (4 * ty + i) as isize - s.pad_top as isize;
            if iy < 0 || iy >= s.in_h as isize {
                row.fill(0.0);
            } else {
                row[..lo].fill(0.0);
                row[lo..hi].copy_from_slice(&xp[iy as usize * s.in_w..][..hi - lo]);
                row[hi..].fill(0.0);
            }
            let [p0, p1, p2, p3] = runs(&mut p[i * 4 * ph..], 0, ph, ph);
            let (p0, p1, p2, p3) = (&mut p0[..ph], &mut p1[..ph], &mut p2[..ph], &mut p3[..ph]);
            for (tx, c) in row.chunks_exact(4).take(ph).enumerate() {
                (p0[tx], p1[tx], p2[tx], p3[tx]) = (c[0], c[1], c[2], c[3]);
            }
        }
        // Down: Bᵀ on each phase. Columns 4 and 5 of a tile are columns 0
        // and 1 of the next: phases 0 and 1 one tile on.
        let off = (ty - tys.0) * tw;
        for q in 0..6 {
            let (pq, shift, n) = if q < 4 { (q, 0, ph) } else { (q - 4, 1, tw) };
            let rows: [&[f32]; 6] = std::array::from_fn(|i| &p[(i * 4 + pq) * ph + shift..][..n]);
            apply_bt(rows, runs(a, q * run + off, 6 * run, n));
        }
    }
    // Across: Bᵀ on the columns, every tile of the block at once.
    for xy in 0..6 {
        let cols: [&[f32]; 6] = std::array::from_fn(|q| &a[(xy * 6 + q) * run..][..tiles]);
        apply_bt(cols, runs(v, xy * 6 * stride + at, stride, tiles));
    }
}

/// Transforms back the products of one output channel (point ξ of the
/// block's tile `t` at `m[ξ · stride + at + t]`, `tiles` tiles) into the
/// block's output rows `y`, with the bias and the activation.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn output_tiles(
    s: &Conv2dShape,
    g: &Geometry,
    m: &[f32],
    stride: usize,
    at: usize,
    tiles: usize,
    work: &mut [f32],
    bias: f32,
    act: Activation,
    y: &mut [f32],
) {
    let tw = g.tiles_w;
    let (sbuf, o) = work[..40 * tiles].split_at_mut(24 * tiles);
    // Across: row ξy of the 6×6 points into 4 columns, sbuf[ξy][mx].
    for xy in 0..6 {
        let ms: [&[f32]; 6] = std::array::from_fn(|q| &m[(xy * 6 + q) * stride + at..][..tiles]);
        apply_at(ms, runs(sbuf, xy * 4 * tiles, tiles, tiles));
    }
    // Down: o[my][mx] from sbuf[0..6][mx].
    for mx in 0..4 {
        let ss: [&[f32]; 6] = std::array::from_fn(|xy| &sbuf[(xy * 4 + mx) * tiles..][..tiles]);
        apply_at(ss, runs(o, mx * tiles, 4 * tiles, tiles));
    }
    // Into the rows: four values of a tile at a time.
    let ow = s.out_w;
    let full = ow / 4;
    for (r, row) in y.chunks_mut(ow).enumerate() {
        let (lt, my) = (r / 4, r % 4);
        let [s0, s1, s2, s3]: [&[f32]; 4] = std::array::from_fn(|mx| &o[(my * 4 + mx) * tiles + lt * tw..][..tw]);
        for (((out, &a), &b), (&c, &d)) in row.chunks_exact_mut(4).zip(s0).zip(s1).zip(s2.iter().zip(s3)) {
            (out[0], out[1], out[2], out[3]) = (a + bias, b + bias, c + bias, d + bias);
        }
        for (mx, v) in row[4 * full..].iter_mut().enumerate() {
            *v = [s0, s1, s2, s3][mx][full] + bias;
        }
        act.apply_slice(row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::conv::{conv2d, out_len};
    use crate::cpu::reference;
    use crate::test_util::{data, TwoWorkers};
    use crate::{Scratch, Serial};

    fn shape(n: usize, c: usize, h: usize, w: usize, k: usize, pads: (usize, usize, usize, usize)) -> Conv2dShape {
        Conv2dShape {
            batch: n,
            in_channels: c,
            in_h: h,
            in_w: w,
            out_channels: k,
            out_h: out_len(h, 3, 1, 1, pads.0, pads.2, false).unwrap(),
            out_w: out_len(w, 3, 1, 1, pads.1, pads.3, false).unwrap(),
            kernel_h: 3,
            kernel_w: 3,
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: pads.0,
            pad_left: pads.1,
            groups: 1,
        }
    }

    #[test]
    fn winograd_matches_reference_on_every_variant() {
        let cases = [
            // ResNet-like, edges of every kind: widths not a multiple of
            // four, no padding, asymmetric padding, batch 2, several
            // blocks of tile rows, channels that split over workers.
            shape(1, 16, 56, 56, 16, (1, 1, 1, 1)),
            shape(1, 8, 19, 17, 9, (1, 1, 1, 1)),
            shape(2, 9, 22, 22, 12, (0, 0, 0, 0)),
            shape(1, 12, 14, 23, 8, (0, 2, 1, 0)),
            shape(1, 8, 100, 7, 8, (1, 1, 1, 1)),
            shape(1, 64, 18, 18, 40, (1, 1, 1, 1)),
        ];
        for s in cases {
            assert!(fits(&s), "{s:?}");
            let x = data(s.batch * s.in_channels * s.in_h * s.in_w, 1);
            let w = data(s.out_channels * s.in_channels * 9, 2);
            let b = data(s.out_channels, 3);
            let mut want = vec![0.0; s.batch * s.out_channels * s.out_h * s.out_w];
            reference::conv2d(&s, &x, &w, Some(&b), Activation::Relu, &mut want);
            // Relative to the sum of magnitudes (Winograd's error grows
            // with it, not with the result).
            let scale = (s.in_channels * 9) as f32;
            for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
                for par in [&Serial as &dyn Parallel, &TwoWorkers] {
                    let scratch = Scratch::with_shared(par.workers(), s.scratch_floats(), s.shared_scratch_floats());
                    let mut got = vec![f32::NAN; want.len()];
                    conv2d(isa, par, &scratch, &s, &x, &w, Some(&b), Activation::Relu, &mut got);
                    for (i, (g, wv)) in got.iter().zip(&want).enumerate() {
                        assert!((g - wv).abs() <= 2e-6 * scale, "{isa:?} {s:?} at {i}: {g} vs {wv}");
                    }
                }
            }
        }
    }

    #[test]
    fn small_convolutions_stay_direct() {
        assert!(!fits(&shape(1, 4, 56, 56, 16, (1, 1, 1, 1))));
        assert!(!fits(&shape(1, 64, 7, 7, 64, (1, 1, 1, 1))));
        assert!(!fits(&shape(1, 512, 28, 28, 512, (1, 1, 1, 1))));
        let mut s = shape(1, 16, 28, 28, 16, (1, 1, 1, 1));
        s.stride_h = 2;
        assert!(!fits(&s));
    }
}
