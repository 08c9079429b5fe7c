//! `loss.png`: the training loss per step, read back from `log.jsonl`.

use std::path::Path;

use interlace_plot::{LineChart, Series};

use crate::{StepLog, TrainError};

/// Draws the loss of every step logged in `log` (JSONL of [`StepLog`]) into `png`.
pub fn loss_curve(log: &Path, png: &Path) -> Result<(), TrainError> {
    let text = std::fs::read_to_string(log).map_err(|e| TrainError::Checkpoint(format!("{}: {e}", log.display())))?;
    let points: Vec<(f64, f64)> = text.lines().filter_map(|line| serde_json::from_str::<StepLog>(line).ok()).map(|s| (s.step as f64, s.loss)).collect();
    let chart = LineChart {
        title: format!("Training loss, {} steps", points.len()),
        x_label: "optimizer step".into(),
        y_label: "loss (assistant tokens)".into(),
        series: vec![Series { label: "loss".into(), points, markers: false }],
        size: (960, 540),
    };
    chart.save_png(png).map_err(|e| TrainError::Checkpoint(e.to_string()))
}
