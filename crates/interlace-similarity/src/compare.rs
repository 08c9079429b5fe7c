//! Every selection strategy on the same calibration data: which layers each drops, where they
//! agree, and the calibration loss of each pruned model before any adaptation.

use std::collections::HashMap;
use std::fmt::{Display, Write as _};

use burn::prelude::Backend;
use interlace_core::SkipLayersForward;
use serde::Serialize;

use crate::loss_select::{calibration_nll, select_by_loss, LossRule, LossSelectionConfig};
use crate::nll::NllSum;
use crate::select::{n_drop_for, select_with, SelectOptions, Strategy};
use crate::tables::SimilarityTables;
use crate::SimilarityError;

/// What to compare.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareConfig {
    /// Fractions of layers to drop; each gives `floor(L × ratio)` drops.
    pub ratios: Vec<f64>,
    /// Seed of the `random` strategy.
    pub seed: u64,
    /// Layers no strategy may drop; `None` leaves each strategy its own default (SLEB's first and
    /// last layer, nothing for the others).
    pub protect: Option<Vec<usize>>,
}

/// One strategy at one ratio.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompareRow {
    /// Strategy name (as in `plan.json`).
    pub strategy: String,
    /// The requested ratio.
    pub ratio: f64,
    /// Dropped layers (sorted), or `None` when the strategy cannot satisfy the request.
    pub drop: Option<Vec<usize>>,
    /// Why the strategy gave no plan.
    pub error: Option<String>,
    /// Calibration NLL per scored token of the pruned model, before adaptation.
    pub nll_per_token: Option<f64>,
}

/// Where the strategies agree at one ratio.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Agreement {
    /// The ratio.
    pub ratio: f64,
    /// Layers every strategy that gave a plan drops.
    pub dropped_by_all: Vec<usize>,
    /// `votes[l]`: how many strategies drop layer `l`.
    pub votes: Vec<usize>,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Number of decoder layers.
    pub n_layers: usize,
    /// Calibration NLL of the unpruned model.
    pub baseline: NllSum,
    /// One row per strategy and ratio.
    pub rows: Vec<CompareRow>,
    /// One entry per ratio.
    pub agreement: Vec<Agreement>,
    /// Forward passes run (SLEB's scoring and one loss pass per distinct drop set; the similarity
    /// pass is the caller's).
    pub passes: usize,
}

/// Runs every similarity strategy on `tables` (measured on the same `inputs`), SLEB and the
/// one-shot loss rule on `model`, and scores every resulting plan by calibration NLL.
pub fn compare_strategies<B, M>(
    model: &M,
    inputs: &[M::Input],
    tables: &SimilarityTables,
    config: &CompareConfig,
    on_pass: &mut dyn FnMut(),
) -> Result<Comparison, SimilarityError>
where
    B: Backend,
    M: SkipLayersForward<B>,
    M::Error: Display,
{
    let n_layers = tables.n_layers;
    let mut passes = 0;
    let mut counted = || {
        passes += 1;
        on_pass();
    };
    let baseline = calibration_nll(model, inputs, &[], &mut counted)?;
    let mut rows = Vec::new();
    for &ratio in &config.ratios {
        let n_drop = n_drop_for(n_layers, ratio)?;
        let options = SelectOptions { protect: config.protect.clone().unwrap_or_default(), finetune: None };
        for strategy in Strategy::ALL {
            let plan = select_with(tables, strategy, ratio, config.seed, &options).map(|plan| plan.drop);
            rows.push(row(strategy.name(), ratio, plan));
        }
        for rule in [LossRule::Sleb, LossRule::OneShot] {
            let protect = config.protect.clone().unwrap_or_else(|| LossSelectionConfig::sleb_barriers(n_layers));
            let selection = select_by_loss(model, inputs, &LossSelectionConfig { rule, n_drop, protect }, &mut counted);
            // The loss rules already scored their pruned model: keep it instead of a second pass.
            let scored = selection.as_ref().ok().map(|s| (sorted(s.order.clone()), s.pruned_nll));
            let mut row = row(rule.name(), ratio, selection.map(|s| sorted(s.order)));
            row.nll_per_token = scored.map(|(_, nll)| nll / baseline.tokens as f64);
            rows.push(row);
        }
    }
    // Strategies often agree: each distinct drop set is scored once.
    let mut scored: HashMap<Vec<usize>, f64> = HashMap::new();
    for row in &rows {
        if let (Some(drop), Some(nll)) = (&row.drop, row.nll_per_token) {
            scored.insert(drop.clone(), nll);
        }
    }
    for row in rows.iter_mut().filter(|r| r.nll_per_token.is_none()) {
        if let Some(drop) = &row.drop {
            let nll = match scored.get(drop) {
                Some(&nll) => nll,
                None => calibration_nll(model, inputs, drop, &mut counted)?.mean(),
            };
            scored.insert(drop.clone(), nll);
            row.nll_per_token = Some(nll);
        }
    }
    let agreement = config.ratios.iter().map(|&ratio| agreement(n_layers, ratio, &rows)).collect();
    Ok(Comparison { n_layers, baseline, rows, agreement, passes })
}

