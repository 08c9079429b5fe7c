//! Token ids of `TextProcessor` against transformers' `AutoTokenizer` on the tiny checkpoints:
//! documents as `tokenizer(text)`, conversations as `apply_chat_template(...,
//! add_generation_prompt=True)` (`fixtures/golden/similarity/*-text.json`, written by
//! `fixtures/make_text_decoder_fixtures.py` from `fixtures/calibration/text.jsonl`).

use std::path::PathBuf;

use interlace_chat::labels::{assistant_labels, TurnMarkers, IGNORE_INDEX};
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

fn messages_of(case: &serde_json::Value) -> Vec<ChatMessage> {
    serde_json::from_value(case["messages"].clone()).unwrap()
}

/// Assistant-only labels on a non-ChatML template (role headers and an end-of-turn token, the
/// shape of Llama 3's) equal transformers' `return_assistant_tokens_mask`
/// (`fixtures/golden/tiny-qwen2/assistant_masks.json`).
#[test]
fn assistant_labels_follow_any_template_as_transformers_marks_them() {
    let golden: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixtures().join("golden/tiny-qwen2/assistant_masks.json")).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixtures().join("models/tiny-qwen2/tokenizer.json"), dir.path().join("tokenizer.json")).unwrap();
    std::fs::write(dir.path().join("chat_template.jinja"), golden["template"].as_str().unwrap()).unwrap();
    let processor = TextProcessor::from_dir(dir.path()).unwrap();
    for case in golden["cases"].as_array().unwrap() {
        let (ids, labels) = processor.supervised_ids(&messages_of(case)).unwrap();
        let expected: Vec<u32> = case["input_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        assert_eq!(ids, expected);
        let mask: Vec<u64> = labels.iter().map(|&l| u64::from(l != IGNORE_INDEX)).collect();
        let expected_mask: Vec<u64> = case["assistant_masks"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
        assert_eq!(mask, expected_mask, "{}", case["messages"]);
        assert!(labels.iter().zip(&ids).all(|(&l, &id)| l == IGNORE_INDEX || l == id as i64));
    }
}

/// On a ChatML template the same rule gives the official Qwen fine-tuning labels (content,
/// `<|im_end|>` and the newline after it).
#[test]
fn on_chatml_the_rule_equals_the_official_qwen_labels() {
    let golden: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixtures().join("golden/tiny-qwen2/assistant_masks.json")).unwrap()).unwrap();
    let processor = TextProcessor::from_dir(fixtures().join("models/tiny-qwen2")).unwrap();
    let tokenizer = processor.tokenizer();
    let markers = TurnMarkers {
        im_start: tokenizer.token_to_id("<|im_start|>").unwrap(),
        im_end: tokenizer.token_to_id("<|im_end|>").unwrap(),
        assistant_header: processor.encode_text("assistant\n").unwrap(),
    };
    for case in golden["cases"].as_array().unwrap() {
        let (ids, labels) = processor.supervised_ids(&messages_of(case)).unwrap();
        assert_eq!(labels, assistant_labels(&ids, &markers), "{}", case["messages"]);
        assert!(labels.iter().any(|&l| l != IGNORE_INDEX));
    }
}
