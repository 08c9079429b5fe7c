//! FineVision to LLaVA records, by the rules of the official `dataset_prep.py`.
//!
//! For each subset in the dataset card's order, up to and including `yesbut`, the first
//! `max(1, int(count * portion))` rows of the train split are read. A row with more than three
//! images is skipped (it still counts). Each image becomes an RGB JPEG; the first user turn of
//! a row with images gets one `<image>\n` per image in front, with any `<image>` marker in its
//! text removed; turns become `human` / `gpt` / `system` in the order of the `texts` struct's
//! fields, and a record stops after the assistant turn that makes five messages.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use arrow_array::{Array, RecordBatch};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::arrow_values::{as_struct, image_bytes_at, list_at, string_at};
use crate::atomic::write_atomically;
use crate::configs::{dataset_configs, matches_pattern, train_example_counts, DatasetConfig};
use crate::jpeg::write_rgb_jpeg;
use crate::portion::{check_portion, portion_label};
use crate::python_json::{to_python_line, PythonArrayWriter};
use crate::record::{ImagePaths, LlavaRecord, LlavaTurn};
use crate::split::{is_shard_of, Split};
use crate::DataError;

/// The official script stops after this subset.
pub const LAST_SUBSET: &str = "yesbut";
/// Rows with more images than this are skipped.
pub const MAX_IMAGES: usize = 3;
/// A record ends after the assistant turn that brings it to this many messages.
pub const MAX_MESSAGES: usize = 5;
/// Rows between checkpoints of the resume state, by default.
pub const CHECKPOINT_ROWS: u64 = 64;

/// What to convert, from where, to where.
#[derive(Debug, Clone)]
pub struct FineVisionOptions {
    /// A local copy of the dataset repository: `README.md`, whose `configs:` give the subset
    /// order and each subset's train files, and the parquet shards (without a card: one
    /// directory of `train-*.parquet` shards per subset). A snapshot directory of the Hugging
    /// Face cache has this layout.
    pub source: PathBuf,
    /// Where `FineVision_{p}.jsonl`, `FineVision_{p}.json` and the image directory
    /// `FineVision_{p}/` go.
    pub out: PathBuf,
    /// The fraction of each subset to take, in (0, 1].
    pub portion: f64,
    /// Where the per-subset counts the portion applies to come from.
    pub counts: SampleCounts,
    /// Show a progress bar on standard error.
    pub progress: bool,
    /// Rows between checkpoints of the resume state (at least 1; [`CHECKPOINT_ROWS`] by default).
    pub checkpoint_rows: u64,
}

impl FineVisionOptions {
    /// Options to convert `portion` of the local copy `source` into `out`, with the row counts of
    /// the parquet files, no progress bar and checkpoints every [`CHECKPOINT_ROWS`] rows.
    pub fn new(source: impl Into<PathBuf>, out: impl Into<PathBuf>, portion: f64) -> Self {
        Self { source: source.into(), out: out.into(), portion, counts: SampleCounts::Footers, progress: false, checkpoint_rows: CHECKPOINT_ROWS }
    }
}

/// Where the per-subset counts that `int(count * portion)` applies to come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SampleCounts {
    /// The row counts in the parquet footers of each subset's train files: exact, but every
    /// shard must be at hand.
    Footers,
    /// The `num_examples` of each subset's train split in the dataset card's `dataset_info`
    /// (what `datasets` reports as the split size).
    Card,
    /// A JSON object of subset names to counts, as the official `dataset_sample_counts.json`.
    File(PathBuf),
}

/// One subset of the plan: how many rows to take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedSubset {
    /// The subset (config) name.
    pub name: String,
    /// Rows to read from the start of its train split.
    pub take: u64,
}

/// What happened to one subset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubsetReport {
    /// The subset (config) name.
    pub name: String,
    /// Rows the plan takes.
    pub take: u64,
    /// Rows read so far (fewer than `take` if the split is shorter).
    pub read: u64,
    /// Records written.
    pub records: u64,
    /// Rows skipped for having more than three images.
    pub too_many_images: u64,
    /// Rows skipped because an image could not be decoded (the official script would abort
    /// the rest of the subset there).
    pub undecodable: u64,
    /// The source has no train shards for this subset; it was skipped, as the official
    /// script skips a subset it cannot load.
    pub missing: bool,
    /// All of the subset's rows have been converted.
    pub finished: bool,
}

