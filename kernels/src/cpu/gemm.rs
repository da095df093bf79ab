//! Blocked single-precision GEMM with packing, in the style of BLIS.
//!
//! Why not a GEMM crate: the good ones (`gemm`, `matrixmultiply`) allocate
//! their packing buffers per call or per thread behind our back and run their
//! own thread pools. jetrt promises that `Session::run` allocates nothing and
//! that every byte of memory is known at start-up, and a convolution wants its
//! im2col fused into the packing of B instead of a full im2col copy; so the
//! packing buffers come from the session's per-worker [`Scratch`], the
//! threads from the session's pool, and B can be packed straight from an image.
//!
//! `C[m×n] = act(alpha · A[m×k] · B[k×n] + beta · bias)`, with C row-major.
//! A is packed into MR-row panels, B into NR-column panels; a micro-kernel
//! multiplies one MR×kc panel by one kc×NR panel into an MR×NR tile.

use super::packed::Rows;
use super::{Activation, Isa};
use crate::{Parallel, Scratch, SharedMut};

mod pack;
mod small;
use pack::{pack_a, pack_b, MAX_KC};
use small::{gemm_small_m, gemv, SmallB};

/// A strided, read-only matrix: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Debug, Clone, Copy)]
pub struct MatRef<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a> MatRef<'a> {
    /// A row-major `rows × cols` matrix.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self { data, rows, cols, rs: cols, cs: 1 }
    }

    /// The transpose, as a view.
    pub fn t(self) -> Self {
        Self { data: self.data, rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs }
    }

    #[inline(always)]
    pub fn at(&self, i: usize, j: usize) -> f32 {
        self.data[i * self.rs + j * self.cs]
    }
}

/// The columns of an im2col matrix, read straight from an NCHW image.
///
/// Row `k = (c · kh + ky) · kw + kx`, column `j = oy · ow + ox`; the element
/// is `x[c, oy·sh + ky·dh − pad_top, ox·sw + kx·dw − pad_left]`, or 0 in the
/// padding.
#[derive(Debug, Clone, Copy)]
pub struct Im2col<'a> {
    /// `channels × h × w` floats.
    pub x: &'a [f32],
    pub channels: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub dh: usize,
    pub dw: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub oh: usize,
    pub ow: usize,
}

impl Im2col<'_> {
    pub fn rows(&self) -> usize {
        self.channels * self.kh * self.kw
    }

    pub fn cols(&self) -> usize {
        self.oh * self.ow
    }

    #[inline]
    pub fn at(&self, k: usize, j: usize) -> f32 {
        let c = k / (self.kh * self.kw);
        let r = k % (self.kh * self.kw);
        let (ky, kx) = (r / self.kw, r % self.kw);
        let (oy, ox) = (j / self.ow, j % self.ow);
        let iy = (oy * self.sh + ky * self.dh) as isize - self.pad_top as isize;
        let ix = (ox * self.sw + kx * self.dw) as isize - self.pad_left as isize;
        if iy < 0 || ix < 0 || iy as usize >= self.h || ix as usize >= self.w {
            0.0
        } else {
            self.x[(c * self.h + iy as usize) * self.w + ix as usize]
        }
    }
}

