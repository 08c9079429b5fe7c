//! Loss-based layer selection: SLEB's iterative elimination and Shortened LLaMA's one-shot
//! perplexity criterion.
//!
//! Both score a candidate layer by the negative log-likelihood of the calibration set with the
//! layer removed ([`SkipLayersForward::forward_skipping`], no copy of the model). Semantics of
//! `sleb()` in `sleb.py` of the official SLEB repository (jiwonsong-dev/SLEB):
//!
//! - the score is the NLL summed over every sample's scored tokens;
//! - candidates are scanned in ascending layer order and a strictly lower score replaces the
//!   best so far, so the lowest layer wins a tie;
//! - protected layers (SLEB's `early_barrier` / `latter_barrier`: the first and the last layer)
//!   are never candidates.

use std::fmt::Display;
use std::time::{Duration, Instant};

use burn::prelude::Backend;
use interlace_core::{LayerSet, SkipLayersForward};
use serde::Serialize;

use crate::nll::{nll_sum, NllSum};
use crate::SimilarityError;

/// How the candidates are scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LossRule {
    /// SLEB (Song et al., ICML 2024): drop one layer per round, the one whose removal raises the
    /// calibration NLL least, then score the remaining layers again with it removed.
    /// `Σ_r (C − r)` scoring passes per sample for `C` candidates.
    Sleb,
    /// Shortened LLaMA's PPL criterion (Kim et al., 2024): score every layer once with only
    /// itself removed and drop the `n` cheapest (ties: lower layer first). `C` passes per sample.
    OneShot,
}

impl LossRule {
    /// The strategy name written into `plan.json`.
    pub fn name(self) -> &'static str {
        match self {
            LossRule::Sleb => "sleb",
            LossRule::OneShot => "ppl",
        }
    }
}

/// What to select.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LossSelectionConfig {
    /// The rule.
    pub rule: LossRule,
    /// Number of layers to drop.
    pub n_drop: usize,
    /// Layers that are never dropped.
    pub protect: Vec<usize>,
}

impl LossSelectionConfig {
    /// SLEB's default protection: the first and the last layer (`early_barrier = latter_barrier = 1`).
    pub fn sleb_barriers(n_layers: usize) -> Vec<usize> {
        match n_layers {
            0 => Vec::new(),
            1 => vec![0],
            n => vec![0, n - 1],
        }
    }
}

/// One candidate's score: the calibration NLL with `layer` removed (on top of the layers
/// removed in earlier rounds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CandidateScore {
    /// The candidate layer (index in the unpruned stack).
    pub layer: usize,
    /// Summed NLL over the calibration set with it removed.
    pub nll: f64,
}

/// One round of scoring.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LossRound {
    /// Layers already removed when the round ran (empty for the one-shot rule).
    pub removed_before: Vec<usize>,
    /// Every candidate's score, in ascending layer order.
    pub scores: Vec<CandidateScore>,
    /// The layers this round dropped (one for SLEB, all `n` for the one-shot rule).
    pub chosen: Vec<usize>,
}

/// The outcome of a loss-based selection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LossSelection {
    /// The rule used.
    pub rule: LossRule,
    /// Number of layers of the stack.
    pub n_layers: usize,
    /// Protected layers.
    pub protect: Vec<usize>,
    /// Calibration NLL and scored tokens of the unpruned model.
    pub baseline: NllSum,
    /// Calibration NLL of the model with every chosen layer removed.
    pub pruned_nll: f64,
    /// Dropped layers in the order they were chosen.
    pub order: Vec<usize>,
    /// Every round's scores.
    pub rounds: Vec<LossRound>,
    /// Forward passes run (one per sample per scored layer set).
    pub passes: usize,
    /// Wall time.
    #[serde(serialize_with = "seconds")]
    pub wall: Duration,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Forward passes [`select_by_loss`] runs for `samples` samples: known up front, for a
/// progress bar.
pub fn loss_selection_passes(config: &LossSelectionConfig, n_layers: usize, samples: usize) -> usize {
    let candidates = n_layers.saturating_sub(config.protect.len());
    let scoring = match config.rule {
        LossRule::Sleb => (0..config.n_drop).map(|r| candidates.saturating_sub(r)).sum(),
        LossRule::OneShot => candidates,
    };
    // + the baseline and the final pruned model.
    (scoring + 2) * samples
}

