//! The GEMM against a reference, on every variant this machine has.
use super::*;
use crate::cpu::packed::{Q4Ref, SpRef};
use crate::cpu::reference;
use crate::test_util::{data, TwoWorkers};
use crate::Serial;
use proptest::prelude::*;

fn check(isa: Isa, par: &dyn Parallel, m: usize, k: usize, n: usize, trans_a: bool, trans_b: bool, bias: u8) {
    let av = data(m * k, 1);
    let bv = data(k * n, 2);
    let biasv = data(m.max(n) * m.max(n), 3);
    let a = if trans_a { MatRef::row_major(&av, k, m).t() } else { MatRef::row_major(&av, m, k) };
    let b = if trans_b { MatRef::row_major(&bv, n, k).t() } else { MatRef::row_major(&bv, k, n) };
    let bias = match bias {
        0 => Bias::None,
        1 => Bias::Row(&biasv[..m]),
        2 => Bias::Col(&biasv[..n]),
        _ => Bias::Mat(MatRef { data: &biasv, rows: m, cols: n, rs: n, cs: 1 }),
    };
    // Row bias and no bias with A transposed take the fused tile store
    // (alpha = beta = 1 and a register activation); column bias and no
    // bias with B transposed the tile store with the activation applied
    // after the block (SiLU, GELU); the rest the general epilogue.
    let ep = match bias {
        Bias::Row(_) => Epilogue { alpha: 1.0, beta: 1.0, bias, act: Activation::Clip { min: -0.5, max: 0.5 } },
        Bias::Col(_) => Epilogue { alpha: 1.0, beta: 1.0, bias, act: Activation::Gelu },
        Bias::Mat(_) => Epilogue { alpha: 1.0, beta: 1.0, bias, act: Activation::Relu },
        Bias::None if trans_a => Epilogue { alpha: 1.0, beta: 1.0, bias, act: Activation::None },
        Bias::None if trans_b => Epilogue { alpha: 1.0, beta: 1.0, bias, act: Activation::Silu },
        _ => Epilogue { alpha: 0.75, beta: 1.5, bias, act: Activation::Relu },
    };
    let scratch = Scratch::new(par.workers(), scratch_floats_for(m, k, n));
    let mut got = vec![f32::NAN; m * n];
    gemm(isa, par, &scratch, a, BSource::Mat(b), &ep, &mut got);
    let mut want = vec![0.0; m * n];
    reference::gemm(a, BSource::Mat(b), &ep, &mut want);
    for (idx, (g, w)) in got.iter().zip(&want).enumerate() {
        let tol = 1e-5 * (k as f32).sqrt().max(1.0) * 4.0;
        assert!((g - w).abs() <= tol, "{isa:?} m={m} k={k} n={n} ta={trans_a} tb={trans_b} at {idx}: {g} vs {w}");
    }
}

fn isas() -> Vec<Isa> {
    Isa::ALL.into_iter().filter(|i| i.supported()).collect()
}

#[test]
fn gemm_matches_reference_on_awkward_sizes() {
    for isa in isas() {
        for &(m, k, n) in &[
            (1, 1, 1),
            (7, 13, 17),
            (6, 256, 16),
            (13, 300, 40),
            (64, 27, 100),
            (5, 9, 3),
            (100, 513, 37),
            (12, 600, 32),
            (96, 64, 300),
            // A matrix times a vector (the n == 1 path), split over
            // workers or not.
            (40, 72, 1),
            (576, 96, 1),
        ] {
            for bias in 0..4 {
                check(isa, &Serial, m, k, n, false, false, bias);
            }
            check(isa, &TwoWorkers, m, k, n, true, true, 1);
            check(isa, &TwoWorkers, m, k, n, false, true, 2);
            check(isa, &Serial, m, k, n, true, false, 0);
        }
    }
}

