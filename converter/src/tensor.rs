//! Constant tensors, as the converter holds them while it folds the graph.

use jetrt::DType;

/// Typed element storage.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    I32(Vec<i32>),
    I16(Vec<i16>),
    I8(Vec<i8>),
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
    U64(Vec<u64>),
    Bool(Vec<bool>),
    /// IEEE half floats, as bits.
    F16(Vec<u16>),
    /// bfloat16, as bits.
    BF16(Vec<u16>),
}

/// Applies `$body` to the vector inside any variant, binding it to `$v`.
macro_rules! each {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            Data::F32($v) => $body,
            Data::F64($v) => $body,
            Data::I64($v) => $body,
            Data::I32($v) => $body,
            Data::I16($v) => $body,
            Data::I8($v) => $body,
            Data::U8($v) => $body,
            Data::U16($v) => $body,
            Data::U32($v) => $body,
            Data::U64($v) => $body,
            Data::Bool($v) => $body,
            Data::F16($v) => $body,
            Data::BF16($v) => $body,
        }
    };
}

/// Like `each!`, rebuilding the same variant from `$body`'s vector.
macro_rules! map_same {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            Data::F32($v) => Data::F32($body),
            Data::F64($v) => Data::F64($body),
            Data::I64($v) => Data::I64($body),
            Data::I32($v) => Data::I32($body),
            Data::I16($v) => Data::I16($body),
            Data::I8($v) => Data::I8($body),
            Data::U8($v) => Data::U8($body),
            Data::U16($v) => Data::U16($body),
            Data::U32($v) => Data::U32($body),
            Data::U64($v) => Data::U64($body),
            Data::Bool($v) => Data::Bool($body),
            Data::F16($v) => Data::F16($body),
            Data::BF16($v) => Data::BF16($body),
        }
    };
}

impl Data {
    pub fn dtype(&self) -> DType {
        match self {
            Data::F32(_) => DType::F32,
            Data::F64(_) => DType::F64,
            Data::I64(_) => DType::I64,
            Data::I32(_) => DType::I32,
            Data::I16(_) => DType::I16,
            Data::I8(_) => DType::I8,
            Data::U8(_) => DType::U8,
            Data::U16(_) => DType::U16,
            Data::U32(_) => DType::U32,
            Data::U64(_) => DType::U64,
            Data::Bool(_) => DType::Bool,
            Data::F16(_) => DType::F16,
            Data::BF16(_) => DType::BF16,
        }
    }

