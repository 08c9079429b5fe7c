//! Pruned text checkpoints against transformers: `prune_checkpoint` with the generic `DecoderOnlyLayout` writes a
//! directory whose config fields and logits equal transformers' in-place layer removal
//! (`fixtures/golden/surgery/tiny-*-drop-*`, from `fixtures/make_text_decoder_fixtures.py`), and
//! whose logits equal pruning the loaded model in memory exactly.

use std::path::PathBuf;

use burn::tensor::DType;
use interlace_core::{DecoderOnlyLayout, DecoderStack, LayerSet};
use interlace_llama::{LlamaForCausalLM, TextInput};
use interlace_surgery::{prune_checkpoint, DiskPruneOptions, DropSpec, NoProgress};
use interlace_testkit::Flex;
use safetensors::SafeTensors;

type Cpu = Flex<f32>;

/// Relative error allowed on the pruned model's logits: the parity suite's bar (measured worst
/// 6.3e-7, tiny-qwen2-drop-1; the test prints each case).
const TOLERANCE: f64 = 5e-6;

const CASES: [(&str, &str, &[usize]); 3] =
    [("tiny-qwen2-drop-1", "tiny-qwen2", &[1]), ("tiny-llama3-drop-0-2", "tiny-llama3", &[0, 2]), ("tiny-mistral-drop-3", "tiny-mistral", &[3])];

fn fixtures() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures"))
}

fn json(path: PathBuf) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn input(model: &str) -> TextInput {
    let golden = json(fixtures().join("golden").join(model).join("long.json"));
    TextInput::from(golden["input_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect::<Vec<_>>())
}

fn golden_logits(case: &str) -> Vec<f32> {
    let bytes = std::fs::read(fixtures().join("golden/surgery").join(case).join("long.safetensors")).unwrap();
    let golden = SafeTensors::deserialize(&bytes).unwrap();
    golden.tensor("logits").unwrap().data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

fn logits(model: &LlamaForCausalLM<Cpu>, input: &TextInput) -> Vec<f32> {
    model.forward(input).unwrap().into_data().into_vec::<f32>().unwrap()
}

fn relative_error(actual: &[f32], expected: &[f32]) -> f64 {
    assert_eq!(actual.len(), expected.len());
    let diff: f64 = actual.iter().zip(expected).map(|(a, b)| ((a - b) as f64).powi(2)).sum();
    let norm: f64 = expected.iter().map(|b| (*b as f64).powi(2)).sum();
    (diff / norm).sqrt()
}

#[test]
fn on_disk_pruning_matches_transformers_and_in_memory_pruning() {
    let scratch = tempfile::tempdir().unwrap();
    for (case, model, drop) in CASES {
        let source = fixtures().join("models").join(model);
        let out = scratch.path().join(case);
        let options = DiskPruneOptions { layout: Some(Box::new(DecoderOnlyLayout)), ..Default::default() };
        prune_checkpoint(&source, &out, &DropSpec::Layers(drop.to_vec()), &options, &mut NoProgress).unwrap();

        let after = json(fixtures().join("golden/surgery").join(case).join("long.json"))["after"].clone();
        let config = json(out.join("config.json"));
        for (field, expected) in after.as_object().unwrap() {
            assert_eq!(&config[field], expected, "{case}: {field} of the pruned config.json");
        }

        let pruned = LlamaForCausalLM::<Cpu>::from_pretrained(&out, &Default::default(), DType::F32).unwrap();
        let ours = logits(&pruned, &input(model));
        let error = relative_error(&ours, &golden_logits(case));
        eprintln!("{case}: relative error {error:.2e}");
        assert!(error <= TOLERANCE, "{case}: relative error {error:.2e}");

        let whole = LlamaForCausalLM::<Cpu>::from_pretrained(&source, &Default::default(), DType::F32).unwrap();
        let in_memory = whole.remove_layers(&LayerSet::new(drop.iter().copied(), 4).unwrap()).unwrap();
        assert_eq!(in_memory.config, pruned.config, "{case}: in-memory config");
        assert_eq!(logits(&in_memory, &input(model)), ours, "{case}: in-memory pruning");
    }
}