/// Packs `rows × k` values as int4 with float16 scales (what jetc
/// writes), returning the packed bytes, scales and decoded floats.
fn q4(rows: usize, k: usize, group: usize, seed: u64) -> (Vec<u8>, Vec<u16>, Vec<f32>) {
    let kp = k.next_multiple_of(2);
    let groups = k.div_ceil(group);
    let src = data(rows * k, seed);
    let mut packed = vec![0u8; rows * kp / 2];
    let mut scales = vec![0u16; rows * groups];
    let mut dense = vec![0.0f32; rows * k];
    for r in 0..rows {
        for g in 0..groups {
            let vals: Vec<f32> = (g * group..(g + 1) * group).map(|c| if c < k { src[r * k + c] } else { 0.0 }).collect();
            let amax = vals.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let sc = half::f16::from_f32(amax / 7.0);
            scales[r * groups + g] = sc.to_bits();
            let s = sc.to_f32();
            for (i, v) in vals.iter().enumerate() {
                let q = if s > 0.0 { (v / s).round().clamp(-8.0, 7.0) as i32 } else { 0 };
                let c = g * group + i;
                if c < kp {
                    packed[r * kp / 2 + c / 2] |= ((q + 8) as u8) << (4 * (c % 2));
                }
                if c < k {
                    dense[r * k + c] = q as f32 * s;
                }
            }
        }
    }
    (packed, scales, dense)
}

#[test]
fn int4_decode_any_window() {
    let (packed, scales, dense) = q4(3, 77, 32, 9);
    let q = Q4Ref { packed: &packed, scales: &scales, rows: 3, k: 77, group: 32 };
    for r in 0..3 {
        for k0 in [0, 1, 5, 31, 32, 33, 64] {
            for len in [1, 2, 7, 13, 77 - k0] {
                let len = len.min(77 - k0);
                let mut out = vec![0.0; len];
                q.decode(r, k0, &mut out);
                assert_eq!(out, dense[r * 77 + k0..r * 77 + k0 + len], "row {r} window {k0}+{len}");
            }
        }
    }
}

/// Int4 A (a convolution's weights) and int4 Bᵀ (a fully connected
/// layer's) against the float GEMM on the decoded values, every variant,
/// small and blocked paths.
#[test]
fn int4_gemm_matches_dense() {
    for isa in isas() {
        for &(m, k, n, group) in &[(1, 70, 9, 32), (3, 300, 40, 32), (20, 64, 33, 16), (37, 520, 300, 64), (8, 40, 5, 8)] {
            let act = data(m.max(n) * k, 4);
            let bias = data(m.max(n), 5);
            let ep = Epilogue { alpha: 1.0, beta: 1.0, bias: Bias::Col(&bias[..n]), act: Activation::Relu };
            let scratch = Scratch::new(2, scratch_floats_for(m.max(n), k, m.max(n)));
            // y[m×n] = act[m×k] · W[n×k]ᵀ
            let (pw, sw, dw) = q4(n, k, group, 6);
            let qb = Q4Ref { packed: &pw, scales: &sw, rows: n, k, group };
            let a = MatRef::row_major(&act[..m * k], m, k);
            let mut got = vec![f32::NAN; m * n];
            gemm_any(isa, &TwoWorkers, &scratch, ASource::Mat(a), BSource::PackedT(Rows::Q4(qb)), &ep, &mut got);
            let mut want = vec![0.0; m * n];
            reference::gemm(a, BSource::Mat(MatRef::row_major(&dw, n, k).t()), &ep, &mut want);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-4 * w.abs().max(1.0), "{isa:?} B int4 {m}×{k}×{n}: {g} vs {w}");
            }
            // y[n×m] = W[n×k] · X[k×m]
            let epr = Epilogue { alpha: 1.0, beta: 1.0, bias: Bias::Row(&bias[..n]), act: Activation::None };
            let qa = Q4Ref { packed: &pw, scales: &sw, rows: n, k, group };
            let x = MatRef::row_major(&act[..k * m], k, m);
            let mut got = vec![f32::NAN; n * m];
            gemm_any(isa, &TwoWorkers, &scratch, ASource::Packed(Rows::Q4(qa)), BSource::Mat(x), &epr, &mut got);
            let mut want = vec![0.0; n * m];
            reference::gemm(MatRef::row_major(&dw, n, k), BSource::Mat(x), &epr, &mut want);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-4 * w.abs().max(1.0), "{isa:?} A int4 {n}×{k}×{m}: {g} vs {w}");
            }
        }
    }
}

