//! A small valid model built with the runtime's own writer, and helpers to
//! take `.jrt` bytes apart and reseal them after tampering (an independent
//! implementation of the layout in docs/FORMAT.md).
#![allow(dead_code)]

use jetrt::DType;
use jetrt_format::op::{Activation, Conv2d, Gemm, Op, Pool2d};
use jetrt_format::{FileBuilder, StepDef, StorageDef, TensorDef};

pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Deterministic values in [-1, 1).
pub fn values(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2654435761).wrapping_add(12345);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

/// x[1,3,8,8] → Conv3x3+Relu → [1,4,8,8] → MaxPool2x2 → [1,4,4,4] → Copy →
/// [1,64] → Gemm(transB)+bias → [1,10] → Softmax → probs; also outputs the
/// logits. Arena tensors get distinct offsets (no reuse).
pub fn small_model() -> FileBuilder {
    small_model_seeded(0, 0)
}

/// [`small_model`] with its weight seeds shifted by `seed` and `pad` bytes
/// of unused arena at the front (a different model with a larger arena).
pub fn small_model_seeded(seed: u32, pad: u64) -> FileBuilder {
    let mut fb = FileBuilder::default();
    fb.metadata.push(("name".into(), "small".into()));
    let mut arena = pad;
    let mut act = |fb: &mut FileBuilder, name: &str, shape: Vec<usize>| -> u32 {
        let bytes = (shape.iter().product::<usize>() * 4) as u64;
        fb.tensors.push(TensorDef { name: name.into(), dtype: DType::F32, shape, storage: StorageDef::Arena { offset: arena } });
        arena += bytes.next_multiple_of(64);
        (fb.tensors.len() - 1) as u32
    };
    let weight = |fb: &mut FileBuilder, name: &str, shape: Vec<usize>, s: u32| -> u32 {
        let v = values(shape.iter().product(), s + seed);
        let offset = fb.add_weight(&f32_bytes(&v));
        fb.tensors.push(TensorDef { name: name.into(), dtype: DType::F32, shape, storage: StorageDef::Weights { offset } });
        (fb.tensors.len() - 1) as u32
    };
    let x = act(&mut fb, "x", vec![1, 3, 8, 8]);
    let w = weight(&mut fb, "conv.w", vec![4, 3, 3, 3], 1);
    let b = weight(&mut fb, "conv.b", vec![4], 2);
    let c = act(&mut fb, "conv", vec![1, 4, 8, 8]);
    let p = act(&mut fb, "pool", vec![1, 4, 4, 4]);
    let f = act(&mut fb, "flat", vec![1, 64]);
    let w2 = weight(&mut fb, "fc.w", vec![10, 64], 3);
    let b2 = weight(&mut fb, "fc.b", vec![10], 4);
    let l = act(&mut fb, "logits", vec![1, 10]);
    let s = act(&mut fb, "probs", vec![1, 10]);
    let conv = Conv2d { kernel: [3, 3], strides: [1, 1], dilations: [1, 1], pads: [1, 1, 1, 1], groups: 1, act: Activation::Relu };
    let pool = Pool2d { kernel: [2, 2], strides: [2, 2], dilations: [1, 1], pads: [0; 4], ceil_mode: false, count_include_pad: false };
    let gemm = Gemm { trans_a: false, trans_b: true, alpha: 1.0, beta: 1.0, act: Activation::None };
    fb.steps = vec![
        StepDef { op: Op::Conv2d(conv), inputs: vec![x, w, b], outputs: vec![c] },
        StepDef { op: Op::MaxPool2d(pool), inputs: vec![c], outputs: vec![p] },
        StepDef { op: Op::Copy, inputs: vec![p], outputs: vec![f] },
        StepDef { op: Op::Gemm(gemm), inputs: vec![f, w2, b2], outputs: vec![l] },
        StepDef { op: Op::Softmax { axis: 1, coerce_2d: false }, inputs: vec![l], outputs: vec![s] },
    ];
    fb.inputs = vec![x];
    fb.outputs = vec![s, l];
    fb.arena_bytes = arena;
    fb
}

/// One entry of the section table.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub at: usize,
    pub kind: u32,
    pub offset: usize,
    pub len: usize,
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    b.get(o..o.saturating_add(4)).map_or(0, |s| u32::from_le_bytes(s.try_into().unwrap()))
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    b.get(o..o.saturating_add(8)).map_or(0, |s| u64::from_le_bytes(s.try_into().unwrap()))
}

/// The section table entries that lie inside `b`.
pub fn table(b: &[u8]) -> Vec<Entry> {
    let table_at = u64_at(b, 32) as usize;
    let count = (u32_at(b, 40) as usize).min(64);
    (0..count)
        .map(|i| table_at.saturating_add(32 * i))
        .filter(|&at| at.saturating_add(32) <= b.len())
        .map(|at| Entry { at, kind: u32_at(b, at), offset: u64_at(b, at + 8) as usize, len: u64_at(b, at + 16) as usize })
        .collect()
}

pub fn section(b: &[u8], kind: jetrt::SectionKind) -> Entry {
    *table(b).iter().find(|e| e.kind == kind as u32).expect("section present")
}

fn xxh3(b: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(b)
}

/// Recomputes every checksum (sections, table, header) and the header's file
/// length, so that tampering reaches the deeper checks.
pub fn reseal(b: &mut [u8]) {
    let len = b.len() as u64;
    b[24..32].copy_from_slice(&len.to_le_bytes());
    for e in table(b) {
        if e.offset.checked_add(e.len).is_some_and(|end| end <= b.len()) {
            let sum = xxh3(&b[e.offset..e.offset + e.len]);
            b[e.at + 24..e.at + 32].copy_from_slice(&sum.to_le_bytes());
        }
    }
    let table_at = u64_at(b, 32) as usize;
    let count = u32_at(b, 40) as usize;
    if count <= 64 && table_at.checked_add(32 * count).is_some_and(|end| end <= b.len()) {
        let sum = xxh3(&b[table_at..table_at + 32 * count]);
        b[48..56].copy_from_slice(&sum.to_le_bytes());
    }
    let sum = xxh3(&b[..56]);
    b[56..64].copy_from_slice(&sum.to_le_bytes());
}
