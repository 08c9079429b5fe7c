//! `interlace prune` then `interlace train` then `interlace generate` on the trained output.

use std::path::PathBuf;
use std::process::Command;

fn fixtures() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures"))
}

fn interlace(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_interlace")).args(args).output().expect("interlace runs")
}

fn ok(output: std::process::Output) -> String {
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Writes `plan.json` (tiny-b: drop 1, fine-tune 2) into `dir` and prunes tiny-b into
/// `dir/pruned` with the CLI; returns the unpruned model directory.
fn prune_with_plan(dir: &std::path::Path) -> PathBuf {
    let plan = r#"{"n_layers": 5, "strategy": "manual", "ratio": 0.2, "drop": [1], "finetune": [2], "freeze": [0, 3, 4]}"#;
    std::fs::write(dir.join("plan.json"), plan).unwrap();
    let model = fixtures().join("models/tiny-b");
    let (plan, pruned) = (dir.join("plan.json"), dir.join("pruned"));
    ok(interlace(&["prune", "--model", model.to_str().unwrap(), "--plan", plan.to_str().unwrap(), "--out", pruned.to_str().unwrap()]));
    model
}

#[test]
fn prune_train_generate() {
    let dir = tempfile::tempdir().unwrap();
    let path = |p: &str| dir.path().join(p).to_str().unwrap().to_string();
    let model = prune_with_plan(dir.path());
    let data = fixtures().join("train/conversations.jsonl");
    let stdout = ok(interlace(&[
        "train",
        "--model",
        &path("pruned"),
        "--plan",
        &path("plan.json"),
        "--data",
        data.to_str().unwrap(),
        "--out",
        &path("trained"),
        "--epochs",
        "3",
        "--lr",
        "1e-3",
        "--checkpoint-every",
        "4",
    ]));
    assert!(stdout.contains("trained 12 steps"), "{stdout}");
    let run = dir.path().join("trained.run");
    assert_eq!(std::fs::read_to_string(run.join("log.jsonl")).unwrap().lines().count(), 12);
    assert!(run.join("loss.png").exists());
    let provenance: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("trained/interlace.json")).unwrap()).unwrap();
    assert_eq!(provenance["train"]["steps"], 12);
    let generated = ok(interlace(&["generate", "--model", &path("trained"), "--prompt", "Say hello.", "--max-new-tokens", "4", "--json"]));
    let json: serde_json::Value = serde_json::from_str(&generated).unwrap();
    assert!(!json["new_tokens"].as_array().unwrap().is_empty());

    // Training the unpruned model against the plan is refused with a hint.
    let wrong = interlace(&["train", "--model", model.to_str().unwrap(), "--plan", &path("plan.json"), "--data", data.to_str().unwrap(), "--out", &path("x")]);
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("interlace prune"));
    // An existing output is not overwritten without --force.
    let again = interlace(&[
        "train",
        "--model",
        &path("pruned"),
        "--plan",
        &path("plan.json"),
        "--data",
        data.to_str().unwrap(),
        "--out",
        &path("trained"),
        "--run-dir",
        &path("run2"),
    ]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
}

/// Bytes of every safetensors file of a model directory, by file name.
fn weights(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
    files
}

#[test]
fn kill_9_then_resume_gives_the_uninterrupted_weights() {
    let dir = tempfile::tempdir().unwrap();
    let path = |p: &str| dir.path().join(p).to_str().unwrap().to_string();
    prune_with_plan(dir.path());
    let data = fixtures().join("train/conversations.jsonl");
    let args = |out: &str| {
        vec![
            "train".to_string(),
            "--model".into(),
            path("pruned"),
            "--plan".into(),
            path("plan.json"),
            "--data".into(),
            data.to_str().unwrap().into(),
            "--out".into(),
            path(out),
            "--epochs".into(),
            "40".into(),
            "--lr".into(),
            "1e-3".into(),
            "--checkpoint-every".into(),
            "3".into(),
        ]
    };
    ok(Command::new(env!("CARGO_BIN_EXE_interlace")).args(args("straight")).output().unwrap());

    let mut child = Command::new(env!("CARGO_BIN_EXE_interlace")).args(args("killed")).spawn().unwrap();
    let checkpoints = dir.path().join("killed.run/checkpoints");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::read_dir(&checkpoints).map(|d| d.count()).unwrap_or(0) == 0 {
        assert!(std::time::Instant::now() < deadline, "no checkpoint appeared");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::thread::sleep(std::time::Duration::from_millis(150));
    child.kill().unwrap(); // SIGKILL: no destructor, no flush
    let status = child.wait().unwrap();
    assert!(!status.success(), "the run should have been killed mid-way (make it longer if the machine is fast)");
    assert!(!dir.path().join("killed").exists(), "no output before the run completes");

    let mut resume = args("killed");
    resume.push("--resume".into());
    let stdout = ok(Command::new(env!("CARGO_BIN_EXE_interlace")).args(&resume).output().unwrap());
    assert!(stdout.contains("trained 160 steps"), "{stdout}");
    assert_eq!(weights(&dir.path().join("killed")), weights(&dir.path().join("straight")));
}

#[test]
fn run_chains_similarity_select_prune_train() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let model = fixtures().join("models/tiny-b");
    let data = fixtures().join("train/conversations.jsonl");
    let output = interlace(&[
        "run",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--ratio",
        "0.2",
        "--out",
        out.to_str().unwrap(),
        "--epochs",
        "2",
        "--lr",
        "1e-3",
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let work = dir.path().join("out.work");
    let plan: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(work.join("plan.json")).unwrap()).unwrap();
    assert_eq!(plan["drop"].as_array().unwrap().len(), 1, "floor(5 × 0.2) = 1 layer dropped");
    for file in ["similarity/pack1.json", "similarity/pack3.json", "similarity/report.json", "pruned/config.json", "run/log.jsonl"] {
        assert!(work.join(file).exists(), "{file}");
    }
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["text_config"]["num_hidden_layers"], 4);
}

