//! Turning a calibration record into a model's input.

use interlace_chat::{ChatMessage, ChatProcessor, ContentPart};

use crate::data::CalibrationRecord;

/// Builds the model input of one calibration record. The analysis is generic over this; only
/// the implementation for a model family knows its prompt format.
pub trait InputBuilder {
    /// The model's input type (`ObservedForward::Input`).
    type Input;

    /// The input for `record`, or why the record cannot be used (an unreadable image, ...); the
    /// caller reports the reason with the record's line.
    fn build(&self, record: &CalibrationRecord) -> Result<Self::Input, String>;
}

/// Prompts as the official calibration builds them (`src/get_hidden_states.py`): one user turn
/// holding the images and then the text, rendered by the model family's processor with its chat
/// template and a generation prompt, no system turn. Works for every family whose processor
/// implements [`ChatProcessor`]. A plain-text document record goes to the processor's
/// [`ChatProcessor::document_input`] instead.
#[derive(Debug)]
pub struct ChatInputBuilder<P> {
    processor: P,
}

impl<P: ChatProcessor> ChatInputBuilder<P> {
    /// Wraps a model family's processor.
    pub fn new(processor: P) -> Self {
        Self { processor }
    }

    /// The processor.
    pub fn processor(&self) -> &P {
        &self.processor
    }

    /// The chat messages of a record.
    pub fn messages(record: &CalibrationRecord) -> Vec<ChatMessage> {
        let mut content: Vec<ContentPart> = record.images.iter().map(|p| ContentPart::image_path(p.clone())).collect();
        content.push(ContentPart::text(record.text.clone()));
        vec![ChatMessage::user(content)]
    }
}

impl<P: ChatProcessor> InputBuilder for ChatInputBuilder<P> {
    type Input = P::Input;

    fn build(&self, record: &CalibrationRecord) -> Result<P::Input, String> {
        if record.document {
            return self.processor.document_input(&record.text);
        }
        self.processor.chat_input(&Self::messages(record), true)
    }
}