/// The files a conversion wrote and what each subset contributed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FineVisionReport {
    /// The JSON-lines records (`FineVision_{p}.jsonl`).
    pub jsonl: PathBuf,
    /// The same records as one JSON array (`FineVision_{p}.json`), as the training script reads.
    pub json: PathBuf,
    /// The directory of JPEGs (`FineVision_{p}/`).
    pub images_dir: PathBuf,
    /// Per subset, in order.
    pub subsets: Vec<SubsetReport>,
    /// Whether this run continued an interrupted one.
    pub resumed: bool,
}

impl FineVisionReport {
    /// Records written in all.
    pub fn records(&self) -> u64 {
        self.subsets.iter().map(|s| s.records).sum()
    }
}

/// The subsets to convert and the rows to take from each, without converting anything.
pub fn plan_finevision(options: &FineVisionOptions) -> Result<Vec<PlannedSubset>, DataError> {
    let portion = check_portion(options.portion)?;
    // As the official `sample_counts.get(subset, 0)`: a subset without a count takes one row.
    let counts = match &options.counts {
        SampleCounts::Footers => None,
        SampleCounts::Card => Some(card_counts(&options.source)?),
        SampleCounts::File(path) => Some(read_sample_counts(path)?),
    };
    let mut plan = Vec::new();
    for config in subset_configs(&options.source)? {
        let name = config.name.clone();
        let count = match &counts {
            Some(counts) => counts.get(&name).copied().unwrap_or(0.0),
            None => match subset_split(&options.source, &config) {
                Ok(split) => split.num_rows()? as f64,
                Err(_) => 0.0,
            },
        };
        // Python: max(1, int(count * portion)), int() truncating the float product.
        let take = ((count * portion) as u64).max(1);
        let last = name == LAST_SUBSET;
        plan.push(PlannedSubset { name, take });
        if last {
            break;
        }
    }
    Ok(plan)
}

/// Converts FineVision as the official `dataset_prep.py` does (see the module docs), resuming
/// an interrupted run in the same output directory.
///
/// Records go to the JSONL file as they are made; the state needed to resume
/// (`FineVision_{p}.progress.json`) is saved every `checkpoint_rows` rows after the JSONL is synced, and a
/// resumed run cuts the JSONL back to that point. Images and the final JSON array are written
/// under temporary names and renamed. An output directory that already holds a finished
/// conversion (or a JSONL file from elsewhere) is refused rather than overwritten.
pub fn prepare_finevision(options: &FineVisionOptions) -> Result<FineVisionReport, DataError> {
    let plan = plan_finevision(options)?;
    let configs = subset_configs(&options.source)?;
    let label = portion_label(options.portion);
    let paths = OutputPaths::new(&options.out, &label);
    let (mut state, resumed) = match ResumeState::load(&paths.state)? {
        Some(state) if state.portion == options.portion && state.plan == plan => (state, true),
        Some(_) => {
            return Err(DataError::Output {
                path: paths.state.clone(),
                what: "an interrupted conversion with another portion, source or sample counts; remove it and the JSONL file to start over".into(),
            })
        }
        None => {
            for existing in [&paths.jsonl, &paths.json] {
                if existing.exists() {
                    return Err(DataError::Output {
                        path: existing.clone(),
                        what: "exists and there is no interrupted conversion to resume; remove it or choose another --out".into(),
                    });
                }
            }
            (ResumeState { portion: options.portion, plan: plan.clone(), subsets: Vec::new(), jsonl_bytes: 0 }, false)
        }
    };
    std::fs::create_dir_all(&paths.images).map_err(DataError::io(&paths.images))?;
    state.save(&paths.state)?;
    let mut jsonl = JsonlAppender::open(&paths.jsonl, state.jsonl_bytes)?;
    let total: u64 = plan.iter().map(|s| s.take).sum();
    let bar = progress_bar(options.progress, total);
    bar.set_position(state.subsets.iter().map(|s| s.read).sum());
    for planned in &plan {
        let index = state.subsets.iter().position(|s| s.name == planned.name).unwrap_or_else(|| {
            state.subsets.push(SubsetReport { name: planned.name.clone(), take: planned.take, ..Default::default() });
            state.subsets.len() - 1
        });
        if state.subsets[index].finished {
            continue;
        }
        bar.set_message(planned.name.clone());
        let config = configs.iter().find(|c| c.name == planned.name).expect("the plan is made from these configs");
        let mut converter = Converter { options, config, paths: &paths, state: &mut state, index, jsonl: &mut jsonl, bar: &bar };
        converter.run_subset()?;
    }
    bar.finish_and_clear();
    write_json_array(&paths.jsonl, &paths.json)?;
    std::fs::remove_file(&paths.state).map_err(DataError::io(&paths.state))?;
    Ok(FineVisionReport { jsonl: paths.jsonl, json: paths.json, images_dir: paths.images, subsets: state.subsets, resumed })
}

