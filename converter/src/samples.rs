//! Sample data for `jetc convert --calib DIR` and `--drift-ref DIR` (and
//! `jetrt run --input-dir`): a folder of `.npy` files (`INPUT.K.npy`) or of
//! images (jpg/png) preprocessed as asked.

use crate::npy;
use crate::tensor::{Data, Tensor};
use crate::{ConvertError, IoInfo, Result};
use jetrt::DType;
use std::path::{Path, PathBuf};

/// An error about `what` (an option and its value, a file).
fn bad(what: impl std::fmt::Display, reason: impl std::fmt::Display) -> ConvertError {
    ConvertError::Data { what: what.to_string(), reason: reason.to_string() }
}

/// A name as a file name: every character outside `[A-Za-z0-9_.-]`
/// becomes `_` (so `gpu_0/softmax_1` → `gpu_0_softmax_1`).
pub fn sanitize_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') { c } else { '_' }).collect()
}

/// How images become an input tensor.
#[derive(Debug, Clone)]
pub struct ImagePrep {
    /// `[height, width]`; default: the input's.
    pub resize: Option<[usize; 2]>,
    /// Per channel, applied as `(pixel / 255 − mean) / std`.
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// `nchw` or `nhwc`.
    pub nhwc: bool,
    /// Channel order BGR (OpenCV's) instead of RGB.
    pub bgr: bool,
}

impl Default for ImagePrep {
    fn default() -> Self {
        ImagePrep { resize: None, mean: [0.0; 3], std: [1.0; 3], nhwc: false, bgr: false }
    }
}

fn is_image(p: &Path) -> bool {
    matches!(p.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase()).as_deref(), Some("jpg" | "jpeg" | "png"))
}

