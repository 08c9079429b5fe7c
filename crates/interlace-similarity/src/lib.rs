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
//!   ([`ChatInputBuilder`] for every family with an `interlace_chat::ChatProcessor`), [`calibrate`] streams a data set through a model, and
//!   [`write_outputs`] writes the official `pack{k}.json`, `report.json` and `similarity.png`.
//! - **Selection** ([`SimilarityTables`], [`select`], [`select_with`], [`manual_plan`]): the
//!   official strategies of `src/train/train_interlace.py` (`interlace`, `interlace_oa`,
//!   `interlace_tn`, `random`, `consecutive`), ShortGPT's block influence (`lowest_influence`)
//!   and Gromov et al.'s angular distance over a block of `n` layers (`angular_block`, and
//!   PruneMe's last-token variant), with protected layers, producing an
//!   [`interlace_core::Plan`]. The same pass measures the angular distances.
//! - **Comparison** ([`compare_strategies`]): every strategy at several ratios on one
//!   calibration set, with the calibration loss of each pruned model.
//! - **Loss-based selection** ([`select_by_loss`]): SLEB's iterative elimination and Shortened
//!   LLaMA's one-shot perplexity criterion, scoring each candidate layer by the calibration NLL
//!   with the layer skipped ([`interlace_core::SkipLayersForward`]); [`plan_for_drop`] turns
//!   the result into a plan with an explicit [`FinetuneRule`].
#![deny(missing_docs)]

mod calibrate;
mod compare;
mod data;
mod error;
mod input;
mod loss_select;
mod metrics;
mod nll;
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
pub use compare::{compare_strategies, comparison_passes, Agreement, CompareConfig, CompareRow, Comparison};
pub use data::{sample_order, CalibrationData, CalibrationRecord};
pub use error::SimilarityError;
pub use input::{ChatInputBuilder, InputBuilder};
pub use loss_select::{calibration_nll, loss_selection_passes, select_by_loss, CandidateScore, LossRound, LossRule, LossSelection, LossSelectionConfig};
pub use metrics::Metric;
pub use nll::{nll_sum, NllSum};
pub use observer::PackObserver;
pub use output::{write_outputs, write_pack_file, RunMetadata};
pub use plot::plot_similarity;
pub use progress::CalibrationProgress;
pub use pyrandom::PyRandom;
pub use run::{calibrate, CalibrationEvent, RunSummary, SkippedSample};
pub use select::{manual_plan, n_drop_for, plan_for_drop, select, select_with, FinetuneRule, SelectOptions, Strategy};
pub use stats::{numpy_mean, RunningStats, Summary};
pub use tables::SimilarityTables;
