//! Activations and elementwise arithmetic.

use super::super::import::{Ctx, N};
use crate::graph::ValueId;
use crate::tensor::{Data, Tensor};
use jetrt::DType;
use jetrt_format::op::{Activation, BinaryOp, Op};
use jetrt_format::shape::broadcast;

pub(crate) fn activation(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let act = match n.op {
        "Relu" => Activation::Relu,
        "Sigmoid" => Activation::Sigmoid,
        "Tanh" => Activation::Tanh,
        "LeakyRelu" => Activation::LeakyRelu { alpha: n.float("alpha", 0.01) },
        "HardSigmoid" => Activation::HardSigmoid { alpha: n.float("alpha", 0.2), beta: n.float("beta", 0.5) },
        "HardSwish" => Activation::HardSwish,
        "Gelu" => match n.string("approximate").as_deref() {
            None | Some("none") => Activation::Gelu,
            Some("tanh") => Activation::GeluTanh,
            Some(other) => return Err(format!("approximate={other:?} is not supported")),
        },
        "Erf" => Activation::Erf,
        "Sqrt" => Activation::Sqrt,
        "Exp" => Activation::Exp,
        "Log" => Activation::Log,
        "Abs" => Activation::Abs,
        "Neg" => Activation::Neg,
        "Reciprocal" => Activation::Reciprocal,
        "Floor" => Activation::Floor,
        "Ceil" => Activation::Ceil,
        "Round" => Activation::Round,
        "Sign" => Activation::Sign,
        "Softplus" => Activation::Softplus,
        "Softsign" => Activation::Softsign,
        "Elu" => Activation::Elu { alpha: n.float("alpha", 1.0) },
        "Selu" => Activation::Selu { alpha: n.float("alpha", 1.673_263_2), gamma: n.float("gamma", 1.050_701) },
        "Celu" => Activation::Celu { alpha: n.float("alpha", 1.0) },
        "ThresholdedRelu" => Activation::ThresholdedRelu { alpha: n.float("alpha", 1.0) },
        "Mish" => Activation::Mish,
        "Sin" => Activation::Sin,
        "Cos" => Activation::Cos,
        other => return Err(format!("internal: {other} is not an activation")),
    };
    let x = n.input(0)?;
    if cx.dtype(x) != DType::F32 {
        if let Some(t) = cx.konst(x) {
            let t = fold_int_unary(n.op, t).ok_or_else(|| format!("cannot fold {} on {:?} constants", n.op, t.dtype()))?;
            return Ok(vec![cx.add_const(n.name.clone(), t)]);
        }
        return Err(format!("{} on {:?} tensors at run time is not supported (float32 only)", n.op, cx.dtype(x)));
    }
    Ok(vec![cx.node(n.name.clone(), Op::Activation(act), vec![x])?])
}

/// Integer Abs, Neg, Sign, Relu on constants (shape arithmetic).
fn fold_int_unary(op: &str, t: &Tensor) -> Option<Tensor> {
    let v = t.ints()?;
    let out: Vec<i64> = match op {
        "Abs" => v.iter().map(|x| x.checked_abs()).collect::<Option<_>>()?,
        "Neg" => v.iter().map(|x| x.checked_neg()).collect::<Option<_>>()?,
        "Sign" => v.iter().map(|x| x.signum()).collect(),
        "Relu" => v.iter().map(|&x| x.max(0)).collect(),
        _ => return None,
    };
    Some(Tensor::new(t.shape.clone(), Data::I64(out).cast(t.dtype())?))
}

pub(crate) fn clip(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let x = n.input(0)?;
    let (min, max) = if n.opset < 11 {
        (n.float("min", f32::MIN), n.float("max", f32::MAX))
    } else {
        let bound = |i: usize, default: f32| -> Result<f32, String> {
            match n.opt_input(i) {
                None => Ok(default),
                Some(v) => {
                    let t = cx.konst(v).ok_or("Clip bounds computed at run time are not supported")?;
                    t.floats().first().copied().ok_or_else(|| "empty Clip bound".into())
                }
            }
        };
        (bound(1, f32::MIN)?, bound(2, f32::MAX)?)
    };
    let act = if min == 0.0 && max == f32::MAX { Activation::Relu } else { Activation::Clip { min, max } };
    Ok(vec![cx.node(n.name.clone(), Op::Activation(act), vec![x])?])
}

fn binary_op(op: &str) -> Result<BinaryOp, String> {
    Ok(match op {
        "Add" | "Sum" => BinaryOp::Add,
        "Sub" => BinaryOp::Sub,
        "Mul" => BinaryOp::Mul,
        "Div" => BinaryOp::Div,
        "Pow" => BinaryOp::Pow,
        "Max" => BinaryOp::Max,
        "Min" => BinaryOp::Min,
        "PRelu" => BinaryOp::PRelu,
        "Mod" => BinaryOp::Mod,
        other => return Err(format!("internal: {other} is not elementwise")),
    })
}

