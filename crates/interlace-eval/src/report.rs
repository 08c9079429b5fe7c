//! The comparison of a model with its base: `results.json`, the model-card table and the
//! per-question predictions files.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::evaluate::{BenchmarkResult, ScoringMode};
use crate::loss::HeldOutLoss;
use crate::sampling::Sampling;
use crate::speed::SpeedReport;
use crate::EvalError;

/// One line of the table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchmarkRow {
    /// Benchmark name.
    pub name: String,
    /// What the scores measure.
    pub metric: String,
    /// The base model's score, when a base was evaluated and the benchmark is scored by rules.
    pub base_score: Option<f64>,
    /// The model's score; `None` when only a judge can score the benchmark.
    pub score: Option<f64>,
    /// `100 · score / base_score`; `None` without both scores or when the base scored 0.
    pub relative: Option<f64>,
    /// Questions evaluated.
    pub evaluated: usize,
    /// Rows skipped.
    pub malformed: usize,
    /// Time to first token and decode speed of the model and its base on the benchmark's
    /// first question with an image.
    pub speed: Option<SpeedComparison>,
    /// Why the row has no score, when it has none.
    pub judge_note: Option<String>,
}

/// Speed of the model and its base on the same prompt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpeedComparison {
    /// The evaluated model.
    pub model: SpeedReport,
    /// The base model.
    pub base: Option<SpeedReport>,
    /// `base TTFT / model TTFT`: the paper's TTFT speed-up; above 1 means the model answers
    /// sooner.
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
    /// How replies were produced.
    pub mode: ScoringMode,
    /// How generated tokens were chosen.
    pub sampling: Sampling,
    /// The table, one row per benchmark.
    pub rows: Vec<BenchmarkRow>,
    /// Mean of the model's scores over the rows that have one.
    pub average_score: Option<f64>,
    /// Mean of the base's scores over the same rows.
    pub average_base_score: Option<f64>,
    /// Mean of the rows' relative performance: the paper's "relative performance".
    pub average_relative: Option<f64>,
    /// Mean TTFT speed-up over the rows.
    pub average_ttft_speedup: Option<f64>,
    /// The model's per-question results.
    pub results: Vec<BenchmarkResult>,
    /// The base's per-question results.
    pub base_results: Vec<BenchmarkResult>,
    /// Held-out loss of the model.
    pub heldout: Option<HeldOutLoss>,
    /// Held-out loss of the base.
    pub base_heldout: Option<HeldOutLoss>,
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let values: Vec<f64> = values.collect();
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

impl EvalReport {
    /// Builds the table from the model's results and (same benchmarks, same order) the base's.
    pub fn new(
        model: String,
        base: Option<String>,
        mode: ScoringMode,
        sampling: Sampling,
        results: Vec<BenchmarkResult>,
        base_results: Vec<BenchmarkResult>,
    ) -> Self {
        let rows: Vec<BenchmarkRow> = results
            .iter()
            .map(|r| {
                let base = base_results.iter().find(|b| b.name == r.name);
                let base_score = base.and_then(|b| b.score);
                let speed = r.speed.clone().map(|s| SpeedComparison::new(s, base.and_then(|b| b.speed.clone())));
                BenchmarkRow {
                    name: r.name.clone(),
                    metric: r.metric.clone(),
                    base_score,
                    score: r.score,
                    relative: r.score.zip(base_score.filter(|&b| b > 0.0)).map(|(s, b)| 100.0 * s / b),
                    evaluated: r.evaluated,
                    malformed: r.malformed.len(),
                    speed,
                    judge_note: r.judge_note.clone(),
                }
            })
            .collect();
        Self {
            model,
            base,
            mode,
            sampling,
            average_score: mean(rows.iter().filter_map(|r| r.score)),
            average_base_score: mean(rows.iter().filter(|r| r.score.is_some()).filter_map(|r| r.base_score)),
            average_relative: mean(rows.iter().filter_map(|r| r.relative)),
            average_ttft_speedup: mean(rows.iter().filter_map(|r| r.speed.as_ref().and_then(|s| s.ttft_speedup))),
            rows,
            results,
            base_results,
            heldout: None,
            base_heldout: None,
        }
    }

