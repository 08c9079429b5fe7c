//! Hugging Face Hub model ids wherever interlace accepts a model directory.
//!
//! `--model Qwen/Qwen3-VL-8B-Instruct[@revision]` resolves to a snapshot directory in the
//! standard Hugging Face cache (the layout `huggingface_hub` and `transformers` share, so a
//! model one of them downloaded is not downloaded again), fetching only what interlace reads:
//! the top-level configuration, tokenizer, processor and chat-template files and the
//! safetensors weights (only the shards the index names). A path that exists is used as it is.
//!
//! - [`HubOptions::from_env`] reads the standard environment: `HF_ENDPOINT`, `HF_HOME`,
//!   `HF_HUB_CACHE`, `HF_TOKEN` (or the token file `huggingface-cli login` writes) and
//!   `HF_HUB_OFFLINE`.
//! - Downloads go through the `hf-hub` crate: progress bars, and an interrupted download
//!   resumes from its partial file (within a run, `retries` times, and in the next run).
//! - Every downloaded file is checked against the Hub's metadata: its size, and its SHA-256
//!   (LFS files) or git blob id (small files). A file that does not match is removed from the
//!   cache and reported; nothing unverified is left behind as if it were complete.
//! - Errors say what to do: a missing repository or revision, a gated or private repository
//!   without a (valid) token, the Hub unreachable, or offline mode with nothing cached.
//!
//!
//! Dataset repositories work the same way, file by file: [`HubDataset`] lists a revision's
//! files and downloads (and verifies) only those asked for, into `datasets--owner--name/`.
//!
//! ```no_run
//! use interlace_hub::{resolve_model, HubOptions};
//!
//! let dir = resolve_model("Qwen/Qwen3-VL-2B-Instruct", &HubOptions::from_env())?;
//! println!("snapshot in {}", dir.display());
//! # Ok::<(), interlace_hub::HubError>(())
//! ```
#![deny(missing_docs)]

mod dataset;
mod error;
#[cfg(feature = "fake-hub")]
pub mod fake_hub;
mod fetch;
mod files;
mod metadata;
mod options;
mod source;
mod verify;

pub use dataset::HubDataset;
pub use error::HubError;
pub use fetch::{cached_snapshot, fetch_model, resolve_model};
pub use files::{is_config_file, weight_files};
pub use metadata::{RepoFile, RepoSnapshot};
pub use options::HubOptions;
pub use source::ModelSource;
