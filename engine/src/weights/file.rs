//! Named f32 tensors in a safetensors file: what checkpoints, the domain network and the
//! reference statistics are stored as.

use crate::error::{Error, Result, write_atomic};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use std::collections::HashMap;
use std::path::Path;

/// Named f32 tensors `(name, shape, values)`.
pub type HostTensors = Vec<(String, Vec<usize>, Vec<f32>)>;

/// Writes f32 tensors and string metadata as one safetensors file (temp file + rename).
pub fn write_tensors(path: &Path, tensors: &[(String, Vec<usize>, Vec<f32>)], meta: HashMap<String, String>) -> Result<()> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> =
        tensors.iter().map(|(k, s, d)| (k.clone(), s.clone(), d.iter().flat_map(|x| x.to_le_bytes()).collect())).collect();
    let mut views = Vec::with_capacity(bytes.len());
    for (k, s, b) in &bytes {
        let view = TensorView::new(Dtype::F32, s.clone(), b).map_err(|e| Error::data(path, format!("tensor `{k}`: {e}")))?;
        views.push((k.clone(), view));
    }
    let out = safetensors::serialize(views, Some(meta)).map_err(|e| Error::data(path, format!("cannot serialise tensors: {e}")))?;
    write_atomic(path, &out)
}

/// Reads a safetensors file of f32 tensors: its metadata and its tensors.
pub fn read_tensors(path: &Path) -> Result<(HashMap<String, String>, HostTensors)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bad = |m: String| Error::data(path, m);
    let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| bad(format!("not a safetensors file: {e}")))?;
    let info = meta.metadata().clone().unwrap_or_default();
    let st = SafeTensors::deserialize(&bytes).map_err(|e| bad(format!("corrupt safetensors: {e}")))?;
    let mut tensors = Vec::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(bad(format!("tensor `{name}` is {:?}, expected F32", view.dtype())));
        }
        let data = view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        tensors.push((name, view.shape().to_vec(), data));
    }
    Ok((info, tensors))
}