/// An upper bound of the forward passes [`compare_strategies`] runs (every strategy giving a
/// plan), for a progress bar.
pub fn comparison_passes(config: &CompareConfig, n_layers: usize, samples: usize) -> usize {
    let protect = config.protect.clone().unwrap_or_else(|| LossSelectionConfig::sleb_barriers(n_layers));
    let per_ratio = |ratio: f64| {
        let n_drop = n_drop_for(n_layers, ratio).unwrap_or(0);
        let loss = |rule| crate::loss_select::loss_selection_passes(&LossSelectionConfig { rule, n_drop, protect: protect.clone() }, n_layers, samples);
        loss(LossRule::Sleb) + loss(LossRule::OneShot) + Strategy::ALL.len() * samples
    };
    samples + config.ratios.iter().map(|&r| per_ratio(r)).sum::<usize>()
}

fn sorted(mut layers: Vec<usize>) -> Vec<usize> {
    layers.sort_unstable();
    layers
}

fn row(strategy: &str, ratio: f64, drop: Result<Vec<usize>, SimilarityError>) -> CompareRow {
    let (drop, error) = match drop {
        Ok(drop) => (Some(drop), None),
        Err(e) => (None, Some(e.to_string())),
    };
    CompareRow { strategy: strategy.to_string(), ratio, drop, error, nll_per_token: None }
}

fn agreement(n_layers: usize, ratio: f64, rows: &[CompareRow]) -> Agreement {
    let plans: Vec<&Vec<usize>> = rows.iter().filter(|r| r.ratio == ratio).filter_map(|r| r.drop.as_ref()).collect();
    let votes: Vec<usize> = (0..n_layers).map(|l| plans.iter().filter(|d| d.contains(&l)).count()).collect();
    let dropped_by_all = (0..n_layers).filter(|&l| !plans.is_empty() && votes[l] == plans.len()).collect();
    Agreement { ratio, dropped_by_all, votes }
}

impl Comparison {
    /// The comparison as a Markdown report: one table per ratio (strategy, dropped layers,
    /// calibration NLL per token and its change from the unpruned model), then the agreement.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let base = self.baseline.mean();
        let _ = writeln!(md, "# Layer-selection strategies compared\n");
        let _ = writeln!(md, "{} layers; calibration NLL per token of the unpruned model: {base:.4} ({} tokens).\n", self.n_layers, self.baseline.tokens);
        for agreement in &self.agreement {
            let ratio = agreement.ratio;
            let _ = writeln!(md, "## ratio {ratio}\n\n| strategy | dropped layers | NLL / token | Δ vs unpruned |\n|---|---|---|---|");
            for row in self.rows.iter().filter(|r| r.ratio == ratio) {
                match (&row.drop, row.nll_per_token) {
                    (Some(drop), Some(nll)) => {
                        let _ = writeln!(md, "| {} | {drop:?} | {nll:.4} | {:+.4} |", row.strategy, nll - base);
                    }
                    _ => {
                        let reason = row.error.as_deref().unwrap_or("no plan").replace('|', "\\|");
                        let _ = writeln!(md, "| {} | — ({reason}) | — | — |", row.strategy);
                    }
                }
            }
            let _ = writeln!(md, "\nDropped by every strategy with a plan: {:?}. Votes per layer: {:?}.\n", agreement.dropped_by_all, agreement.votes);
        }
        md
    }
}