/// The train split of one subset: the files its `data_files` patterns name, or, when the card
/// gives none, the `train-*.parquet` shards in the directory named after it.
pub(crate) fn subset_split(source: &Path, config: &DatasetConfig) -> Result<Split, DataError> {
    if config.train_files.is_empty() {
        // Only the subset's own directory is walked: a full copy holds thousands of shards.
        return Split::find(&source.join(&config.name), "train");
    }
    Split::select(source, |path| is_train_file(config, path))?
        .ok_or_else(|| DataError::Source { path: source.into(), what: format!("no parquet files match {}", config.train_files.join(", ")) })
}

/// Whether the file at `path` (relative to the repository root, `/`-separated) belongs to the
/// train split of `config`, by the rule [`subset_split`] reads with; the Hub download selects
/// the same files by name.
pub(crate) fn is_train_file(config: &DatasetConfig, path: &str) -> bool {
    if config.train_files.is_empty() {
        path.strip_prefix(config.name.as_str()).and_then(|rest| rest.strip_prefix('/')).is_some_and(|rest| is_shard_of(rest, "train"))
    } else {
        path.ends_with(".parquet") && config.train_files.iter().any(|p| matches_pattern(p, path))
    }
}

/// The subsets in the order of the dataset card's `configs:`, or, without a card, the sorted
/// names of the directories that hold parquet files.
pub(crate) fn subset_configs(source: &Path) -> Result<Vec<DatasetConfig>, DataError> {
    if !source.is_dir() {
        return Err(DataError::Source { path: source.into(), what: "not a directory (expected a local copy of HuggingFaceM4/FineVision)".into() });
    }
    let card = source.join("README.md");
    if card.exists() {
        let configs = dataset_configs(&std::fs::read_to_string(&card).map_err(DataError::io(&card))?);
        if !configs.is_empty() {
            return Ok(configs);
        }
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(source).map_err(DataError::io(source))? {
        let path = entry.map_err(DataError::io(source))?.path();
        if path.is_dir() && Split::find(&path, "train").is_ok() {
            names.extend(path.file_name().and_then(|n| n.to_str()).map(String::from));
        }
    }
    names.sort();
    if names.is_empty() {
        return Err(DataError::Source { path: source.into(), what: "no README.md with `configs:` and no subset directories of train-*.parquet shards".into() });
    }
    Ok(names.into_iter().map(|name| DatasetConfig { name, train_files: Vec::new() }).collect())
}

fn card_counts(source: &Path) -> Result<BTreeMap<String, f64>, DataError> {
    let card = source.join("README.md");
    let text = std::fs::read_to_string(&card).map_err(DataError::io(&card))?;
    let counts = train_example_counts(&text);
    if counts.is_empty() {
        return Err(DataError::Source {
            path: card,
            what: "gives no train split sizes (`dataset_info` ... `num_examples`); pass the counts file instead".into(),
        });
    }
    Ok(counts.into_iter().map(|(name, n)| (name, n as f64)).collect())
}

fn read_sample_counts(path: &Path) -> Result<BTreeMap<String, f64>, DataError> {
    let text = std::fs::read_to_string(path).map_err(DataError::io(path))?;
    let json: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text)
        .map_err(|e| DataError::Source { path: path.into(), what: format!("not a JSON object of subset names to sample counts: {e}") })?;
    json.into_iter()
        .map(|(name, count)| match count.as_f64() {
            Some(count) if count >= 0.0 => Ok((name, count)),
            _ => Err(DataError::Source { path: path.into(), what: format!("the count of {name} is not a non-negative number: {count}") }),
        })
        .collect()
}

/// The output files of one portion.
struct OutputPaths {
    jsonl: PathBuf,
    json: PathBuf,
    images: PathBuf,
    state: PathBuf,
}