#[test]
fn two_replicas_with_activation_checkpointing_write_the_single_device_weights() {
    let dir = tempfile::tempdir().unwrap();
    let path = |p: &str| dir.path().join(p).to_str().unwrap().to_string();
    prune_with_plan(dir.path());
    let data = fixtures().join("train/conversations.jsonl");
    let train = |out: &str, extra: &[&str]| {
        let (pruned, plan, out) = (path("pruned"), path("plan.json"), path(out));
        let mut args = vec!["train", "--model", &pruned, "--plan", &plan, "--data", data.to_str().unwrap()];
        args.extend(["--out", &out, "--epochs", "2", "--lr", "1e-3"]);
        args.extend(extra);
        ok(interlace(&args))
    };
    let single = train("single", &["--grad-accum", "2"]);
    assert!(single.contains("trained 4 steps"), "{single}");
    // On the CPU backend both replicas share the one CPU: the same arithmetic, no speed-up.
    let parallel = train("parallel", &["--devices", "0,1", "--activation-checkpointing"]);
    assert!(parallel.contains("trained 4 steps"), "{parallel}");
    assert_eq!(weights(&dir.path().join("parallel")), weights(&dir.path().join("single")));
    let provenance: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("parallel/interlace.json")).unwrap()).unwrap();
    assert_eq!(provenance["train"]["config"]["activation_checkpointing"], true);
    assert_eq!(provenance["train"]["devices"], 2);

    let twice = interlace(&[
        "train",
        "--model",
        &path("pruned"),
        "--plan",
        &path("plan.json"),
        "--data",
        data.to_str().unwrap(),
        "--out",
        &path("x"),
        "--devices",
        "1,1",
    ]);
    assert!(String::from_utf8_lossy(&twice.stderr).contains("listed twice"));
}

#[test]
fn run_with_a_plan_from_another_strategy_skips_similarity_and_selection() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let model = fixtures().join("models/tiny-b");
    let data = fixtures().join("train/conversations.jsonl");
    // A plan as `interlace sleb --finetune next` writes it.
    let plan = dir.path().join("plan.json");
    let json = r#"{"n_layers": 5, "strategy": "sleb", "ratio": 0.4, "drop": [1, 3], "finetune": [2, 4], "freeze": [0]}"#;
    std::fs::write(&plan, json).unwrap();
    let (model, data, plan_arg, out_arg) = (model.to_str().unwrap(), data.to_str().unwrap(), plan.to_str().unwrap(), out.to_str().unwrap());
    let output = interlace(&["run", "--model", model, "--data", data, "--plan", plan_arg, "--out", out_arg, "--lr", "1e-3"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("plan (sleb)"), "{stderr}");
    let work = dir.path().join("out.work");
    assert!(!work.join("similarity").exists(), "no similarity pass with --plan");
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["text_config"]["num_hidden_layers"], 3);
    // --plan and --ratio exclude each other; a plan for another model is refused.
    let both = interlace(&["run", "--model", model, "--data", data, "--plan", plan_arg, "--ratio", "0.2", "--out", out_arg]);
    assert!(!both.status.success());
    std::fs::write(&plan, json.replace("\"n_layers\": 5", "\"n_layers\": 6").replace("[0]", "[0, 5]")).unwrap();
    let other = interlace(&["run", "--model", model, "--data", data, "--plan", plan_arg, "--out", &format!("{out_arg}2")]);
    assert!(!other.status.success(), "a 6-layer plan on a 5-layer model");
}

