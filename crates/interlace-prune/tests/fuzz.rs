//! Fuzzing on stable Rust: property tests feed the parsers users feed — plan JSON, similarity
//! packs and report, `config.json` (model and surgery readers), safetensors headers, LLaVA
//! records, benchmark TSV/JSONL rows, `interlace.json` — with arbitrary bytes and with
//! structured but hostile JSON, and require that each returns `Ok` or `Err`, never panics.
//!
//! Inputs that once made a parser panic live under `fixtures/fuzz-corpus/<parser>/`, one file
//! each, and [`corpus_inputs_are_read_or_refused`] replays every one of them through its parser.
//! A new crash found here belongs there too (the file name says what it was).
//!
//! Case counts are modest so the whole file runs in seconds; raise `FUZZ_CASES` for a longer
//! hunt (`FUZZ_CASES=20000 cargo test -p interlace-prune --test fuzz --release`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use interlace_prune::core::Plan;
use interlace_prune::eval::read_benchmark;
use interlace_prune::qwen3vl::checkpoint::Checkpoint;
use interlace_prune::qwen3vl::llava::RecordFile;
use interlace_prune::qwen3vl::Qwen3VlConfig;
use interlace_prune::similarity::{select, SimilarityTables, Strategy as Selection};
use interlace_prune::surgery::{prune_checkpoint, recorded_plan, DiskPruneOptions, DropSpec, NoProgress};
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{json, Value};

fn fixtures() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures"))
}

fn cases() -> u32 {
    std::env::var("FUZZ_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(48)
}

fn config() -> Config {
    // No regression files written into the source tree: crashes go to the corpus by hand.
    Config { cases: cases(), failure_persistence: None, ..Config::default() }
}

// ---------------------------------------------------------------------------------------------
// The parsers, each driven the way the tools drive it. Results are ignored: only a panic fails.
// ---------------------------------------------------------------------------------------------

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// `plan.json` as `interlace train/prune --plan` read it, then what they compute from it.
fn drive_plan(bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    if let Ok(plan) = Plan::from_file(write(dir.path(), "plan.json", bytes)) {
        let _ = (plan.finetune_after_pruning(), plan.freeze_after_pruning(), plan.drop_set());
        let _ = interlace_prune::check_plan_matches(dir.path(), &plan);
    }
}

/// A similarity directory (`pack1..3.json`, `report.json`) as `interlace select` reads it, then
/// every strategy at several ratios.
fn drive_similarity(files: &[(&str, &[u8])]) {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        write(dir.path(), name, bytes);
    }
    if let Ok(tables) = SimilarityTables::from_dir(dir.path()) {
        for strategy in Selection::ALL {
            for ratio in [0.05, 0.2, 0.34, 0.5, 0.9] {
                let _ = select(&tables, strategy, ratio, 42);
            }
        }
    }
}

fn drive_pack(bytes: &[u8]) {
    drive_similarity(&[("pack1.json", bytes)]);
    drive_similarity(&[("pack1.json", bytes), ("pack2.json", bytes), ("pack3.json", bytes)]);
}

fn drive_report(bytes: &[u8]) {
    drive_similarity(&[("report.json", bytes)]);
}

/// `config.json` through the model's reader (and what the model computes from it) and through
/// surgery's reader (layout, layer count, plan), which stops at the missing weights.
fn drive_config(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    if let Ok(c) = Qwen3VlConfig::from_json_str(&text, "config.json") {
        let _ = (c.vision.patch_dim(), c.vision.merged_width(), c.vision.head_dim(), c.vision.position_grid_side());
    }
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("model");
    std::fs::create_dir(&source).unwrap();
    write(&source, "config.json", bytes);
    for drop in [DropSpec::Layers(vec![1]), DropSpec::Layers(vec![0, 2]), DropSpec::Plan(Plan::new(3, "m", 0.3, vec![1], vec![], vec![0, 2]).unwrap())] {
        // the registry's layout when the config names a family, else surgery's own detection
        let options = interlace_prune::registry::prune_options(&source).unwrap_or_default();
        let _ = prune_checkpoint(&source, &dir.path().join("out"), &drop, &options, &mut NoProgress);
    }
}