impl OutputPaths {
    fn new(out: &Path, label: &str) -> Self {
        Self {
            jsonl: out.join(format!("FineVision_{label}.jsonl")),
            json: out.join(format!("FineVision_{label}.json")),
            images: out.join(format!("FineVision_{label}")),
            state: out.join(format!("FineVision_{label}.progress.json")),
        }
    }
}

/// What a resumed run needs: the plan it was started with and how far it got.
#[derive(Debug, Serialize, Deserialize)]
struct ResumeState {
    portion: f64,
    plan: Vec<PlannedSubset>,
    subsets: Vec<SubsetReport>,
    /// The length of the JSONL file at the last checkpoint: everything before it is synced.
    jsonl_bytes: u64,
}

impl ResumeState {
    fn load(path: &Path) -> Result<Option<Self>, DataError> {
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(path).map_err(DataError::io(path))?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| DataError::Output { path: path.into(), what: format!("unreadable resume state ({e}); remove it and the JSONL file to start over") })
    }

    fn save(&self, path: &Path) -> Result<(), DataError> {
        let text = serde_json::to_vec_pretty(self).expect("the state serialises");
        write_atomically(path, |out| out.write_all(&text))
    }
}

/// The JSONL file, appended to from a known synced length.
struct JsonlAppender {
    path: PathBuf,
    out: BufWriter<File>,
    len: u64,
}

impl JsonlAppender {
    /// Opens `path` cut back to `len` bytes (created empty when `len` is 0).
    fn open(path: &Path, len: u64) -> Result<Self, DataError> {
        let mut file = OpenOptions::new().create(true).write(true).truncate(false).open(path).map_err(DataError::io(path))?;
        let actual = file.metadata().map_err(DataError::io(path))?.len();
        if actual < len {
            return Err(DataError::Output {
                path: path.into(),
                what: format!("is shorter ({actual} bytes) than the resume state says ({len}); remove it and its .progress.json to start over"),
            });
        }
        file.set_len(len).map_err(DataError::io(path))?;
        file.seek(SeekFrom::End(0)).map_err(DataError::io(path))?;
        Ok(Self { path: path.into(), out: BufWriter::new(file), len })
    }

    fn append(&mut self, line: &str) -> Result<(), DataError> {
        self.out.write_all(line.as_bytes()).and_then(|_| self.out.write_all(b"\n")).map_err(DataError::io(&self.path))?;
        self.len += line.len() as u64 + 1;
        Ok(())
    }

    /// Flushes and syncs, returning the synced length.
    fn sync(&mut self) -> Result<u64, DataError> {
        self.out.flush().and_then(|_| self.out.get_ref().sync_data()).map_err(DataError::io(&self.path))?;
        Ok(self.len)
    }
}

/// Converts the rows of one subset.
struct Converter<'a> {
    options: &'a FineVisionOptions,
    config: &'a DatasetConfig,
    paths: &'a OutputPaths,
    state: &'a mut ResumeState,
    index: usize,
    jsonl: &'a mut JsonlAppender,
    bar: &'a ProgressBar,
}