/// Selects `config.n_drop` layers of `model` by calibration loss over `inputs`.
///
/// `on_pass` is called after every forward pass (for a progress bar; see
/// [`loss_selection_passes`] for the total).
pub fn select_by_loss<B, M>(model: &M, inputs: &[M::Input], config: &LossSelectionConfig, on_pass: &mut dyn FnMut()) -> Result<LossSelection, SimilarityError>
where
    B: Backend,
    M: SkipLayersForward<B>,
    M::Error: Display,
{
    let start = Instant::now();
    let n_layers = model.num_layers();
    let protect = LayerSet::new(config.protect.iter().copied(), n_layers)?;
    let candidates: Vec<usize> = (0..n_layers).filter(|l| !protect.contains(*l)).collect();
    validate(config, n_layers, inputs.len(), candidates.len())?;
    let mut scorer = Scorer { model, inputs, on_pass, passes: 0, _backend: std::marker::PhantomData };
    let baseline = scorer.nll(&[])?;
    let mut rounds = Vec::new();
    let mut order = Vec::new();
    match config.rule {
        LossRule::Sleb => {
            for _ in 0..config.n_drop {
                let live: Vec<usize> = candidates.iter().copied().filter(|l| !order.contains(l)).collect();
                let scores = scorer.score(&live, &order)?;
                let best = lowest_first(&scores)[0];
                rounds.push(LossRound { removed_before: order.clone(), scores, chosen: vec![best] });
                order.push(best);
            }
        }
        LossRule::OneShot => {
            let scores = scorer.score(&candidates, &[])?;
            order = lowest_first(&scores).into_iter().take(config.n_drop).collect();
            rounds.push(LossRound { removed_before: Vec::new(), scores, chosen: order.clone() });
        }
    }
    let pruned_nll = scorer.nll(&order)?.nll;
    Ok(LossSelection {
        rule: config.rule,
        n_layers,
        protect: protect.as_slice().to_vec(),
        baseline,
        pruned_nll,
        order,
        rounds,
        passes: scorer.passes,
        wall: start.elapsed(),
    })
}

fn validate(config: &LossSelectionConfig, n_layers: usize, samples: usize, candidates: usize) -> Result<(), SimilarityError> {
    let fail = |reason: String| Err(SimilarityError::Selection { strategy: config.rule.name().to_string(), reason });
    if samples == 0 {
        return fail("no calibration sample to score".into());
    }
    if config.n_drop == 0 {
        return fail("drops no layer".into());
    }
    if config.n_drop > candidates || config.n_drop >= n_layers {
        return fail(format!("cannot drop {} of {n_layers} layers: {candidates} are not protected (protected: {:?})", config.n_drop, config.protect));
    }
    Ok(())
}

/// The calibration NLL of `model` with `removed` left out, summed over `inputs` (one forward
/// pass each, reported to `on_pass`).
pub fn calibration_nll<B, M>(model: &M, inputs: &[M::Input], removed: &[usize], on_pass: &mut dyn FnMut()) -> Result<NllSum, SimilarityError>
where
    B: Backend,
    M: SkipLayersForward<B>,
    M::Error: Display,
{
    let mut scorer = Scorer { model, inputs, on_pass, passes: 0, _backend: std::marker::PhantomData };
    scorer.nll(removed)
}

/// Layers by score, lowest first; equal scores keep the lower layer first (SLEB's strict `<`).
fn lowest_first(scores: &[CandidateScore]) -> Vec<usize> {
    let mut sorted = scores.to_vec();
    sorted.sort_by(|a, b| a.nll.total_cmp(&b.nll).then(a.layer.cmp(&b.layer)));
    sorted.into_iter().map(|s| s.layer).collect()
}

struct Scorer<'a, B: Backend, M: SkipLayersForward<B>> {
    model: &'a M,
    inputs: &'a [M::Input],
    on_pass: &'a mut dyn FnMut(),
    passes: usize,
    _backend: std::marker::PhantomData<B>,
}

impl<B: Backend, M: SkipLayersForward<B>> Scorer<'_, B, M>
where
    M::Error: Display,
{
    /// Summed NLL over every input with `removed` left out.
    fn nll(&mut self, removed: &[usize]) -> Result<NllSum, SimilarityError> {
        let skip = LayerSet::for_removal(removed.iter().copied(), self.model.num_layers())?;
        let mut total = NllSum::default();
        for input in self.inputs {
            let logits = self.model.forward_skipping(input, &skip).map_err(|e| SimilarityError::Model(e.to_string()))?;
            total = total + nll_sum(logits, &self.model.text_targets(input))?;
            self.passes += 1;
            (self.on_pass)();
        }
        Ok(total)
    }

    /// Each of `live`'s scores with it removed on top of `removed`.
    fn score(&mut self, live: &[usize], removed: &[usize]) -> Result<Vec<CandidateScore>, SimilarityError> {
        live.iter()
            .map(|&layer| {
                let with: Vec<usize> = removed.iter().copied().chain([layer]).collect();
                Ok(CandidateScore { layer, nll: self.nll(&with)?.nll })
            })
            .collect()
    }
}