    pub fn len(&self) -> usize {
        each!(self, v => v.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Elements at `indices`, in that order.
    pub fn gather(&self, indices: &[usize]) -> Data {
        map_same!(self, v => indices.iter().map(|&i| v[i]).collect())
    }

    /// One element repeated `n` times.
    pub fn splat(&self, index: usize, n: usize) -> Data {
        map_same!(self, v => vec![v[index]; n])
    }

    /// Concatenation of same-typed data.
    pub fn concat(parts: &[&Data]) -> Option<Data> {
        let first = parts.first()?;
        let mut out = first.gather(&[]);
        for p in parts {
            match (&mut out, p) {
                (Data::F32(a), Data::F32(b)) => a.extend_from_slice(b),
                (Data::F64(a), Data::F64(b)) => a.extend_from_slice(b),
                (Data::I64(a), Data::I64(b)) => a.extend_from_slice(b),
                (Data::I32(a), Data::I32(b)) => a.extend_from_slice(b),
                (Data::I16(a), Data::I16(b)) => a.extend_from_slice(b),
                (Data::I8(a), Data::I8(b)) => a.extend_from_slice(b),
                (Data::U8(a), Data::U8(b)) => a.extend_from_slice(b),
                (Data::U16(a), Data::U16(b)) => a.extend_from_slice(b),
                (Data::U32(a), Data::U32(b)) => a.extend_from_slice(b),
                (Data::U64(a), Data::U64(b)) => a.extend_from_slice(b),
                (Data::Bool(a), Data::Bool(b)) => a.extend_from_slice(b),
                (Data::F16(a), Data::F16(b)) => a.extend_from_slice(b),
                (Data::BF16(a), Data::BF16(b)) => a.extend_from_slice(b),
                _ => return None,
            }
        }
        Some(out)
    }

    /// Every element as f64 (integers exactly up to 2^53).
    pub fn to_f64(&self) -> Vec<f64> {
        match self {
            Data::F32(v) => v.iter().map(|&x| x as f64).collect(),
            Data::F64(v) => v.clone(),
            Data::I64(v) => v.iter().map(|&x| x as f64).collect(),
            Data::I32(v) => v.iter().map(|&x| x as f64).collect(),
            Data::I16(v) => v.iter().map(|&x| x as f64).collect(),
            Data::I8(v) => v.iter().map(|&x| x as f64).collect(),
            Data::U8(v) => v.iter().map(|&x| x as f64).collect(),
            Data::U16(v) => v.iter().map(|&x| x as f64).collect(),
            Data::U32(v) => v.iter().map(|&x| x as f64).collect(),
            Data::U64(v) => v.iter().map(|&x| x as f64).collect(),
            Data::Bool(v) => v.iter().map(|&x| x as u8 as f64).collect(),
            Data::F16(v) => v.iter().map(|&x| f16_to_f32(x) as f64).collect(),
            Data::BF16(v) => v.iter().map(|&x| f32::from_bits((x as u32) << 16) as f64).collect(),
        }
    }

    /// Every element as i64 (floats truncated toward zero, as ONNX Cast).
    pub fn to_i64(&self) -> Vec<i64> {
        match self {
            Data::I64(v) => v.clone(),
            Data::I32(v) => v.iter().map(|&x| x as i64).collect(),
            Data::U64(v) => v.iter().map(|&x| x as i64).collect(),
            _ => self.to_f64().into_iter().map(|x| x as i64).collect(),
        }
    }

    /// Converts to `dtype` following ONNX Cast (saturating float → int as
    /// Rust `as` does; NaN → 0).
    pub fn cast(&self, dtype: DType) -> Option<Data> {
        if self.dtype() == dtype {
            return Some(self.clone());
        }
        let ints = || self.to_i64();
        let floats = || self.to_f64();
        let int_like = !matches!(self, Data::F32(_) | Data::F64(_) | Data::F16(_) | Data::BF16(_));
        macro_rules! int_cast {
            ($t:ty) => {
                if int_like {
                    ints().into_iter().map(|x| x as $t).collect()
                } else {
                    floats().into_iter().map(|x| x as $t).collect()
                }
            };
        }
        Some(match dtype {
            DType::F32 => Data::F32(floats().into_iter().map(|x| x as f32).collect()),
            DType::F64 => Data::F64(floats()),
            DType::I64 => Data::I64(int_cast!(i64)),
            DType::I32 => Data::I32(int_cast!(i32)),
            DType::I16 => Data::I16(int_cast!(i16)),
            DType::I8 => Data::I8(int_cast!(i8)),
            DType::U8 => Data::U8(int_cast!(u8)),
            DType::U16 => Data::U16(int_cast!(u16)),
            DType::U32 => Data::U32(int_cast!(u32)),
            DType::U64 => Data::U64(int_cast!(u64)),
            DType::Bool => Data::Bool(floats().into_iter().map(|x| x != 0.0).collect()),
            DType::F16 | DType::BF16 => return None,
        })
    }

    /// Elements of type `dtype` from little-endian bytes (`None` when the
    /// length is not a whole number of elements).
    pub fn from_le_bytes(dtype: DType, b: &[u8]) -> Option<Data> {
        if !b.len().is_multiple_of(dtype.size()) {
            return None;
        }
        macro_rules! le {
            ($t:ty, $n:literal) => {
                b.chunks_exact($n).map(|c| <$t>::from_le_bytes(c.try_into().expect("chunk of the element size"))).collect()
            };
        }
        Some(match dtype {
            DType::F32 => Data::F32(le!(f32, 4)),
            DType::F64 => Data::F64(le!(f64, 8)),
            DType::I64 => Data::I64(le!(i64, 8)),
            DType::I32 => Data::I32(le!(i32, 4)),
            DType::I16 => Data::I16(le!(i16, 2)),
            DType::I8 => Data::I8(b.iter().map(|&x| x as i8).collect()),
            DType::U8 => Data::U8(b.to_vec()),
            DType::U16 => Data::U16(le!(u16, 2)),
            DType::U32 => Data::U32(le!(u32, 4)),
            DType::U64 => Data::U64(le!(u64, 8)),
            DType::Bool => Data::Bool(b.iter().map(|&x| x != 0).collect()),
            DType::F16 => Data::F16(le!(u16, 2)),
            DType::BF16 => Data::BF16(le!(u16, 2)),
        })
    }

    /// Little-endian bytes, as the `.jrt` weights section stores them.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        match self {
            Data::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::F64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::I16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::I8(v) => v.iter().map(|&x| x as u8).collect(),
            Data::U8(v) => v.clone(),
            Data::U16(v) | Data::F16(v) | Data::BF16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::U32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::U64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::Bool(v) => v.iter().map(|&x| x as u8).collect(),
        }
    }
}

/// IEEE binary16 (as bits) to f32, exactly.
pub fn f16_to_f32(h: u16) -> f32 {
    half::f16::from_bits(h).to_f32()
}

/// A constant tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Data,
}

impl Tensor {
    pub fn new(shape: Vec<usize>, data: Data) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len(), "shape {shape:?}");
        Tensor { shape, data }
    }

    pub fn f32(shape: Vec<usize>, v: Vec<f32>) -> Self {
        Self::new(shape, Data::F32(v))
    }

    pub fn i64(shape: Vec<usize>, v: Vec<i64>) -> Self {
        Self::new(shape, Data::I64(v))
    }

    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// Integer contents (for shapes, axes, indices).
    pub fn ints(&self) -> Option<Vec<i64>> {
        match self.data {
            Data::I64(_) | Data::I32(_) | Data::I16(_) | Data::I8(_) | Data::U8(_) | Data::U16(_) | Data::U32(_) | Data::U64(_) => {
                Some(self.data.to_i64())
            }
            _ => None,
        }
    }

    /// Floats as f32 (casting any numeric type).
    pub fn floats(&self) -> Vec<f32> {
        match &self.data {
            Data::F32(v) => v.clone(),
            d => d.to_f64().into_iter().map(|x| x as f32).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_floats_convert_exactly() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
    }

    #[test]
    fn cast_follows_onnx() {
        let d = Data::F32(vec![1.7, -2.5, 0.0]);
        assert_eq!(d.cast(DType::I64), Some(Data::I64(vec![1, -2, 0])));
        assert_eq!(d.cast(DType::Bool), Some(Data::Bool(vec![true, true, false])));
        assert_eq!(Data::I64(vec![3]).cast(DType::F32), Some(Data::F32(vec![3.0])));
    }
}
