//! `parquet_documents`: a text column of parquet files to `{"text": ...}` JSONL.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, LargeStringArray, RecordBatch, StringArray};
use interlace_data::{parquet_documents, parquet_files, DataError};
use parquet::arrow::ArrowWriter;

fn write(path: &Path, batch: RecordBatch) {
    let mut writer = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn documents_come_out_in_file_and_row_order_without_nulls_or_empties() {
    let dir = tempfile::tempdir().unwrap();
    let shards = dir.path().join("shards");
    std::fs::create_dir(&shards).unwrap();
    let first: ArrayRef = Arc::new(StringArray::from(vec![Some("one"), None, Some(""), Some("two\n\"quoted\" caf\u{e9}")]));
    let ids: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3, 4]));
    write(&shards.join("train-00000.parquet"), RecordBatch::try_from_iter([("id", ids), ("text", first)]).unwrap());
    let second: ArrayRef = Arc::new(LargeStringArray::from(vec!["three", "four"]));
    write(&shards.join("train-00001.parquet"), RecordBatch::try_from_iter([("text", second)]).unwrap());

    let files: Vec<PathBuf> = parquet_files(&shards).unwrap();
    assert_eq!(files.len(), 2);
    let out = dir.path().join("docs.jsonl");
    let report = parquet_documents(&files, "text", None, &out).unwrap();
    assert_eq!((report.written, report.skipped), (4, 2));
    let texts: Vec<String> = lines(&out).iter().map(|l| l["text"].as_str().unwrap().to_string()).collect();
    assert_eq!(texts, ["one", "two\n\"quoted\" caf\u{e9}", "three", "four"]);

    let report = parquet_documents(&files, "text", Some(3), &out).unwrap();
    assert_eq!(report.written, 3);
    assert_eq!(lines(&out).len(), 3);

    let missing = parquet_documents(&files, "content", None, &dir.path().join("x.jsonl")).unwrap_err();
    assert!(matches!(missing, DataError::Schema { .. }));
    assert!(missing.to_string().contains("no column `content` (columns: id, text)"), "{missing}");
    assert!(!dir.path().join("x.jsonl").exists(), "nothing written on failure");
    let typed = parquet_documents(&files, "id", None, &dir.path().join("y.jsonl")).unwrap_err();
    assert!(typed.to_string().contains("expected strings"), "{typed}");
}