/// Where the right-hand matrix B (`k × n`) comes from.
#[derive(Debug, Clone, Copy)]
pub enum BSource<'a> {
    Mat(MatRef<'a>),
    Im2col(Im2col<'a>),
    /// The transpose of packed rows: `B[k][j]` is value `k` of row `j` (a
    /// fully connected layer's weights, `[n, k]`, in int4 or sparse).
    PackedT(Rows<'a>),
}

impl BSource<'_> {
    pub fn rows(&self) -> usize {
        match self {
            BSource::Mat(m) => m.rows,
            BSource::Im2col(i) => i.rows(),
            BSource::PackedT(q) => q.k(),
        }
    }

    pub fn cols(&self) -> usize {
        match self {
            BSource::Mat(m) => m.cols,
            BSource::Im2col(i) => i.cols(),
            BSource::PackedT(q) => q.rows(),
        }
    }

    #[inline]
    pub fn at(&self, k: usize, j: usize) -> f32 {
        match self {
            BSource::Mat(m) => m.at(k, j),
            BSource::Im2col(i) => i.at(k, j),
            BSource::PackedT(q) => {
                let mut v = [0.0];
                q.decode(j, k, &mut v);
                v[0]
            }
        }
    }
}

/// Where the left-hand matrix A (`m × k`) comes from.
#[derive(Debug, Clone, Copy)]
pub enum ASource<'a> {
    Mat(MatRef<'a>),
    /// Packed rows (a convolution's weights in int4 or sparse).
    Packed(Rows<'a>),
}

impl ASource<'_> {
    fn rows(&self) -> usize {
        match self {
            ASource::Mat(m) => m.rows,
            ASource::Packed(q) => q.rows(),
        }
    }
    fn cols(&self) -> usize {
        match self {
            ASource::Mat(m) => m.cols,
            ASource::Packed(q) => q.k(),
        }
    }
    /// A read in place: row-major floats.
    fn in_place(&self) -> Option<&MatRef<'_>> {
        match self {
            ASource::Mat(m) if m.cs == 1 => Some(m),
            _ => None,
        }
    }
}

/// What is added to `alpha · A·B` before the activation.
#[derive(Debug, Clone, Copy)]
pub enum Bias<'a> {
    None,
    /// One value per row of C (a convolution's per-channel bias).
    Row(&'a [f32]),
    /// One value per column of C (a fully connected layer's bias).
    Col(&'a [f32]),
    /// A matrix broadcast to `m × n` through its strides (0 = broadcast).
    Mat(MatRef<'a>),
}

impl Bias<'_> {
    #[inline(always)]
    pub fn at(&self, i: usize, j: usize) -> f32 {
        match self {
            Bias::None => 0.0,
            Bias::Row(b) => b[i],
            Bias::Col(b) => b[j],
            Bias::Mat(m) => m.at(i, j),
        }
    }
}

/// The output stage: `act(alpha · acc + beta · bias)`.
#[derive(Debug, Clone, Copy)]
pub struct Epilogue<'a> {
    pub alpha: f32,
    pub beta: f32,
    pub bias: Bias<'a>,
    pub act: Activation,
}

impl Epilogue<'_> {
    pub fn plain() -> Self {
        Epilogue { alpha: 1.0, beta: 1.0, bias: Bias::None, act: Activation::None }
    }

    /// Applies the epilogue in place to `row`, the columns `j..` of row `i`
    /// of C, in loops the compiler vectorizes.
    #[inline]
    fn finish_row(&self, row: &mut [f32], i: usize, j: usize) {
        if self.alpha != 1.0 {
            row.iter_mut().for_each(|x| *x *= self.alpha);
        }
        let beta = self.beta;
        match self.bias {
            Bias::None => {}
            Bias::Row(b) => {
                let v = beta * b[i];
                row.iter_mut().for_each(|x| *x += v);
            }
            Bias::Col(b) => {
                let n = row.len();
                row.iter_mut().zip(&b[j..j + n]).for_each(|(x, &v)| *x += beta * v)
            }
            Bias::Mat(m) => row.iter_mut().enumerate().for_each(|(x, o)| *o += beta * m.at(i, j + x)),
        }
        self.act.apply_slice(row);
    }

    #[inline(always)]
    fn finish(&self, acc: f32, i: usize, j: usize) -> f32 {
        let v = match self.bias {
            Bias::None => self.alpha * acc,
            _ => self.alpha * acc + self.beta * self.bias.at(i, j),
        };
        self.act.apply(v)
    }
}

/// Most columns of an edge tile that [`Variant::ukr_narrow`] takes.
pub(crate) const NARROW: usize = 4;

/// Largest micro-tile of any variant (MR × NR).
pub(crate) const MAX_TILE: usize = 384;

/// What to add to a tile before storing it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TileBias {
    None,
    /// One value per row: `mr` floats.
    Row(*const f32),
    /// One value per column: `nr` floats.
    Col(*const f32),
}

