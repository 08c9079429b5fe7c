//! Masked causal language-model loss.

use burn::prelude::{Backend, Int, Tensor};
use burn::tensor::{activation, DType, TensorData};

use crate::TrainError;
use interlace_chat::labels::IGNORE_INDEX;

/// Mean cross-entropy of `logits` `[1, seq, vocab]` against `labels` shifted by one (position
/// `p` predicts label `p + 1`), over labels that are not [`IGNORE_INDEX`], computed in f32.
///
/// Equals transformers' `ForCausalLMLoss` for one sequence.
pub fn causal_lm_loss<B: Backend>(logits: Tensor<B, 3>, labels: &[i64]) -> Result<Tensor<B, 1>, TrainError> {
    let [batch, seq, vocab] = logits.dims();
    if batch != 1 || seq != labels.len() {
        return Err(TrainError::Shape(format!("logits are [{batch}, {seq}, {vocab}] but there are {} labels", labels.len())));
    }
    let supervised = SupervisedTargets::of(labels)?;
    let device = logits.device();
    let rows = logits.squeeze_dim::<2>(0).select(0, supervised.position_index(0..supervised.len(), &device));
    Ok(token_losses(rows, &supervised.targets)?.mean())
}

/// The positions of a sequence that carry a loss, and what each must predict.
///
/// Only these positions need logits: the output head is position-wise, so the trainer runs it
/// on them alone (with assistant-only labels most of a conversation is unsupervised).
#[derive(Debug, Clone, PartialEq)]
pub struct SupervisedTargets {
    /// Positions `p` whose next label `labels[p + 1]` is supervised, ascending.
    pub positions: Vec<i64>,
    /// `labels[p + 1]` for each position.
    pub targets: Vec<i64>,
}

impl SupervisedTargets {
    /// Collects the supervised positions of `labels`; an error when there is none.
    pub fn of(labels: &[i64]) -> Result<Self, TrainError> {
        let (positions, targets): (Vec<i64>, Vec<i64>) =
            (0..labels.len().saturating_sub(1)).filter(|&p| labels[p + 1] != IGNORE_INDEX).map(|p| (p as i64, labels[p + 1])).unzip();
        if positions.is_empty() {
            return Err(TrainError::NoSupervisedTokens);
        }
        Ok(Self { positions, targets })
    }

    /// Number of supervised positions.
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    /// Always false (construction fails without supervised positions).
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// The positions `range` (indices into [`Self::positions`]) as an index tensor on `device`.
    pub fn position_index<B: Backend>(&self, range: std::ops::Range<usize>, device: &B::Device) -> Tensor<B, 1, Int> {
        let picked = self.positions[range].to_vec();
        let n = picked.len();
        Tensor::from_data(TensorData::new(picked, [n]), device)
    }
}

/// Per-row negative log-likelihood `[n]` of `logits` rows `[n, vocab]` against `targets`, in f32.
pub fn token_losses<B: Backend>(rows: Tensor<B, 2>, targets: &[i64]) -> Result<Tensor<B, 1>, TrainError> {
    let [n, vocab] = rows.dims();
    if n != targets.len() {
        return Err(TrainError::Shape(format!("{n} logit rows for {} targets", targets.len())));
    }
    if let Some(&bad) = targets.iter().find(|&&t| t < 0 || t as usize >= vocab) {
        return Err(TrainError::Shape(format!("label {bad} is outside the vocabulary of {vocab}")));
    }
    let device = rows.device();
    let log_probs = activation::log_softmax(rows.cast(DType::F32), 1);
    let targets = Tensor::<B, 2, Int>::from_data(TensorData::new(targets.to_vec(), [n, 1]), &device);
    Ok(log_probs.gather(1, targets).squeeze_dim::<1>(1).neg())
}
