//! Arrays as `.npy` files (numpy's format): feature vectors, so that features made elsewhere can
//! be scored by ltlab and ltlab's checked elsewhere, class labels, and a network's inputs and
//! outputs (`ltlab model forward`).

use crate::error::{Error, Result, write_atomic};
use crate::geometry::Features;
use npyz::{DType, Order, WriterBuilder};
use std::path::Path;

/// How deep numpy's own headers nest: `{'shape': (…)}`. The header parser's time grows
/// exponentially with nesting (found by fuzzing: 20 `[` took over 10 s), so deeper headers are
/// refused before it runs.
const MAX_HEADER_NESTING: usize = 3;

/// Refuses a header nested deeper than numpy writes, from the raw bytes.
fn check_header_nesting(path: &Path, f: &mut std::fs::File) -> Result<()> {
    use std::io::{Read, Seek};
    let mut start = [0u8; 12];
    let got = f.read(&mut start).map_err(|e| Error::io(path, e))?;
    f.rewind().map_err(|e| Error::io(path, e))?;
    if got < 10 || &start[..6] != b"\x93NUMPY" {
        return Ok(()); // not a .npy file: the parser says so
    }
    let (len, at) = match start[6] {
        1 => (u16::from_le_bytes([start[8], start[9]]) as u64, 10),
        _ if got == 12 => (u32::from_le_bytes([start[8], start[9], start[10], start[11]]) as u64, 12),
        _ => return Ok(()),
    };
    let mut header = Vec::new();
    f.by_ref().take(at + len.min(1 << 20)).read_to_end(&mut header).map_err(|e| Error::io(path, e))?;
    f.rewind().map_err(|e| Error::io(path, e))?;
    let (mut depth, mut deepest, mut quote) = (0usize, 0usize, None);
    for &b in header.get(at as usize..).unwrap_or_default() {
        match (quote, b) {
            (Some(q), _) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'\'' | b'"') => quote = Some(b),
            (None, b'(' | b'[' | b'{') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (None, b')' | b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if deepest > MAX_HEADER_NESTING {
        return Err(Error::data(path, format!("not a .npy file: its header nests {deepest} deep (numpy writes a flat dict)")));
    }
    Ok(())
}

/// Opens a `.npy` file whose header's shape fits in the file: the values are read only after
/// that, so a header that claims more than the file holds allocates nothing.
fn open(path: &Path) -> Result<npyz::NpyFile<std::io::BufReader<std::fs::File>>> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    check_header_nesting(path, &mut f)?;
    let file_len = f.metadata().map_err(|e| Error::io(path, e))?.len();
    let npy = npyz::NpyFile::new(std::io::BufReader::new(f)).map_err(|e| Error::data(path, format!("not a .npy file: {e}")))?;
    let item = match npy.dtype() {
        DType::Plain(t) => t.num_bytes().unwrap_or(0) as u64,
        _ => 0,
    };
    let claimed = npy.shape().iter().try_fold(item, |acc, &d| acc.checked_mul(d));
    if claimed.is_none_or(|bytes| bytes > file_len) {
        return Err(Error::data(path, format!("header claims a {:?} array, more than the file's {file_len} bytes hold", npy.shape())));
    }
    Ok(npy)
}

/// A float32 or float64 array of any shape in C order, as float32: (shape, values). Every value
/// finite.
pub fn read_array(path: &Path) -> Result<(Vec<usize>, Vec<f32>)> {
    let npy = open(path)?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    if npy.order() != Order::C {
        return Err(Error::data(path, "array is in Fortran order; save it with numpy's default (C) order"));
    }
    let dtype = match npy.dtype() {
        DType::Plain(t) => t.to_string(),
        other => return Err(Error::data(path, format!("expected float32 or float64 values, found {other:?}"))),
    };
    let data: Vec<f32> = match dtype.as_str() {
        "<f4" => npy.into_vec::<f32>().map_err(|e| Error::data(path, format!("truncated data: {e}")))?,
        "<f8" => npy.into_vec::<f64>().map_err(|e| Error::data(path, format!("truncated data: {e}")))?.into_iter().map(|v| v as f32).collect(),
        other => return Err(Error::data(path, format!("expected float32 or float64 values (<f4, <f8), found {other}"))),
    };
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        return Err(Error::data(path, format!("value {} (at flat index {i}) is not finite", data[i])));
    }
    Ok((shape, data))
}

/// An N × D array of float32 or float64 in C order.
pub fn read_features(path: &Path) -> Result<Features> {
    let (shape, data) = read_array(path)?;
    if shape.len() != 2 || shape[0] == 0 || shape[1] == 0 {
        return Err(Error::data(path, format!("expected a 2-D array (vectors × dimensions), found shape {shape:?}")));
    }
    Features::new(shape[0], shape[1], data).map_err(|e| Error::data(path, e.to_string()))
}

/// A 1-D array of non-negative integer class labels.
pub fn read_labels(path: &Path) -> Result<Vec<usize>> {
    let npy = open(path)?;
    if npy.shape().len() != 1 {
        return Err(Error::data(path, format!("expected a 1-D array of class labels, found shape {:?}", npy.shape())));
    }
    let bad = |e: std::io::Error| Error::data(path, format!("expected integer class labels: {e}"));
    let values: Vec<i64> = match npy.dtype() {
        DType::Plain(t) if t.to_string() == "<i8" => npy.into_vec::<i64>().map_err(bad)?,
        DType::Plain(t) if t.to_string() == "<i4" => npy.into_vec::<i32>().map_err(bad)?.into_iter().map(i64::from).collect(),
        other => return Err(Error::data(path, format!("expected int32 or int64 class labels, found {other:?}"))),
    };
    values.into_iter().map(|v| usize::try_from(v).map_err(|_| Error::data(path, format!("class label {v} is negative")))).collect()
}

