//! Held-out loss and perplexity on the assistant tokens of conversation data.
//!
//! The data is the training format (LLaVA / FineVision conversation records, read by
//! `interlace_train::ConversationDataset`), so the number is directly comparable with the
//! training loss, and the loss is the trainer's own `causal_lm_loss`.

use std::path::Path;

use burn::prelude::Backend;
use interlace_chat::ChatProcessor;
use interlace_core::{NoObserver, ObservedForward, TapPoint};
use interlace_train::{causal_lm_loss, ConversationDataset, ExampleSource, Skipped, IGNORE_INDEX};
use serde::Serialize;

use crate::model::model_error;
use crate::EvalError;

/// Loss of a model on held-out conversations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeldOutLoss {
    /// Conversations evaluated.
    pub examples: usize,
    /// Assistant tokens scored.
    pub tokens: usize,
    /// Mean cross-entropy per assistant token (nats), over all tokens of all examples.
    pub loss: f64,
    /// `exp(loss)`.
    pub perplexity: f64,
    /// Records that could not be used, with their line.
    pub skipped: Vec<Skipped>,
}

/// Mean loss over the assistant tokens of the conversations in `data` (JSON or JSONL; images
/// relative to the file), each truncated to `max_length` tokens, at most `limit` of them.
///
/// Token-weighted, not example-weighted: a long answer counts for more, as in training.
pub fn heldout_loss<B: Backend, P: ChatProcessor, M: ObservedForward<B, Input = P::Input>>(
    model: &M,
    data: &Path,
    processor: P,
    max_length: usize,
    limit: Option<usize>,
) -> Result<HeldOutLoss, EvalError>
where
    M::Error: std::error::Error + Send + Sync + 'static,
{
    let (dataset, mut skipped) = ConversationDataset::open(data, None, processor, max_length)?;
    let mut total = 0.0f64;
    let mut tokens = 0usize;
    let mut examples = 0usize;
    for index in 0..dataset.len().min(limit.unwrap_or(usize::MAX)) {
        let example = match dataset.example(index) {
            Ok(example) => example,
            Err(e) => {
                skipped.push(Skipped { line: dataset.line_of(index), reason: e.to_string() });
                continue;
            }
        };
        // The loss averages over positions whose next label is supervised.
        let scored = example.labels.iter().skip(1).filter(|&&l| l != IGNORE_INDEX).count();
        let logits = model.forward_observed(&example.input, TapPoint::Transformers, &mut NoObserver).map_err(model_error)?;
        let loss = causal_lm_loss(logits, &example.labels)?;
        let value =
            loss.into_data().convert::<f32>().to_vec::<f32>().map_err(|e| EvalError::Input(format!("cannot read the loss back from the device: {e:?}")))?[0]
                as f64;
        total += value * scored as f64;
        tokens += scored;
        examples += 1;
    }
    if tokens == 0 {
        return Err(EvalError::Input(format!("{}: no usable held-out conversation", data.display())));
    }
    let loss = total / tokens as f64;
    Ok(HeldOutLoss { examples, tokens, loss, perplexity: loss.exp(), skipped })
}
