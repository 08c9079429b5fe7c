//! Masked causal language-model loss.

use burn::prelude::{Backend, Int, Tensor};
use burn::tensor::{activation, DType, TensorData};

use crate::labels::IGNORE_INDEX;
use crate::TrainError;

/// Mean cross-entropy of `logits` `[1, seq, vocab]` against `labels` shifted by one (position
/// `p` predicts label `p + 1`), over labels that are not [`IGNORE_INDEX`], computed in f32.
///
/// Equals transformers' `ForCausalLMLoss` for one sequence.
pub fn causal_lm_loss<B: Backend>(logits: Tensor<B, 3>, labels: &[i64]) -> Result<Tensor<B, 1>, TrainError> {
    let [batch, seq, vocab] = logits.dims();
    if batch != 1 || seq != labels.len() {
        return Err(TrainError::Shape(format!("logits are [{batch}, {seq}, {vocab}] but there are {} labels", labels.len())));
    }
    let mut positions = Vec::new();
    let mut targets = Vec::new();
    for p in 0..seq.saturating_sub(1) {
        let label = labels[p + 1];
        if label == IGNORE_INDEX {
            continue;
        }
        if label < 0 || label as usize >= vocab {
            return Err(TrainError::Shape(format!("label {label} at position {} is outside the vocabulary of {vocab}", p + 1)));
        }
        positions.push(p as i64);
        targets.push(label);
    }
    if positions.is_empty() {
        return Err(TrainError::NoSupervisedTokens);
    }
    let device = logits.device();
    let n = positions.len();
    let rows = logits.squeeze_dim::<2>(0).select(0, Tensor::<B, 1, Int>::from_data(TensorData::new(positions, [n]), &device));
    let log_probs = activation::log_softmax(rows.cast(DType::F32), 1);
    let targets = Tensor::<B, 2, Int>::from_data(TensorData::new(targets, [n, 1]), &device);
    Ok(log_probs.gather(1, targets).mean().neg())
}
