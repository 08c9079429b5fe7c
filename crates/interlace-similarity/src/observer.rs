//! The hidden-state observer that computes every pack's cosines in one forward pass.

use std::collections::VecDeque;

use burn::prelude::{Backend, Tensor};
use burn::tensor::FloatDType;
use interlace_core::{CoreError, HiddenStateObserver};

/// `eps` of `torch.nn.functional.cosine_similarity`: each norm is clamped to at least this.
const COSINE_EPS: f32 = 1e-8;

/// One hidden state kept for later comparisons: `[seq, hidden]` in f32 and its token norms.
struct Kept<B: Backend> {
    state: Tensor<B, 2>,
    norm: Tensor<B, 2>,
}

/// Observes `h_0 … h_L` of one forward pass and, for every pack distance `k`, sums over the
/// tokens the cosine similarity of `h_i` and `h_{i+k}` and the angular distance
/// `arccos(cos) / π` of every token (Gromov et al.), and keeps the last token's cosine
/// (PruneMe's variant), for all `i + k ≤ L`.
///
/// Only the last `max(k)` states are kept (a ring buffer), cast to f32 so that bf16/f16 models
/// are compared in f32. The token sums stay on the device until the last hidden state, then
/// come back to the host in one read: a GPU runs the whole pass without waiting for the host
/// after every layer. Official reference: `src/get_hidden_states.py`, which calls
/// `F.cosine_similarity(h_i, h_{i+k}, dim=1).mean()` per sample in the model dtype.
pub struct PackObserver<B: Backend> {
    packs: Vec<usize>,
    n_layers: usize,
    ring: VecDeque<Kept<B>>,
    next: usize,
    tokens: Option<usize>,
    /// Token sums not yet read back: `(index, packs of the columns, [cosine sums; angular
    /// sums; last-token cosines] [3 × columns])`.
    pending: Vec<(usize, Vec<usize>, Tensor<B, 1>)>,
    /// `sums[p][i]`: Σ over tokens of cos(h_i, h_{i+k_p}).
    sums: Vec<Vec<f64>>,
    /// `angular_sums[p][i]`: Σ over tokens of arccos(cos(h_i, h_{i+k_p})) / π.
    angular_sums: Vec<Vec<f64>>,
    /// `last[p][i]`: cos(h_i, h_{i+k_p}) of the last token.
    last: Vec<Vec<f64>>,
}

impl<B: Backend> PackObserver<B> {
    /// An observer for a stack of `n_layers` layers and the given pack distances (each in
    /// `1..=n_layers`, validated by the caller).
    pub fn new(packs: &[usize], n_layers: usize) -> Self {
        let sums: Vec<Vec<f64>> = packs.iter().map(|&k| vec![0.0; n_layers + 1 - k]).collect();
        let (angular_sums, last) = (sums.clone(), sums.clone());
        Self { packs: packs.to_vec(), n_layers, ring: VecDeque::new(), next: 0, tokens: None, pending: Vec::new(), sums, angular_sums, last }
    }

    /// Number of tokens of the observed sample (after the first hidden state).
    pub fn tokens(&self) -> Option<usize> {
        self.tokens
    }

    /// True once `h_0 … h_L` have all been seen.
    pub fn is_complete(&self) -> bool {
        self.next == self.n_layers + 1
    }

    /// Per-pack, per-layer token-averaged cosines: `means[p][i]` for pack `packs[p]` (complete
    /// once [`Self::is_complete`]).
    pub fn means(&self) -> Vec<Vec<f64>> {
        self.per_token_mean(&self.sums)
    }

    /// Per-pack, per-layer token-averaged angular distances `arccos(cos) / π` (each token's
    /// own distance, averaged), laid out as [`Self::means`].
    pub fn angular_means(&self) -> Vec<Vec<f64>> {
        self.per_token_mean(&self.angular_sums)
    }

    /// Per-pack, per-layer cosine of the last token only, laid out as [`Self::means`].
    pub fn last_token_cosines(&self) -> Vec<Vec<f64>> {
        self.last.clone()
    }

