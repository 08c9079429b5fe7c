//! A terminal progress bar for calibration runs.

use indicatif::{ProgressBar, ProgressStyle};

use crate::run::CalibrationEvent;

const TEMPLATE: &str = "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} samples · {per_sec} · ETA {eta} {msg}";

/// Progress bar on stderr with samples/s and ETA; skipped records are printed above it with
/// their line. Hidden automatically when stderr is not a terminal.
#[derive(Debug)]
pub struct CalibrationProgress {
    bar: ProgressBar,
    data: String,
}

impl CalibrationProgress {
    /// A bar for `total` samples of the data file `data` (used in skip messages).
    pub fn new(total: usize, data: impl Into<String>) -> Self {
        let bar = ProgressBar::new(total as u64);
        let style = ProgressStyle::with_template(TEMPLATE).unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        Self { bar, data: data.into() }
    }

    /// Advances on every measured or skipped record.
    pub fn on_event(&self, event: &CalibrationEvent) {
        match event {
            CalibrationEvent::Measured { tokens } => self.bar.set_message(format!("{tokens} tokens")),
            CalibrationEvent::Skipped(s) => self.bar.println(format!("skipped {}:{}: {}", self.data, s.line, s.reason)),
        }
        self.bar.inc(1);
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_is_valid() {
        assert!(ProgressStyle::with_template(TEMPLATE).is_ok());
        let progress = CalibrationProgress::new(2, "data.jsonl");
        progress.on_event(&CalibrationEvent::Measured { tokens: 3 });
        progress.finish();
    }
}