/// Activations the tile store applies in registers.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TileAct {
    None,
    Relu,
    Clip(f32, f32),
}

/// How a full tile goes to C: added to what is there or not, then bias and
/// activation (only on the last block of K).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TileStore {
    pub accumulate: bool,
    pub bias: TileBias,
    pub act: TileAct,
}

/// A full `mr × nr` tile of C, owned by the calling task.
pub(crate) struct TileMut {
    pub ptr: *mut f32,
    pub ldc: usize,
}

/// Stores `mr × nr` values of a computed tile (`acc`, rows of `stride`)
/// into C. Portable; the x86 variants fuse this into their kernels
/// instead, and AVX2 uses it for edge tiles.
pub(crate) fn store_tile(acc: &[f32; MAX_TILE], stride: usize, mr: usize, nr: usize, t: &TileMut, st: &TileStore) {
    for r in 0..mr {
        // SAFETY: TileMut points at an `mr × nr` tile with row stride ldc,
        // checked against C's bounds and owned by this task.
        let row = unsafe { std::slice::from_raw_parts_mut(t.ptr.add(r * t.ldc), nr) };
        let a = &acc[r * stride..r * stride + nr];
        if st.accumulate {
            row.iter_mut().zip(a).for_each(|(c, &v)| *c += v);
        } else {
            row.copy_from_slice(a);
        }
        match st.bias {
            TileBias::None => {}
            // SAFETY: a row bias holds mr floats, a column bias nr.
            TileBias::Row(b) => {
                let v = unsafe { *b.add(r) };
                row.iter_mut().for_each(|c| *c += v);
            }
            TileBias::Col(b) => {
                let b = unsafe { std::slice::from_raw_parts(b, nr) };
                row.iter_mut().zip(b).for_each(|(c, &v)| *c += v);
            }
        }
        match st.act {
            TileAct::None => {}
            TileAct::Relu => row.iter_mut().for_each(|c| *c = c.max(0.0)),
            TileAct::Clip(lo, hi) => Activation::Clip { min: lo, max: hi }.apply_slice(row),
        }
    }
}

/// `ukr_store(kc, a, rs, cs, b, tile, store)`: see [`Variant::ukr_store`].
pub(crate) type MicroKernelStore = fn(usize, &[f32], usize, usize, &[f32], &TileMut, &TileStore);

/// `ukr_edge(rows, cols, kc, a, rs, cs, b, tile, store)`: see [`Variant::ukr_edge`].
#[allow(clippy::type_complexity)]
pub(crate) type MicroKernelEdge = fn(usize, usize, usize, &[f32], usize, usize, &[f32], &TileMut, &TileStore);

/// `ukr(kc, a, rs, cs, b, acc)`: see [`Variant::ukr`].
pub(crate) type MicroKernel = fn(usize, &[f32], usize, usize, &[f32], &mut [f32; MAX_TILE]);

