//! Evaluation of pruned models: benchmark scores as VLMEvalKit computes them, held-out loss and
//! speed.
//!
//! - Benchmarks are read from VLMEvalKit's TSV layout or the same fields as JSONL
//!   ([`read_benchmark`]), cells typed as pandas types them; every row becomes a [`BenchItem`],
//!   and rows that cannot be used are reported as [`Malformed`] instead of stopping the run.
//! - [`vlmeval`]: the paper's 12 benchmarks plus MME and MMStar, detected from the file name,
//!   prompted and scored exactly as VLMEvalKit prompts Qwen3-VL and scores without a judge.
//! - [`evaluate_benchmark`] answers by generation ([`ScoringMode::Generate`], VLMEvalKit's
//!   way, with its sampling settings by default: [`Sampling`]) or, as a labelled fast mode, by
//!   answer log-likelihood ([`ScoringMode::LogLikelihood`]).
//! - [`heldout_loss`] measures loss and perplexity on the assistant tokens of conversation data;
//!   [`measure_speed`] measures time to first token and decode throughput, and [`compare_ttft`]
//!   times a model against its base in alternation for a prefill speed-up that load drift does
//!   not bias.
//! - [`lm_harness`]: text LLMs scored as lm-evaluation-harness scores them (rolling
//!   perplexity, log-likelihood multiple choice).
//! - [`EvalReport`] puts a model next to its base: the model-card table of relative
//!   performance and TTFT speed-up, written as `results.json` and `results.md`;
//!   [`write_predictions`] writes the per-question predictions VLMEvalKit's evaluation reads.
#![deny(missing_docs)]

mod choice;
mod error;
mod evaluate;
mod images;
mod item;
mod listfield;
pub mod lm_harness;
mod loss;
mod model;
mod predictions;
mod reader;
mod report;
mod sampling;
mod speed;
mod tsv;
pub mod vlmeval;

pub use choice::{best_choice, log_softmax};
pub use error::EvalError;
pub use evaluate::{
    answer_item, evaluate_benchmark, messages, prepare_input, question_kind, score_answers, BenchmarkResult, EvalOptions, ItemResult, ScoringMode,
};
pub use images::ImageData;
pub use item::{BenchItem, Malformed, QuestionKind};
pub use loss::{heldout_loss, HeldOutLoss};
pub use model::EvalModel;
pub use predictions::{predictions_tsv, write_predictions};
pub use reader::{read_benchmark, read_benchmark_as, Benchmark};
pub use report::{BenchmarkRow, EvalReport, SpeedComparison};
pub use sampling::Sampling;
pub use speed::{compare_ttft, measure_speed, PairedTtft, SpeedReport};
