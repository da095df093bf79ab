//! Conv (1-D and 2-D), and the padding rules convolutions and pooling share.

use super::super::import::{Ctx, N};
use super::usizes;
use crate::graph::ValueId;
use jetrt_format::op::{Activation, Conv2d, ConvTranspose2d, Op};

/// Begin and end padding per spatial axis (`[b0, b1, .., e0, e1, ..]`),
/// resolving `auto_pad`.
pub(crate) fn pads(n: &N<'_>, input: &[usize], kernel: &[usize], strides: &[usize], dilations: &[usize]) -> Result<Vec<usize>, String> {
    let k = input.len();
    let auto = n.string("auto_pad").unwrap_or_else(|| "NOTSET".into());
    match auto.as_str() {
        "NOTSET" | "" => {
            let p = usizes(&n.ints("pads").unwrap_or_else(|| vec![0; 2 * k]), "pads")?;
            if p.len() != 2 * k {
                return Err(format!("pads {p:?} should have {} values", 2 * k));
            }
            Ok(p)
        }
        "VALID" => Ok(vec![0; 2 * k]),
        "SAME_UPPER" | "SAME_LOWER" => {
            let mut out = vec![0; 2 * k];
            for i in 0..k {
                let o = input[i].div_ceil(strides[i]);
                let span = (kernel[i] - 1) * dilations[i] + 1;
                let total = ((o.saturating_sub(1)) * strides[i] + span).saturating_sub(input[i]);
                let (small, big) = (total / 2, total - total / 2);
                (out[i], out[k + i]) = if auto == "SAME_UPPER" { (small, big) } else { (big, small) };
            }
            Ok(out)
        }
        other => Err(format!("auto_pad {other:?} is not a valid value")),
    }
}

/// Reads an optional per-axis attribute (strides, dilations), default 1.
pub(crate) fn per_axis(n: &N<'_>, name: &str, k: usize) -> Result<Vec<usize>, String> {
    let v = usizes(&n.ints(name).unwrap_or_else(|| vec![1; k]), name)?;
    if v.len() != k {
        return Err(format!("{name} {v:?} should have {k} values"));
    }
    if v.contains(&0) {
        return Err(format!("{name} {v:?} contains 0"));
    }
    Ok(v)
}

/// What Conv and ConvTranspose share: operands, shapes and the per-axis
/// attributes, checked.
struct Geometry {
    x: ValueId,
    w: ValueId,
    b: Option<ValueId>,
    xs: Vec<usize>,
    ws: Vec<usize>,
    /// Spatial axes (1 or 2).
    k: usize,
    kernel: Vec<usize>,
    strides: Vec<usize>,
    dilations: Vec<usize>,
    groups: usize,
}

fn geometry(cx: &Ctx<'_>, n: &N<'_>, what: &str) -> Result<Geometry, String> {
    let (x, w, b) = (n.input(0)?, n.input(1)?, n.opt_input(2));
    let xs = cx.shape(x).to_vec();
    let ws = cx.shape(w).to_vec();
    let k = xs.len().checked_sub(2).ok_or("input must have at least 3 axes (N, C, spatial)")?;
    if !(1..=2).contains(&k) {
        return Err(format!("{k}-D {what} is not supported (1-D and 2-D are)"));
    }
    if ws.len() != xs.len() {
        return Err(format!("weights {ws:?} and input {xs:?} differ in rank"));
    }
    let kernel = ws[2..].to_vec();
    if let Some(ks) = n.ints("kernel_shape") {
        if usizes(&ks, "kernel_shape")? != kernel {
            return Err(format!("kernel_shape {ks:?} does not match the weights {ws:?}"));
        }
    }
    let strides = per_axis(n, "strides", k)?;
    let dilations = per_axis(n, "dilations", k)?;
    let groups = usize::try_from(n.int("group", 1)).map_err(|_| "negative group".to_string())?;
    Ok(Geometry { x, w, b, xs, ws, k, kernel, strides, dilations, groups })
}

