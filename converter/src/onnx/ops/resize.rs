//! Resize and Upsample: the last two axes, nearest, linear or cubic.

use super::super::import::{Ctx, N};
use super::axis;
use crate::graph::ValueId;
use jetrt_format::op::{CoordTransform, NearestRound, Op, Resize, ResizeMode, ResizeParams};

fn mode(s: &str) -> Result<ResizeMode, String> {
    Ok(match s {
        "nearest" => ResizeMode::Nearest,
        "linear" | "bilinear" => ResizeMode::Linear,
        "cubic" => ResizeMode::Cubic,
        other => return Err(format!("mode {other:?} is not supported")),
    })
}

/// Resize (opset 10–19) and Upsample (7–9).
pub(crate) fn resize(cx: &mut Ctx<'_>, n: &N<'_>) -> Result<Vec<ValueId>, String> {
    let x = n.input(0)?;
    let dims = cx.shape(x).to_vec();
    let rank = dims.len();
    let mut p = ResizeParams { mode: mode(&n.string("mode").unwrap_or_else(|| "nearest".into()))?, ..Default::default() };
    let upsample_like = n.op == "Upsample" || n.opset < 11;
    let (mut scales, sizes, roi): (Option<Vec<f32>>, Option<Vec<i64>>, Vec<f32>) = if upsample_like {
        p.coord = CoordTransform::Asymmetric;
        p.nearest = NearestRound::Floor;
        let scales = match (n.op, n.opset) {
            ("Upsample", o) if o < 9 => n.attr("scales").map(|a| a.floats.clone()).ok_or("scales missing")?,
            _ => cx.konst(n.input(1)?).ok_or("scales must be a constant")?.floats(),
        };
        (Some(scales), None, Vec::new())
    } else {
        p.coord = match n.string("coordinate_transformation_mode").as_deref().unwrap_or("half_pixel") {
            "half_pixel" => CoordTransform::HalfPixel,
            "half_pixel_symmetric" => CoordTransform::HalfPixelSymmetric,
            "pytorch_half_pixel" => CoordTransform::PytorchHalfPixel,
            "align_corners" => CoordTransform::AlignCorners,
            "asymmetric" => CoordTransform::Asymmetric,
            "tf_crop_and_resize" => CoordTransform::TfCropAndResize,
            other => return Err(format!("coordinate_transformation_mode {other:?} is not supported")),
        };
        p.nearest = match n.string("nearest_mode").as_deref().unwrap_or("round_prefer_floor") {
            "round_prefer_floor" => NearestRound::RoundPreferFloor,
            "round_prefer_ceil" => NearestRound::RoundPreferCeil,
            "floor" => NearestRound::Floor,
            "ceil" => NearestRound::Ceil,
            other => return Err(format!("nearest_mode {other:?} is not supported")),
        };
        p.cubic_coeff_a = n.float("cubic_coeff_a", -0.75);
        p.exclude_outside = n.int("exclude_outside", 0) != 0;
        p.extrapolation_value = n.float("extrapolation_value", 0.0);
        if n.int("antialias", 0) != 0 {
            return Err("antialias=1 is not supported".into());
        }
        let konst = |i: usize, what: &str| -> Result<Option<Vec<f32>>, String> {
            match n.opt_input(i) {
                None => Ok(None),
                Some(v) => {
                    let t = cx.konst(v).ok_or_else(|| format!("{what} must be a constant"))?;
                    Ok(if t.numel() == 0 { None } else { Some(t.floats()) })
                }
            }
        };
        let roi = konst(1, "roi")?.unwrap_or_default();
        let scales = konst(2, "scales")?;
        let sizes = match n.opt_input(3) {
            Some(v) if cx.shape(v).iter().product::<usize>() > 0 => Some(cx.const_ints(v, "sizes")?),
            _ => None,
        };
        (scales, sizes, roi)
    };
    // Per-axis scale and output length over all axes (axes not named by
    // `axes` keep scale 1).
    let named: Vec<usize> = match n.ints("axes") {
        Some(a) => a.iter().map(|&a| axis(a, rank)).collect::<Result<_, _>>()?,
        None => (0..rank).collect(),
    };
    let mut scale = vec![1.0f32; rank];
    let mut out = dims.clone();
    let mut roi_full = vec![0.0f32; rank];
    roi_full.extend(std::iter::repeat_n(1.0, rank));
    if !roi.is_empty() {
        if roi.len() != 2 * named.len() {
            return Err(format!("roi has {} values for {} axes", roi.len(), named.len()));
        }
        for (k, &a) in named.iter().enumerate() {
            roi_full[a] = roi[k];
            roi_full[rank + a] = roi[named.len() + k];
        }
    }
    let crop = p.coord == CoordTransform::TfCropAndResize;
    match (scales.take(), sizes) {
        (_, Some(sizes)) => {
            if sizes.len() != named.len() {
                return Err(format!("sizes has {} values for {} axes", sizes.len(), named.len()));
            }
            let policy = n.string("keep_aspect_ratio_policy").unwrap_or_else(|| "stretch".into());
            let ratio = |k: usize| sizes[k] as f64 / dims[named[k]] as f64;
            let common = match policy.as_str() {
                "stretch" => None,
                "not_larger" => Some((0..named.len()).map(ratio).fold(f64::INFINITY, f64::min)),
                "not_smaller" => Some((0..named.len()).map(ratio).fold(0.0, f64::max)),
                other => return Err(format!("keep_aspect_ratio_policy {other:?} is not supported")),
            };
            for (k, &a) in named.iter().enumerate() {
                match common {
                    None => {
                        out[a] = usize::try_from(sizes[k]).map_err(|_| format!("negative size {}", sizes[k]))?;
                        scale[a] = (out[a] as f64 / dims[a] as f64) as f32;
                    }
                    Some(r) => {
                        out[a] = (r * dims[a] as f64 + 0.5).floor() as usize;
                        scale[a] = r as f32;
                    }
                }
            }
        }
        (Some(s), None) => {
            if s.len() != named.len() {
                return Err(format!("scales has {} values for {} axes", s.len(), named.len()));
            }
            for (k, &a) in named.iter().enumerate() {
                if !(s[k].is_finite() && s[k] > 0.0) {
                    return Err(format!("scale {} must be positive", s[k]));
                }
                scale[a] = s[k];
                let extent = if crop { (roi_full[rank + a] - roi_full[a]) as f64 } else { 1.0 };
                out[a] = (dims[a] as f64 * extent * s[k] as f64).floor() as usize;
            }
        }
        (None, None) => return Err("neither scales nor sizes is given".into()),
    }
    // jetrt resizes the last two axes; the others must stay as they are.
    for a in 0..rank.saturating_sub(2) {
        let untouched = out[a] == dims[a] && scale[a] == 1.0 && (!crop || (roi_full[a] == 0.0 && roi_full[rank + a] == 1.0));
        if !untouched {
            return Err(format!("resizing axis {a} of {dims:?} is not supported (only the last two axes)"));
        }
    }
    if out == dims && scale.iter().all(|&s| s == 1.0) && !crop {
        return Ok(vec![x]);
    }
    // Rank 1: resize as [1, len].
    let (x2, r) = if rank == 1 { (cx.reshape(n.temp("as_2d"), x, vec![1, dims[0]]), 2) } else { (x, rank) };
    let pick = |v: &[f32], a: usize| {
        if rank == 1 {
            if a == 0 {
                1.0
            } else {
                v[0]
            }
        } else {
            v[r - 2 + a]
        }
    };
    let op = Op::Resize(Resize {
        params: p,
        scales: [pick(&scale, 0), pick(&scale, 1)],
        roi: if rank == 1 {
            [0.0, roi_full[0], 1.0, roi_full[1]]
        } else {
            [roi_full[r - 2], roi_full[r - 1], roi_full[2 * r - 2], roi_full[2 * r - 1]]
        },
        out: if rank == 1 { [1, out[0]] } else { [out[r - 2], out[r - 1]] },
    });
    if rank == 1 {
        let y = cx.node(n.temp("resize"), op, vec![x2])?;
        return Ok(vec![cx.reshape(n.name.clone(), y, out)]);
    }
    Ok(vec![cx.node(n.name.clone(), op, vec![x2])?])
}
