//! Calibration data for `jetc convert --calib DIR`: a folder of `.npy`
//! files (`INPUT.K.npy`) or of images (jpg/png) preprocessed as asked.

use crate::npy;
use crate::sanitize_name;
use anyhow::{bail, Context, Result};
use jetrt::DType;
use jetrt_converter::tensor::{Data, Tensor};
use jetrt_converter::IoInfo;
use std::path::{Path, PathBuf};

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

/// Loads the calibration samples in `dir` for a model with these inputs:
/// per sample, one tensor per input. At most `limit` samples.
pub fn load(dir: &Path, inputs: &[IoInfo], prep: &ImagePrep, limit: usize) -> Result<Vec<Vec<Tensor>>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("--calib {}: cannot read the folder", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let npys = files.iter().filter(|p| p.extension().is_some_and(|e| e == "npy")).count();
    let images: Vec<&PathBuf> = files.iter().filter(|p| is_image(p)).collect();
    if npys > 0 {
        load_npy(dir, inputs, limit)
    } else if !images.is_empty() {
        load_images(&images, inputs, prep, limit)
    } else {
        bail!("--calib {}: no .npy files (INPUT.K.npy) and no images (.jpg, .png) in the folder", dir.display())
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
        bail!("{flag} {}: sample {k} lacks {}", dir.display(), missing.join(", "));
    }
    Ok(Some(paths))
}

/// Reads sample file `path` for input `name`, which must hold `dtype` and
/// `shape`.
pub fn read_sample(path: &Path, name: &str, dtype: DType, shape: &[usize]) -> Result<npy::Array> {
    let a = npy::read(path)?;
    if a.dtype != dtype || a.shape != shape {
        bail!("{}: holds {} {:?}, but input {name:?} is {} {shape:?}", path.display(), a.dtype.numpy_name(), a.shape, dtype.numpy_name());
    }
    Ok(a)
}

fn load_npy(dir: &Path, inputs: &[IoInfo], limit: usize) -> Result<Vec<Vec<Tensor>>> {
    let mut samples = Vec::new();
    let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
    for k in 0..limit {
        let Some(paths) = sample_paths("--calib", dir, &names, k)? else { break };
        let mut sample = Vec::new();
        for (input, path) in inputs.iter().zip(&paths) {
            let a = read_sample(path, &input.name, input.dtype, &input.shape)?;
            let data = Data::from_le_bytes(a.dtype, &a.data).with_context(|| format!("{}: bad data", path.display()))?;
            sample.push(Tensor::new(a.shape, data));
        }
        samples.push(sample);
    }
    if samples.is_empty() {
        let want: Vec<String> = inputs.iter().map(|i| format!("{}.0.npy", sanitize_name(&i.name))).collect();
        bail!("--calib {}: found .npy files, but none named for the model's inputs (expected {})", dir.display(), want.join(", "));
    }
    Ok(samples)
}

fn load_images(images: &[&PathBuf], inputs: &[IoInfo], prep: &ImagePrep, limit: usize) -> Result<Vec<Vec<Tensor>>> {
    let [input] = inputs else {
        bail!("image calibration needs a model with one input; this one has {} (use .npy files instead)", inputs.len());
    };
    if input.dtype != DType::F32 || input.shape.len() != 4 {
        bail!("image calibration needs a float32 4-D input; {:?} is {} {:?}", input.name, input.dtype.numpy_name(), input.shape);
    }
    let d = &input.shape;
    let (batch, c, h, w) = if prep.nhwc { (d[0], d[3], d[1], d[2]) } else { (d[0], d[1], d[2], d[3]) };
    if c != 3 && c != 1 {
        bail!("input {:?} has {c} channels; images give 1 (gray) or 3", input.name);
    }
    let [rh, rw] = prep.resize.unwrap_or([h, w]);
    if [rh, rw] != [h, w] {
        bail!("--resize {rh},{rw} does not match the input's {h}×{w} (set it with --input-shape)");
    }
    let mut samples = Vec::new();
    for chunk in images.chunks(batch.max(1)).take(limit) {
        if chunk.len() < batch {
            break;
        }
        let mut v = vec![0.0f32; batch * c * h * w];
        for (b, path) in chunk.iter().enumerate() {
            let img = image::open(path).with_context(|| format!("cannot decode {}", path.display()))?.to_rgb8();
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
        bail!("fewer images than the input's batch of {batch}");
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
                        bail!("input {:?} is {}: give calibration data with --calib", i.name, i.dtype.numpy_name());
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
        .with_context(|| format!("{what} {arg:?}: expected numbers like 0.485,0.456,0.406"))?;
    match v[..] {
        [a] => Ok([a; 3]),
        [a, b, c] => Ok([a, b, c]),
        _ => bail!("{what} {arg:?}: give one or three numbers"),
    }
}
