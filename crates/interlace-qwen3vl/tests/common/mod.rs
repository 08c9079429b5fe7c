//! Reading the transformers goldens under `fixtures/`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

use safetensors::{Dtype, SafeTensors};

/// Root of the committed fixtures.
pub fn fixtures() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures"))
}

/// One golden case: its JSON description and its tensors.
pub struct Golden {
    pub json: serde_json::Value,
    tensors: HashMap<String, (Dtype, Vec<usize>, Vec<u8>)>,
}

impl Golden {
    /// Loads `fixtures/golden/<group>/<case>.{json,safetensors}`.
    pub fn load(group: &str, case: &str) -> Self {
        let base = fixtures().join("golden").join(group).join(case);
        let json = std::fs::read_to_string(base.with_extension("json")).expect("golden json");
        let bytes = std::fs::read(base.with_extension("safetensors")).expect("golden safetensors");
        let parsed = SafeTensors::deserialize(&bytes).expect("valid golden safetensors");
        let tensors = parsed.iter().map(|(name, view)| (name.to_string(), (view.dtype(), view.shape().to_vec(), view.data().to_vec()))).collect();
        Self { json: serde_json::from_str(&json).expect("golden json parses"), tensors }
    }

    /// Names of all tensors of the golden, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.tensors.keys().cloned().collect();
        names.sort();
        names
    }

    pub fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    pub fn shape(&self, name: &str) -> Vec<usize> {
        self.tensors.get(name).unwrap_or_else(|| panic!("golden tensor {name}")).1.clone()
    }

    pub fn f32(&self, name: &str) -> Vec<f32> {
        let (dtype, _, data) = self.tensors.get(name).unwrap_or_else(|| panic!("golden tensor {name}"));
        assert_eq!(*dtype, Dtype::F32, "{name} should be f32");
        data.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
    }

    pub fn i64(&self, name: &str) -> Vec<i64> {
        let (dtype, _, data) = self.tensors.get(name).unwrap_or_else(|| panic!("golden tensor {name}"));
        assert_eq!(*dtype, Dtype::I64, "{name} should be i64");
        data.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect()
    }

    pub fn u32_list(&self, key: &str) -> Vec<u32> {
        self.json[key].as_array().unwrap_or_else(|| panic!("json key {key}")).iter().map(|v| v.as_u64().unwrap() as u32).collect()
    }

    pub fn grids(&self) -> Vec<[usize; 3]> {
        if !self.has("image_grid_thw") {
            return Vec::new();
        }
        self.i64("image_grid_thw").chunks_exact(3).map(|g| [g[0] as usize, g[1] as usize, g[2] as usize]).collect()
    }
}

/// ‖a − b‖ / ‖b‖.
pub fn relative_error(actual: &[f32], expected: &[f32]) -> f64 {
    assert_eq!(actual.len(), expected.len(), "length mismatch");
    let diff: f64 = actual.iter().zip(expected).map(|(a, b)| ((*a - *b) as f64).powi(2)).sum();
    let norm: f64 = expected.iter().map(|b| (*b as f64).powi(2)).sum();
    (diff / norm.max(1e-30)).sqrt()
}
