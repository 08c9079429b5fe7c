//! VLMEvalKit's evaluation of the INTERLACE benchmarks, rule for rule, without a judge model.
//!
//! - [`Dataset`]: the 12 benchmarks of the paper plus MME and MMStar, detected from a file name
//!   or `--dataset`.
//! - [`build_prompt`]: the prompt each dataset class gives Qwen3-VL (VLMEvalKit runs Qwen3-VL
//!   with `use_custom_prompt=False`).
//! - [`score_dataset`]: answer extraction (`can_infer`, `YOrN_Extraction`) and the dataset's
//!   metric: accuracy, MMBench's circular accuracy, HRBench's cycle average, POPE's F1, MME's
//!   accuracy+, TextVQA's VQA accuracy, ChartQA's relaxed accuracy, OCRBench's category counts.
//!   MIA-Bench needs an LLM judge and is reported as such.
//! - [`pandas`]: cells typed as `pandas.read_csv` types them, which prompts and choices show.
//! - [`pixel_bounds`]: the image size bounds VLMEvalKit's Qwen3-VL wrapper uses.
//!
//! `fixtures/make_vlmeval_fixtures.py` runs VLMEvalKit's own code on small TSVs in each
//! dataset's format; the tests require identical prompts and scores.

mod answer;
mod choice;
mod dataset;
mod mcq;
mod open;
pub mod pandas;
mod pixels;
mod prompt;
mod score;
mod yesno;

pub use answer::{process_answer, process_digit_article, process_punctuation, yes_or_no};
pub use choice::{infer_choice, Extracted};
pub use dataset::{Dataset, DatasetKind};
pub use open::relaxed_correctness;
pub use pixels::pixel_bounds;
pub use prompt::{build_prompt, item_kind, prompt_kind, prompt_text, PromptPart, PromptStyle, MCQ_INSTRUCTION, VQA_INSTRUCTION};
pub use score::{score_dataset, Answered, DatasetScore};
