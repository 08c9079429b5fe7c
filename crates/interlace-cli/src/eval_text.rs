//! `interlace eval` on text LLMs: perplexity and log-likelihood multiple choice in
//! lm-evaluation-harness's conventions (`interlace_eval::lm_harness`), next to the base model.

use std::error::Error;
use std::path::{Path, PathBuf};

use burn::prelude::Backend;
use burn::tensor::DType;
use indicatif::{ProgressBar, ProgressStyle};
use interlace_eval::lm_harness::{perplexity, score_choices, score_document, ForwardScorer, HarnessTokenizer, Perplexity};
use interlace_llama::{LlamaForCausalLM, TextProcessor};
use interlace_prune::with_backend;
use serde_json::{json, Value};

use crate::eval::EvalArgs;

/// lm-evaluation-harness's `HFLM` default when the config names no context length.
const HARNESS_DEFAULT_LENGTH: usize = 2048;

/// The tokenizer of a checkpoint as the harness drives it.
struct Harness(TextProcessor);

impl HarnessTokenizer for Harness {
    fn encode(&self, text: &str, special: bool) -> Result<Vec<u32>, String> {
        self.0.encode_with(text, special).map_err(|e| e.to_string())
    }

    fn decode(&self, ids: &[u32]) -> Result<String, String> {
        self.0.tokenizer().decode(ids, false).map_err(|e| e.to_string())
    }

    fn prefix_token(&self) -> u32 {
        // from_dir below checks that one of the two exists.
        self.0.bos_token_id().or(self.0.eos_token_id()).unwrap_or_default()
    }
}

/// One multiple-choice question: a context and its candidate continuations, scored as given.
struct Question {
    context: String,
    choices: Vec<String>,
    answer: usize,
}

/// What was measured for one model.
struct TextRun {
    perplexity: Option<(Perplexity, usize)>,
    choices: Option<(f64, f64, usize)>,
}

/// The harness's `max_length`: `--context-length`, else the config's context length
/// (`n_positions`, `max_position_embeddings`, `n_ctx`), else 2048.
fn context_length(args: &EvalArgs, dir: &Path) -> Result<usize, Box<dyn Error>> {
    if let Some(length) = args.context_length {
        return Ok(length);
    }
    let config: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json"))?)?;
    let from_config = ["n_positions", "max_position_embeddings", "n_ctx"].iter().find_map(|k| config.get(*k).and_then(Value::as_u64));
    Ok(from_config.map_or(HARNESS_DEFAULT_LENGTH, |n| n as usize))
}

fn read_jsonl(path: &Path) -> Result<Vec<(usize, Value)>, Box<dyn Error>> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut records = Vec::new();
    for (index, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let value = serde_json::from_str(line).map_err(|e| format!("{}:{}: not valid JSON: {e}", path.display(), index + 1))?;
        records.push((index + 1, value));
    }
    Ok(records)
}

fn documents(path: &Path) -> Result<Vec<String>, Box<dyn Error>> {
    read_jsonl(path)?
        .into_iter()
        .map(|(line, v)| {
            v.get("text").and_then(Value::as_str).map(str::to_string).ok_or_else(|| format!("{}:{line}: expected {{\"text\": \"...\"}}", path.display()).into())
        })
        .collect()
}

fn questions(path: &Path) -> Result<Vec<Question>, Box<dyn Error>> {
    let mut out = Vec::new();
    for (line, v) in read_jsonl(path)? {
        let bad = |what: &str| format!("{}:{line}: {what} (expected {{\"context\": str, \"choices\": [str, ...], \"answer\": index}})", path.display());
        let context = v.get("context").and_then(Value::as_str).ok_or_else(|| bad("no string `context`"))?.to_string();
        let choices: Vec<String> = v
            .get("choices")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no list `choices`"))?
            .iter()
            .map(|c| c.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("a choice is not a string"))?;
        let answer = v.get("answer").and_then(Value::as_u64).ok_or_else(|| bad("no integer `answer`"))? as usize;
        if answer >= choices.len() {
            return Err(bad(&format!("answer {answer} is not one of the {} choices", choices.len())).into());
        }
        out.push(Question { context, choices, answer });
    }
    Ok(out)
}

fn bar(label: &str, what: &str, len: usize) -> Result<ProgressBar, Box<dyn Error>> {
    let style = ProgressStyle::with_template("{prefix:>24} [{bar:30}] {pos}/{len} {elapsed_precise}")?.progress_chars("=> ");
    Ok(ProgressBar::new(len as u64).with_style(style).with_prefix(format!("{label} {what}")))
}

