//! Kernel parameters as the `.cu` files declare them: pointers named by
//! what they point at (resolved to device addresses when a session
//! starts), scalars, and the structs of prelude.cuh packed as C lays them
//! out; and the codes the kernels take for activations, binary ops, casts
//! and quantized outputs: the file's own code tables.

use jetrt_format::DType;
use jetrt_kernels::cpu::conv::Conv2dShape;
use jetrt_kernels::cpu::elementwise::BinaryOp;
use jetrt_kernels::cpu::pool::Pool2dShape;
use jetrt_kernels::cpu::Activation;

/// What a pointer parameter points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Buf {
    /// A null pointer (an absent bias).
    Null,
    /// The step's `k`-th input, this many bytes in.
    Input(usize, u64),
    /// The step's output, this many bytes in.
    Output(u64),
    /// The split-K workspace.
    Workspace,
    /// The word a Gather records an index out of range in.
    GatherErr,
    /// The session's table upload, this many bytes in.
    Table(u64),
}

/// One kernel parameter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    Ptr(Buf),
    I32(i32),
    F32(f32),
    /// A 64-bit scalar (a count or an 8-byte fill value).
    U64(u64),
    /// A struct, its bytes in 8-byte words as C lays it out.
    Struct(Vec<u64>),
}

impl Arg {
    /// A struct of 32-bit fields.
    pub(crate) fn i32s(v: &[i32]) -> Arg {
        Arg::Struct(v.chunks(2).map(|c| c[0] as u32 as u64 | (c.get(1).map_or(0, |&h| h as u32 as u64) << 32)).collect())
    }

    /// The parameter's bytes, 8-aligned, with pointers resolved by `ptr`.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(crate) fn words(&self, ptr: impl Fn(Buf) -> u64) -> Vec<u64> {
        match self {
            Arg::Ptr(b) => vec![ptr(*b)],
            Arg::I32(v) => vec![*v as u32 as u64],
            Arg::F32(v) => vec![v.to_bits() as u64],
            Arg::U64(v) => vec![*v],
            Arg::Struct(w) => w.clone(),
        }
    }
}

/// A size as the kernels' 32-bit ints.
pub(crate) fn fits(v: usize) -> Result<i32, String> {
    i32::try_from(v).map_err(|_| format!("size {v} does not fit the GPU kernels' 32-bit indices"))
}

/// Sizes as the kernels' 32-bit ints.
pub(crate) fn ints(v: &[usize]) -> Result<Vec<i32>, String> {
    v.iter().map(|&d| fits(d)).collect()
}

/// The fields of `JrtConv` (prelude.cuh), in its order, of a convolution
/// or a transposed one (their shapes name the same fields alike).
macro_rules! jrt_conv_fields {
    ($s:expr) => {{
        let s = $s;
        [
            s.batch,
            s.in_channels,
            s.in_h,
            s.in_w,
            s.out_channels,
            s.out_h,
            s.out_w,
            s.kernel_h,
            s.kernel_w,
            s.stride_h,
            s.stride_w,
            s.dilation_h,
            s.dilation_w,
            s.pad_top,
            s.pad_left,
            s.groups,
        ]
    }};
}

/// `JrtConv` of a convolution.
pub(crate) fn conv_geo(s: &Conv2dShape) -> Result<Arg, String> {
    Ok(Arg::i32s(&ints(&jrt_conv_fields!(s))?))
}

/// `JrtConv` of a transposed convolution.
pub(crate) fn conv_transpose_geo(s: &jetrt_kernels::cpu::conv_transpose::ConvTranspose2dShape) -> Result<Arg, String> {
    Ok(Arg::i32s(&ints(&jrt_conv_fields!(s))?))
}

/// `JrtPool` (prelude.cuh) of a pooling.
pub(crate) fn pool_geo(s: &Pool2dShape) -> Result<Arg, String> {
    fits(s.planes * s.in_h * s.in_w)?;
    fits(s.planes * s.out_h * s.out_w)?;
    Ok(Arg::i32s(&ints(&[
        s.planes,
        s.in_h,
        s.in_w,
        s.out_h,
        s.out_w,
        s.kernel_h,
        s.kernel_w,
        s.stride_h,
        s.stride_w,
        s.dilation_h,
        s.dilation_w,
        s.pad_top,
        s.pad_left,
        s.pad_bottom,
        s.pad_right,
    ])?))
}

/// The three parameters (code, a, b) of an activation as `jrt_act` in
/// prelude.cuh takes it: the file's own code table.
pub(crate) fn act(a: Activation) -> [Arg; 3] {
    let (code, [p0, p1]) = jetrt_format::codes::activation_code(a);
    [Arg::I32(code as i32), Arg::F32(p0), Arg::F32(p1)]
}

/// The code of a binary op as `jrt_binary` in elementwise.cu takes it: the
/// file's own.
pub(crate) fn binary_code(op: BinaryOp) -> i32 {
    jetrt_format::codes::BINARY_OPS.code(op) as i32
}

/// The element type codes of `jrt_cast` (layout.cu).
pub(crate) fn cast_code(d: DType) -> Option<i32> {
    Some(match d {
        DType::F32 => 0,
        DType::F64 => 1,
        DType::I64 => 2,
        DType::I32 => 3,
        DType::I8 => 4,
        DType::U8 => 5,
        DType::Bool => 6,
        _ => return None,
    })
}

/// The three parameters (int8 output?, 1/scale, zero point) of a
/// quantized op's output.
pub(crate) fn qout(o: &jetrt_format::op::QOutParams) -> [Arg; 3] {
    match *o {
        jetrt_format::op::QOutParams::F32 => [Arg::I32(0), Arg::F32(0.0), Arg::I32(0)],
        jetrt_format::op::QOutParams::I8 { scale, zero_point } => [Arg::I32(1), Arg::F32(1.0 / scale), Arg::I32(zero_point as i32)],
    }
}

/// The kernel of an element size (1, 2, 4 or 8 bytes) among four variants.
pub(crate) fn by_elem(names: [&'static str; 4], elem: usize) -> Result<&'static str, String> {
    match elem {
        1 => Ok(names[0]),
        2 => Ok(names[1]),
        4 => Ok(names[2]),
        8 => Ok(names[3]),
        _ => Err(format!("element size {elem} (the GPU kernels move 1, 2, 4 or 8 bytes)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Structs of 32-bit fields reach the kernels as C lays them out.
    #[test]
    fn struct_parameters_pack_as_c_lays_them_out() {
        let no = |_| 0;
        assert_eq!(Arg::i32s(&[1, -2, 3]).words(no), vec![1 | (0xffff_fffe << 32), 3]);
        assert_eq!(Arg::F32(1.5).words(no), vec![0x3fc0_0000]);
        assert_eq!(Arg::I32(-1).words(no), vec![0xffff_ffff]);
        assert_eq!(Arg::Ptr(Buf::Workspace).words(|b| if b == Buf::Workspace { 77 } else { 0 }), vec![77]);
        let s = Conv2dShape {
            batch: 1,
            in_channels: 3,
            in_h: 8,
            in_w: 8,
            out_channels: 4,
            out_h: 8,
            out_w: 8,
            kernel_h: 3,
            kernel_w: 3,
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: 1,
            pad_left: 1,
            groups: 1,
        };
        let Arg::Struct(geo) = conv_geo(&s).unwrap() else { panic!("JrtConv is a struct") };
        assert_eq!(geo.len(), 8, "JrtConv has 16 ints");
        assert_eq!(geo[0], 1 | (3 << 32));
    }
}
