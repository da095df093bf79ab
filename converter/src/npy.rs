//! Reading and writing `.npy` arrays (through the `npyz` crate) as jetrt
//! tensors: element type, shape and little-endian bytes. Calibration and
//! reference samples, `--bind` values, and the `jetrt` tool's inputs and
//! outputs are such files.

use crate::{ConvertError, Result};
use jetrt::DType;
use npyz::WriterBuilder;
use std::path::Path;

/// An array read from a `.npy` file.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// Little-endian element bytes, C order.
    pub data: Vec<u8>,
}

impl Array {
    pub fn f32(shape: Vec<usize>, v: &[f32]) -> Self {
        Array { dtype: DType::F32, shape, data: v.iter().flat_map(|x| x.to_le_bytes()).collect() }
    }

    /// The elements as f32 (`None` unless the array is float32).
    pub fn to_f32(&self) -> Option<Vec<f32>> {
        (self.dtype == DType::F32).then(|| self.data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }
}

fn dtype_of(descr: &str) -> Option<DType> {
    // The first character is the byte order, which npyz handles.
    Some(match descr.get(1..)? {
        "f4" => DType::F32,
        "f8" => DType::F64,
        "f2" => DType::F16,
        "i8" => DType::I64,
        "i4" => DType::I32,
        "i2" => DType::I16,
        "i1" => DType::I8,
        "u8" => DType::U64,
        "u4" => DType::U32,
        "u2" => DType::U16,
        "u1" => DType::U8,
        "b1" => DType::Bool,
        _ => return None,
    })
}

/// An error about the array or file `what`.
fn bad(what: &str, reason: impl std::fmt::Display) -> ConvertError {
    ConvertError::Data { what: what.to_string(), reason: reason.to_string() }
}

fn le<T: Copy, const N: usize>(v: Vec<T>, f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
    v.into_iter().flat_map(f).collect()
}

/// Reads a `.npy` file (C order; any byte order).
pub fn read(path: &Path) -> Result<Array> {
    let file = std::fs::File::open(path).map_err(|source| ConvertError::Io { path: path.to_path_buf(), source })?;
    from_reader(std::io::BufReader::new(file), &path.display().to_string())
}

/// Reads `.npy` bytes (a request body); `label` names them in errors.
pub fn from_bytes(bytes: &[u8], label: &str) -> Result<Array> {
    from_reader(bytes, label)
}

/// Reads every array of a `.npz` archive, by name (without `.npy`),
/// refusing, before reading its data, any array whose header declares
/// more than `max_bytes` (a compressed archive can declare far more than
/// it carries).
pub fn npz_from_bytes(bytes: &[u8], max_bytes: usize) -> Result<Vec<(String, Array)>> {
    let mut zip =
        npyz::npz::NpzArchive::new(std::io::Cursor::new(bytes)).map_err(|e| bad("the .npz", format!("not a valid .npz archive: {e}")))?;
    let names: Vec<String> = zip.array_names().map(String::from).collect();
    let mut out = Vec::new();
    for n in names {
        let npy = zip
            .by_name(&n)
            .map_err(|e| bad(&n, format!("cannot read it in the .npz: {e}")))?
            .ok_or_else(|| bad(&n, "vanished from the .npz"))?;
        let declared = npy.shape().iter().try_fold(1u64, |a, &d| a.checked_mul(d)).unwrap_or(u64::MAX).saturating_mul(8);
        if declared > max_bytes as u64 {
            return Err(bad(&n, format!("in the .npz declares shape {:?}, more than the {max_bytes} bytes taken", npy.shape())));
        }
        out.push((n.clone(), from_npy(npy, &n)?));
    }
    Ok(out)
}

fn from_reader<R: std::io::Read>(r: R, label: &str) -> Result<Array> {
    let npy = npyz::NpyFile::new(r).map_err(|e| bad(label, format!("not a valid .npy file: {e}")))?;
    from_npy(npy, label)
}

fn from_npy<R: std::io::Read>(npy: npyz::NpyFile<R>, label: &str) -> Result<Array> {
    if npy.order() == npyz::Order::Fortran {
        return Err(bad(label, "Fortran-ordered arrays are not supported; save it with np.ascontiguousarray(a)"));
    }
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let descr = match npy.dtype() {
        npyz::DType::Plain(ts) => ts.to_string(),
        other => return Err(bad(label, format!("structured element type {} is not supported", other.descr()))),
    };
    let dtype = dtype_of(&descr).ok_or_else(|| bad(label, format!("element type {descr} is not supported")))?;
    let ctx = |e: std::io::Error| bad(label, format!("cannot read the data: {e}"));
    let data = match dtype {
        DType::F32 => le(npy.into_vec::<f32>().map_err(ctx)?, f32::to_le_bytes),
        DType::F64 => le(npy.into_vec::<f64>().map_err(ctx)?, f64::to_le_bytes),
        DType::I64 => le(npy.into_vec::<i64>().map_err(ctx)?, i64::to_le_bytes),
        DType::I32 => le(npy.into_vec::<i32>().map_err(ctx)?, i32::to_le_bytes),
        DType::I16 => le(npy.into_vec::<i16>().map_err(ctx)?, i16::to_le_bytes),
        DType::I8 => le(npy.into_vec::<i8>().map_err(ctx)?, i8::to_le_bytes),
        DType::U64 => le(npy.into_vec::<u64>().map_err(ctx)?, u64::to_le_bytes),
        DType::U32 => le(npy.into_vec::<u32>().map_err(ctx)?, u32::to_le_bytes),
        DType::U16 => le(npy.into_vec::<u16>().map_err(ctx)?, u16::to_le_bytes),
        DType::F16 => le(npy.into_vec::<half::f16>().map_err(ctx)?, half::f16::to_le_bytes),
        DType::U8 => npy.into_vec::<u8>().map_err(ctx)?,
        DType::Bool => npy.into_vec::<bool>().map_err(ctx)?.into_iter().map(u8::from).collect(),
        DType::BF16 => return Err(bad(label, "bfloat16 .npy files are not supported")),
    };
    let expected = shape.iter().product::<usize>() * dtype.size();
    if data.len() != expected {
        return Err(bad(label, format!("holds {} bytes, its shape {shape:?} needs {expected}", data.len())));
    }
    Ok(Array { dtype, shape, data })
}

/// Writes `array` as a `.npy` file.
pub fn write(path: &Path, array: &Array) -> Result<()> {
    let file = std::fs::File::create(path).map_err(|source| ConvertError::Write { path: path.to_path_buf(), source })?;
    let mut w = std::io::BufWriter::new(file);
    use std::io::Write;
    write_to(&mut w, array).and_then(|()| w.flush()).map_err(|source| ConvertError::Write { path: path.to_path_buf(), source })
}

/// `array` as `.npy` bytes.
pub fn to_bytes(array: &Array) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    write_to(&mut out, array).map_err(|e| bad("the array", e))?;
    Ok(out)
}