fn run_text_model<B: Backend>(dir: &Path, device: &B::Device, dtype: DType, label: &str, args: &EvalArgs) -> Result<TextRun, Box<dyn Error>> {
    let model = LlamaForCausalLM::<B>::from_pretrained(dir, device, dtype)?;
    let tokenizer = Harness(TextProcessor::from_dir(dir)?);
    if tokenizer.0.bos_token_id().or(tokenizer.0.eos_token_id()).is_none() {
        return Err(format!("{}: tokenizer_config.json names neither a bos_token nor an eos_token to condition the first token on", dir.display()).into());
    }
    let max_length = context_length(args, dir)?;
    let scorer = ForwardScorer::new(&model);
    let limit = args.limit.unwrap_or(usize::MAX);
    let perplexity_run = match &args.perplexity {
        Some(path) => {
            let docs: Vec<String> = documents(path)?.into_iter().take(limit).collect();
            let progress = bar(label, "perplexity", docs.len())?;
            let mut scores = Vec::with_capacity(docs.len());
            for doc in &docs {
                scores.push(score_document(&scorer, &tokenizer, doc, max_length)?);
                progress.inc(1);
            }
            progress.finish_and_clear();
            Some((perplexity(&scores), docs.len()))
        }
        None => None,
    };
    let choices_run = match &args.choices {
        Some(path) => {
            let items: Vec<Question> = questions(path)?.into_iter().take(limit).collect();
            let progress = bar(label, "choices", items.len())?;
            let (mut acc, mut acc_norm) = (0.0, 0.0);
            for q in &items {
                let score = score_choices(&scorer, &tokenizer, &q.context, &q.choices, max_length)?;
                acc += (score.pick == q.answer) as u8 as f64;
                acc_norm += (score.pick_norm == q.answer) as u8 as f64;
                progress.inc(1);
            }
            progress.finish_and_clear();
            let n = items.len().max(1) as f64;
            Some((acc / n, acc_norm / n, items.len()))
        }
        None => None,
    };
    Ok(TextRun { perplexity: perplexity_run, choices: choices_run })
}

fn run_json(run: &TextRun) -> Value {
    json!({
        "perplexity": run.perplexity.map(|(p, n)| json!({
            "documents": n, "word_perplexity": p.word_perplexity, "byte_perplexity": p.byte_perplexity,
            "bits_per_byte": p.bits_per_byte, "token_perplexity": p.token_perplexity,
        })),
        "choices": run.choices.map(|(acc, acc_norm, n)| json!({"questions": n, "acc": acc, "acc_norm": acc_norm})),
    })
}

/// Evaluates a text `--model` (and `--base`) on `--perplexity` / `--choices`, writes
/// `results.json` and `results.md` into `--out` and prints the table.
pub fn run(args: &EvalArgs) -> Result<(), Box<dyn Error>> {
    if args.perplexity.is_none() && args.choices.is_none() {
        return Err("a text model is evaluated on --perplexity (JSONL {\"text\"}) and/or --choices (JSONL {\"context\", \"choices\", \"answer\"})".into());
    }
    if !args.bench.is_empty() || args.heldout.is_some() {
        return Err("--bench and --heldout take vision-language benchmarks and conversations; for a text model use --perplexity and --choices".into());
    }
    let dtype = args.dtype.dtype();
    let (model_run, base_run) = with_backend!(args.backend, |B, device| {
        let model_run = run_text_model::<B>(&args.model, &device, dtype, "model", args)?;
        let base_run = match &args.base {
            Some(base) => Some(run_text_model::<B>(base, &device, dtype, "base", args)?),
            None => None,
        };
        Ok::<_, Box<dyn Error>>((model_run, base_run))
    })?;
    let results = json!({
        "model": args.model.display().to_string(),
        "base": args.base.as_ref().map(|b| b.display().to_string()),
        "conventions": "lm-evaluation-harness 0.4 (HFLM): rolling log-likelihood perplexity, log-likelihood multiple choice",
        "results": run_json(&model_run),
        "base_results": base_run.as_ref().map(run_json),
    });
    let markdown = markdown(&model_run, base_run.as_ref());
    std::fs::create_dir_all(&args.out)?;
    write_atomic(&args.out.join("results.json"), &(serde_json::to_string_pretty(&results)? + "\n"))?;
    write_atomic(&args.out.join("results.md"), &markdown)?;
    print!("{markdown}");
    eprintln!("wrote {} and {}", args.out.join("results.json").display(), args.out.join("results.md").display());
    Ok(())
}

fn markdown(model: &TextRun, base: Option<&TextRun>) -> String {
    let mut rows = Vec::new();
    if let Some((p, _)) = model.perplexity {
        let b = base.and_then(|b| b.perplexity).map(|(b, _)| b);
        rows.push(("word perplexity", p.word_perplexity, b.map(|b| b.word_perplexity)));
        rows.push(("byte perplexity", p.byte_perplexity, b.map(|b| b.byte_perplexity)));
        rows.push(("bits per byte", p.bits_per_byte, b.map(|b| b.bits_per_byte)));
    }
    if let Some((acc, acc_norm, _)) = model.choices {
        let b = base.and_then(|b| b.choices);
        rows.push(("acc", acc, b.map(|b| b.0)));
        rows.push(("acc_norm", acc_norm, b.map(|b| b.1)));
    }
    let mut out = String::from("| metric | model | base | model / base |\n|---|---|---|---|\n");
    for (name, value, base) in rows {
        let (base, ratio) = match base {
            Some(b) => (format!("{b:.4}"), format!("{:.3}", value / b)),
            None => ("-".into(), "-".into()),
        };
        out.push_str(&format!("| {name} | {value:.4} | {base} | {ratio} |\n"));
    }
    out
}

fn write_atomic(path: &PathBuf, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, path)
}