/// Loads the samples in `dir` for a model with these inputs: per sample,
/// one tensor per input. At most `limit` samples. `flag` names the option
/// in messages (`--calib`).
pub fn load(flag: &str, dir: &Path, inputs: &[IoInfo], prep: &ImagePrep, limit: usize) -> Result<Vec<Vec<Tensor>>> {
    let what = format!("{flag} {}", dir.display());
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| bad(&what, format!("cannot read the folder: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let npys = files.iter().filter(|p| p.extension().is_some_and(|e| e == "npy")).count();
    let images: Vec<&PathBuf> = files.iter().filter(|p| is_image(p)).collect();
    if npys > 0 {
        load_npy(flag, dir, inputs, limit)
    } else if !images.is_empty() {
        load_images(&what, &images, inputs, prep, limit)
    } else {
        Err(bad(&what, "no .npy files (INPUT.K.npy) and no images (.jpg, .png) in the folder"))
    }
}

/// The files of sample `k` in `dir` (`INPUT.k.npy` for each input name),
/// `None` when there is none of them; an error naming the missing ones when
/// only some are there. `flag` names the option in messages.
pub fn sample_paths(flag: &str, dir: &Path, names: &[&str], k: usize) -> Result<Option<Vec<PathBuf>>> {
    let paths: Vec<PathBuf> = names.iter().map(|n| dir.join(format!("{}.{k}.npy", sanitize_name(n)))).collect();
    let present = paths.iter().filter(|p| p.exists()).count();
    if present == 0 {
        return Ok(None);
    }
    if present < paths.len() {
        let missing: Vec<String> = paths.iter().filter(|p| !p.exists()).map(|p| p.display().to_string()).collect();
        return Err(bad(format!("{flag} {}", dir.display()), format!("sample {k} lacks {}", missing.join(", "))));
    }
    Ok(Some(paths))
}

/// Reads sample file `path` for input `name`, which must hold `dtype` and
/// `shape`.
pub fn read_sample(path: &Path, name: &str, dtype: DType, shape: &[usize]) -> Result<npy::Array> {
    let a = npy::read(path)?;
    if a.dtype != dtype || a.shape != shape {
        return Err(bad(
            path.display(),
            format!("holds {} {:?}, but input {name:?} is {} {shape:?}", a.dtype.numpy_name(), a.shape, dtype.numpy_name()),
        ));
    }
    Ok(a)
}

fn load_npy(flag: &str, dir: &Path, inputs: &[IoInfo], limit: usize) -> Result<Vec<Vec<Tensor>>> {
    let mut samples = Vec::new();
    let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
    for k in 0..limit {
        let Some(paths) = sample_paths(flag, dir, &names, k)? else { break };
        let mut sample = Vec::new();
        for (input, path) in inputs.iter().zip(&paths) {
            let a = read_sample(path, &input.name, input.dtype, &input.shape)?;
            let data = Data::from_le_bytes(a.dtype, &a.data).ok_or_else(|| bad(path.display(), "bad data"))?;
            sample.push(Tensor::new(a.shape, data));
        }
        samples.push(sample);
    }
    if samples.is_empty() {
        let want: Vec<String> = inputs.iter().map(|i| format!("{}.0.npy", sanitize_name(&i.name))).collect();
        return Err(bad(
            format!("{flag} {}", dir.display()),
            format!("found .npy files, but none named for the model's inputs (expected {})", want.join(", ")),
        ));
    }
    Ok(samples)
}

fn load_images(what: &str, images: &[&PathBuf], inputs: &[IoInfo], prep: &ImagePrep, limit: usize) -> Result<Vec<Vec<Tensor>>> {
    let [input] = inputs else {
        return Err(bad(what, format!("images need a model with one input; this one has {} (use .npy files instead)", inputs.len())));
    };
    if input.dtype != DType::F32 || input.shape.len() != 4 {
        return Err(bad(
            what,
            format!("images need a float32 4-D input; {:?} is {} {:?}", input.name, input.dtype.numpy_name(), input.shape),
        ));
    }
    let d = &input.shape;
    let (batch, c, h, w) = if prep.nhwc { (d[0], d[3], d[1], d[2]) } else { (d[0], d[1], d[2], d[3]) };
    if c != 3 && c != 1 {
        return Err(bad(what, format!("input {:?} has {c} channels; images give 1 (gray) or 3", input.name)));
    }
    let [rh, rw] = prep.resize.unwrap_or([h, w]);
    if [rh, rw] != [h, w] {
        return Err(bad(format!("--resize {rh},{rw}"), format!("does not match the input's {h}×{w} (set it with --input-shape)")));
    }
    let mut samples = Vec::new();
    for chunk in images.chunks(batch.max(1)).take(limit) {
        if chunk.len() < batch {
            break;
        }
        let mut v = vec![0.0f32; batch * c * h * w];
        for (b, path) in chunk.iter().enumerate() {
            let img = image::open(path).map_err(|e| bad(path.display(), format!("cannot decode the image: {e}")))?.to_rgb8();
            let img = image::imageops::resize(&img, w as u32, h as u32, image::imageops::FilterType::Triangle);
            for y in 0..h {
                for x in 0..w {
                    let px = img.get_pixel(x as u32, y as u32).0;
                    for ch in 0..c {
                        let src = if c == 1 {
                            (px[0] as f32 * 0.299 + px[1] as f32 * 0.587 + px[2] as f32 * 0.114).round()
                        } else {
                            px[if prep.bgr { 2 - ch } else { ch }] as f32
                        };
                        let val = (src / 255.0 - prep.mean[ch]) / prep.std[ch];
                        let at = if prep.nhwc { ((b * h + y) * w + x) * c + ch } else { ((b * c + ch) * h + y) * w + x };
                        v[at] = val;
                    }
                }
            }
        }
        samples.push(vec![Tensor::f32(input.shape.clone(), v)]);
    }
    if samples.is_empty() {
        return Err(bad(what, format!("fewer images than the input's batch of {batch}")));
    }
    Ok(samples)
}

/// Deterministic pseudo-random samples (uniform in [0, 1)) when no data is
/// given: enough to report how far int4 weights or pruning move the
/// outputs, not to calibrate int8.
pub fn random(inputs: &[IoInfo], count: usize) -> Result<Vec<Vec<Tensor>>> {
    let mut state = 0x9e3779b97f4a7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    (0..count)
        .map(|_| {
            inputs
                .iter()
                .map(|i| {
                    if i.dtype != DType::F32 {
                        return Err(bad(
                            format!("input {:?}", i.name),
                            format!("is {}: give calibration data with --calib", i.dtype.numpy_name()),
                        ));
                    }
                    let n: usize = i.shape.iter().product();
                    Ok(Tensor::f32(i.shape.clone(), (0..n).map(|_| next()).collect()))
                })
                .collect()
        })
        .collect()
}

/// Parses three comma-separated floats (one value repeats).
pub fn parse_triple(arg: &str, what: &str) -> Result<[f32; 3]> {
    let v: Vec<f32> = arg
        .split(',')
        .map(|s| s.trim().parse::<f32>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad(format!("{what} {arg:?}"), "expected numbers like 0.485,0.456,0.406"))?;
    match v[..] {
        [a] => Ok([a; 3]),
        [a, b, c] => Ok([a, b, c]),
        _ => Err(bad(format!("{what} {arg:?}"), "give one or three numbers")),
    }
}
