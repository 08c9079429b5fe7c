//! `similarity.png`: per-layer mean cosine of every pack.

use std::path::Path;

use interlace_plot::{LineChart, Series};

use crate::calibrate::CalibrationResult;
use crate::metrics::Metric;
use crate::SimilarityError;

/// Draws the per-layer mean cosine of each pack (x: first layer `i`, y: mean cos(h_i, h_{i+k}))
/// into a PNG at `path`.
pub fn plot_similarity(path: &Path, result: &CalibrationResult) -> Result<(), SimilarityError> {
    let chart = LineChart {
        title: format!("Mean cosine similarity of h_i and h_(i+k), {} samples", result.samples),
        x_label: "layer i".into(),
        y_label: "cosine".into(),
        series: series(result),
        size: (960, 540),
    };
    chart.save_png(path).map_err(|e| SimilarityError::Plot { path: e.path, reason: e.reason })
}

fn series(result: &CalibrationResult) -> Vec<Series> {
    result
        .packs
        .iter()
        .map(|pack| {
            let cosine = pack.summaries.iter().find(|(m, _)| *m == Metric::Cosine).map(|(_, s)| s.clone()).unwrap_or_default();
            let points = cosine.iter().enumerate().map(|(i, s)| (i as f64, s.mean)).collect();
            Series { label: format!("pack {}", pack.k), points, markers: true }
        })
        .collect()
}