/// Block sizes and micro-kernel of one instruction-set variant.
pub(crate) struct Variant {
    pub mr: usize,
    pub nr: usize,
    pub kc: usize,
    pub mc: usize,
    pub nc: usize,
    /// `acc[r * nr + c] = Σ_k a[r * rs + k * cs] · b[k * nr + c]`: one A
    /// panel (`mr` rows, read in place with row stride `rs`, or packed with
    /// `rs = 1, cs = mr`) times one packed B panel (`kc × nr`).
    pub ukr: MicroKernel,
    /// Read A in place when its rows are contiguous, instead of packing it.
    /// Packing A costs one pass over the weights per block of columns, which
    /// dominates layers with few output pixels (7×7 maps); x86 broadcasts
    /// from any address at no cost, so its kernels read A where it lies.
    pub direct_a: bool,
    /// The micro-kernel with the tile store fused (full tiles only), where
    /// the variant has one.
    pub ukr_store: Option<MicroKernelStore>,
    /// The fused kernel and store for an edge tile of fewer than `mr`
    /// rows or `nr` columns (the first two arguments), where the variant
    /// has one; without, edges go through `ukr` and a copy.
    pub ukr_edge: Option<MicroKernelEdge>,
    /// The fused kernel and store for an edge tile of at most
    /// [`NARROW`] columns whose A rows are contiguous (`cs = 1`), as dot
    /// products along K: B comes column by column (`b[c·kc + k]`). A
    /// broadcast kernel leaves all but one or a few lanes idle there and
    /// waits on its few accumulators' latency; ResNet's and MobileNet's
    /// 7 × 7 maps (49 = 3 · 16 + 1 columns) paid a quarter of those
    /// layers for their last column.
    pub ukr_narrow: Option<MicroKernelEdge>,
    /// Dot product of two equally long slices.
    pub dot: fn(a: &[f32], b: &[f32]) -> f32,
    /// `dst[i] = src[2 i]` (`src` holds at least `2 · dst.len() − 1`
    /// values): stride-2 rows for im2col and depthwise bands.
    pub de2: fn(src: &[f32], dst: &mut [f32]),
}

const GENERIC: Variant = Variant {
    mr: 4,
    nr: 8,
    kc: 256,
    mc: 64,
    nc: 256,
    ukr: ukr_generic_4x8,
    direct_a: true,
    ukr_store: None,
    ukr_edge: None,
    ukr_narrow: None,
    dot: dot_generic,
    de2: super::layout::deinterleave2,
};

pub(crate) fn variant(isa: Isa) -> &'static Variant {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => &super::x86::AVX2_FMA,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => &super::x86::AVX512,
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => &super::neon::NEON,
        _ => &GENERIC,
    }
}

/// Packing floats a variant needs for an `m × k × n` problem: one A block
/// (at most `mc × kc`) and one B block (at most `kc × nc`), rounded up to
/// whole panels.
fn variant_scratch(v: &Variant, m: usize, k: usize, n: usize) -> usize {
    let kc = v.kc.min(k);
    m.min(v.mc).next_multiple_of(v.mr) * kc + kc * n.min(v.nc).next_multiple_of(v.nr)
}

/// Scratch floats per worker that [`gemm`] needs for an `m × k × n` problem
/// on any variant of this build (the plan is validated before the session
/// picks its variant, so it is sized for all).
pub fn scratch_floats_for(m: usize, k: usize, n: usize) -> usize {
    Isa::ALL.iter().map(|&isa| variant_scratch(variant(isa), m, k, n)).max().unwrap_or(0)
}

/// Scratch floats per worker that [`gemm`] needs for any problem size.
pub fn scratch_floats() -> usize {
    scratch_floats_for(usize::MAX, usize::MAX, usize::MAX)
}

/// Rows of C up to which the small-m path (dot products / axpy over B,
/// without packing) is used: a fully connected layer at batch 1 reads each
/// weight once, and packing it would double the memory traffic.
const SMALL_M: usize = 4;

/// `c = act(alpha · a · b + beta · bias)`, `c` row-major `m × n`.
///
/// `scratch` must hold at least [`scratch_floats`] per worker, and have at
/// least as many workers as `par`.
pub fn gemm(isa: Isa, par: &dyn Parallel, scratch: &Scratch, a: MatRef<'_>, b: BSource<'_>, ep: &Epilogue<'_>, c: &mut [f32]) {
    gemm_any(isa, par, scratch, ASource::Mat(a), b, ep, c)
}