    /// The Markdown report: the model-card table (benchmark, base, pruned, relative, speed),
    /// then held-out loss.
    pub fn markdown(&self) -> String {
        let num = |v: Option<f64>, digits: usize| v.map(|v| format!("{v:.digits$}")).unwrap_or_else(|| "n/a".into());
        let mut md = String::new();
        let _ = writeln!(md, "# Evaluation of `{}`\n", self.model);
        let how = match self.mode {
            ScoringMode::Generate => "answers generated and scored by VLMEvalKit's rules (no judge model)",
            ScoringMode::LogLikelihood => "FAST MODE, not VLMEvalKit's: closed questions answered by answer log-likelihood",
        };
        let decoding = if self.sampling.is_greedy() {
            "greedy decoding".to_string()
        } else {
            let s = &self.sampling;
            format!("sampling: temperature {}, top-p {}, top-k {}, presence penalty {}, seed {}", s.temperature, s.top_p, s.top_k, s.presence_penalty, s.seed)
        };
        let _ = writeln!(md, "Scoring: {how}; {decoding}.");
        if let Some(base) = &self.base {
            let _ = writeln!(md, "Base: `{base}`. Relative = 100 · score / base score; TTFT speed-up = base TTFT / model TTFT.");
        }
        let _ = writeln!(md, "\n| benchmark | metric | questions | base | pruned | relative (%) | TTFT speed-up | decode tokens/s (base → pruned) |");
        let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|");
        for row in &self.rows {
            let (ttft, decode) = match &row.speed {
                Some(s) => (
                    s.ttft_speedup.map(|v| format!("{v:.2}×")).unwrap_or_else(|| "n/a".into()),
                    match &s.base {
                        Some(b) => format!("{:.1} → {:.1}", b.decode_tokens_per_s, s.model.decode_tokens_per_s),
                        None => format!("{:.1}", s.model.decode_tokens_per_s),
                    },
                ),
                None => ("n/a".into(), "n/a".into()),
            };
            let score = if row.judge_note.is_some() { "needs judge".to_string() } else { num(row.score, 2) };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                row.name,
                row.metric,
                row.evaluated,
                num(row.base_score, 2),
                score,
                num(row.relative, 1),
                ttft,
                decode
            );
        }
        let ttft = self.average_ttft_speedup.map(|v| format!("{v:.2}×")).unwrap_or_else(|| "n/a".into());
        let _ = writeln!(
            md,
            "| **average** | | | {} | {} | {} | {} | |",
            num(self.average_base_score, 2),
            num(self.average_score, 2),
            num(self.average_relative, 1),
            ttft
        );
        for row in self.rows.iter().filter(|r| r.judge_note.is_some()) {
            let _ = writeln!(md, "\n{}: {}", row.name, row.judge_note.as_deref().unwrap_or_default());
        }
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
        md
    }

    /// Writes `results.json` and `results.md` into `dir` (created if missing), each atomically.
    pub fn write(&self, dir: &Path) -> Result<(), EvalError> {
        std::fs::create_dir_all(dir).map_err(|source| EvalError::Io { path: dir.to_path_buf(), source })?;
        let json = serde_json::to_string_pretty(self).map_err(|e| EvalError::Input(format!("cannot serialise the results: {e}")))?;
        write_atomically(&dir.join("results.json"), json.as_bytes())?;
        write_atomically(&dir.join("results.md"), self.markdown().as_bytes())
    }
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`, so a reader
/// never sees half a file and a failure leaves the old one.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), EvalError> {
    let io = |source| EvalError::Io { path: path.to_path_buf(), source };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.partial"));
    std::fs::write(&temporary, bytes).map_err(io)?;
    std::fs::rename(&temporary, path).map_err(io)
}
