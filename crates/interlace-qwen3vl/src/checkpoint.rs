//! Memory-mapped access to the safetensors weights of a Hugging Face model directory.
//!
//! Single-file (`model.safetensors`) and sharded (`model.safetensors.index.json`) layouts are
//! both read. Every shard is validated when opened (a truncated or corrupt file fails here, not
//! half-way through loading), and every tensor read is recorded so the loader can report tensors
//! the model never asked for.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use burn::tensor::{DType, TensorData};
use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};

use crate::{Qwen3VlError, Result};

/// File name of a single-file checkpoint.
pub const SINGLE_FILE: &str = "model.safetensors";
/// File name of the index of a sharded checkpoint.
pub const INDEX_FILE: &str = "model.safetensors.index.json";

struct Shard {
    path: PathBuf,
    map: Mmap,
}

#[derive(Debug, Clone)]
struct Entry {
    shard: usize,
    dtype: Dtype,
    shape: Vec<usize>,
    /// Absolute byte range inside the shard file.
    range: std::ops::Range<usize>,
}

/// How a checkpoint names its tensors.
///
/// interlace's module paths (and so its tensor names) are transformers 5's:
/// `model.language_model.*`, `model.visual.*`, `lm_head.*`. Hub checkpoints of the Qwen2
/// generation (Qwen2-VL, Qwen2.5-VL) predate that split and store `model.*` (the text model),
/// `visual.*` and `lm_head.*`; transformers renames them on load (`conversion_mapping.py`). A
/// checkpoint is read and written in its own naming.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub enum TensorNaming {
    /// `model.language_model.*`, `model.visual.*` (transformers 5, every Qwen3-VL file).
    #[default]
    Current,
    /// `model.*` for the text model and `visual.*` (Qwen2-VL and Qwen2.5-VL on the hub).
    Legacy,
}

impl TensorNaming {
    /// The naming of a checkpoint holding these tensor names: legacy when a tensor sits under
    /// `visual.` or under `model.` outside `model.language_model.` / `model.visual.`.
    pub fn detect<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let legacy =
            |n: &str| n.starts_with("visual.") || (n.starts_with("model.") && !n.starts_with("model.language_model.") && !n.starts_with("model.visual."));
        if names.into_iter().any(legacy) {
            TensorNaming::Legacy
        } else {
            TensorNaming::Current
        }
    }

    /// The name in the file of the tensor interlace calls `name`.
    pub fn file_name(self, name: &str) -> String {
        match self {
            TensorNaming::Current => name.to_string(),
            TensorNaming::Legacy => {
                if let Some(rest) = name.strip_prefix("model.language_model.") {
                    format!("model.{rest}")
                } else if let Some(rest) = name.strip_prefix("model.visual.") {
                    format!("visual.{rest}")
                } else {
                    name.to_string()
                }
            }
        }
    }

    /// interlace's name of the tensor the file calls `file_name` (inverse of [`Self::file_name`]).
    pub fn canonical_name(self, file_name: &str) -> String {
        match self {
            TensorNaming::Current => file_name.to_string(),
            TensorNaming::Legacy => {
                if let Some(rest) = file_name.strip_prefix("visual.") {
                    format!("model.visual.{rest}")
                } else if let Some(rest) = file_name.strip_prefix("model.") {
                    format!("model.language_model.{rest}")
                } else {
                    file_name.to_string()
                }
            }
        }
    }
}

/// The weights of one model directory, memory-mapped.
pub struct Checkpoint {
    dir: PathBuf,
    shards: Vec<Shard>,
    entries: BTreeMap<String, Entry>,
    read: RefCell<BTreeSet<String>>,
    naming: TensorNaming,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint").field("dir", &self.dir).field("shards", &self.shards.len()).field("tensors", &self.entries.len()).finish()
    }
}