/// A `model.safetensors` through the model loader's checkpoint reader (every tensor read) and
/// through surgery (which re-packs it).
fn drive_safetensors(bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("model");
    std::fs::create_dir(&source).unwrap();
    write(&source, "model.safetensors", bytes);
    write(&source, "config.json", br#"{"num_hidden_layers": 3}"#);
    if let Ok(checkpoint) = Checkpoint::open(&source) {
        let names: Vec<String> = checkpoint.names().map(str::to_string).collect();
        for name in names {
            let shape = checkpoint.shape(&name).map(<[usize]>::to_vec).unwrap_or_default();
            let _ = checkpoint.read(&name, &shape, interlace_prune::burn::tensor::DType::F32);
        }
        let _ = checkpoint.tensor_sizes();
    }
    let options = DiskPruneOptions { force: true, ..DiskPruneOptions::default() };
    let _ = prune_checkpoint(&source, &dir.path().join("out"), &DropSpec::Layers(vec![1]), &options, &mut NoProgress);
}

/// A LLaVA/FineVision data file, as JSONL and as a JSON array: every record parsed and turned
/// into chat messages, and the training reader over the same file.
fn drive_llava(bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    for name in ["data.jsonl", "data.json"] {
        let path = write(dir.path(), name, bytes);
        if let Ok(file) = RecordFile::open(&path) {
            for index in 0..file.len().min(64) + 1 {
                if let Ok(record) = file.record(index) {
                    let _ = record.to_messages(dir.path());
                }
            }
        }
        let _ = interlace_prune::train::data::read_records(&path);
    }
}

/// A benchmark file as `interlace eval` reads it (TSV and JSONL, lenient and strict), then
/// what evaluation asks of every item.
fn drive_benchmark(bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    for name in ["bench.tsv", "bench.jsonl"] {
        let path = write(dir.path(), name, bytes);
        let _ = read_benchmark(&path, true);
        if let Ok(bench) = read_benchmark(&path, false) {
            for item in &bench.items {
                let _ = (item.kind(), item.answer_letter());
                for image in &item.images {
                    let _ = image.load();
                }
            }
        }
    }
}

/// `interlace.json` of a pruned directory: the recorded plan, and the trainer's export that
/// extends the file.
fn drive_provenance(bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("pruned");
    std::fs::create_dir(&source).unwrap();
    write(&source, "interlace.json", bytes);
    let _ = recorded_plan(&source);
    let _ = interlace_prune::train::export::save_trained(&source, &dir.path().join("out"), &[], json!({"steps": 1}), true);
}

/// The parser each corpus folder's inputs go through.
fn driver(parser: &str) -> Option<fn(&[u8])> {
    Some(match parser {
        "plan" => drive_plan,
        "pack" => drive_pack,
        "report" => drive_report,
        "config" => drive_config,
        "safetensors" => drive_safetensors,
        "llava" => drive_llava,
        "tsv" => drive_benchmark,
        "provenance" => drive_provenance,
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// Hostile values.
// ---------------------------------------------------------------------------------------------

/// Numbers where parsers go wrong: zero, off-by-one, past u32/usize/f64, negative, fractional.
fn hostile_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0u64..8).prop_map(Value::from),
        Just(json!(65536)),
        Just(json!(65537)),
        Just(json!(4294967306u64)),
        Just(json!(1_000_000_000_000_000_000u64)),
        Just(json!(u64::MAX)),
        Just(json!(-1)),
        Just(json!(i64::MIN)),
        Just(json!(0.5)),
        Just(json!(1e308)),
        Just(json!(-1e308)),
        Just(json!(-0.0)),
        any::<f64>().prop_filter("JSON has no NaN", |x| x.is_finite()).prop_map(Value::from),
    ]
}

fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("NaN".to_string()),
        Just("<image>".to_string()),
        Just("<image><image>".to_string()),
        Just("['a', \"b\"".to_string()),
        Just("[\"x\", 'y']".to_string()),
        Just("A".to_string()),
        Just("0".to_string()),
        Just("1".to_string()),
        Just("\"\t\n".to_string()),
        Just("../../etc/passwd".to_string()),
        "\\PC{0,12}",
    ]
}

