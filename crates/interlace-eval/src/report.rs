//! The comparison of a model with its base: `results.json` and the model-card table.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::evaluate::{BenchmarkResult, ScoringMode};
use crate::loss::HeldOutLoss;
use crate::speed::SpeedReport;
use crate::EvalError;

/// One line of the table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchmarkRow {
    /// Benchmark name.
    pub name: String,
    /// The model's score (percent).
    pub score: f64,
    /// The base model's score (percent), when a base was evaluated.
    pub base_score: Option<f64>,
    /// `100 · score / base_score`; `None` without a base or when the base scored 0.
    pub relative: Option<f64>,
    /// Questions evaluated.
    pub evaluated: usize,
    /// Rows skipped.
    pub malformed: usize,
}

/// Speed of the model and its base on the same prompt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpeedComparison {
    /// The evaluated model.
    pub model: SpeedReport,
    /// The base model.
    pub base: Option<SpeedReport>,
    /// `base TTFT / model TTFT`: above 1 means the model answers sooner.
    pub ttft_speedup: Option<f64>,
    /// `model tokens/s / base tokens/s`: above 1 means the model decodes faster.
    pub decode_speedup: Option<f64>,
}

impl SpeedComparison {
    /// Puts the two measurements side by side and computes the ratios.
    pub fn new(model: SpeedReport, base: Option<SpeedReport>) -> Self {
        let ttft_speedup = base.as_ref().map(|b| b.ttft_ms / model.ttft_ms);
        let decode_speedup = base.as_ref().map(|b| model.decode_tokens_per_s / b.decode_tokens_per_s);
        Self { model, base, ttft_speedup, decode_speedup }
    }
}

/// Everything one `interlace eval` run measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    /// The evaluated model (its directory).
    pub model: String,
    /// The base model, if any.
    pub base: Option<String>,
    /// How closed questions were scored.
    pub mode: ScoringMode,
    /// The table, one row per benchmark.
    pub rows: Vec<BenchmarkRow>,
    /// Mean of the model's scores.
    pub average_score: Option<f64>,
    /// Mean of the base's scores.
    pub average_base_score: Option<f64>,
    /// Mean of the rows' relative performance: the model cards' "average relative performance".
    pub average_relative: Option<f64>,
    /// The model's per-question results.
    pub results: Vec<BenchmarkResult>,
    /// The base's per-question results.
    pub base_results: Vec<BenchmarkResult>,
    /// Held-out loss of the model.
    pub heldout: Option<HeldOutLoss>,
    /// Held-out loss of the base.
    pub base_heldout: Option<HeldOutLoss>,
    /// Time to first token and decode speed.
    pub speed: Option<SpeedComparison>,
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let values: Vec<f64> = values.collect();
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

impl EvalReport {
    /// Builds the table from the model's results and (same benchmarks, same order) the base's.
    pub fn new(model: String, base: Option<String>, mode: ScoringMode, results: Vec<BenchmarkResult>, base_results: Vec<BenchmarkResult>) -> Self {
        let rows: Vec<BenchmarkRow> = results
            .iter()
            .map(|r| {
                let base_score = base_results.iter().find(|b| b.name == r.name).map(|b| b.score);
                BenchmarkRow {
                    name: r.name.clone(),
                    score: r.score,
                    base_score,
                    relative: base_score.filter(|&b| b > 0.0).map(|b| 100.0 * r.score / b),
                    evaluated: r.evaluated,
                    malformed: r.malformed.len(),
                }
            })
            .collect();
        Self {
            model,
            base,
            mode,
            average_score: mean(rows.iter().map(|r| r.score)),
            average_base_score: mean(rows.iter().filter_map(|r| r.base_score)),
            average_relative: mean(rows.iter().filter_map(|r| r.relative)),
            rows,
            results,
            base_results,
            heldout: None,
            base_heldout: None,
            speed: None,
        }
    }

    /// The Markdown report: the relative-performance table, then held-out loss and speed.
    pub fn markdown(&self) -> String {
        let num = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "n/a".into());
        let mut md = String::new();
        let _ = writeln!(md, "# Evaluation of `{}`\n", self.model);
        if let Some(base) = &self.base {
            let _ = writeln!(md, "Base: `{base}`. Relative performance = 100 · score / base score.\n");
        }
        let _ = writeln!(md, "| benchmark | questions | score | base score | relative (%) |");
        let _ = writeln!(md, "|---|---:|---:|---:|---:|");
        for row in &self.rows {
            let _ = writeln!(md, "| {} | {} | {:.1} | {} | {} |", row.name, row.evaluated, row.score, num(row.base_score), num(row.relative));
        }
        let _ = writeln!(md, "| **average** | | {} | {} | {} |", num(self.average_score), num(self.average_base_score), num(self.average_relative));
        let skipped: usize = self.rows.iter().map(|r| r.malformed).sum();
        if skipped > 0 {
            let _ = writeln!(md, "\n{skipped} malformed row(s) skipped; see `malformed` in results.json.");
        }
        if let Some(loss) = &self.heldout {
            let _ = writeln!(md, "\n## Held-out loss (assistant tokens)\n");
            let _ = writeln!(md, "| model | examples | tokens | loss | perplexity |");
            let _ = writeln!(md, "|---|---:|---:|---:|---:|");
            let _ = writeln!(md, "| model | {} | {} | {:.4} | {:.2} |", loss.examples, loss.tokens, loss.loss, loss.perplexity);
            if let Some(base) = &self.base_heldout {
                let _ = writeln!(md, "| base | {} | {} | {:.4} | {:.2} |", base.examples, base.tokens, base.loss, base.perplexity);
            }
        }
        if let Some(speed) = &self.speed {
            let _ = writeln!(
                md,
                "\n## Speed ({} prompt tokens, {} decode steps, median of {})\n",
                speed.model.prompt_tokens, speed.model.decode_tokens, speed.model.repeats
            );
            let _ = writeln!(md, "| model | time to first token (ms) | decode (tokens/s) |");
            let _ = writeln!(md, "|---|---:|---:|");
            let _ = writeln!(md, "| model | {:.2} | {:.1} |", speed.model.ttft_ms, speed.model.decode_tokens_per_s);
            if let Some(base) = &speed.base {
                let _ = writeln!(md, "| base | {:.2} | {:.1} |", base.ttft_ms, base.decode_tokens_per_s);
                let _ = writeln!(
                    md,
                    "| **speed-up** | {}× | {}× |",
                    speed.ttft_speedup.map(|v| format!("{v:.2}")).unwrap_or_default(),
                    speed.decode_speedup.map(|v| format!("{v:.2}")).unwrap_or_default()
                );
            }
        }
        md
    }

    /// Writes `results.json` and `results.md` into `dir` (created if missing).
    pub fn write(&self, dir: &Path) -> Result<(), EvalError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| EvalError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let json = serde_json::to_string_pretty(self).map_err(|e| EvalError::Input(format!("cannot serialise the results: {e}")))?;
        let json_path = dir.join("results.json");
        std::fs::write(&json_path, json).map_err(io(&json_path))?;
        let md_path = dir.join("results.md");
        std::fs::write(&md_path, self.markdown()).map_err(io(&md_path))?;
        Ok(())
    }
}
