//! Golden files of `fixtures/golden/train/`, shared by the parity tests.
#![allow(dead_code)] // each test binary uses part of it

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::SafeTensors;

pub fn fixtures() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures"))
}

pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `golden/train/<name>.json` and the tensors of `golden/train/<name>.safetensors`.
pub struct Golden {
    pub json: serde_json::Value,
    tensors: HashMap<String, (Vec<usize>, Vec<u8>, safetensors::Dtype)>,
}

impl Golden {
    pub fn load(name: &str) -> Self {
        let dir = fixtures().join("golden/train");
        let bytes = std::fs::read(dir.join(format!("{name}.safetensors"))).unwrap();
        let parsed = SafeTensors::deserialize(&bytes).unwrap();
        let tensors = parsed.iter().map(|(n, v)| (n.to_string(), (v.shape().to_vec(), v.data().to_vec(), v.dtype()))).collect();
        Self { json: json(&dir.join(format!("{name}.json"))), tensors }
    }

    pub fn f32(&self, name: &str) -> Vec<f32> {
        let (_, data, dtype) = self.tensors.get(name).unwrap_or_else(|| panic!("no golden tensor {name}"));
        assert_eq!(*dtype, safetensors::Dtype::F32);
        data.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
    }

    pub fn i64(&self, name: &str) -> Vec<i64> {
        let (_, data, dtype) = &self.tensors[name];
        assert_eq!(*dtype, safetensors::Dtype::I64);
        data.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect()
    }

    pub fn shape(&self, name: &str) -> Vec<usize> {
        self.tensors[name].0.clone()
    }

    /// The tensor names that start with `prefix`, without it, sorted.
    pub fn names_with_prefix(&self, prefix: &str) -> Vec<String> {
        let mut names: Vec<String> = self.tensors.keys().filter_map(|k| k.strip_prefix(prefix).map(str::to_string)).collect();
        names.sort();
        names
    }
}