pub(crate) fn conv(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let Geometry { x, w, b, xs, ws, k, kernel, strides, dilations, groups } = geometry(cx, n, "convolution")?;
    let p = pads(n, &xs[2..], &kernel, &strides, &dilations)?;
    // 1-D convolutions run as 2-D ones of height 1.
    let (x2, w2) = if k == 1 {
        let x2 = cx.reshape(n.temp("as_2d"), x, vec![xs[0], xs[1], 1, xs[2]]);
        let w2 = cx.reshape(n.temp("w_as_2d"), w, vec![ws[0], ws[1], 1, ws[2]]);
        (x2, w2)
    } else {
        (x, w)
    };
    let (kernel, strides, dilations, pads) = if k == 1 {
        ([1, kernel[0]], [1, strides[0]], [1, dilations[0]], [0, p[0], 0, p[1]])
    } else {
        ([kernel[0], kernel[1]], [strides[0], strides[1]], [dilations[0], dilations[1]], [p[0], p[1], p[2], p[3]])
    };
    let op = Op::Conv2d(Conv2d { kernel, strides, dilations, pads, groups, act: Activation::None });
    let mut inputs = vec![x2, w2];
    inputs.extend(b);
    if k == 1 {
        let y2 = cx.node(n.temp("conv2d"), op, inputs)?;
        let ys = cx.shape(y2).to_vec();
        Ok(vec![cx.reshape(n.name.clone(), y2, vec![ys[0], ys[1], ys[3]])])
    } else {
        Ok(vec![cx.node(n.name.clone(), op, inputs)?])
    }
}

pub(crate) fn conv_transpose(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let Geometry { x, w, b, xs, ws, k, kernel, strides, dilations, groups } = geometry(cx, n, "ConvTranspose")?;
    let mut out_pad = usizes(&n.ints("output_padding").unwrap_or_else(|| vec![0; k]), "output_padding")?;
    if out_pad.len() != k {
        return Err(format!("output_padding {out_pad:?} should have {k} values"));
    }
    let auto = n.string("auto_pad").unwrap_or_else(|| "NOTSET".into());
    // The output size the model asks for, if any: pads follow from it.
    let wanted: Option<Vec<usize>> = match n.ints("output_shape") {
        Some(os) => {
            let os = usizes(&os, "output_shape")?;
            Some(os[os.len().saturating_sub(k)..].to_vec())
        }
        None if auto == "SAME_UPPER" || auto == "SAME_LOWER" => Some((0..k).map(|i| xs[2 + i] * strides[i]).collect()),
        None => None,
    };
    let mut pads = vec![0usize; 2 * k];
    match wanted {
        Some(out) => {
            if out.len() != k {
                return Err(format!("output_shape has {} spatial values, expected {k}", out.len()));
            }
            for i in 0..k {
                let full = (strides[i] * (xs[2 + i].max(1) - 1) + out_pad[i] + (kernel[i] - 1) * dilations[i] + 1) as i64;
                let total = full - out[i] as i64;
                if total < 0 {
                    // A larger output than the kernel reaches: zeros at the end.
                    out_pad[i] += (-total) as usize;
                    continue;
                }
                let (half, rest) = ((total / 2) as usize, (total - total / 2) as usize);
                (pads[i], pads[k + i]) = if auto == "SAME_UPPER" { (half, rest) } else { (rest, half) };
            }
        }
        None if auto == "NOTSET" || auto.is_empty() || auto == "VALID" => {
            if auto != "VALID" {
                pads = usizes(&n.ints("pads").unwrap_or_else(|| vec![0; 2 * k]), "pads")?;
                if pads.len() != 2 * k {
                    return Err(format!("pads {pads:?} should have {} values", 2 * k));
                }
            }
        }
        None => return Err(format!("auto_pad {auto:?} is not a valid value")),
    }
    let (x2, w2) = if k == 1 {
        (cx.reshape(n.temp("as_2d"), x, vec![xs[0], xs[1], 1, xs[2]]), cx.reshape(n.temp("w_as_2d"), w, vec![ws[0], ws[1], 1, ws[2]]))
    } else {
        (x, w)
    };
    let two = |v: &[usize], fill: usize| if k == 1 { [fill, v[0]] } else { [v[0], v[1]] };
    let op = Op::ConvTranspose2d(ConvTranspose2d {
        kernel: two(&kernel, 1),
        strides: two(&strides, 1),
        dilations: two(&dilations, 1),
        pads: if k == 1 { [0, pads[0], 0, pads[1]] } else { [pads[0], pads[1], pads[2], pads[3]] },
        output_padding: two(&out_pad, 0),
        groups,
    });
    let mut inputs = vec![x2, w2];
    inputs.extend(b);
    if k == 1 {
        let y2 = cx.node(n.temp("conv_transpose2d"), op, inputs)?;
        let ys = cx.shape(y2).to_vec();
        Ok(vec![cx.reshape(n.name.clone(), y2, vec![ys[0], ys[1], ys[3]])])
    } else {
        Ok(vec![cx.node(n.name.clone(), op, inputs)?])
    }
}