/// [`gemm`] with A from any [`ASource`].
pub fn gemm_any(isa: Isa, par: &dyn Parallel, scratch: &Scratch, a: ASource<'_>, b: BSource<'_>, ep: &Epilogue<'_>, c: &mut [f32]) {
    if let ASource::Packed(q) = a {
        assert!(q.valid(), "gemm: packed A is shorter than its shape");
    }
    if let BSource::PackedT(q) = b {
        assert!(q.valid(), "gemm: packed B is shorter than its shape");
    }
    let (m, k, n) = (a.rows(), a.cols(), b.cols());
    assert_eq!(b.rows(), k, "gemm: A is {m}×{k} but B has {} rows", b.rows());
    assert!(c.len() >= m * n, "gemm: C holds {} floats, needs {}", c.len(), m * n);
    if m == 0 || n == 0 {
        return;
    }
    let v = variant(isa);
    if k == 0 {
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = ep.finish(0.0, i, j);
            }
        }
        return;
    }
    if m <= SMALL_M {
        match (a.in_place(), b) {
            (Some(&am), BSource::Mat(bm)) if bm.rs == 1 || bm.cs == 1 => return gemm_small_m(v, par, am, SmallB::Mat(bm), ep, c),
            (Some(&am), BSource::PackedT(q)) => return gemm_small_m(v, par, am, SmallB::PackedT(q), ep, c),
            _ => {}
        }
    }
    if n == 1 {
        // A matrix times a vector (a 1×1 convolution on a 1×1 map, as in
        // squeeze-and-excitation blocks): packing would pad the column to
        // a whole panel, 1 useful column in 16 or 32.
        if let (Some(&am), BSource::Mat(bm)) = (a.in_place(), b) {
            if bm.rs == 1 {
                return gemv(v, par, am, &bm.data[..k], ep, c);
            }
        }
    }
    assert!(scratch.floats_per_worker() >= variant_scratch(v, m, k, n) && scratch.workers() >= par.workers(), "gemm: scratch too small");

    // Split C into tasks. Splitting columns makes every task read its rows
    // of A again; splitting rows makes every task pack its columns of B
    // again. Reading A in place is cheap (a stream of reads), packing is
    // not (a gather and a write per element): with A read in place, split
    // columns first; with A packed, split the longer side. Split the other
    // side only if there are still too few tasks for the workers.
    let workers = par.workers();
    let want = if workers > 1 { workers * 3 } else { 1 };
    let columns_first = (v.direct_a && a.in_place().is_some()) || n >= m;
    let mut nc = v.nc;
    if columns_first && n.div_ceil(nc) < want {
        nc = n.div_ceil(want).next_multiple_of(v.nr).clamp(v.nr, v.nc);
    }
    let mut n_blocks = n.div_ceil(nc);
    // Rows are split only when there are fewer column blocks than workers,
    // or when the column blocks cannot be shared evenly: every row chunk
    // packs its columns of B again (for a convolution, the whole im2col
    // gather of those columns).
    let mut m_chunks = 1;
    let max_chunks = m.div_ceil(v.mr).max(1);
    if n_blocks < workers {
        m_chunks = workers.div_ceil(n_blocks).min(max_chunks);
    } else if columns_first && workers > 1 && max_chunks >= 8 * workers && uneven(v, n, nc, workers) {
        // ResNet's 7×7 maps: 49 columns are blocks of 16, 16, 16 and 1,
        // and two workers take two blocks and one: 1.3× from a second
        // thread. Whole rows of columns, in one chunk of rows per worker,
        // pay one more gather of B and share the work evenly.
        nc = n.next_multiple_of(v.nr).min(v.nc);
        n_blocks = n.div_ceil(nc);
        m_chunks = workers.div_ceil(n_blocks).min(max_chunks);
    }
    let m_step = m.div_ceil(m_chunks).next_multiple_of(v.mr);
    let m_chunks = m.div_ceil(m_step);
    let tasks = n_blocks * m_chunks;
    let cshared = SharedMut::new(&mut c[..m * n]);
    let task = |t: usize, worker: usize| {
        let (jb, ib) = (t % n_blocks, t / n_blocks);
        let (j0, i0) = (jb * nc, ib * m_step);
        let (j1, i1) = ((j0 + nc).min(n), (i0 + m_step).min(m));
        scratch.with(worker, |buf| {
            gemm_block(v, &a, &b, ep, &cshared, n, (i0, i1), (j0, j1), buf);
        });
    };
    if tasks == 1 {
        task(0, 0);
    } else {
        par.run(tasks, &task);
    }
}

