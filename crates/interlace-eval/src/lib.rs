//! Evaluation of pruned models: benchmark scores, held-out loss and speed.
//!
//! - Benchmarks are read from VLMEvalKit's TSV layout or the same fields as JSONL
//!   ([`read_benchmark`]); every row becomes a [`BenchItem`] of one [`QuestionKind`], and rows
//!   that cannot be used are reported as [`Malformed`] instead of stopping the run.
//! - Prompts follow VLMEvalKit's Qwen2-VL / Qwen3-VL conventions ([`prompt`]).
//! - Multiple-choice and yes/no questions are scored by the log-likelihood of each answer after
//!   the generation prompt, so scores do not depend on decoding luck; open questions (and every
//!   kind under [`ScoringMode::Generate`]) decode greedily and match the answer
//!   ([`normalize`], [`extract`]).
//! - [`heldout_loss`] measures loss and perplexity on the assistant tokens of conversation data;
//!   [`measure_speed`] measures time to first token and decode throughput.
//! - [`EvalReport`] puts a model next to its base: the relative-performance table of the
//!   INTERLACE model cards, written as `results.json` and `results.md`.
#![deny(missing_docs)]

mod choice;
mod error;
mod evaluate;
pub mod extract;
mod images;
mod item;
mod listfield;
mod loss;
mod model;
pub mod normalize;
pub mod prompt;
mod reader;
mod report;
mod speed;
mod tsv;

pub use choice::{best_choice, log_softmax};
pub use error::EvalError;
pub use evaluate::{evaluate_benchmark, evaluate_item, prepare_input, BenchmarkResult, EvalOptions, ItemResult, ScoringMode};
pub use images::ImageData;
pub use item::{BenchItem, Malformed, QuestionKind};
pub use loss::{heldout_loss, HeldOutLoss};
pub use model::EvalModel;
pub use reader::{read_benchmark, Benchmark};
pub use report::{BenchmarkRow, EvalReport, SpeedComparison};
pub use speed::{measure_speed, SpeedReport};
