//! The safetensors header, written by hand so its exact size is known while packing shards.
//!
//! Format: 8-byte little-endian header length, a JSON object mapping tensor names to
//! `{"dtype","shape","data_offsets"}` plus `__metadata__ {"format":"pt"}` (transformers refuses
//! other formats), padded with spaces to a multiple of 8 bytes, then the raw data.

use safetensors::Dtype;

/// Opening of every header, up to the first tensor entry.
const OPEN: &str = r#"{"__metadata__":{"format":"pt"}"#;

/// One `"name":{...}` header entry (without separators).
pub fn entry(name: &str, dtype: Dtype, shape: &[usize], start: u64, end: u64) -> String {
    // serde_json escapes names exactly as JSON requires; a string and a plain enum always serialize.
    let name = serde_json::to_string(name).unwrap_or_default();
    let dtype = serde_json::to_string(&dtype).unwrap_or_default();
    let shape: Vec<String> = shape.iter().map(usize::to_string).collect();
    format!(r#"{name}:{{"dtype":{dtype},"shape":[{}],"data_offsets":[{start},{end}]}}"#, shape.join(","))
}

/// Unpadded length of a header with entries of the given lengths summing to `entries_len`.
pub fn raw_len(entries_len: usize, entries: usize) -> usize {
    OPEN.len() + entries_len + entries /* one comma each */ + 1 /* closing brace */
}

/// Header length after padding to a multiple of 8, so tensor data starts 8-byte aligned.
pub fn padded_len(raw_len: usize) -> usize {
    raw_len.div_ceil(8) * 8
}

/// The full header text (padded) from its entries.
pub fn assemble(entries: &[String]) -> String {
    let mut text = String::with_capacity(raw_len(entries.iter().map(String::len).sum(), entries.len()) + 8);
    text.push_str(OPEN);
    for e in entries {
        text.push(',');
        text.push_str(e);
    }
    text.push('}');
    let padded = padded_len(text.len());
    text.extend(std::iter::repeat_n(' ', padded - text.len()));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assembled_header_is_parsed_by_safetensors() {
        let entries = vec![entry("a.weight", Dtype::BF16, &[2, 3], 0, 12), entry("b\"q", Dtype::F32, &[], 12, 16)];
        let header = assemble(&entries);
        assert_eq!(header.len() % 8, 0);
        assert_eq!(header.trim_end().len(), raw_len(entries.iter().map(String::len).sum(), 2));
        let mut file = (header.len() as u64).to_le_bytes().to_vec();
        file.extend_from_slice(header.as_bytes());
        file.extend_from_slice(&[7u8; 16]);
        let parsed = safetensors::SafeTensors::deserialize(&file).unwrap();
        assert_eq!(parsed.tensor("a.weight").unwrap().shape(), &[2, 3]);
        assert_eq!(parsed.tensor("b\"q").unwrap().data(), &[7u8; 4]);
    }
}
