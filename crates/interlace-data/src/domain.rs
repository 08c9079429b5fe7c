//! The official domain sets (TextVQA, ChartQA, ScienceQA) to LLaVA records, by the rules of
//! `dataset_prep_domain.py`: the first `n` rows of the train split, rows without an image
//! skipped (they still count), one record per distinct answer, and ScienceQA's choices
//! appended to the question as `A) ...` lines with the answer written the same way.

use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use indicatif::{ProgressBar, ProgressStyle};

use crate::arrow_values::{image_bytes_at, int_at, string_at, strings_at};
use crate::atomic::write_atomically;
use crate::jpeg::write_rgb_jpeg;
use crate::python_json::PythonArrayWriter;
use crate::record::{ImagePaths, LlavaRecord, LlavaTurn};
use crate::split::Split;
use crate::DataError;

/// One of the datasets the official domain ablation uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainDataset {
    /// `facebook/textvqa`: `question` (or `question_text`), `answers`.
    TextVqa,
    /// `HuggingFaceM4/ChartQA`: `query`, `label`.
    ChartQa,
    /// `derek-thomas/ScienceQA`: `question`, `choices`, `answer` (an index).
    ScienceQa,
}

impl DomainDataset {
    /// Every dataset, in the official script's order.
    pub const ALL: [DomainDataset; 3] = [DomainDataset::TextVqa, DomainDataset::ChartQa, DomainDataset::ScienceQa];

    /// The official name, used in the output file name (`TextVQA_train.json`).
    pub fn name(self) -> &'static str {
        match self {
            DomainDataset::TextVqa => "TextVQA",
            DomainDataset::ChartQa => "ChartQA",
            DomainDataset::ScienceQa => "ScienceQA",
        }
    }

    /// The Hub repository the official script loads.
    pub fn repo(self) -> &'static str {
        match self {
            DomainDataset::TextVqa => "facebook/textvqa",
            DomainDataset::ChartQa => "HuggingFaceM4/ChartQA",
            DomainDataset::ScienceQa => "derek-thomas/ScienceQA",
        }
    }

    /// Parses a name case-insensitively (`textvqa`, `ChartQA`, ...).
    pub fn parse(name: &str) -> Result<Self, DataError> {
        Self::ALL
            .into_iter()
            .find(|d| d.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| DataError::Argument(format!("unknown domain dataset {name:?}: expected textvqa, chartqa or scienceqa")))
    }

    fn columns(self) -> &'static [&'static str] {
        match self {
            DomainDataset::TextVqa => &["image", "question", "question_text", "answers"],
            DomainDataset::ChartQa => &["image", "query", "label"],
            DomainDataset::ScienceQa => &["image", "question", "choices", "answer"],
        }
    }
}

/// What to convert, from where, to where.
#[derive(Debug, Clone)]
pub struct DomainOptions {
    /// Which dataset.
    pub dataset: DomainDataset,
    /// A local copy of its repository; the `train-*.parquet` shards are found anywhere under it.
    pub source: PathBuf,
    /// Where `{Name}_train.json` and `images/` go.
    pub out: PathBuf,
    /// Read at most this many rows (all without it).
    pub n_samples: Option<u64>,
    /// Show a progress bar on standard error.
    pub progress: bool,
}

/// What a domain conversion wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainReport {
    /// The JSON array of records (`{Name}_train.json`).
    pub json: PathBuf,
    /// The directory of JPEGs.
    pub images_dir: PathBuf,
    /// Rows read.
    pub rows: u64,
    /// Rows skipped for having no image.
    pub without_image: u64,
    /// Records written (one per distinct answer).
    pub records: u64,
}

/// Converts a domain dataset as the official `dataset_prep_domain.py` does (see the module docs).
///
/// The official script takes the distinct answers with Python's `set`, whose order changes from
/// run to run; here they keep the order of first occurrence. Images are named
/// `img_{dataset}_{row}.jpg` (the official names come from the clock). The JSON file is written
/// under a temporary name and renamed, so an interrupted run leaves no partial file.
pub fn prepare_domain(options: &DomainOptions) -> Result<DomainReport, DataError> {
    let split = Split::find(&options.source, "train")?;
    let available = split.num_rows()?;
    let rows = options.n_samples.map_or(available, |n| n.min(available));
    let images_dir = options.out.join("images");
    std::fs::create_dir_all(&images_dir).map_err(DataError::io(&images_dir))?;
    let json = options.out.join(format!("{}_train.json", options.dataset.name()));
    let bar = progress_bar(options.progress, rows, options.dataset.name());
    let mut report = DomainReport { json: json.clone(), images_dir: images_dir.clone(), rows, without_image: 0, records: 0 };
    write_atomically(&json, |out| {
        let mut array = PythonArrayWriter::new(out);
        let result = split.for_each_row(options.dataset.columns(), 0, rows, |row, batch, i, path| {
            bar.inc(1);
            let Some(example) = read_example(options.dataset, batch, i, row, path, &images_dir)? else {
                report.without_image += 1;
                return Ok(());
            };
            for answer in example.answers {
                let record = LlavaRecord {
                    image: Some(ImagePaths::One(example.image.clone())),
                    conversations: vec![LlavaTurn::new("human", Some(format!("{}\n<image>", example.question))), LlavaTurn::new("gpt", Some(answer))],
                };
                array.push(&record).map_err(DataError::io(&json))?;
                report.records += 1;
            }
            Ok(())
        });
        result.map_err(std::io::Error::other)?;
        array.finish().map(|_| ())
    })
    .map_err(unwrap_data_error)?;
    bar.finish_and_clear();
    Ok(report)
}

