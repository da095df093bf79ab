//! `TensorProto` → [`Tensor`], including external data files.

use super::pb::{tensor_proto::DataLocation, tensor_proto::DataType, TensorProto};
use crate::error::{ConvertError, Result};
use crate::tensor::{Data, Tensor};
use jetrt::DType;
use std::path::{Component, Path, PathBuf};

/// The jetrt dtype of an ONNX element type, if jetrt has one.
pub(crate) fn dtype_of(code: i32) -> Option<DType> {
    Some(match DataType::try_from(code).ok()? {
        DataType::Float => DType::F32,
        DataType::Double => DType::F64,
        DataType::Float16 => DType::F16,
        DataType::Bfloat16 => DType::BF16,
        DataType::Int64 => DType::I64,
        DataType::Int32 => DType::I32,
        DataType::Int16 => DType::I16,
        DataType::Int8 => DType::I8,
        DataType::Uint8 => DType::U8,
        DataType::Uint16 => DType::U16,
        DataType::Uint32 => DType::U32,
        DataType::Uint64 => DType::U64,
        DataType::Bool => DType::Bool,
        _ => return None,
    })
}

/// A readable name for an ONNX element type code.
pub(crate) fn type_name(code: i32) -> String {
    match DataType::try_from(code) {
        Ok(t) => t.as_str_name().to_string(),
        Err(_) => format!("unknown type {code}"),
    }
}

/// Resolves the path of an external data file, refusing any path that could
/// leave the model's folder: absolute paths, `..` components, and symbolic
/// links that point outside.
pub(crate) fn external_path(model_dir: &Path, location: &str) -> std::result::Result<PathBuf, String> {
    let rel = Path::new(location);
    if location.is_empty() {
        return Err("empty location".into());
    }
    if rel.is_absolute() || location.starts_with('/') || location.starts_with('\\') || location.contains(':') {
        return Err("absolute paths are refused: external data must lie in the model's folder".into());
    }
    if rel.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) || location.split(['/', '\\']).any(|p| p == "..") {
        return Err("paths with `..` are refused: external data must lie in the model's folder".into());
    }
    let path = model_dir.join(rel);
    let real = path.canonicalize().map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let dir = model_dir.canonicalize().map_err(|e| format!("cannot resolve the model folder {}: {e}", model_dir.display()))?;
    if !real.starts_with(&dir) {
        return Err(format!("resolves to {}, outside the model's folder {} (symbolic link?)", real.display(), dir.display()));
    }
    Ok(real)
}

fn le_chunks<const N: usize, T>(raw: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
    raw.chunks_exact(N)
        .map(|c| {
            let mut b = [0u8; N];
            b.copy_from_slice(c);
            f(b)
        })
        .collect()
}

fn from_raw(dtype: DType, raw: &[u8]) -> Data {
    match dtype {
        DType::F32 => Data::F32(le_chunks(raw, f32::from_le_bytes)),
        DType::F64 => Data::F64(le_chunks(raw, f64::from_le_bytes)),
        DType::I64 => Data::I64(le_chunks(raw, i64::from_le_bytes)),
        DType::I32 => Data::I32(le_chunks(raw, i32::from_le_bytes)),
        DType::I16 => Data::I16(le_chunks(raw, i16::from_le_bytes)),
        DType::I8 => Data::I8(raw.iter().map(|&b| b as i8).collect()),
        DType::U8 => Data::U8(raw.to_vec()),
        DType::U16 => Data::U16(le_chunks(raw, u16::from_le_bytes)),
        DType::U32 => Data::U32(le_chunks(raw, u32::from_le_bytes)),
        DType::U64 => Data::U64(le_chunks(raw, u64::from_le_bytes)),
        DType::Bool => Data::Bool(raw.iter().map(|&b| b != 0).collect()),
        DType::F16 => Data::F16(le_chunks(raw, u16::from_le_bytes)),
        DType::BF16 => Data::BF16(le_chunks(raw, u16::from_le_bytes)),
    }
}

