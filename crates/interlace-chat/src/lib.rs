//! Conversations, model-agnostic: chat messages in the transformers format, chat templates
//! rendered as transformers renders them, LLaVA / FineVision conversation files, and the
//! [`ChatProcessor`] trait through which a model family turns messages into its input.
//!
//! The analysis, training and evaluation crates speak these types; only a model crate knows
//! how its family tokenizes, lays out images and supervises a reply.
#![deny(missing_docs)]

mod error;
pub mod labels;
pub mod llava;
mod message;
mod processor;
mod template;

pub use error::{ChatError, Result};
pub use message::{ChatMessage, ContentPart, ImageSource, Role};
pub use processor::{ChatExample, ChatProcessor};
pub use template::{new_environment, ChatTemplate, RenderOptions};