/// Any JSON value, nested a little, with keys the parsers look for.
fn hostile_json(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![Just(Value::Null), any::<bool>().prop_map(Value::from), hostile_number(), hostile_string().prop_map(Value::from),];
    leaf.prop_recursive(3, 24, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::vec((prop::sample::select(keys).prop_map(str::to_string), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

fn bytes_of(value: &Value) -> Vec<u8> {
    value.to_string().into_bytes()
}

fn layer_list() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::collection::vec(0u64..8, 0..8).prop_map(Value::from),
        prop::collection::vec(hostile_number(), 0..4).prop_map(Value::from),
        hostile_json(&["0"]),
    ]
}

const PLAN_KEYS: &[&str] = &["n_layers", "strategy", "ratio", "drop", "finetune", "freeze"];
const RECORD_KEYS: &[&str] = &["image", "conversations", "from", "value", "human", "gpt"];
const ROW_KEYS: &[&str] = &["index", "question", "hint", "A", "B", "C", "answer", "category", "image", "image_path", "options"];

/// A plan-shaped object whose fields hold hostile values.
fn plan_json() -> impl Strategy<Value = Value> {
    (prop_oneof![(0u64..9).prop_map(Value::from), hostile_number()], hostile_json(PLAN_KEYS), hostile_number(), layer_list(), layer_list(), layer_list())
        .prop_map(|(n, strategy, ratio, drop, finetune, freeze)| json!({"n_layers": n, "strategy": strategy, "ratio": ratio, "drop": drop, "finetune": finetune, "freeze": freeze}))
}

/// An official pack file shape: `{"0": [values], ...}` with hostile keys and values.
fn pack_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![(0u32..8).prop_map(|k| k.to_string()), hostile_string()];
    let values = prop_oneof![
        prop::collection::vec(hostile_number(), 0..20).prop_map(Value::from),
        prop::collection::vec(-1.0f64..1.0, 1..6).prop_map(Value::from),
        hostile_json(&["0"]),
    ];
    prop::collection::vec((key, values), 0..8).prop_map(|entries| Value::Object(entries.into_iter().collect()))
}

/// The tiny model's real `config.json` with a few fields replaced by hostile values.
fn config_json() -> impl Strategy<Value = Value> {
    const FIELDS: &[&str] = &[
        "/image_token_id",
        "/video_token_id",
        "/tie_word_embeddings",
        "/model_type",
        "/text_config",
        "/text_config/num_hidden_layers",
        "/text_config/hidden_size",
        "/text_config/head_dim",
        "/text_config/num_attention_heads",
        "/text_config/num_key_value_heads",
        "/text_config/vocab_size",
        "/text_config/rope_parameters",
        "/text_config/rope_parameters/mrope_section",
        "/text_config/rope_parameters/rope_theta",
        "/vision_config/depth",
        "/vision_config/num_heads",
        "/vision_config/hidden_size",
        "/vision_config/patch_size",
        "/vision_config/spatial_merge_size",
        "/vision_config/temporal_patch_size",
        "/vision_config/in_channels",
        "/vision_config/num_position_embeddings",
        "/vision_config/deepstack_visual_indexes",
        "/vision_config/out_hidden_size",
        "/num_hidden_layers",
    ];
    let base: Value = serde_json::from_str(&std::fs::read_to_string(fixtures().join("models/tiny-b/config.json")).unwrap()).unwrap();
    let edit = (prop::sample::select(FIELDS), prop_oneof![hostile_number(), hostile_json(&["mrope_section", "rope_theta"])]);
    prop::collection::vec(edit, 1..4).prop_map(move |edits| {
        let mut config = base.clone();
        for (field, value) in edits {
            let (parent, key) = field.rsplit_once('/').unwrap();
            if let Some(Value::Object(map)) = config.pointer_mut(parent) {
                map.insert(key.to_string(), value);
            }
        }
        config
    })
}

/// A safetensors file: 8-byte header length (sometimes wrong), a header of tensor entries with
/// hostile dtypes, shapes and offsets, and some data bytes.
fn safetensors_file() -> impl Strategy<Value = Vec<u8>> {
    let dtype = prop_oneof![Just("F32"), Just("BF16"), Just("F16"), Just("I64"), Just("U8"), Just("BOOL"), Just("X")];
    let dim = prop_oneof![0u64..5, Just(1u64 << 32), Just(u64::MAX), Just(1u64 << 62)];
    let offset = prop_oneof![0u64..64, Just(u64::MAX), Just(1u64 << 40)];
    let name = prop_oneof![
        Just("model.layers.0.mlp.weight".to_string()),
        Just("model.layers.1.mlp.weight".to_string()),
        Just("model.layers.99999999999999999999.x".to_string()),
        Just("model.language_model.layers.2.input_layernorm.weight".to_string()),
        Just("__metadata__".to_string()),
        "\\PC{0,8}",
    ];
    let entry = (name, dtype, prop::collection::vec(dim, 0..4), offset.clone(), offset);
    (prop::collection::vec(entry, 0..5), any::<bool>(), prop::collection::vec(any::<u8>(), 0..96), 0u64..4).prop_map(|(entries, metadata, data, skew)| {
        let mut header = serde_json::Map::new();
        if metadata {
            header.insert("__metadata__".into(), json!({"format": "pt"}));
        }
        for (name, dtype, shape, start, end) in entries {
            header.insert(name, json!({"dtype": dtype, "shape": shape, "data_offsets": [start, end]}));
        }
        let text = Value::Object(header).to_string();
        let mut file = (text.len() as u64).wrapping_add(skew.saturating_sub(1)).to_le_bytes().to_vec();
        file.extend_from_slice(text.as_bytes());
        file.extend_from_slice(&data);
        file
    })
}

/// A well-formed safetensors file (consistent offsets, exact data length) whose tensor names
/// and shapes are hostile to the code after the parser: layer numbers past usize, tensors that
/// are not where a layout expects them, empty shapes.
fn consistent_safetensors_file() -> impl Strategy<Value = Vec<u8>> {
    let name = prop_oneof![
        (0u32..4).prop_map(|i| format!("model.layers.{i}.mlp.weight")),
        (0u32..4).prop_map(|i| format!("model.language_model.layers.{i}.input_layernorm.weight")),
        Just("model.layers.99999999999999999999.x".to_string()),
        Just("model.layers.-1.x".to_string()),
        Just("model.layers..x".to_string()),
        Just("lm_head.weight".to_string()),
        "model\\.layers\\.[0-9]{1,3}\\.\\PC{0,4}",
    ];
    let dtype = prop_oneof![Just(("F32", 4usize)), Just(("BF16", 2)), Just(("U8", 1)), Just(("I64", 8))];
    prop::collection::btree_map(name, (dtype, prop::collection::vec(0usize..4, 0..3)), 0..6).prop_map(|entries| {
        let mut header = serde_json::Map::new();
        header.insert("__metadata__".into(), json!({"format": "pt"}));
        let mut offset = 0usize;
        for (name, ((dtype, size), shape)) in entries {
            let end = offset + size * shape.iter().product::<usize>();
            header.insert(name, json!({"dtype": dtype, "shape": shape, "data_offsets": [offset, end]}));
            offset = end;
        }
        let text = Value::Object(header).to_string();
        let mut file = (text.len() as u64).to_le_bytes().to_vec();
        file.extend_from_slice(text.as_bytes());
        file.extend(std::iter::repeat_n(0x3fu8, offset));
        file
    })
}

/// JSONL whose lines are record-shaped objects with hostile fields (or any JSON at all).
fn llava_file() -> impl Strategy<Value = Vec<u8>> {
    let turn = (prop_oneof![Just(json!("human")), Just(json!("gpt")), Just(json!("system")), hostile_json(RECORD_KEYS)], hostile_string())
        .prop_map(|(from, value)| json!({"from": from, "value": value}));
    let record = (prop_oneof![Just(Value::Null), hostile_string().prop_map(Value::from), hostile_json(RECORD_KEYS)], prop::collection::vec(turn, 0..4))
        .prop_map(|(image, turns)| json!({"image": image, "conversations": turns}));
    let line = prop_oneof![record.prop_map(|r| r.to_string()), hostile_json(RECORD_KEYS).prop_map(|v| v.to_string()), "\\PC{0,20}"];
    (prop::collection::vec(line, 0..6), any::<bool>()).prop_map(|(lines, array)| {
        let text = if array { format!("[{}]", lines.join(",\n")) } else { lines.join("\n") };
        text.into_bytes()
    })
}

/// A VLMEvalKit-style TSV: a header from the known columns, rows of hostile cells (tabs, quotes,
/// newlines, list literals, row references).
fn tsv_file() -> impl Strategy<Value = Vec<u8>> {
    let cell = prop_oneof![hostile_string(), (0u32..4).prop_map(|i| i.to_string()), Just("\"a\"\"b\"".to_string()), Just("\"open".to_string())];
    (prop::collection::vec(prop::sample::select(ROW_KEYS), 1..8), prop::collection::vec(prop::collection::vec(cell, 0..9), 0..6), any::<bool>()).prop_map(
        |(header, rows, crlf)| {
            let newline = if crlf { "\r\n" } else { "\n" };
            let mut text = header.join("\t");
            for row in rows {
                text.push_str(newline);
                text.push_str(&row.join("\t"));
            }
            text.into_bytes()
        },
    )
}

/// JSONL benchmark rows with hostile fields.
fn bench_jsonl() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(hostile_json(ROW_KEYS), 0..6).prop_map(|rows| rows.iter().map(Value::to_string).collect::<Vec<_>>().join("\n").into_bytes())
}

