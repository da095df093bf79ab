//! MaxPool, AveragePool and the global pools.

use super::super::import::{Ctx, N};
use super::conv::{pads, per_axis};
use super::usizes;
use crate::graph::ValueId;
use jetrt_format::op::{Op, Pool2d};

fn pool(cx: &mut Ctx<'_>, n: &N<'_>, max: bool) -> Result<Vec<ValueId>, String> {
    if max && n.wants_output(1) {
        return Err("the Indices output of MaxPool is not supported".into());
    }
    let x = n.input(0)?;
    let xs = cx.shape(x).to_vec();
    let k = xs.len().checked_sub(2).ok_or("input must have at least 3 axes (N, C, spatial)")?;
    if !(1..=2).contains(&k) {
        return Err(format!("{k}-D pooling is not supported (1-D and 2-D are)"));
    }
    let kernel = usizes(&n.ints("kernel_shape").ok_or("kernel_shape is required")?, "kernel_shape")?;
    if kernel.len() != k || kernel.contains(&0) {
        return Err(format!("kernel_shape {kernel:?} does not fit a {k}-D pooling"));
    }
    let strides = per_axis(n, "strides", k)?;
    let dilations = per_axis(n, "dilations", k)?;
    if !max && dilations.iter().any(|&d| d != 1) {
        return Err("dilated AveragePool is not supported".into());
    }
    let p = pads(n, &xs[2..], &kernel, &strides, &dilations)?;
    let ceil_mode = n.int("ceil_mode", 0) != 0;
    let count_include_pad = n.int("count_include_pad", 0) != 0;
    let (kernel, strides, dilations, pads) = if k == 1 {
        ([1, kernel[0]], [1, strides[0]], [1, dilations[0]], [0, p[0], 0, p[1]])
    } else {
        ([kernel[0], kernel[1]], [strides[0], strides[1]], [dilations[0], dilations[1]], [p[0], p[1], p[2], p[3]])
    };
    let attrs = Pool2d { kernel, strides, dilations, pads, ceil_mode, count_include_pad };
    let op = if max { Op::MaxPool2d(attrs) } else { Op::AvgPool2d(attrs) };
    if k == 1 {
        let x2 = cx.reshape(n.temp("as_2d"), x, vec![xs[0], xs[1], 1, xs[2]]);
        let y2 = cx.node(n.temp("pool2d"), op, vec![x2])?;
        let ys = cx.shape(y2).to_vec();
        return Ok(vec![cx.reshape(n.name.clone(), y2, vec![ys[0], ys[1], ys[3]])]);
    }
    Ok(vec![cx.node(n.name.clone(), op, vec![x])?])
}

pub(crate) fn max_pool(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    pool(cx, n, true)
}

pub(crate) fn average_pool(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    pool(cx, n, false)
}

pub(crate) fn global_average_pool(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let x = n.input(0)?;
    Ok(vec![cx.node(n.name.clone(), Op::GlobalAvgPool, vec![x])?])
}

/// GlobalMaxPool on `[N, C, H, W]` is a MaxPool with an `H × W` window.
pub(crate) fn global_max_pool(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let x = n.input(0)?;
    let xs = cx.shape(x).to_vec();
    if xs.len() != 4 {
        return Err(format!("GlobalMaxPool on a {}-D input is not supported (4-D is)", xs.len()));
    }
    let op = Op::MaxPool2d(Pool2d {
        kernel: [xs[2], xs[3]],
        strides: [1, 1],
        dilations: [1, 1],
        pads: [0; 4],
        ceil_mode: false,
        count_include_pad: false,
    });
    Ok(vec![cx.node(n.name.clone(), op, vec![x])?])
}
