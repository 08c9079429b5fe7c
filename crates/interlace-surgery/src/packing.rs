//! Assigning the kept tensors to output shards.

use crate::header;
use crate::source::{SourceShard, SourceTensor};

/// One tensor of the output: its new name and where its bytes come from.
#[derive(Debug, Clone)]
pub struct OutTensor<'a> {
    /// Name in the output checkpoint.
    pub name: String,
    /// Source shard holding the bytes.
    pub shard: &'a SourceShard,
    /// The source tensor.
    pub tensor: &'a SourceTensor,
}

/// One output shard: its tensors in write order and its (padded) header.
#[derive(Debug)]
pub struct OutShard<'a> {
    /// File name in the output directory.
    pub file_name: String,
    /// Tensors in data order.
    pub tensors: Vec<OutTensor<'a>>,
    /// The padded header text.
    pub header: String,
    /// Total bytes of data after the header.
    pub data_bytes: u64,
}

impl OutShard<'_> {
    /// Size of the whole file.
    pub fn file_bytes(&self) -> u64 {
        8 + self.header.len() as u64 + self.data_bytes
    }
}

/// Groups tensors, in order, into as few shards as fit under `max_file_bytes` (a tensor that
/// alone exceeds it gets its own shard). `None`: everything in one shard.
pub fn pack<'a>(tensors: Vec<OutTensor<'a>>, max_file_bytes: Option<u64>) -> Vec<Vec<OutTensor<'a>>> {
    let mut groups: Vec<Vec<OutTensor<'a>>> = Vec::new();
    let mut current = Builder::default();
    let mut members = Vec::new();
    for tensor in tensors {
        let size_with = current.file_bytes_with(&tensor);
        if matches!(max_file_bytes, Some(limit) if size_with > limit) && !members.is_empty() {
            groups.push(std::mem::take(&mut members));
            current = Builder::default();
        }
        current.push(&tensor);
        members.push(tensor);
    }
    if !members.is_empty() {
        groups.push(members);
    }
    groups
}

/// Builds the shard files of `groups`, named like transformers names them.
pub fn name_shards<'a>(groups: Vec<Vec<OutTensor<'a>>>, sharded: bool) -> Vec<OutShard<'a>> {
    let n = groups.len();
    groups
        .into_iter()
        .enumerate()
        .map(|(k, tensors)| {
            let file_name = if sharded { format!("model-{:05}-of-{n:05}.safetensors", k + 1) } else { crate::source::SINGLE_FILE.to_string() };
            let mut builder = Builder::default();
            for t in &tensors {
                builder.push(t);
            }
            OutShard { file_name, header: header::assemble(&builder.entries), data_bytes: builder.data, tensors }
        })
        .collect()
}

/// Running header and data size of a shard being filled.
#[derive(Default)]
struct Builder {
    entries: Vec<String>,
    entries_len: usize,
    data: u64,
}

impl Builder {
    fn entry(&self, t: &OutTensor) -> String {
        header::entry(&t.name, t.tensor.dtype, &t.tensor.shape, self.data, self.data + t.tensor.byte_len() as u64)
    }

    fn file_bytes_with(&self, t: &OutTensor) -> u64 {
        let raw = header::raw_len(self.entries_len + self.entry(t).len(), self.entries.len() + 1);
        8 + header::padded_len(raw) as u64 + self.data + t.tensor.byte_len() as u64
    }

    fn push(&mut self, t: &OutTensor) {
        let e = self.entry(t);
        self.entries_len += e.len();
        self.entries.push(e);
        self.data += t.tensor.byte_len() as u64;
    }
}
