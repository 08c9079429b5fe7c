//! Accumulating per-sample similarities over a calibration set.

use std::fmt::Display;

use burn::prelude::Backend;
use interlace_core::{ObservedForward, TapPoint};

use crate::metrics::Metric;
use crate::observer::PackObserver;
use crate::stats::{RunningStats, Summary};
use crate::SimilarityError;

/// What to measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalibrationConfig {
    /// Pack distances `k` (sorted, distinct, each `≥ 1`); default `[1, 2, 3]`.
    pub packs: Vec<usize>,
    /// Which hidden states the model hands out (default: transformers' `output_hidden_states`).
    pub tap: TapPoint,
}

impl Default for CalibrationConfig {
    fn default() -> Self {
        Self { packs: vec![1, 2, 3], tap: TapPoint::Transformers }
    }
}

/// The similarities of one sample: `cosine[p][i]` = token-averaged cos(h_i, h_{i+k_p}).
#[derive(Debug, Clone, PartialEq)]
pub struct SampleSimilarity {
    /// Number of tokens of the sample.
    pub tokens: usize,
    /// Per pack (in [`CalibrationConfig::packs`] order), per layer `i = 0..=L-k`.
    pub cosine: Vec<Vec<f64>>,
    /// Token-averaged angular distance `arccos(cos) / π` of each token (Gromov et al.), laid
    /// out as `cosine`.
    pub angular: Vec<Vec<f64>>,
    /// Cosine of the last token only (PruneMe), laid out as `cosine`.
    pub last_token_cosine: Vec<Vec<f64>>,
}

/// Everything measured for one pack distance `k`.
#[derive(Debug, Clone, PartialEq)]
pub struct PackResult {
    /// The distance `k`.
    pub k: usize,
    /// `per_sample[i]`: the token-averaged cosine of every sample, in processing order, for
    /// layers `i = 0..=L-k` (the last one compares with the final hidden state).
    pub per_sample: Vec<Vec<f64>>,
    /// The same for the token-averaged angular distance (each token's `arccos(cos) / π`).
    pub per_sample_angular: Vec<Vec<f64>>,
    /// The same for the angular distance of the last token alone (PruneMe).
    pub per_sample_last_token_angular: Vec<Vec<f64>>,
    /// Per metric (in [`Metric::ALL`] order), per layer: mean, std and count over samples.
    pub summaries: Vec<(Metric, Vec<Summary>)>,
}

/// The outcome of a calibration run.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrationResult {
    /// Number of decoder layers `L`.
    pub n_layers: usize,
    /// The tap point used.
    pub tap: TapPoint,
    /// One entry per requested pack.
    pub packs: Vec<PackResult>,
    /// Samples measured.
    pub samples: usize,
    /// Tokens over all samples measured.
    pub tokens: u64,
}

/// Runs samples through a model, one forward pass each, and accumulates every pack at once.
#[derive(Debug, Clone)]
pub struct Calibrator {
    config: CalibrationConfig,
    n_layers: usize,
    per_sample: Vec<Vec<Vec<f64>>>,
    per_sample_angular: Vec<Vec<Vec<f64>>>,
    per_sample_last: Vec<Vec<Vec<f64>>>,
    stats: Vec<Vec<[RunningStats; 3]>>,
    samples: usize,
    tokens: u64,
}

impl Calibrator {
    /// A calibrator for a stack of `n_layers` layers; refuses empty, repeated, zero or too
    /// large pack distances.
    pub fn new(config: CalibrationConfig, n_layers: usize) -> Result<Self, SimilarityError> {
        let mut packs = config.packs.clone();
        packs.sort_unstable();
        packs.dedup();
        let bad = |reason: String| Err(SimilarityError::InvalidOption { option: "--packs", reason });
        if packs.is_empty() {
            return bad("at least one pack distance is required".into());
        }
        if packs.len() != config.packs.len() {
            return bad(format!("{:?} repeats a distance", config.packs));
        }
        if let Some(&k) = packs.iter().find(|&&k| k == 0 || k > n_layers) {
            return bad(format!("distance {k} is outside 1..={n_layers} for a {n_layers}-layer stack"));
        }
        let config = CalibrationConfig { packs, ..config };
        let per_sample: Vec<Vec<Vec<f64>>> = config.packs.iter().map(|&k| vec![Vec::new(); n_layers + 1 - k]).collect();
        let stats = config.packs.iter().map(|&k| vec![[RunningStats::default(); 3]; n_layers + 1 - k]).collect();
        let (per_sample_angular, per_sample_last) = (per_sample.clone(), per_sample.clone());
        Ok(Self { config, n_layers, per_sample, per_sample_angular, per_sample_last, stats, samples: 0, tokens: 0 })
    }

    /// The (sorted) configuration.
    pub fn config(&self) -> &CalibrationConfig {
        &self.config
    }

    /// Runs **one** forward pass of `input` with a [`PackObserver`] attached and adds the
    /// sample's similarities for every pack. The pass stops at the last hidden state
    /// ([`ObservedForward::observe_hidden_states`]): no logits are computed.
    pub fn run_sample<B, M>(&mut self, model: &M, input: &M::Input) -> Result<SampleSimilarity, SimilarityError>
    where
        B: Backend,
        M: ObservedForward<B>,
        M::Error: Display,
    {
        let mut observer = PackObserver::<B>::new(&self.config.packs, self.n_layers);
        model.observe_hidden_states(input, self.config.tap, &mut observer).map_err(|e| SimilarityError::Model(e.to_string()))?;
        if !observer.is_complete() {
            return Err(SimilarityError::Model(format!("the model handed out fewer than {} hidden states", self.n_layers + 1)));
        }
        let sample = SampleSimilarity {
            tokens: observer.tokens().unwrap_or(0),
            cosine: observer.means(),
            angular: observer.angular_means(),
            last_token_cosine: observer.last_token_cosines(),
        };
        self.add(&sample);
        Ok(sample)
    }

    fn add(&mut self, sample: &SampleSimilarity) {
        for (p, row) in sample.cosine.iter().enumerate() {
            for (i, &cos) in row.iter().enumerate() {
                let angular = sample.angular[p][i];
                self.per_sample[p][i].push(cos);
                self.per_sample_angular[p][i].push(angular);
                self.per_sample_last[p][i].push(Metric::AngularDistance.from_cosine(sample.last_token_cosine[p][i]));
                for (m, metric) in Metric::ALL.iter().enumerate() {
                    // The angular distance is per token, then averaged: not a function of the
                    // token-averaged cosine.
                    let value = if *metric == Metric::AngularDistance { angular } else { metric.from_cosine(cos) };
                    self.stats[p][i][m].push(value);
                }
            }
        }
        self.samples += 1;
        self.tokens += sample.tokens as u64;
    }

    /// Samples measured so far.
    pub fn samples(&self) -> usize {
        self.samples
    }

    /// The accumulated result.
    pub fn finish(self) -> CalibrationResult {
        let packs = self
            .config
            .packs
            .iter()
            .zip(self.per_sample)
            .zip(self.per_sample_angular.into_iter().zip(self.per_sample_last))
            .zip(self.stats)
            .map(|(((&k, per_sample), (per_sample_angular, per_sample_last_token_angular)), stats)| {
                let summaries = Metric::ALL.iter().enumerate().map(|(m, &metric)| (metric, stats.iter().map(|s| s[m].summary()).collect())).collect();
                PackResult { k, per_sample, per_sample_angular, per_sample_last_token_angular, summaries }
            })
            .collect();
        CalibrationResult { n_layers: self.n_layers, tap: self.config.tap, packs, samples: self.samples, tokens: self.tokens }
    }
}
