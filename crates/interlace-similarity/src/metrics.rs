//! The redundancy metrics reported from one calibration pass.

use serde::Serialize;

/// A per-layer redundancy metric, all derived from the same cosine similarities.
///
/// Every metric is averaged over the sample's tokens, then over samples. Cosine and block
/// influence are linear in the cosine, so they follow from the token-averaged cosine; the angular
/// distance is not, so the pass computes it for every token (`arccos` of each token's cosine)
/// before averaging, as Gromov et al. define it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Cosine similarity of `h_i` and `h_{i+k}`, per token, averaged over tokens (INTERLACE;
    /// the value stored in the pack files).
    Cosine,
    /// `arccos(cos) / π` (Gromov et al., "The Unreasonable Ineffectiveness of the Deeper Layers").
    AngularDistance,
    /// `1 − cos` (ShortGPT's Block Influence).
    BlockInfluence,
}

impl Metric {
    /// All metrics, in report order.
    pub const ALL: [Metric; 3] = [Metric::Cosine, Metric::AngularDistance, Metric::BlockInfluence];

    /// The metric's value for one cosine (of one token, or the token-averaged cosine for the
    /// linear metrics).
    pub fn from_cosine(self, cos: f64) -> f64 {
        match self {
            Metric::Cosine => cos,
            // Clamp: f32 rounding can push a cosine a hair above 1.
            Metric::AngularDistance => cos.clamp(-1.0, 1.0).acos() / std::f64::consts::PI,
            Metric::BlockInfluence => 1.0 - cos,
        }
    }

    /// The name used in `report.json`.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::AngularDistance => "angular_distance",
            Metric::BlockInfluence => "block_influence",
        }
    }
}