/// Reads `length` bytes at `offset` of an external data file.
fn read_external(model_dir: &Path, t: &TensorProto, name: &str) -> Result<Vec<u8>> {
    let mut location = None;
    let mut offset = 0u64;
    let mut length = None;
    for kv in &t.external_data {
        let v = kv.value.clone().unwrap_or_default();
        match kv.key.as_deref().unwrap_or("") {
            "location" => location = Some(v),
            "offset" => {
                offset = v.parse().map_err(|_| ConvertError::ExternalData {
                    tensor: name.into(),
                    location: String::new(),
                    reason: format!("offset {v:?} is not a number"),
                })?
            }
            "length" => {
                length = Some(v.parse::<u64>().map_err(|_| ConvertError::ExternalData {
                    tensor: name.into(),
                    location: String::new(),
                    reason: format!("length {v:?} is not a number"),
                })?)
            }
            _ => {}
        }
    }
    let location = location.ok_or_else(|| ConvertError::ExternalData {
        tensor: name.into(),
        location: String::new(),
        reason: "no `location` key".into(),
    })?;
    let bad = |reason: String| ConvertError::ExternalData { tensor: name.into(), location: location.clone(), reason };
    let path = external_path(model_dir, &location).map_err(bad)?;
    let file = std::fs::File::open(&path).map_err(|e| bad(format!("cannot open {}: {e}", path.display())))?;
    let file_len = file.metadata().map_err(|e| bad(e.to_string()))?.len();
    let length = length.unwrap_or(file_len.saturating_sub(offset));
    let end = offset
        .checked_add(length)
        .filter(|&e| e <= file_len)
        .ok_or_else(|| bad(format!("bytes {offset}..{offset}+{length} lie past the end of the file ({file_len} bytes)")))?;
    use std::io::{Read, Seek, SeekFrom};
    let mut f = file;
    f.seek(SeekFrom::Start(offset)).map_err(|e| bad(e.to_string()))?;
    let mut buf = vec![0u8; (end - offset) as usize];
    f.read_exact(&mut buf).map_err(|e| bad(e.to_string()))?;
    Ok(buf)
}

/// Loads a tensor's contents, from the proto or from its external file.
pub(crate) fn load_tensor(t: &TensorProto, model_dir: &Path) -> Result<Tensor> {
    let name = t.name.clone().unwrap_or_default();
    let bad = |reason: String| ConvertError::BadTensor { tensor: name.clone(), reason };
    let code = t.data_type.unwrap_or(0);
    let dtype = dtype_of(code).ok_or_else(|| bad(format!("element type {} is not supported", type_name(code))))?;
    let mut shape = Vec::with_capacity(t.dims.len());
    for &d in &t.dims {
        shape.push(usize::try_from(d).map_err(|_| bad(format!("negative dimension {d} in {:?}", t.dims)))?);
    }
    let numel = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(|| bad(format!("shape {shape:?} overflows")))?;
    if t.segment.is_some() {
        return Err(bad("segmented tensors are not supported".into()));
    }
    let external = t.data_location == Some(DataLocation::External as i32);
    let data = if external {
        from_raw(dtype, &read_external(model_dir, t, &name)?)
    } else if let Some(raw) = &t.raw_data {
        if raw.len() != numel * dtype.size() {
            return Err(bad(format!(
                "raw_data has {} bytes, shape {shape:?} of {} needs {}",
                raw.len(),
                dtype.numpy_name(),
                numel * dtype.size()
            )));
        }
        from_raw(dtype, raw)
    } else {
        match dtype {
            DType::F32 => Data::F32(t.float_data.clone()),
            DType::F64 => Data::F64(t.double_data.clone()),
            DType::I64 => Data::I64(t.int64_data.clone()),
            DType::I32 => Data::I32(t.int32_data.clone()),
            DType::I16 => Data::I16(t.int32_data.iter().map(|&v| v as i16).collect()),
            DType::I8 => Data::I8(t.int32_data.iter().map(|&v| v as i8).collect()),
            DType::U8 => Data::U8(t.int32_data.iter().map(|&v| v as u8).collect()),
            DType::U16 => Data::U16(t.int32_data.iter().map(|&v| v as u16).collect()),
            DType::Bool => Data::Bool(t.int32_data.iter().map(|&v| v != 0).collect()),
            DType::F16 => Data::F16(t.int32_data.iter().map(|&v| v as u16).collect()),
            DType::BF16 => Data::BF16(t.int32_data.iter().map(|&v| v as u16).collect()),
            DType::U32 => Data::U32(t.uint64_data.iter().map(|&v| v as u32).collect()),
            DType::U64 => Data::U64(t.uint64_data.clone()),
        }
    };
    if data.len() != numel {
        return Err(bad(format!("holds {} elements, its shape {shape:?} needs {numel}", data.len())));
    }
    Ok(Tensor::new(shape, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_paths_stay_in_the_model_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("w.bin"), b"1234").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/w.bin"), b"1234").unwrap();
        assert!(external_path(dir.path(), "w.bin").is_ok());
        assert!(external_path(dir.path(), "./sub/w.bin").is_ok());
        for bad in ["../w.bin", "sub/../../w.bin", "/etc/hostname", "", "C:/x"] {
            assert!(external_path(dir.path(), bad).is_err(), "{bad} accepted");
        }
        #[cfg(unix)]
        {
            let outside = tempfile::tempdir().unwrap();
            std::fs::write(outside.path().join("secret"), b"x").unwrap();
            std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("link")).unwrap();
            let err = external_path(dir.path(), "link").unwrap_err();
            assert!(err.contains("outside"), "{err}");
        }
    }
}
