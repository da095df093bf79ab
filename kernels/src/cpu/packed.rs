//! Weight rows in packed formats, which the GEMM decodes a panel at a time
//! while packing (no float copy of the whole matrix ever exists): int4,
//! group-wise quantized ([`Q4Ref`]), and sparse, a bit mask with the kept
//! values ([`SpRef`]). [`Rows`] is either, as the GEMM and convolution take
//! them.

/// A matrix of int4 weights, group-wise quantized: `rows` rows of `k`
/// values, each row padded with a zero to an even `kp` and packed two per
/// byte (low nibble first) as `q + 8`, `q` in −8..=7; value = `q ·
/// scale[row][k / group]`, one float16 scale per group of `group` values
/// (the last group of a row may be shorter).
///
/// Kernels decode it a panel at a time while packing; no float copy of the
/// whole matrix ever exists.
#[derive(Debug, Clone, Copy)]
pub struct Q4Ref<'a> {
    pub packed: &'a [u8],
    /// float16 bits, `rows × groups()`.
    pub scales: &'a [u16],
    pub rows: usize,
    pub k: usize,
    pub group: usize,
}

impl Q4Ref<'_> {
    /// Values per packed row (K rounded up to even).
    pub fn kp(&self) -> usize {
        self.k.next_multiple_of(2)
    }

    /// Scales per row.
    pub fn groups(&self) -> usize {
        self.k.div_ceil(self.group)
    }

    /// Checks the slices hold what the shape says.
    pub fn valid(&self) -> bool {
        let kp = self.kp();
        self.group >= 2
            && self.group.is_multiple_of(2)
            && self.packed.len() >= self.rows * kp / 2
            && self.scales.len() >= self.rows * self.groups()
    }

    /// Values `k0 .. k0 + out.len()` of row `r`, decoded.
    #[inline]
    pub fn decode(&self, r: usize, k0: usize, out: &mut [f32]) {
        let kp = self.kp();
        let bytes = &self.packed[r * kp / 2..(r + 1) * kp / 2];
        let scales = &self.scales[r * self.groups()..(r + 1) * self.groups()];
        let mut kk = k0;
        let end = k0 + out.len();
        let mut o = 0;
        while kk < end {
            let g = kk / self.group;
            let g_end = ((g + 1) * self.group).min(end);
            let scale = half::f16::from_bits(scales[g]).to_f32();
            // Odd start: take the high nibble alone, then whole bytes.
            if kk % 2 == 1 {
                out[o] = ((bytes[kk / 2] >> 4) as i32 - 8) as f32 * scale;
                o += 1;
                kk += 1;
            }
            let pairs = (g_end - kk) / 2;
            for (d, &b) in out[o..o + 2 * pairs].chunks_exact_mut(2).zip(&bytes[kk / 2..kk / 2 + pairs]) {
                d[0] = ((b & 15) as i32 - 8) as f32 * scale;
                d[1] = ((b >> 4) as i32 - 8) as f32 * scale;
            }
            o += 2 * pairs;
            kk += 2 * pairs;
            if kk < g_end {
                out[o] = ((bytes[kk / 2] & 15) as i32 - 8) as f32 * scale;
                o += 1;
                kk += 1;
            }
        }
    }
}

/// Weights stored sparse: per row, a bit per value (`rows × ⌈k/8⌉` bytes,
/// bit `k % 8` of byte `k / 8`, set where the value is not zero), the
/// non-zero values in row order, and where each row's values start
/// (`rows + 1` offsets). What magnitude and 2:4 pruning leave, stored in
/// about half the bytes.
#[derive(Debug, Clone, Copy)]
pub struct SpRef<'a> {
    pub mask: &'a [u8],
    pub values: &'a [f32],
    pub row_start: &'a [u32],
    pub rows: usize,
    pub k: usize,
}

impl SpRef<'_> {
    pub fn valid(&self) -> bool {
        self.mask.len() >= self.rows * self.k.div_ceil(8) && self.row_start.len() > self.rows
    }

    /// Values `k0 .. k0 + out.len()` of row `r`. A value index outside
    /// `values` (a hostile file) reads as 0: no panic, no out-of-bounds read.
    #[inline]
    pub fn decode(&self, r: usize, k0: usize, out: &mut [f32]) {
        if out.is_empty() {
            return;
        }
        let mb = self.k.div_ceil(8);
        let m = &self.mask[r * mb..(r + 1) * mb];
        let before: u32 = m[..k0 / 8].iter().map(|b| b.count_ones()).sum::<u32>() + (m[k0 / 8] & ((1u8 << (k0 % 8)) - 1)).count_ones();
        let mut vi = self.row_start[r] as usize + before as usize;
        for (i, o) in out.iter_mut().enumerate() {
            let kk = k0 + i;
            if (m[kk / 8] >> (kk % 8)) & 1 == 1 {
                *o = self.values.get(vi).copied().unwrap_or(0.0);
                vi += 1;
            } else {
                *o = 0.0;
            }
        }
    }
}

/// Weight rows in a packed format, decoded a window at a time.
#[derive(Debug, Clone, Copy)]
pub enum Rows<'a> {
    Q4(Q4Ref<'a>),
    Sparse(SpRef<'a>),
}

impl Rows<'_> {
    pub fn rows(&self) -> usize {
        match self {
            Rows::Q4(q) => q.rows,
            Rows::Sparse(s) => s.rows,
        }
    }

    pub fn k(&self) -> usize {
        match self {
            Rows::Q4(q) => q.k,
            Rows::Sparse(s) => s.k,
        }
    }

    pub fn valid(&self) -> bool {
        match self {
            Rows::Q4(q) => q.valid(),
            Rows::Sparse(s) => s.valid(),
        }
    }

    #[inline]
    pub fn decode(&self, r: usize, k0: usize, out: &mut [f32]) {
        match self {
            Rows::Q4(q) => q.decode(r, k0, out),
            Rows::Sparse(s) => s.decode(r, k0, out),
        }
    }
}
