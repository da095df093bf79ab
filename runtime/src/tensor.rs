//! Tensors as the caller hands them over ([`TensorRef`], [`TensorMut`])
//! and names inputs and outputs ([`TensorId`]): views of the caller's
//! memory, with the element type and (for inputs) the shape the model's
//! are checked against. Nothing here allocates.

use jetrt_format::DType;

/// A Rust element type that has a [`DType`]. Float16, bfloat16 and bool
/// tensors go through [`TensorRef::from_bytes`] / [`TensorMut::from_bytes`]
/// (bool: one byte each, 0 or 1).
pub trait Element: bytemuck::Pod + private::Sealed {
    const DTYPE: DType;
}

mod private {
    pub trait Sealed {}
}

macro_rules! elements {
    ($($t:ty => $d:ident),* $(,)?) => {$(
        impl private::Sealed for $t {}
        impl Element for $t {
            const DTYPE: DType = DType::$d;
        }
    )*};
}

elements!(f32 => F32, f64 => F64, i8 => I8, u8 => U8, i16 => I16, u16 => U16, i32 => I32, u32 => U32, i64 => I64, u64 => U64);

/// An input or output of a model: by its position, or by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorId<'a> {
    Index(usize),
    Name(&'a str),
}

impl From<usize> for TensorId<'_> {
    fn from(i: usize) -> Self {
        TensorId::Index(i)
    }
}

impl<'a> From<&'a str> for TensorId<'a> {
    fn from(name: &'a str) -> Self {
        TensorId::Name(name)
    }
}

impl<'a> From<&'a String> for TensorId<'a> {
    fn from(name: &'a String) -> Self {
        TensorId::Name(name)
    }
}

impl std::fmt::Display for TensorId<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TensorId::Index(i) => write!(f, "#{i}"),
            TensorId::Name(n) => write!(f, "{n:?}"),
        }
    }
}

/// A model input, as the caller hands it over: element type, shape and
/// bytes, and optionally the input's name (then [`Session::run`] matches
/// inputs by name instead of by position).
///
/// [`Session::run`]: crate::Session::run
#[derive(Debug, Clone, Copy)]
pub struct TensorRef<'a> {
    dtype: DType,
    shape: &'a [usize],
    data: &'a [u8],
    name: Option<&'a str>,
}

impl<'a> TensorRef<'a> {
    /// A tensor of `T` elements.
    pub fn new<T: Element>(shape: &'a [usize], data: &'a [T]) -> Self {
        TensorRef { dtype: T::DTYPE, shape, data: bytemuck::cast_slice(data), name: None }
    }

    /// A float32 tensor (`TensorRef::new` for `f32`).
    pub fn f32(shape: &'a [usize], data: &'a [f32]) -> Self {
        Self::new(shape, data)
    }

    /// A tensor of any element type, as raw little-endian bytes (float16,
    /// bfloat16 and bool included). The length is checked against the
    /// model's tensor when it is used.
    pub fn from_bytes(dtype: DType, shape: &'a [usize], data: &'a [u8]) -> Self {
        TensorRef { dtype, shape, data, name: None }
    }

    /// Names the input this tensor is for.
    pub fn named(mut self, name: &'a str) -> Self {
        self.name = Some(name);
        self
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn shape(&self) -> &'a [usize] {
        self.shape
    }

    pub fn bytes(&self) -> &'a [u8] {
        self.data
    }

    pub fn name(&self) -> Option<&'a str> {
        self.name
    }
}

/// A buffer an output is copied into: element type and bytes, and
/// optionally the output's name (then [`Session::run`] matches outputs by
/// name).
///
/// [`Session::run`]: crate::Session::run
#[derive(Debug)]
pub struct TensorMut<'a> {
    dtype: DType,
    data: &'a mut [u8],
    name: Option<&'a str>,
}

impl<'a> TensorMut<'a> {
    /// A buffer of `T` elements.
    pub fn new<T: Element>(data: &'a mut [T]) -> Self {
        TensorMut { dtype: T::DTYPE, data: bytemuck::cast_slice_mut(data), name: None }
    }

    /// A float32 buffer (`TensorMut::new` for `f32`).
    pub fn f32(data: &'a mut [f32]) -> Self {
        Self::new(data)
    }

    /// A buffer of any element type, as raw bytes.
    pub fn from_bytes(dtype: DType, data: &'a mut [u8]) -> Self {
        TensorMut { dtype, data, name: None }
    }

    /// Names the output this buffer is for.
    pub fn named(mut self, name: &'a str) -> Self {
        self.name = Some(name);
        self
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn name(&self) -> Option<&'a str> {
        self.name
    }

    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        self.data
    }

    pub(crate) fn len(&self) -> usize {
        self.data.len()
    }
}