/// Writes `f` as a float32 N × D `.npy` file (temp file + rename).
pub fn write_features(path: &Path, f: &Features) -> Result<()> {
    write_array(path, &[f.n, f.d], &f.data)
}

/// Writes a float32 array of any shape as a `.npy` file (temp file + rename).
pub fn write_array(path: &Path, shape: &[usize], values: &[f32]) -> Result<()> {
    let mut buf = Vec::new();
    {
        let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
        let mut w = npyz::WriteOptions::new().default_dtype().shape(&shape).writer(&mut buf).begin_nd().map_err(|e| Error::io(path, e))?;
        w.extend(values.iter().copied()).map_err(|e| Error::io(path, e))?;
        w.finish().map_err(|e| Error::io(path, e))?;
    }
    write_atomic(path, &buf)
}

/// Writes class labels as an int64 `.npy` file.
pub fn write_labels(path: &Path, labels: &[usize]) -> Result<()> {
    let mut buf = Vec::new();
    {
        let mut w = npyz::WriteOptions::new().default_dtype().shape(&[labels.len() as u64]).writer(&mut buf).begin_nd().map_err(|e| Error::io(path, e))?;
        w.extend(labels.iter().map(|&y| y as i64)).map_err(|e| Error::io(path, e))?;
        w.finish().map_err(|e| Error::io(path, e))?;
    }
    write_atomic(path, &buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version-1.0 .npy file written by hand (magic, header length, dict, padding, data).
    fn npy(descr: &str, shape: &str, fortran: bool, data: &[u8]) -> Vec<u8> {
        let mut header = format!("{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}", if fortran { "True" } else { "False" });
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend((header.len() as u16).to_le_bytes());
        out.extend(header.as_bytes());
        out.extend(data);
        out
    }

    #[test]
    fn reads_numpy_arrays_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        let vals: Vec<u8> = [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(&p, npy("<f8", "(3, 2)", false, &vals)).unwrap();
        let f = read_features(&p).unwrap();
        assert_eq!((f.n, f.d, f.data.clone()), (3, 2, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
        let q = dir.path().join("b.npy");
        write_features(&q, &f).unwrap();
        assert_eq!(read_features(&q).unwrap(), f);
        write_labels(&q, &[0, 3, 1]).unwrap();
        assert_eq!(read_labels(&q).unwrap(), vec![0, 3, 1]);
    }

    #[test]
    fn bad_feature_files_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.npy");
        let check = |bytes: Vec<u8>, want: &str| {
            std::fs::write(&p, bytes).unwrap();
            let e = read_features(&p).unwrap_err().to_string();
            assert!(e.contains("f.npy") && e.contains(want), "{e}");
        };
        check(b"hello".to_vec(), "not a .npy file");
        let f4: Vec<u8> = [1.0f32; 6].iter().flat_map(|v| v.to_le_bytes()).collect();
        check(npy("<f4", "(6,)", false, &f4), "2-D");
        check(npy("<f4", "(3, 2)", true, &f4), "Fortran");
        check(npy("<i8", "(3, 1)", false, &[0u8; 24]), "float32 or float64");
        check(npy("<f4", "(4, 2)", false, &f4), "truncated");
        let nan: Vec<u8> = [1.0f32, f32::NAN].iter().flat_map(|v| v.to_le_bytes()).collect();
        check(npy("<f4", "(1, 2)", false, &nan), "not finite");
        let e = read_features(&dir.path().join("missing.npy")).unwrap_err().to_string();
        assert!(e.contains("missing.npy"), "{e}");
    }

    /// A header that claims more values than the file holds is refused before anything is read.
    #[test]
    fn a_header_claiming_more_than_the_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("huge.npy");
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000, 1000000), }";
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        let pad = 64 - (10 + header.len() + 1) % 64;
        let text = format!("{header}{}\n", " ".repeat(pad));
        bytes.extend((text.len() as u16).to_le_bytes());
        bytes.extend(text.as_bytes());
        bytes.extend([0u8; 16]);
        std::fs::write(&p, &bytes).unwrap();
        let e = read_features(&p).unwrap_err().to_string();
        assert!(e.contains("huge.npy") && e.contains("more than the file"), "{e}");
    }

    /// Fuzzing found a 154-byte file whose header opens 20 lists: the parser took over 10 s on
    /// it. It is refused at once now, naming the file.
    #[test]
    fn a_deeply_nested_header_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nested.npy");
        let bytes = b"\x93NUMPY\x01\x00v\x00[[[[[[[[[[[[[[[[[[[[{'descr': '<i8', 'fortsaFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFn_ordershape': (4,\x01\x00\x00(                      \x00\x00\x00";
        std::fs::write(&p, bytes).unwrap();
        let started = std::time::Instant::now();
        for e in [read_features(&p).unwrap_err(), read_labels(&p).unwrap_err()] {
            let e = e.to_string();
            assert!(e.contains("nested.npy") && e.contains("nests 22 deep"), "{e}");
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        // numpy's own headers still open.
        let q = dir.path().join("ok.npy");
        write_features(&q, &Features::new(1, 2, vec![1.0, 2.0]).unwrap()).unwrap();
        assert_eq!(read_features(&q).unwrap().d, 2);
    }
}
