//! Writing `pack{k}.json`, `report.json` and `similarity.png`.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::calibrate::{CalibrationResult, PackResult};
use crate::plot::plot_similarity;
use crate::run::RunSummary;
use crate::SimilarityError;

/// Provenance recorded in `report.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunMetadata {
    /// Model directory.
    pub model: PathBuf,
    /// Calibration data file.
    pub data: PathBuf,
    /// Seed of the subset draw.
    pub seed: u64,
    /// `--sample-portion`, if any.
    pub sample_portion: Option<f64>,
    /// `--max-samples`, if any.
    pub max_samples: Option<usize>,
    /// Records in the data file.
    pub records: usize,
    /// Backend and dtype, as text.
    pub backend: String,
}

/// Writes `pack{k}.json` for every pack, `report.json` and `similarity.png` into `dir`
/// (created if needed); returns the files written.
pub fn write_outputs(dir: &Path, result: &CalibrationResult, run: &RunSummary, meta: &RunMetadata) -> Result<Vec<PathBuf>, SimilarityError> {
    std::fs::create_dir_all(dir).map_err(SimilarityError::io(dir))?;
    let mut written = Vec::new();
    for pack in &result.packs {
        let path = dir.join(format!("pack{}.json", pack.k));
        write_pack_file(&path, pack, result.n_layers)?;
        written.push(path);
        // Angular distances in the same layout, for block selection (Gromov et al., PruneMe).
        for (name, table) in [("angular", &pack.per_sample_angular), ("angular_last_token", &pack.per_sample_last_token_angular)] {
            let path = dir.join(format!("{name}{}.json", pack.k));
            write_table(&path, table, pack.k, result.n_layers)?;
            written.push(path);
        }
    }
    let report = dir.join("report.json");
    let text = serde_json::to_string_pretty(&report_json(result, run, meta)).unwrap_or_default();
    std::fs::write(&report, text + "\n").map_err(SimilarityError::io(&report))?;
    written.push(report);
    let png = dir.join("similarity.png");
    plot_similarity(&png, result)?;
    written.push(png);
    Ok(written)
}

/// Writes one pack in the official format, `{"0": [per-sample cosines], "1": [...], ...}`, with
/// the official key range `i = 0..L-k-1` (`range(total_layers - pack_size)` in
/// `src/get_hidden_states.py`: the comparison with the final-norm output is left out, so the
/// official `train_interlace.py` never selects a layer past the last one). Keys are written in
/// numeric order because the official ranking breaks ties by key order.
pub fn write_pack_file(path: &Path, pack: &PackResult, n_layers: usize) -> Result<(), SimilarityError> {
    write_table(path, &pack.per_sample, pack.k, n_layers)
}

fn write_table(path: &Path, per_sample: &[Vec<f64>], k: usize, n_layers: usize) -> Result<(), SimilarityError> {
    let entries: Vec<String> = per_sample
        .iter()
        .take(n_layers - k)
        .enumerate()
        .map(|(i, values)| format!("    \"{i}\": {}", serde_json::to_string(values).unwrap_or_default()))
        .collect();
    let text = format!("{{\n{}\n}}\n", entries.join(",\n"));
    std::fs::write(path, text).map_err(SimilarityError::io(path))
}

fn report_json(result: &CalibrationResult, run: &RunSummary, meta: &RunMetadata) -> Value {
    let mut packs = Map::new();
    for pack in &result.packs {
        let mut metrics = Map::new();
        for (metric, summaries) in &pack.summaries {
            metrics.insert(
                metric.name().to_string(),
                json!({
                    "mean": summaries.iter().map(|s| s.mean).collect::<Vec<_>>(),
                    "std": summaries.iter().map(|s| s.std).collect::<Vec<_>>(),
                    "count": summaries.iter().map(|s| s.count).collect::<Vec<_>>(),
                }),
            );
        }
        packs.insert(
            pack.k.to_string(),
            json!({
                "layers": (0..pack.per_sample.len()).collect::<Vec<_>>(),
                "metrics": metrics,
            }),
        );
    }
    let seconds = run.wall.as_secs_f64();
    json!({
        "model": meta.model,
        "data": meta.data,
        "backend": meta.backend,
        "taps": result.tap,
        "n_layers": result.n_layers,
        "seed": meta.seed,
        "sample_portion": meta.sample_portion,
        "max_samples": meta.max_samples,
        "records": meta.records,
        "samples_used": run.used,
        "samples_skipped": run.skipped.len(),
        "skipped": run.skipped,
        "tokens": result.tokens,
        "wall_seconds": seconds,
        "samples_per_second": if seconds > 0.0 { run.used as f64 / seconds } else { 0.0 },
        "layer_index": "entry i of pack k compares hidden states i and i+k (0 = embeddings, L = final output); pack{k}.json holds i = 0..L-k-1 like the official files, this report also i = L-k",
        "metrics": {
            "cosine": "per-token cosine similarity averaged over the sample's tokens, then over samples",
            "angular_distance": "arccos(cosine)/pi of each token, averaged over the sample's tokens, then over samples (Gromov et al.; per sample in angular{k}.json, and for the last token alone, as PruneMe, in angular_last_token{k}.json)",
            "block_influence": "1 - sample cosine, averaged over samples (ShortGPT)",
        },
        "packs": packs,
    })
}