/// Whether column blocks of `nc` leave `workers` unevenly loaded: blocks
/// handed out in order to whoever is free, each costing its columns (a
/// narrow last panel five columns' worth, any other partial panel a whole
/// one), the busiest worker 1.15× the average or more. (ResNet's 7 × 7
/// 3 × 3 layers at two threads, 512 × 4608 × 49: 1.21 by this count, and
/// 8.6 → 7.3 ms for four of them split by rows.)
fn uneven(v: &Variant, n: usize, nc: usize, workers: usize) -> bool {
    let cost = |cols: usize| {
        let rem = cols % v.nr;
        let edge = match rem {
            0 => 0,
            r if r <= NARROW && v.ukr_narrow.is_some() => 5,
            _ => v.nr,
        };
        (cols - rem + edge) as f32
    };
    let mut load = [0.0f32; 64];
    let load = &mut load[..workers.min(64)];
    let mut total = 0.0;
    let mut j = 0;
    while j < n {
        let c = cost(nc.min(n - j));
        total += c;
        let free = load.iter_mut().min_by(|a, b| a.total_cmp(b)).expect("a worker");
        *free += c;
        j += nc;
    }
    let busiest = load.iter().copied().fold(0.0, f32::max);
    busiest >= 1.15 * total / load.len() as f32
}

/// Columns `cols` of `c = a · b` (plus the epilogue) on the calling
/// thread, into `c` with row stride `ldc`, packing into `buf` (at least
/// [`scratch_floats_for`]`(m, k, cols)` floats): for kernels whose tasks
/// each compute a part of a product of their own (Winograd's 36).
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_cols(
    isa: Isa,
    a: ASource<'_>,
    b: BSource<'_>,
    ep: &Epilogue<'_>,
    c: &SharedMut<'_, f32>,
    ldc: usize,
    cols: (usize, usize),
    buf: &mut [f32],
) {
    let (m, k) = (a.rows(), a.cols());
    assert!(
        b.rows() == k && k > 0 && cols.1 <= b.cols() && cols.1 <= ldc,
        "gemm_cols: {m}×{k} · {}×{} columns {cols:?}",
        b.rows(),
        b.cols()
    );
    let v = variant(isa);
    assert!(buf.len() >= variant_scratch(v, m, k, cols.1 - cols.0), "gemm_cols: scratch too small");
    let mut j0 = cols.0;
    while j0 < cols.1 {
        let j1 = (j0 + v.nc).min(cols.1);
        gemm_block(v, &a, &b, ep, c, ldc, (0, m), (j0, j1), buf);
        j0 = j1;
    }
}

