//! Summed next-token negative log-likelihood, the score of loss-based layer selection.

use burn::prelude::{Backend, Int, Tensor};
use burn::tensor::{activation::log_softmax, FloatDType, TensorData};

use crate::SimilarityError;

/// The summed negative log-likelihood of the scored targets and how many there were.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct NllSum {
    /// Σ over scored positions of `−log p(target)`, in nats (f64 sum of f32 terms).
    pub nll: f64,
    /// Number of scored positions.
    pub tokens: usize,
}

impl std::ops::Add for NllSum {
    type Output = NllSum;

    /// The sum over both sets of samples.
    fn add(self, other: NllSum) -> NllSum {
        NllSum { nll: self.nll + other.nll, tokens: self.tokens + other.tokens }
    }
}

impl NllSum {
    /// Mean NLL per scored token (`NaN` when nothing was scored).
    pub fn mean(&self) -> f64 {
        self.nll / self.tokens as f64
    }
}

/// `Σ −log_softmax(logits[t])[targets[t]]` over the positions with a target, computed in f32
/// like `torch.nn.functional.cross_entropy` on f32 logits, summed in f64 on the host.
///
/// `logits` is `[1, seq, vocab]`; `targets` has one entry per position.
pub fn nll_sum<B: Backend>(logits: Tensor<B, 3>, targets: &[Option<u32>]) -> Result<NllSum, SimilarityError> {
    let [batch, seq, vocab] = logits.dims();
    if batch != 1 || seq != targets.len() {
        return Err(SimilarityError::Model(format!("logits {:?} do not match {} targets of one sample", [batch, seq, vocab], targets.len())));
    }
    let (positions, tokens): (Vec<i64>, Vec<i64>) = targets.iter().enumerate().filter_map(|(t, target)| target.map(|id| (t as i64, id as i64))).unzip();
    if let Some(&bad) = tokens.iter().find(|&&id| id as usize >= vocab) {
        return Err(SimilarityError::Model(format!("target token {bad} is outside the vocabulary of {vocab}")));
    }
    let n = positions.len();
    if n == 0 {
        return Ok(NllSum::default());
    }
    let device = logits.device();
    let rows = Tensor::<B, 1, Int>::from_data(TensorData::new(positions, [n]), &device);
    let columns = Tensor::<B, 2, Int>::from_data(TensorData::new(tokens, [n, 1]), &device);
    // Only the scored rows get a log-softmax: the full `[seq, vocab]` one is not needed.
    let scored = logits.reshape([seq, vocab]).select(0, rows).cast(FloatDType::F32);
    let picked = log_softmax(scored, 1).gather(1, columns);
    let values = picked.into_data().convert::<f32>().into_vec::<f32>().map_err(|e| SimilarityError::Model(format!("cannot read the loss back: {e:?}")))?;
    Ok(NllSum { nll: values.iter().map(|&v| -f64::from(v)).sum(), tokens: n })
}
