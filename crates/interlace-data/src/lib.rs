//! Training data for interlace without Python: the official INTERLACE data preparation
//! (`dataset_prep.py`, `dataset_prep_domain.py`) reimplemented on Apache Arrow's Rust parquet
//! reader.
//!
//! - [`prepare_finevision`]: a portion of every FineVision subset (1% in the paper) to LLaVA
//!   records, the JSON-lines file and the JSON array the training script reads, with images as
//!   RGB JPEGs. It streams a few rows at a time, shows progress, resumes an interrupted run and
//!   writes every file atomically.
//! - [`prepare_domain`]: TextVQA, ChartQA or ScienceQA to the records of the domain ablation.
//! - [`parquet_documents`]: the text column of a corpus's parquet shards to `{"text": ...}`
//!   JSONL, the plain-text calibration data of text LLMs.
//!
//! Both read a local copy of the dataset repository (its parquet shards; a snapshot directory
//! of the Hugging Face cache will do). [`fetch_finevision`] and [`fetch_domain`] make that copy
//! from the Hub, downloading only the shards the conversion reads. The records equal the official scripts' output on the
//! same rows, byte for byte in the JSON (Python's separators and ASCII escapes), except for the
//! image file names, which are deterministic here (the official ones come from the clock), and
//! the order of a domain row's distinct answers (a Python `set` there, first occurrence here).
//!
//! ```no_run
//! use interlace_data::{prepare_finevision, FineVisionOptions};
//!
//! let options = FineVisionOptions { progress: true, ..FineVisionOptions::new("FineVision", "data", 0.01) };
//! let report = prepare_finevision(&options)?;
//! println!("{} records in {}", report.records(), report.json.display());
//! # Ok::<(), interlace_data::DataError>(())
//! ```
#![deny(missing_docs)]

mod arrow_values;
mod atomic;
mod configs;
mod domain;
mod error;
mod finevision;
mod hub;
mod jpeg;
mod portion;
mod python_json;
mod record;
mod split;
mod text;

pub use configs::{config_names, dataset_configs, matches_pattern, train_example_counts, DatasetConfig};
pub use domain::{prepare_domain, DomainDataset, DomainOptions, DomainReport};
pub use error::DataError;
pub use finevision::{
    plan_finevision, prepare_finevision, FineVisionOptions, FineVisionReport, PlannedSubset, SampleCounts, SubsetReport, CHECKPOINT_ROWS, LAST_SUBSET,
    MAX_IMAGES, MAX_MESSAGES,
};
pub use hub::{fetch_domain, fetch_finevision, FINEVISION_REPO};
pub use jpeg::{decode_rgb, JPEG_QUALITY};
pub use portion::{check_portion, portion_label};
pub use python_json::{to_python_indented, to_python_line, PythonArrayWriter};
pub use record::{ImagePaths, LlavaRecord, LlavaTurn};
pub use split::Split;
pub use text::{parquet_documents, parquet_files, TextDocuments};