impl Converter<'_> {
    fn run_subset(&mut self) -> Result<(), DataError> {
        let report = &self.state.subsets[self.index];
        let (name, start, take) = (report.name.clone(), report.read, report.take);
        let split = match subset_split(&self.options.source, self.config) {
            Ok(split) => split,
            Err(_) => {
                let report = &mut self.state.subsets[self.index];
                report.missing = true;
                report.finished = true;
                self.bar.inc(take - start);
                return self.checkpoint();
            }
        };
        split.for_each_row(&["images", "texts"], start, take - start, |row, batch, i, path| {
            self.convert_row(&name, row, batch, i, path)?;
            self.state.subsets[self.index].read += 1;
            self.bar.inc(1);
            if self.state.subsets[self.index].read.is_multiple_of(self.options.checkpoint_rows.max(1)) {
                self.checkpoint()?;
            }
            Ok(())
        })?;
        let report = &mut self.state.subsets[self.index];
        self.bar.inc(report.take - report.read);
        report.finished = true;
        self.checkpoint()
    }

    fn checkpoint(&mut self) -> Result<(), DataError> {
        self.state.jsonl_bytes = self.jsonl.sync()?;
        self.state.save(&self.paths.state)
    }

    fn convert_row(&mut self, subset: &str, row: u64, batch: &RecordBatch, i: usize, path: &Path) -> Result<(), DataError> {
        let row_error = |what: String| DataError::Row { path: path.into(), row, what };
        let column = |name: &str| batch.column_by_name(name).ok_or_else(|| DataError::Schema { path: path.into(), what: format!("no `{name}` column") });
        let images = list_at(column("images")?.as_ref(), i).map_err(|e| row_error(format!("images: {e}")))?;
        let n_images = images.as_ref().map_or(0, |a| a.len());
        let report = &mut self.state.subsets[self.index];
        if n_images > MAX_IMAGES {
            report.too_many_images += 1;
            return Ok(());
        }
        let mut image_paths = Vec::with_capacity(n_images);
        for k in 0..n_images {
            let cell = images.as_ref().expect("n_images > 0");
            let bytes = image_bytes_at(cell.as_ref(), k).map_err(|e| row_error(format!("image {k}: {e}")))?;
            let file = self.paths.images.join(image_file_name(subset, row, k));
            let written = match bytes {
                Some(bytes) => write_rgb_jpeg(bytes, &file)?,
                None => Err("a null image".to_string()),
            };
            if written.is_err() {
                report.undecodable += 1;
                return Ok(());
            }
            image_paths.push(file.to_string_lossy().into_owned());
        }
        let texts = list_at(column("texts")?.as_ref(), i).map_err(|e| row_error(format!("texts: {e}")))?;
        let conversations = match texts {
            Some(turns) => conversation(turns.as_ref(), n_images).map_err(|e| row_error(format!("texts: {e}")))?,
            None => Vec::new(),
        };
        let image = match image_paths.len() {
            0 => None,
            1 => Some(ImagePaths::One(image_paths.remove(0))),
            _ => Some(ImagePaths::Many(image_paths)),
        };
        self.jsonl.append(&to_python_line(&LlavaRecord { image, conversations }))?;
        self.state.subsets[self.index].records += 1;
        Ok(())
    }
}

/// `img_{subset}_{row}_{k}.jpg`: deterministic (the official script uses the clock), so a resumed
/// run rewrites the same files instead of leaving orphans, and unique across subsets.
fn image_file_name(subset: &str, row: u64, k: usize) -> String {
    let safe: String = subset.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    format!("img_{safe}_{row:07}_{k}.jpg")
}

/// The official turn conversion of one row's `texts` (a list of structs).
fn conversation(turns: &dyn Array, n_images: usize) -> Result<Vec<LlavaTurn>, String> {
    let turns = as_struct(turns)?;
    let mut first_user_pending = n_images > 0;
    let prefix = "<image>\n".repeat(n_images);
    let mut out = Vec::new();
    for t in 0..turns.len() {
        // Python iterates `conv_item.items()`: the struct's fields, in schema order.
        for (field, values) in turns.fields().iter().zip(turns.columns()) {
            let value = string_at(values.as_ref(), t)?;
            match field.name().as_str() {
                "user" => {
                    let value = if first_user_pending {
                        first_user_pending = false;
                        Some(format!("{prefix}{}", value.unwrap_or_default().replace("<image>", "")))
                    } else {
                        value
                    };
                    out.push(LlavaTurn::new("human", value));
                }
                "assistant" => {
                    out.push(LlavaTurn::new("gpt", value));
                    if out.len() >= MAX_MESSAGES {
                        return Ok(out);
                    }
                }
                "system" => out.push(LlavaTurn::new("system", value)),
                _ => {}
            }
        }
    }
    Ok(out)
}

/// `jsonl_to_json`: the JSONL records as one `json.dump(..., indent=4)` array, streamed.
fn write_json_array(jsonl: &Path, json: &Path) -> Result<(), DataError> {
    let input = BufReader::new(File::open(jsonl).map_err(DataError::io(jsonl))?);
    write_atomically(json, |out| {
        let mut array = PythonArrayWriter::new(out);
        for line in input.lines() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let record: LlavaRecord = serde_json::from_str(&line).map_err(std::io::Error::other)?;
            array.push(&record)?;
        }
        array.finish().map(|_| ())
    })
}

fn progress_bar(show: bool, total: u64) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(ProgressStyle::with_template("{msg:>24} [{bar:40}] {pos}/{len} rows, {per_sec}, eta {eta}").expect("valid template").progress_chars("=> "));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_are_deterministic_and_safe() {
        assert_eq!(image_file_name("CoSyn_400k/chart v2", 12, 1), "img_CoSyn_400k_chart_v2_0000012_1.jpg");
    }
}
