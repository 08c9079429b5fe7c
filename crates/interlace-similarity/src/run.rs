//! Streaming a calibration set through a model.

use std::fmt::Display;
use std::time::{Duration, Instant};

use burn::prelude::Backend;
use interlace_core::ObservedForward;
use serde::Serialize;

use crate::calibrate::Calibrator;
use crate::data::CalibrationData;
use crate::input::InputBuilder;
use crate::SimilarityError;

/// A record left out of the measurement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedSample {
    /// 1-based line of the record in the data file.
    pub line: usize,
    /// Why it was skipped.
    pub reason: String,
}

/// What happened while calibrating, for progress display.
#[derive(Debug, Clone, PartialEq)]
pub enum CalibrationEvent {
    /// A sample was measured (`tokens` long).
    Measured {
        /// Tokens of the sample.
        tokens: usize,
    },
    /// A record was skipped (non-strict mode).
    Skipped(SkippedSample),
}

/// Counters of a finished run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// Records measured.
    pub used: usize,
    /// Records skipped, with their reasons.
    pub skipped: Vec<SkippedSample>,
    /// Wall time of the run.
    pub wall: Duration,
}

/// Measures the records `order` of `data`, one forward pass each, streaming: only the current
/// record and the running statistics are in memory.
///
/// A malformed record or an unusable image is reported through `on_event` and skipped, or
/// returned as an error when `strict`. Model failures are always fatal.
pub fn calibrate<B, M, I>(
    model: &M,
    builder: &I,
    data: &mut CalibrationData,
    order: &[usize],
    calibrator: &mut Calibrator,
    strict: bool,
    on_event: &mut dyn FnMut(&CalibrationEvent),
) -> Result<RunSummary, SimilarityError>
where
    B: Backend,
    M: ObservedForward<B>,
    M::Error: Display,
    I: InputBuilder<Input = M::Input>,
{
    let start = Instant::now();
    let mut summary = RunSummary { used: 0, skipped: Vec::new(), wall: Duration::ZERO };
    for &index in order {
        let input = data
            .record(index)
            .and_then(|record| builder.build(&record).map_err(|reason| SimilarityError::Record { path: data.path().to_path_buf(), line: record.line, reason }));
        let input = match input {
            Ok(input) => input,
            Err(error @ SimilarityError::Record { .. }) if !strict => {
                let skipped = SkippedSample { line: data.line_of(index), reason: record_reason(error) };
                on_event(&CalibrationEvent::Skipped(skipped.clone()));
                summary.skipped.push(skipped);
                continue;
            }
            Err(error) => return Err(error),
        };
        let sample = calibrator.run_sample(model, &input)?;
        summary.used += 1;
        on_event(&CalibrationEvent::Measured { tokens: sample.tokens });
    }
    summary.wall = start.elapsed();
    Ok(summary)
}

fn record_reason(error: SimilarityError) -> String {
    match error {
        SimilarityError::Record { reason, .. } => reason,
        other => other.to_string(),
    }
}