fn write_to<W: std::io::Write>(mut w: W, array: &Array) -> std::io::Result<()> {
    let shape: Vec<u64> = array.shape.iter().map(|&d| d as u64).collect();
    macro_rules! put {
        ($t:ty, $n:expr) => {{
            let mut out = npyz::WriteOptions::<$t>::new().default_dtype().shape(&shape).writer(&mut w).begin_nd()?;
            for c in array.data.chunks_exact($n) {
                let mut b = [0u8; $n];
                b.copy_from_slice(c);
                out.push(&<$t>::from_le_bytes(b))?;
            }
            out.finish()?;
        }};
    }
    match array.dtype {
        DType::F32 => put!(f32, 4),
        DType::F64 => put!(f64, 8),
        DType::I64 => put!(i64, 8),
        DType::I32 => put!(i32, 4),
        DType::I16 => put!(i16, 2),
        DType::I8 => put!(i8, 1),
        DType::U64 => put!(u64, 8),
        DType::U32 => put!(u32, 4),
        DType::U16 => put!(u16, 2),
        DType::F16 => put!(half::f16, 2),
        DType::U8 => put!(u8, 1),
        DType::Bool => {
            let mut out = npyz::WriteOptions::<bool>::new().default_dtype().shape(&shape).writer(&mut w).begin_nd()?;
            for &b in &array.data {
                out.push(&(b != 0))?;
            }
            out.finish()?;
        }
        other => return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("cannot write {other:?} arrays to .npy"))),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_round_trip() {
        let dir = std::env::temp_dir().join(format!("jetrt-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // float16 reads and writes as its bits.
        let h = Array { dtype: DType::F16, shape: vec![2], data: vec![0x00, 0x3c, 0x00, 0xc0] };
        assert_eq!(from_bytes(&to_bytes(&h).unwrap(), "f16").unwrap(), h);
        let a = Array::f32(vec![2, 3], &[1.0, -2.0, 3.5, 0.0, 1e-8, f32::MAX]);
        let p = dir.join("a.npy");
        write(&p, &a).unwrap();
        assert_eq!(read(&p).unwrap(), a);
        std::fs::write(dir.join("bad.npy"), b"not numpy").unwrap();
        assert_eq!(from_bytes(&to_bytes(&a).unwrap(), "bytes").unwrap(), a);
        assert!(read(&dir.join("bad.npy")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A stored (uncompressed) one-entry zip, written by hand: the npz
    /// reader's input without a zip writer dependency.
    fn zip_one(name: &str, data: &[u8]) -> Vec<u8> {
        let crc = {
            let mut c = !0u32;
            for &b in data {
                c ^= b as u32;
                for _ in 0..8 {
                    c = if c & 1 != 0 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 };
                }
            }
            !c
        };
        let (n, len) = (name.len() as u16, data.len() as u32);
        let mut z = Vec::new();
        let common = |z: &mut Vec<u8>| {
            for v in [20u16, 0, 0, 0, 0] {
                z.extend(v.to_le_bytes());
            }
            z.extend(crc.to_le_bytes());
            z.extend(len.to_le_bytes());
            z.extend(len.to_le_bytes());
            z.extend(n.to_le_bytes());
            z.extend(0u16.to_le_bytes());
        };
        z.extend(0x0403_4b50u32.to_le_bytes());
        common(&mut z);
        z.extend(name.as_bytes());
        z.extend(data);
        let cd = z.len() as u32;
        z.extend(0x0201_4b50u32.to_le_bytes());
        z.extend(20u16.to_le_bytes());
        common(&mut z);
        z.extend([0u8; 6]); // comment length, disk, internal attributes
        z.extend(0u32.to_le_bytes()); // external attributes
        z.extend(0u32.to_le_bytes()); // local header offset
        z.extend(name.as_bytes());
        let cd_len = z.len() as u32 - cd;
        z.extend(0x0605_4b50u32.to_le_bytes());
        z.extend([0u8; 4]);
        z.extend(1u16.to_le_bytes());
        z.extend(1u16.to_le_bytes());
        z.extend(cd_len.to_le_bytes());
        z.extend(cd.to_le_bytes());
        z.extend(0u16.to_le_bytes());
        z
    }

    #[test]
    fn npz_arrays_are_read_and_huge_declared_shapes_refused_before_their_data() {
        let a = Array::f32(vec![1, 2], &[1.0, 2.0]);
        let npz = zip_one("image.npy", &to_bytes(&a).unwrap());
        assert_eq!(npz_from_bytes(&npz, 1024).unwrap(), vec![("image".to_string(), a)]);
        // A header that declares 512 MB and carries none of it.
        let header = b"\x93NUMPY\x01\x00\x76\x00{'descr': '<f4', 'fortran_order': False, 'shape': (4000, 4000, 8), }";
        let mut npy = header.to_vec();
        npy.resize(10 + 0x76 - 1, b' ');
        npy.push(b'\n');
        let e = npz_from_bytes(&zip_one("image.npy", &npy), 1024).unwrap_err().to_string();
        assert!(e.contains("declares shape [4000, 4000, 8]"), "{e}");
        assert!(npz_from_bytes(b"PK not a zip", 1024).is_err());
    }
}