    fn per_token_mean(&self, sums: &[Vec<f64>]) -> Vec<Vec<f64>> {
        let tokens = self.tokens.unwrap_or(0).max(1) as f64;
        sums.iter().map(|row| row.iter().map(|s| s / tokens).collect()).collect()
    }

    fn check_shape(&mut self, index: usize, dims: [usize; 3]) -> Result<usize, CoreError> {
        let [batch, seq, _] = dims;
        if batch != 1 {
            return Err(CoreError::Observer { index, reason: format!("calibration runs one sample per pass, got batch {batch}") });
        }
        match self.tokens {
            None => self.tokens = Some(seq),
            Some(t) if t != seq => {
                return Err(CoreError::Observer { index, reason: format!("sequence length changed from {t} to {seq}") });
            }
            Some(_) => {}
        }
        Ok(seq)
    }

    /// Reads every pending token sum in one transfer and adds it to `sums`.
    fn read_back(&mut self, index: usize) -> Result<(), CoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let all = Tensor::cat(pending.iter().map(|(_, _, t)| t.clone()).collect(), 0);
        let values =
            all.into_data().convert::<f32>().into_vec::<f32>().map_err(|e| CoreError::Observer { index, reason: format!("cannot read cosines: {e:?}") })?;
        let mut values = values.into_iter();
        for (state, which, _) in &pending {
            for row in [&mut self.sums, &mut self.angular_sums, &mut self.last] {
                for (&p, value) in which.iter().zip(values.by_ref()) {
                    row[p][state - self.packs[p]] += f64::from(value);
                }
            }
        }
        Ok(())
    }

    /// Cosines of the new state against every kept state at a pack distance, stacked
    /// `[seq, n_matching]`, plus which pack each column belongs to.
    fn cosines(&self, index: usize, kept: &Kept<B>) -> Option<(Tensor<B, 2>, Vec<usize>)> {
        let mut columns = Vec::new();
        let mut which = Vec::new();
        for (p, &k) in self.packs.iter().enumerate() {
            if k > index || k > self.ring.len() {
                continue;
            }
            let old = &self.ring[self.ring.len() - k];
            let dot = (kept.state.clone() * old.state.clone()).sum_dim(1);
            columns.push(dot / (kept.norm.clone() * old.norm.clone()));
            which.push(p);
        }
        (!columns.is_empty()).then(|| (Tensor::cat(columns, 1), which))
    }
}

impl<B: Backend> HiddenStateObserver<B> for PackObserver<B> {
    fn observe(&mut self, index: usize, hidden: Tensor<B, 3>) -> Result<(), CoreError> {
        if index != self.next || index > self.n_layers {
            return Err(CoreError::Observer { index, reason: format!("expected hidden state {} of 0..={}", self.next, self.n_layers) });
        }
        let [_, seq, width] = hidden.dims();
        self.check_shape(index, hidden.dims())?;
        let state: Tensor<B, 2> = hidden.cast(FloatDType::F32).reshape([seq, width]);
        let norm = (state.clone() * state.clone()).sum_dim(1).sqrt().clamp_min(COSINE_EPS);
        let kept = Kept { state, norm };
        if let Some((cos, which)) = self.cosines(index, &kept) {
            let columns = which.len();
            // Clamp: f32 rounding can push a cosine a hair past ±1, where arccos is NaN.
            let angular = cos.clone().clamp(-1.0, 1.0).acos() / std::f32::consts::PI;
            let last = cos.clone().narrow(0, seq - 1, 1);
            let row = Tensor::cat(vec![cos.sum_dim(0), angular.sum_dim(0), last], 1);
            self.pending.push((index, which, row.reshape([3 * columns])));
        }
        if index == self.n_layers {
            self.read_back(index)?;
        }
        let max_k = self.packs.iter().copied().max().unwrap_or(1);
        self.ring.push_back(kept);
        while self.ring.len() > max_k {
            self.ring.pop_front();
        }
        self.next += 1;
        Ok(())
    }
}
