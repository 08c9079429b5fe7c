//! A source checkpoint: memory-mapped shards, validated against each other and the index.
//!
//! Everything is checked at open, before any output exists: a truncated or corrupt shard, a
//! missing shard, or an index that disagrees with the shards is an error naming the files.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};

use crate::json::Json;
use crate::SurgeryError;

/// File name of a single-file checkpoint.
pub const SINGLE_FILE: &str = "model.safetensors";
/// File name of the index of a sharded checkpoint.
pub const INDEX_FILE: &str = "model.safetensors.index.json";

/// One tensor of a source shard.
#[derive(Debug, Clone)]
pub struct SourceTensor {
    /// Tensor name.
    pub name: String,
    /// Element type.
    pub dtype: Dtype,
    /// Shape.
    pub shape: Vec<usize>,
    /// Byte range of the data within the shard file.
    pub range: std::ops::Range<usize>,
}

impl SourceTensor {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Number of data bytes.
    pub fn byte_len(&self) -> usize {
        self.range.len()
    }
}

/// One memory-mapped shard and its tensors in file order.
#[derive(Debug)]
pub struct SourceShard {
    /// File name within the model directory.
    pub file_name: String,
    /// Full path.
    pub path: PathBuf,
    /// The mapped file.
    pub mmap: Mmap,
    /// Tensors sorted by their position in the file.
    pub tensors: Vec<SourceTensor>,
}

/// A validated source checkpoint.
#[derive(Debug)]
pub struct SourceCheckpoint {
    /// The model directory.
    pub dir: PathBuf,
    /// Shards in file-name order.
    pub shards: Vec<SourceShard>,
    /// The parsed index, when the checkpoint is sharded.
    pub index: Option<Json>,
}

impl SourceCheckpoint {
    /// Opens `dir` (single file or sharded) and validates every shard and the index.
    pub fn open(dir: &Path) -> Result<Self, SurgeryError> {
        let index_path = dir.join(INDEX_FILE);
        if index_path.is_file() {
            return Self::open_sharded(dir, &index_path);
        }
        let single = dir.join(SINGLE_FILE);
        if single.is_file() {
            let shard = open_shard(dir, SINGLE_FILE)?;
            return Ok(Self { dir: dir.to_path_buf(), shards: vec![shard], index: None });
        }
        Err(SurgeryError::NoWeights { dir: dir.to_path_buf() })
    }

    /// True when the source has an index (and the output will too).
    pub fn is_sharded(&self) -> bool {
        self.index.is_some()
    }

    /// Size in bytes of the largest shard file.
    pub fn largest_shard_bytes(&self) -> u64 {
        self.shards.iter().map(|s| s.mmap.len() as u64).max().unwrap_or(0)
    }

    /// Every tensor with its shard, in shard then file order.
    pub fn tensors(&self) -> impl Iterator<Item = (&SourceShard, &SourceTensor)> {
        self.shards.iter().flat_map(|shard| shard.tensors.iter().map(move |t| (shard, t)))
    }

    /// Number of stored elements (a tied head is stored, and counted, once).
    pub fn param_count(&self) -> usize {
        self.tensors().map(|(_, t)| t.numel()).sum()
    }

    fn open_sharded(dir: &Path, index_path: &Path) -> Result<Self, SurgeryError> {
        let text = std::fs::read_to_string(index_path).map_err(SurgeryError::io("cannot read", index_path))?;
        let mismatch = |reason: String| SurgeryError::IndexMismatch { index: index_path.to_path_buf(), reason };
        let index = Json::parse(&text).map_err(|e| mismatch(format!("not valid JSON: {e}")))?;
        let weight_map = weight_map(&index).map_err(mismatch)?;
        let files: BTreeSet<&str> = weight_map.values().map(String::as_str).collect();
        let mut shards = Vec::with_capacity(files.len());
        for file in files {
            if file.contains('/') || file.contains('\\') || file == ".." {
                return Err(mismatch(format!("shard name {file:?} is not a plain file name")));
            }
            let path = dir.join(file);
            if !path.is_file() {
                return Err(SurgeryError::MissingShard { index: index_path.to_path_buf(), shard: path });
            }
            shards.push(open_shard(dir, file)?);
        }
        check_index_agrees(&weight_map, &shards).map_err(mismatch)?;
        Ok(Self { dir: dir.to_path_buf(), shards, index: Some(index) })
    }
}

/// `weight_map` of an index as tensor → shard file.
fn weight_map(index: &Json) -> Result<BTreeMap<String, String>, String> {
    let Some(Json::Object(entries)) = index.get("weight_map") else {
        return Err("no `weight_map` object".into());
    };
    if entries.is_empty() {
        return Err("`weight_map` is empty".into());
    }
    let mut map = BTreeMap::new();
    for (name, file) in entries {
        let file = file.as_str().ok_or_else(|| format!("weight_map entry {name} is not a file name"))?;
        if map.insert(name.clone(), file.to_string()).is_some() {
            return Err(format!("tensor {name} is listed twice"));
        }
    }
    Ok(map)
}

/// Every index entry is in the shard it names, and every shard tensor is in the index.
fn check_index_agrees(weight_map: &BTreeMap<String, String>, shards: &[SourceShard]) -> Result<(), String> {
    let mut found: HashMap<&str, &str> = HashMap::new();
    for shard in shards {
        for tensor in &shard.tensors {
            match weight_map.get(&tensor.name) {
                None => return Err(format!("tensor {} is in {} but not in the index", tensor.name, shard.file_name)),
                Some(file) if *file != shard.file_name => {
                    return Err(format!("tensor {} is in {} but the index puts it in {file}", tensor.name, shard.file_name))
                }
                Some(_) => {}
            }
            found.insert(&tensor.name, &shard.file_name);
        }
    }
    match weight_map.iter().find(|(name, _)| !found.contains_key(name.as_str())) {
        Some((name, file)) => Err(format!("the index puts tensor {name} in {file}, which does not contain it")),
        None => Ok(()),
    }
}

/// Maps and parses one shard; the safetensors parser checks the header and that the file holds
/// exactly the bytes the header describes (so truncation is caught here).
fn open_shard(dir: &Path, file_name: &str) -> Result<SourceShard, SurgeryError> {
    let path = dir.join(file_name);
    let file = File::open(&path).map_err(SurgeryError::io("cannot open", &path))?;
    // SAFETY: the map is read-only; the source is never written by this crate. A concurrent
    // writer truncating the file would be a user error we cannot prevent (same as every mmap loader).
    let mmap = unsafe { Mmap::map(&file) }.map_err(SurgeryError::io("cannot map", &path))?;
    let tensors = parse_tensors(&mmap).map_err(|reason| SurgeryError::CorruptShard { path: path.clone(), reason })?;
    Ok(SourceShard { file_name: file_name.to_string(), path, mmap, tensors })
}

fn parse_tensors(bytes: &[u8]) -> Result<Vec<SourceTensor>, String> {
    let parsed = SafeTensors::deserialize(bytes).map_err(|e| format!("{e:?}"))?;
    let base = bytes.as_ptr() as usize;
    let mut tensors: Vec<SourceTensor> = parsed
        .iter()
        .map(|(name, view)| {
            let start = view.data().as_ptr() as usize - base;
            SourceTensor { name: name.to_string(), dtype: view.dtype(), shape: view.shape().to_vec(), range: start..start + view.data().len() }
        })
        .collect();
    tensors.sort_by_key(|t| (t.range.start, t.range.end));
    Ok(tensors)
}