/// Computes the block `rows × cols` of C.
#[allow(clippy::too_many_arguments)]
fn gemm_block(
    v: &Variant,
    a: &ASource<'_>,
    b: &BSource<'_>,
    ep: &Epilogue<'_>,
    c: &SharedMut<'_, f32>,
    ldc: usize,
    rows: (usize, usize),
    cols: (usize, usize),
    buf: &mut [f32],
) {
    let k = a.cols();
    let a_block = (rows.1 - rows.0).min(v.mc).next_multiple_of(v.mr) * v.kc.min(k);
    let (pa, pb) = buf.split_at_mut(a_block);
    let in_place = a.in_place().filter(|_| v.direct_a);
    let direct = in_place.is_some();
    let ncb = cols.1 - cols.0;
    let mut acc = [0.0f32; MAX_TILE];
    // A narrow edge panel's columns, each contiguous (see ukr_narrow).
    let mut bt = [0.0f32; NARROW * 256];
    // The epilogue as the tile store can apply it in registers, if it can.
    let act = match ep.act {
        Activation::None => Some(TileAct::None),
        Activation::Relu => Some(TileAct::Relu),
        Activation::Clip { min, max } => Some(TileAct::Clip(min, max)),
        _ => None,
    };
    let simple = ep.alpha == 1.0 && (ep.beta == 1.0 || matches!(ep.bias, Bias::None)) && !matches!(ep.bias, Bias::Mat(_));
    // An activation the tile store cannot apply in registers (SiLU,
    // sigmoid, GELU...) is applied once the block is done, to whole rows
    // of it: tiles go through the register store with the bias, and the
    // activation runs over runs of up to nc values instead of one tile row
    // at a time (a call per 32 values cost more than SiLU itself).
    let deferred = simple && act.is_none();
    let simple_act = if simple { act.or(deferred.then_some(TileAct::None)) } else { None };
    let block_act = ep.act;
    let ep = &if deferred { Epilogue { act: Activation::None, ..*ep } } else { *ep };
    let mut k0 = 0;
    while k0 < k {
        let kcb = v.kc.min(k - k0);
        let (first, last) = (k0 == 0, k0 + kcb == k);
        pack_b(v, b, k0, kcb, cols.0, ncb, pb);
        let mut i0 = rows.0;
        while i0 < rows.1 {
            let mcb = v.mc.min(rows.1 - i0);
            let full = mcb - mcb % v.mr;
            if !direct {
                pack_a(v.mr, a, i0, mcb, k0, kcb, pa);
            } else if full < mcb {
                // The last, partial panel is packed (zero-padded) so the
                // kernel never reads rows that do not exist.
                pack_a(v.mr, a, i0 + full, mcb - full, k0, kcb, pa);
            }
            let mut jr = 0;
            while jr < ncb {
                let nr_eff = v.nr.min(ncb - jr);
                let bp = &pb[(jr / v.nr) * kcb * v.nr..][..kcb * v.nr];
                // A narrow last panel, column by column for the dot kernel.
                let narrow = v.ukr_narrow.filter(|_| nr_eff <= NARROW && kcb * nr_eff <= bt.len());
                if narrow.is_some() {
                    for (c, col) in bt.chunks_exact_mut(kcb).take(nr_eff).enumerate() {
                        col.iter_mut().zip(bp.iter().skip(c).step_by(v.nr)).for_each(|(d, &x)| *d = x);
                    }
                }
                let mut ir = 0;
                while ir < mcb {
                    let mr_eff = v.mr.min(mcb - ir);
                    let (ap, rs, cs) = if let (Some(am), true) = (in_place, ir < full) {
                        (&am.data[(i0 + ir) * am.rs + k0..], am.rs, 1)
                    } else if !direct {
                        (&pa[(ir / v.mr) * kcb * v.mr..][..kcb * v.mr], 1, v.mr)
                    } else {
                        (&pa[..kcb * v.mr], 1, v.mr)
                    };
                    let (i, j) = (i0 + ir, cols.0 + jr);
                    // An edge tile (short of rows or columns) goes through
                    // the edge kernel where the variant has one.
                    let edge = match narrow {
                        Some(f) if cs == 1 => Some((f, &bt[..kcb * nr_eff])),
                        _ => v.ukr_edge.filter(|_| mr_eff < v.mr || nr_eff < v.nr).map(|f| (f, bp)),
                    };
                    let store = match ((mr_eff == v.mr && nr_eff == v.nr) || edge.is_some(), last, simple_act) {
                        (false, _, _) | (true, true, None) => None,
                        (true, false, _) => Some(TileStore { accumulate: !first, bias: TileBias::None, act: TileAct::None }),
                        (true, true, Some(act)) => {
                            let bias = match ep.bias {
                                Bias::None => TileBias::None,
                                Bias::Row(b) => TileBias::Row(b[i..i + mr_eff].as_ptr()),
                                Bias::Col(b) => TileBias::Col(b[j..j + nr_eff].as_ptr()),
                                Bias::Mat(_) => TileBias::None,
                            };
                            Some(TileStore { accumulate: !first, bias, act })
                        }
                    };
                    if let Some(st) = store {
                        // SAFETY: each task owns the rectangle rows × cols of
                        // C, and tasks' rectangles are disjoint.
                        let tile = TileMut { ptr: unsafe { c.tile_ptr(i * ldc + j, mr_eff, nr_eff, ldc) }, ldc };
                        if let Some((f, b)) = edge {
                            f(mr_eff, nr_eff, kcb, ap, rs, cs, b, &tile, &st);
                            ir += v.mr;
                            continue;
                        }
                        match v.ukr_store {
                            Some(f) => f(kcb, ap, rs, cs, bp, &tile, &st),
                            None => {
                                (v.ukr)(kcb, ap, rs, cs, bp, &mut acc);
                                store_tile(&acc, v.nr, v.mr, v.nr, &tile, &st);
                            }
                        }
                        ir += v.mr;
                        continue;
                    }
                    (v.ukr)(kcb, ap, rs, cs, bp, &mut acc);
                    for r in 0..mr_eff {
                        let i = i0 + ir + r;
                        let j = cols.0 + jr;
                        // SAFETY: each task owns the rectangle rows × cols of
                        // C, and tasks' rectangles are disjoint.
                        let crow = unsafe { c.slice_mut(i * ldc + j, nr_eff) };
                        let arow = &acc[r * v.nr..r * v.nr + nr_eff];
                        if first {
                            crow.copy_from_slice(arow);
                        } else {
                            crow.iter_mut().zip(arow).for_each(|(cc, &s)| *cc += s);
                        }
                        if last {
                            ep.finish_row(crow, i, j);
                        }
                    }
                    ir += v.mr;
                }
                jr += v.nr;
            }
            if last && deferred {
                for i in i0..i0 + mcb {
                    // SAFETY: each task owns the rectangle rows × cols of C.
                    block_act.apply_slice(unsafe { c.slice_mut(i * ldc + cols.0, ncb) });
                }
            }
            i0 += mcb;
        }
        k0 += kcb;
    }
}