// ---------------------------------------------------------------------------------------------
// The properties.
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256), parser in prop::sample::select(&["plan", "pack", "report", "config", "safetensors", "llava", "tsv", "provenance"][..])) {
        driver(parser).unwrap()(&bytes);
    }

    #[test]
    fn hostile_plans_never_panic(plan in plan_json()) {
        drive_plan(&bytes_of(&plan));
        drive_provenance(&bytes_of(&json!({"plan": plan})));
    }

    #[test]
    fn hostile_packs_and_reports_never_panic(pack in pack_json(), other in pack_json(), report in hostile_json(&["n_layers", "packs"])) {
        drive_pack(&bytes_of(&pack));
        drive_similarity(&[("pack1.json", &bytes_of(&pack)), ("pack3.json", &bytes_of(&other)), ("report.json", &bytes_of(&report))]);
        drive_report(&bytes_of(&report));
    }

    #[test]
    fn hostile_configs_never_panic(config in config_json()) {
        drive_config(&bytes_of(&config));
    }

    #[test]
    fn hostile_safetensors_headers_never_panic(file in safetensors_file(), consistent in consistent_safetensors_file()) {
        drive_safetensors(&file);
        drive_safetensors(&consistent);
    }

    #[test]
    fn hostile_llava_records_never_panic(file in llava_file()) {
        drive_llava(&file);
    }

    #[test]
    fn hostile_benchmark_rows_never_panic(tsv in tsv_file(), jsonl in bench_jsonl()) {
        drive_benchmark(&tsv);
        drive_benchmark(&jsonl);
    }

    #[test]
    fn hostile_provenance_never_panics(value in hostile_json(&["plan", "tool", "train", "n_layers", "drop"])) {
        drive_provenance(&bytes_of(&value));
    }
}

/// Every file under `fixtures/fuzz-corpus/<parser>/` goes through its parser; each once
/// panicked (or aborted) there and must now be read or refused.
#[test]
fn corpus_inputs_are_read_or_refused() {
    let root = fixtures().join("fuzz-corpus");
    let mut replayed = 0;
    let mut failures = Vec::new();
    let mut parsers: Vec<_> = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    parsers.sort();
    for folder in parsers {
        let parser = folder.file_name().unwrap().to_string_lossy().into_owned();
        let drive = driver(&parser).unwrap_or_else(|| panic!("{}: no parser is named `{parser}`", folder.display()));
        let mut files: Vec<_> = std::fs::read_dir(&folder).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
        files.sort();
        for file in files {
            let bytes = std::fs::read(&file).unwrap();
            if catch_unwind(AssertUnwindSafe(|| drive(&bytes))).is_err() {
                failures.push(file.display().to_string());
            }
            replayed += 1;
        }
    }
    assert!(failures.is_empty(), "these corpus inputs panic: {failures:#?}");
    assert!(replayed >= 8, "only {replayed} corpus files found under {}", root.display());
}
