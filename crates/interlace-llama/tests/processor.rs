//! Token ids of `TextProcessor` against transformers' `AutoTokenizer` on the tiny checkpoints:
//! documents as `tokenizer(text)`, conversations as `apply_chat_template(...,
//! add_generation_prompt=True)` (`fixtures/golden/similarity/*-text.json`, written by
//! `fixtures/make_text_decoder_fixtures.py` from `fixtures/calibration/text.jsonl`).

use std::path::PathBuf;

use interlace_chat::{ChatMessage, ChatProcessor, ContentPart};
use interlace_llama::TextProcessor;

fn fixtures() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures"))
}

#[test]
fn documents_and_conversations_tokenize_as_transformers_does() {
    let records: Vec<serde_json::Value> =
        std::fs::read_to_string(fixtures().join("calibration/text.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for model in ["tiny-llama3", "tiny-qwen2"] {
        let processor = TextProcessor::from_dir(fixtures().join("models").join(model)).unwrap();
        let golden: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(fixtures().join(format!("golden/similarity/{model}-text.json"))).unwrap()).unwrap();
        for (record, expected) in records.iter().zip(golden["input_ids"].as_array().unwrap()) {
            let expected: Vec<u32> = expected.as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
            let ids = match record.get("text") {
                Some(text) => processor.document_input(text.as_str().unwrap()).unwrap().input_ids,
                None => {
                    let human = record["conversations"][0]["value"].as_str().unwrap();
                    processor.chat_input(&[ChatMessage::user(vec![ContentPart::text(human)])], true).unwrap().input_ids
                }
            };
            assert_eq!(ids, expected, "{model}: {record}");
        }
    }
}

#[test]
fn images_and_missing_templates_are_refused() {
    let processor = TextProcessor::from_dir(fixtures().join("models/tiny-qwen3")).unwrap();
    let with_image = [ChatMessage::user(vec![ContentPart::image_path("a.png"), ContentPart::text("What is it?")])];
    assert!(processor.chat_input(&with_image, true).unwrap_err().contains("cannot take images"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixtures().join("models/tiny-qwen3/tokenizer.json"), dir.path().join("tokenizer.json")).unwrap();
    let bare = TextProcessor::from_dir(dir.path()).unwrap();
    assert!(bare.chat_input(&[ChatMessage::user(vec![ContentPart::text("Hi")])], true).unwrap_err().contains("no chat template"));
    assert!(!bare.document_input("Hi").unwrap().input_ids.is_empty());
}