/// Every tensor of a model directory, by name: (dtype, shape, bytes).
fn tensors(dir: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut all = std::collections::BTreeMap::new();
    for (_, bytes) in weights(dir) {
        let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        for (name, view) in file.tensors() {
            all.insert(name, view.data().to_vec());
        }
    }
    all
}

#[test]
fn run_prunes_and_trains_a_qwen3_vl_moe_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let model = fixtures().join("models/tiny-moe");
    let data = fixtures().join("train/conversations.jsonl");
    let (model_arg, data_arg, out_arg) = (model.to_str().unwrap(), data.to_str().unwrap(), out.to_str().unwrap());
    ok(interlace(&["run", "--model", model_arg, "--data", data_arg, "--ratio", "0.2", "--out", out_arg, "--lr", "1e-3"]));
    let work = dir.path().join("out.work");
    let plan: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(work.join("plan.json")).unwrap()).unwrap();
    let drop = plan["drop"][0].as_u64().unwrap() as usize;
    let finetune = plan["finetune"][0].as_u64().unwrap() as usize;
    // The dense layer 3 (`mlp_only_layers`) keeps its kind under its new index.
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    let dense_after = if drop < 3 { 2 } else { 3 };
    assert_eq!(config["text_config"]["num_hidden_layers"], 4);
    assert_eq!(config["text_config"]["mlp_only_layers"], serde_json::json!([dense_after]), "drop {drop}");
    // Exactly the fine-tuned layer changed, its router and experts included; the rest is the pruned checkpoint.
    let (pruned, trained) = (tensors(&work.join("pruned")), tensors(&out));
    assert_eq!(pruned.keys().collect::<Vec<_>>(), trained.keys().collect::<Vec<_>>());
    let new_index = finetune - usize::from(drop < finetune);
    let prefix = format!("model.language_model.layers.{new_index}.");
    for (name, bytes) in &pruned {
        let changed = &trained[name] != bytes;
        if !name.starts_with(&prefix) {
            assert!(!changed, "{name} changed but belongs to no fine-tuned layer");
        }
    }
    if new_index != dense_after {
        for part in ["mlp.gate.weight", "mlp.experts.gate_up_proj", "mlp.experts.down_proj"] {
            let name = format!("{prefix}{part}");
            assert_ne!(trained[&name], pruned[&name], "{name} trains with its layer");
        }
    }
}

/// `interlace run` on the Qwen2 generation: Qwen2-VL as transformers 5 saves it (nested config
/// with `layer_types`) and Qwen2.5-VL in the hub's flat form. Both keep the hub's tensor names
/// (`model.layers.*`, `visual.*`), under which the trained layer is written back.
#[test]
fn run_prunes_and_trains_qwen2_vl_and_qwen2_5_vl_checkpoints() {
    for (model_name, layers) in [("tiny-qwen2vl", 4), ("tiny-qwen25vl", 5)] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let model = fixtures().join("models").join(model_name);
        let data = fixtures().join("train/conversations.jsonl");
        let (model_arg, data_arg, out_arg) = (model.to_str().unwrap(), data.to_str().unwrap(), out.to_str().unwrap());
        ok(interlace(&["run", "--model", model_arg, "--data", data_arg, "--ratio", "0.25", "--out", out_arg, "--lr", "1e-3"]));
        let work = dir.path().join("out.work");
        let plan: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(work.join("plan.json")).unwrap()).unwrap();
        let drop = plan["drop"][0].as_u64().unwrap() as usize;
        let finetune = plan["finetune"][0].as_u64().unwrap() as usize;
        let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
        let text = config.get("text_config").unwrap_or(&config);
        assert_eq!(text["num_hidden_layers"], layers - 1, "{model_name}");
        assert_eq!(text["max_window_layers"], layers - 1, "{model_name}: every kept layer stays below the boundary");
        if let Some(types) = text.get("layer_types") {
            assert_eq!(types.as_array().unwrap().len(), layers - 1, "{model_name}: layer_types follows the layers");
        }
        let (pruned, trained) = (tensors(&work.join("pruned")), tensors(&out));
        assert_eq!(pruned.keys().collect::<Vec<_>>(), trained.keys().collect::<Vec<_>>(), "{model_name}: the same tensor names");
        let new_index = finetune - usize::from(drop < finetune);
        let prefix = format!("model.layers.{new_index}.");
        for (name, bytes) in &pruned {
            if !name.starts_with(&prefix) {
                assert_eq!(&trained[name], bytes, "{model_name}: {name} changed but belongs to no fine-tuned layer");
            }
        }
        for part in ["self_attn.q_proj.weight", "self_attn.q_proj.bias", "mlp.down_proj.weight"] {
            let name = format!("{prefix}{part}");
            assert_ne!(trained[&name], pruned[&name], "{model_name}: {name} trains with its layer");
        }
    }
}