/// Dense `rows × k` values with about half zeroed, stored sparse.
fn sparse(rows: usize, k: usize, seed: u64) -> (Vec<u8>, Vec<f32>, Vec<u32>, Vec<f32>) {
    let mut dense = data(rows * k, seed);
    let mb = k.div_ceil(8);
    let (mut mask, mut values, mut starts) = (vec![0u8; rows * mb], Vec::new(), vec![0u32]);
    for r in 0..rows {
        for c in 0..k {
            let v = &mut dense[r * k + c];
            if (r * 7 + c * 3) % 5 < 2 || *v < -0.3 {
                *v = 0.0;
            } else {
                mask[r * mb + c / 8] |= 1 << (c % 8);
                values.push(*v);
            }
        }
        starts.push(values.len() as u32);
    }
    (mask, values, starts, dense)
}

#[test]
fn sparse_rows_match_dense() {
    for isa in isas() {
        for &(m, k, n) in &[(1, 70, 9), (3, 300, 40), (20, 64, 33), (37, 520, 300)] {
            let act = data(m.max(n) * k, 4);
            let (mask, values, starts, dense) = sparse(n, k, 8);
            let sp = SpRef { mask: &mask, values: &values, row_start: &starts, rows: n, k };
            for k0 in [0, 1, 9, k / 2] {
                let mut out = vec![0.0; k - k0];
                sp.decode(n - 1, k0, &mut out);
                assert_eq!(out, dense[(n - 1) * k + k0..n * k]);
            }
            let scratch = Scratch::new(2, scratch_floats_for(m.max(n), k, m.max(n)));
            let ep = Epilogue::plain();
            let a = MatRef::row_major(&act[..m * k], m, k);
            let mut got = vec![f32::NAN; m * n];
            gemm_any(isa, &TwoWorkers, &scratch, ASource::Mat(a), BSource::PackedT(Rows::Sparse(sp)), &ep, &mut got);
            let mut want = vec![0.0; m * n];
            reference::gemm(a, BSource::Mat(MatRef::row_major(&dense, n, k).t()), &ep, &mut want);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-4 * w.abs().max(1.0), "{isa:?} sparse B {m}×{k}×{n}");
            }
            let x = MatRef::row_major(&act[..k * m], k, m);
            let mut got = vec![f32::NAN; n * m];
            gemm_any(isa, &TwoWorkers, &scratch, ASource::Packed(Rows::Sparse(sp)), BSource::Mat(x), &ep, &mut got);
            let mut want = vec![0.0; n * m];
            reference::gemm(MatRef::row_major(&dense, n, k), BSource::Mat(x), &ep, &mut want);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-4 * w.abs().max(1.0), "{isa:?} sparse A {n}×{k}×{m}");
            }
        }
    }
}

#[test]
fn gemm_with_empty_k_gives_the_epilogue() {
    let scratch = Scratch::new(1, scratch_floats());
    let bias = [1.0, -2.0];
    let ep = Epilogue { alpha: 1.0, beta: 2.0, bias: Bias::Col(&bias), act: Activation::Relu };
    let mut c = [9.0; 4];
    gemm(Isa::detect(), &Serial, &scratch, MatRef::row_major(&[], 2, 0), BSource::Mat(MatRef::row_major(&[], 0, 2)), &ep, &mut c);
    assert_eq!(c, [2.0, 0.0, 2.0, 0.0]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn gemm_matches_reference(m in 1usize..40, k in 1usize..300, n in 1usize..70, ta: bool, tb: bool, bias in 0u8..4, two: bool) {
        for isa in isas() {
            if two {
                check(isa, &TwoWorkers, m, k, n, ta, tb, bias);
            } else {
                check(isa, &Serial, m, k, n, ta, tb, bias);
            }
        }
    }
}
