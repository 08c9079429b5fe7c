//! Layer-redundancy analysis and INTERLACE layer selection.
//!
//! Two halves, both generic over any decoder stack (`interlace_core` traits):
//!
//! - **Calibration** ([`Calibrator`], [`PackObserver`]): one forward pass per sample measures,
//!   for every requested distance `k` ("pack", default 1, 2, 3) and every layer `i` with
//!   `i + k ≤ L`, the cosine similarity of the hidden states `h_i` and `h_{i+k}`, per token,
//!   averaged over the sample's tokens (official `src/get_hidden_states.py`). Hidden states are
//!   consumed while the pass runs; only the last `max(k)` are kept. [`CalibrationData`] reads
//!   LLaVA/FineVision records, [`InputBuilder`] turns one into the model's input
//!   ([`QwenInputBuilder`] for Qwen3-VL), [`calibrate`] streams a data set through a model, and
//!   [`write_outputs`] writes the official `pack{k}.json`, `report.json` and `similarity.png`.
//! - **Selection** ([`SimilarityTables`], [`select`], [`manual_plan`]): the official
//!   strategies of `src/train/train_interlace.py` (`interlace`, `interlace_oa`, `interlace_tn`,
//!   `random`, `consecutive`) plus ShortGPT-style `lowest_influence`, producing an
//!   [`interlace_core::Plan`].
#![deny(missing_docs)]

mod calibrate;
mod data;
mod error;
mod input;
mod metrics;
mod observer;
mod output;
mod plot;
mod progress;
mod pyrandom;
mod run;
mod select;
mod stats;
mod tables;

pub use calibrate::{CalibrationConfig, CalibrationResult, Calibrator, PackResult, SampleSimilarity};
pub use data::{sample_order, CalibrationData, CalibrationRecord};
pub use error::SimilarityError;
pub use input::{InputBuilder, QwenInputBuilder};
pub use metrics::Metric;
pub use observer::PackObserver;
pub use output::{write_outputs, write_pack_file, RunMetadata};
pub use plot::plot_similarity;
pub use progress::CalibrationProgress;
pub use pyrandom::PyRandom;
pub use run::{calibrate, CalibrationEvent, RunSummary, SkippedSample};
pub use select::{manual_plan, n_drop_for, select, Strategy};
pub use stats::{numpy_mean, RunningStats, Summary};
pub use tables::SimilarityTables;