/// Checks that an A panel of `mr` rows and `kc` columns with strides
/// (`rs`, `cs`) lies inside `a`: the kernels' one precondition.
#[inline(always)]
pub(crate) fn check_panel(a: &[f32], mr: usize, kc: usize, rs: usize, cs: usize) {
    if kc > 0 {
        let last = (mr - 1) * rs + (kc - 1) * cs;
        assert!(last < a.len(), "A panel reaches index {last} of {}", a.len());
    }
}

fn ukr_generic_4x8(kc: usize, a: &[f32], rs: usize, cs: usize, b: &[f32], acc: &mut [f32; MAX_TILE]) {
    const MR: usize = 4;
    const NR: usize = 8;
    check_panel(a, MR, kc, rs, cs);
    let mut t = [[0.0f32; NR]; MR];
    for (kk, bk) in b[..kc * NR].chunks_exact(NR).enumerate() {
        for r in 0..MR {
            let av = a[r * rs + kk * cs];
            for c in 0..NR {
                t[r][c] += av * bk[c];
            }
        }
    }
    for r in 0..MR {
        acc[r * NR..(r + 1) * NR].copy_from_slice(&t[r]);
    }
}

/// Dot product with eight independent partial sums, which the compiler turns
/// into vector lanes without reassociating a single sum.
pub(crate) fn dot_generic(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            lanes[l] += x[l] * y[l];
        }
    }
    let mut s = lanes.iter().sum::<f32>();
    for (x, y) in ta.iter().zip(tb) {
        s += x * y;
    }
    s
}

/// Peak of a variant's micro-kernel on cache-resident panels (GFLOP/s), for
/// the probe example.
#[doc(hidden)]
pub fn probe_ukr_gflops(isa: Isa, kc: usize, reps: usize) -> f64 {
    let v = variant(isa);
    let a = vec![1.0f32; kc * v.mr];
    let b = vec![1.0f32; kc * v.nr];
    let mut acc = [0.0f32; MAX_TILE];
    let t = std::time::Instant::now();
    for _ in 0..reps {
        (v.ukr)(kc, std::hint::black_box(&a), 1, v.mr, std::hint::black_box(&b), &mut acc);
        std::hint::black_box(&acc);
    }
    2.0 * (kc * v.mr * v.nr * reps) as f64 / t.elapsed().as_secs_f64() / 1e9
}

#[cfg(test)]
mod tests;