/// Folds `op(a, b)` on integer constants (shape arithmetic), numpy
/// broadcasting included.
fn fold_ints(op: BinaryOp, a: &Tensor, b: &Tensor) -> Option<Tensor> {
    let shape = broadcast(&a.shape, &b.shape)?.dims().to_vec();
    let (av, bv) = (a.ints()?, b.ints()?);
    let idx = |t: &Tensor, shape: &[usize]| -> Vec<usize> { broadcast_indices(&t.shape, shape) };
    let (ia, ib) = (idx(a, &shape), idx(b, &shape));
    let out: Option<Vec<i64>> = ia
        .iter()
        .zip(&ib)
        .map(|(&i, &j)| {
            let (x, y) = (av[i], bv[j]);
            match op {
                BinaryOp::Add => x.checked_add(y),
                BinaryOp::Sub => x.checked_sub(y),
                BinaryOp::Mul => x.checked_mul(y),
                // ONNX integer Div truncates toward zero.
                BinaryOp::Div => x.checked_div(y),
                BinaryOp::Max => Some(x.max(y)),
                BinaryOp::Min => Some(x.min(y)),
                BinaryOp::Pow => u32::try_from(y).ok().and_then(|e| x.checked_pow(e)),
                BinaryOp::PRelu => Some(if x < 0 { x.checked_mul(y)? } else { x }),
                BinaryOp::Fmod => x.checked_rem(y),
                BinaryOp::Mod => x.checked_rem(y).map(|r| if r != 0 && (r < 0) != (y < 0) { r + y } else { r }),
            }
        })
        .collect();
    let data = Data::I64(out?).cast(a.dtype())?;
    Some(Tensor::new(shape, data))
}

/// For each element of `out_shape`, the index of the element of a tensor of
/// shape `shape` that broadcasts to it.
pub(crate) fn broadcast_indices(shape: &[usize], out_shape: &[usize]) -> Vec<usize> {
    let total: usize = out_shape.iter().product();
    let lead = out_shape.len() - shape.len();
    let mut strides = vec![0usize; out_shape.len()];
    let mut acc = 1;
    for i in (0..shape.len()).rev() {
        strides[lead + i] = if shape[i] == 1 { 0 } else { acc };
        acc *= shape[i];
    }
    let mut out = Vec::with_capacity(total);
    let mut idx = vec![0usize; out_shape.len()];
    for _ in 0..total {
        out.push(idx.iter().zip(&strides).map(|(i, s)| i * s).sum());
        for ax in (0..out_shape.len()).rev() {
            idx[ax] += 1;
            if idx[ax] < out_shape[ax] {
                break;
            }
            idx[ax] = 0;
        }
    }
    out
}

/// Applies a binary op, folding integer constants and refusing non-float
/// run-time arithmetic.
pub(crate) fn apply_binary(cx: &mut Ctx<'_>, name: String, op: BinaryOp, a: ValueId, mut b: ValueId) -> Result<ValueId, String> {
    let (da, mut db) = (cx.dtype(a), cx.dtype(b));
    // Pow takes an exponent of any numeric type; a float base gets it as
    // float.
    if op == BinaryOp::Pow && da == DType::F32 && db != DType::F32 {
        b = super::shape::cast_to(cx, format!("{name}/exponent"), b, DType::F32)?;
        db = DType::F32;
    }
    if da != db {
        return Err(format!("operands have different element types ({da:?} and {db:?})"));
    }
    if da != DType::F32 {
        if let (Some(ta), Some(tb)) = (cx.konst(a), cx.konst(b)) {
            let t = fold_ints(op, ta, tb)
                .ok_or_else(|| format!("cannot fold {op:?} on {da:?} constants of shapes {:?} and {:?}", ta.shape, tb.shape))?;
            return Ok(cx.add_const(name, t));
        }
        return Err(format!("{op:?} on {da:?} tensors at run time is not supported (float32 only)"));
    }
    cx.node(name, Op::Binary { op, act: Activation::None }, vec![a, b])
}

pub(crate) fn binary(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let mut op = binary_op(n.op)?;
    if op == BinaryOp::Mod && n.int("fmod", 0) != 0 {
        op = BinaryOp::Fmod;
    }
    let (a, mut b) = (n.input(0)?, n.input(1)?);
    // Before opset 7, broadcasting was opt-in and aligned B at `axis`.
    if n.opset < 7 && n.int("broadcast", 0) == 1 {
        let (ra, rb) = (cx.shape(a).len(), cx.shape(b).len());
        let ax = n.attr("axis").and_then(|x| x.i).map_or(Ok(ra - rb), |x| super::axis(x, ra))?;
        let mut shape = vec![1usize; ra - ax];
        shape[..rb].copy_from_slice(cx.shape(b));
        b = cx.reshape(n.temp("broadcast"), b, shape);
    }
    Ok(vec![apply_binary(cx, n.name.clone(), op, a, b)?])
}

/// Sum, Max, Min over any number of inputs: a chain of binary steps.
pub(crate) fn variadic(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let op = binary_op(n.op)?;
    let inputs: Vec<ValueId> = (0..n.inputs.len()).map(|i| n.input(i)).collect::<Result<_, _>>()?;
    let Some((&first, rest)) = inputs.split_first() else { return Err("no inputs".into()) };
    let mut acc = first;
    for (k, &v) in rest.iter().enumerate() {
        let name = if k + 1 == rest.len() { n.name.clone() } else { n.temp(&format!("partial{k}")) };
        acc = apply_binary(cx, name, op, acc, v)?;
    }
    Ok(vec![acc])
}