impl Checkpoint {
    /// Opens the weights of `dir`: the index and its shards if an index exists, else the
    /// single file.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let index = dir.join(INDEX_FILE);
        let single = dir.join(SINGLE_FILE);
        let mut checkpoint = Self { dir: dir.clone(), shards: Vec::new(), entries: BTreeMap::new(), read: RefCell::default(), naming: TensorNaming::Current };
        if index.exists() {
            checkpoint.open_sharded(&index)?;
        } else if single.exists() {
            checkpoint.add_shard(&single, None)?;
        } else {
            return Err(Qwen3VlError::NoWeights { dir });
        }
        checkpoint.naming = TensorNaming::detect(checkpoint.entries.keys().map(String::as_str));
        Ok(checkpoint)
    }

    fn open_sharded(&mut self, index: &Path) -> Result<()> {
        let invalid = |reason: String| Qwen3VlError::InvalidIndex { path: index.to_path_buf(), reason };
        let text = std::fs::read_to_string(index).map_err(|source| Qwen3VlError::Io { path: index.to_path_buf(), source })?;
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| invalid(format!("not valid JSON: {e}")))?;
        let map = json.get("weight_map").and_then(|m| m.as_object()).ok_or_else(|| invalid("no `weight_map` object".into()))?;
        let mut by_shard: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (name, file) in map {
            let file = file.as_str().ok_or_else(|| invalid(format!("`{name}` maps to {file}, not a file name")))?;
            by_shard.entry(file.to_string()).or_default().insert(name.clone());
        }
        for (file, names) in by_shard {
            let path = self.dir.join(&file);
            if !path.exists() {
                return Err(Qwen3VlError::MissingShard { index: index.to_path_buf(), shard: path });
            }
            self.add_shard(&path, Some(&names))?;
            for name in &names {
                if !self.entries.contains_key(name) {
                    return Err(invalid(format!("`{name}` is mapped to {file}, which does not contain it")));
                }
            }
        }
        Ok(())
    }

    /// Maps one shard, validates it and registers its tensors. With `expected` (from the
    /// index), tensors the index does not assign to this shard are refused.
    fn add_shard(&mut self, path: &Path, expected: Option<&BTreeSet<String>>) -> Result<()> {
        let io = |source| Qwen3VlError::Io { path: path.to_path_buf(), source };
        let file = File::open(path).map_err(io)?;
        // SAFETY: the file is opened read-only and never written by this process; a concurrent
        // writer would be a misuse we cannot prevent, as with every memory-mapped loader.
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        let corrupt = |reason: String| Qwen3VlError::CorruptWeights { path: path.to_path_buf(), reason };
        let parsed = SafeTensors::deserialize(&map).map_err(|e| corrupt(e.to_string()))?;
        let (header_len, _) = SafeTensors::read_metadata(&map).map_err(|e| corrupt(e.to_string()))?;
        let data_start = 8 + header_len;
        let shard = self.shards.len();
        for (name, view) in parsed.iter() {
            if let Some(expected) = expected {
                if !expected.contains(name) {
                    return Err(Qwen3VlError::InvalidIndex {
                        path: self.dir.join(INDEX_FILE),
                        reason: format!("{} holds `{name}`, which the index assigns elsewhere or not at all", path.display()),
                    });
                }
            }
            let start = view.data().as_ptr() as usize - map.as_ptr() as usize;
            debug_assert!(start >= data_start);
            let entry = Entry { shard, dtype: view.dtype(), shape: view.shape().to_vec(), range: start..start + view.data().len() };
            self.entries.insert(name.to_string(), entry);
        }
        drop(parsed);
        self.shards.push(Shard { path: path.to_path_buf(), map });
        Ok(())
    }

    /// The model directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How the file names its tensors; every method here takes interlace's names and
    /// translates.
    pub fn naming(&self) -> TensorNaming {
        self.naming
    }

    /// True when the checkpoint holds a tensor of that name.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(&self.naming.file_name(name))
    }

    /// Names of all tensors as the file spells them, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Shape of a tensor, if present.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.entries.get(&self.naming.file_name(name)).map(|e| e.shape.as_slice())
    }

    /// Reads tensor `name`, checks it has shape `expected` and returns it in `dtype`
    /// (converted on the host from the file's bf16/f16/f32).
    pub fn read(&self, name: &str, expected: &[usize], dtype: DType) -> Result<TensorData> {
        let file_name = self.naming.file_name(name);
        let name = file_name.as_str();
        let entry = self.entries.get(name).ok_or_else(|| Qwen3VlError::MissingTensor {
            location: self.dir.clone(),
            name: name.to_string(),
            expected: expected.to_vec(),
        })?;
        let shard = &self.shards[entry.shard];
        if entry.shape != expected {
            return Err(Qwen3VlError::ShapeMismatch {
                path: shard.path.clone(),
                name: name.to_string(),
                expected: expected.to_vec(),
                found: entry.shape.clone(),
            });
        }
        let file_dtype = match entry.dtype {
            Dtype::BF16 => DType::BF16,
            Dtype::F16 => DType::F16,
            Dtype::F32 => DType::F32,
            other => return Err(Qwen3VlError::UnsupportedDtype { path: shard.path.clone(), name: name.to_string(), dtype: format!("{other:?}") }),
        };
        self.read.borrow_mut().insert(name.to_string());
        let bytes = shard.map[entry.range.clone()].to_vec();
        let data = TensorData::from_bytes_vec(bytes, entry.shape.clone(), file_dtype);
        Ok(if file_dtype == dtype { data } else { data.convert_dtype(dtype) })
    }

    /// Names of all tensors as interlace calls them (see [`TensorNaming`]).
    pub fn canonical_names(&self) -> impl Iterator<Item = String> + '_ {
        self.entries.keys().map(|n| self.naming.canonical_name(n))
    }

    /// Tensors present in the checkpoint that were never read (as the file names them).
    pub fn unread(&self) -> Vec<String> {
        let read = self.read.borrow();
        self.entries.keys().filter(|k| !read.contains(*k)).cloned().collect()
    }

    /// Fails with [`Qwen3VlError::UnexpectedTensors`] if any tensor was never read.
    pub fn ensure_all_read(&self) -> Result<()> {
        let unread = self.unread();
        if unread.is_empty() {
            return Ok(());
        }
        let mut names: Vec<String> = unread.iter().take(8).cloned().collect();
        if unread.len() > names.len() {
            names.push(format!("... and {} more", unread.len() - names.len()));
        }
        Err(Qwen3VlError::UnexpectedTensors { location: self.dir.clone(), names })
    }

    /// Byte size of every tensor, by name (for parameter accounting without loading).
    pub fn tensor_sizes(&self) -> HashMap<String, usize> {
        self.entries.iter().map(|(k, e)| (k.clone(), e.range.len())).collect()
    }
}

#[cfg(test)]
mod naming_tests {
    use super::*;

    #[test]
    fn legacy_names_translate_both_ways() {
        let names = ["model.layers.0.mlp.up_proj.weight", "visual.blocks.0.attn.qkv.weight", "lm_head.weight", "model.embed_tokens.weight"];
        let naming = TensorNaming::detect(names);
        assert_eq!(naming, TensorNaming::Legacy);
        for name in names {
            assert_eq!(naming.file_name(&naming.canonical_name(name)), name);
        }
        assert_eq!(naming.canonical_name("visual.merger.mlp.0.weight"), "model.visual.merger.mlp.0.weight");
        assert_eq!(naming.file_name("model.language_model.norm.weight"), "model.norm.weight");
        assert_eq!(TensorNaming::detect(["model.language_model.norm.weight", "model.visual.merger.ln_q.weight", "lm_head.weight"]), TensorNaming::Current);
    }
}
