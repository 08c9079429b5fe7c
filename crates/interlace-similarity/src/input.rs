//! Turning a calibration record into a model's input.

use std::path::Path;

use interlace_qwen3vl::processor::{ChatMessage, ContentPart, Qwen3VlProcessor};
use interlace_qwen3vl::Qwen3VlInput;

use crate::data::CalibrationRecord;
use crate::SimilarityError;

/// Builds the model input of one calibration record. The analysis is generic over this; only
/// the implementation for a model family knows its prompt format.
pub trait InputBuilder {
    /// The model's input type (`ObservedForward::Input`).
    type Input;

    /// The input for `record`, or why the record cannot be used (an unreadable image, ...); the
    /// caller reports the reason with the record's line.
    fn build(&self, record: &CalibrationRecord) -> Result<Self::Input, String>;
}

/// Qwen3-VL prompts as the official calibration builds them (`src/get_hidden_states.py`): one
/// user turn holding the images and then the text, rendered with the model's chat template and a
/// generation prompt, no system turn.
#[derive(Debug)]
pub struct QwenInputBuilder {
    processor: Qwen3VlProcessor,
}

impl QwenInputBuilder {
    /// Loads the processor (tokenizer, chat template, image settings) of a model directory.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self, SimilarityError> {
        let processor =
            Qwen3VlProcessor::from_dir(dir.as_ref()).map_err(|e| SimilarityError::InvalidFile { path: dir.as_ref().to_path_buf(), reason: e.to_string() })?;
        Ok(Self { processor })
    }

    /// Wraps a loaded processor.
    pub fn new(processor: Qwen3VlProcessor) -> Self {
        Self { processor }
    }

    /// The chat messages of a record.
    pub fn messages(record: &CalibrationRecord) -> Vec<ChatMessage> {
        let mut content: Vec<ContentPart> = record.images.iter().map(|p| ContentPart::image_path(p.clone())).collect();
        content.push(ContentPart::text(record.text.clone()));
        vec![ChatMessage::user(content)]
    }
}

impl InputBuilder for QwenInputBuilder {
    type Input = Qwen3VlInput;

    fn build(&self, record: &CalibrationRecord) -> Result<Qwen3VlInput, String> {
        let processed = self.processor.process(&Self::messages(record), true).map_err(|e| e.to_string())?;
        Ok(processed.into())
    }
}