/// One converted row: its image path, the question text and the distinct answers.
struct Example {
    image: String,
    question: String,
    answers: Vec<String>,
}

fn read_example(dataset: DomainDataset, batch: &RecordBatch, i: usize, row: u64, path: &Path, images_dir: &Path) -> Result<Option<Example>, DataError> {
    let row_error = |what: String| DataError::Row { path: path.into(), row, what };
    let column = |name: &str| batch.column_by_name(name).map(|c| c.as_ref());
    let required = |name: &str| column(name).ok_or_else(|| DataError::Schema { path: path.into(), what: format!("no `{name}` column") });
    let text = |name: &str| -> Result<Option<String>, DataError> { string_at(required(name)?, i).map_err(|e| row_error(format!("{name}: {e}"))) };
    let texts = |name: &str| -> Result<Vec<Option<String>>, DataError> {
        Ok(strings_at(required(name)?, i).map_err(|e| row_error(format!("{name}: {e}")))?.unwrap_or_default())
    };

    let Some(bytes) = image_bytes_at(required("image")?, i).map_err(|e| row_error(format!("image: {e}")))? else {
        return Ok(None);
    };
    let (question, answers) = match dataset {
        DomainDataset::TextVqa => {
            // `rec.get("question") or rec.get("question_text")`: an empty question falls through.
            let question = match column("question").map(|c| string_at(c, i)).transpose().map_err(row_error)?.flatten() {
                Some(q) if !q.is_empty() => Some(q),
                _ => column("question_text").map(|c| string_at(c, i)).transpose().map_err(row_error)?.flatten(),
            };
            (python_str(question), distinct(texts("answers")?))
        }
        DomainDataset::ChartQa => (python_str(text("query")?), distinct(texts("label")?)),
        DomainDataset::ScienceQa => {
            let question = text("question")?.ok_or_else(|| row_error("a null question".into()))?;
            let choices: Vec<String> = texts("choices")?.into_iter().map(python_str).collect();
            let answer = int_at(required("answer")?, i).map_err(row_error)?.ok_or_else(|| row_error("a null answer".into()))?;
            let chosen = usize::try_from(answer)
                .ok()
                .and_then(|a| choices.get(a))
                .ok_or_else(|| row_error(format!("answer {answer} is not one of {} choices", choices.len())))?;
            let lettered: Vec<String> = choices.iter().enumerate().map(|(k, c)| format!("{}) {c}", choice_letter(k))).collect();
            (format!("{question}\n{}", lettered.join("\n")), vec![format!("{}) {chosen}", choice_letter(answer as usize))])
        }
    };
    let file = images_dir.join(format!("img_{}_{row:07}.jpg", dataset.name().to_ascii_lowercase()));
    write_rgb_jpeg(bytes, &file)?.map_err(row_error)?;
    Ok(Some(Example { image: file.to_string_lossy().into_owned(), question, answers }))
}

/// `chr(65 + k)`: A, B, C, ...
fn choice_letter(k: usize) -> char {
    char::from_u32(65 + k as u32).unwrap_or('?')
}

/// Python's `f"{value}"` of an optional string: `None` for null.
fn python_str(value: Option<String>) -> String {
    value.unwrap_or_else(|| "None".into())
}

/// The distinct values in order of first occurrence (the official `list(set(...))`).
fn distinct(values: Vec<Option<String>>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for value in values.into_iter().map(python_str) {
        if !out.contains(&value) {
            out.push(value);
        }
    }
    out
}

/// `write_atomically` reports every failure as I/O on the output file; a conversion error
/// raised inside it keeps its own message.
fn unwrap_data_error(error: DataError) -> DataError {
    match error {
        DataError::Io { source, path } => match source.into_inner().map(|inner| inner.downcast::<DataError>()) {
            Some(Ok(data)) => *data,
            Some(Err(other)) => DataError::Io { path, source: std::io::Error::other(other) },
            None => DataError::Io { path, source: std::io::Error::other("write failed") },
        },
        other => other,
    }
}

fn progress_bar(show: bool, total: u64, name: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} rows, {per_sec}, eta {eta}").expect("valid template").progress_chars("=> "));
    bar.set_message(name.to_string());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_case_insensitively() {
        assert_eq!(DomainDataset::parse("textvqa").unwrap(), DomainDataset::TextVqa);
        assert_eq!(DomainDataset::parse("ScienceQA").unwrap().repo(), "derek-thomas/ScienceQA");
        assert!(DomainDataset::parse("vqav2").is_err());
    }

    #[test]
    fn answers_are_distinct_in_first_occurrence_order() {
        let values = vec![Some("b".into()), Some("a".into()), Some("b".into()), None];
        assert_eq!(distinct(values), ["b", "a", "None"]);
        assert_eq!(choice_letter(2), 'C');
    }
}
