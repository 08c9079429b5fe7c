//! The benchmark files written by `fixtures/make_eval_fixtures.py`, read in every layout.

use std::path::PathBuf;

use interlace_eval::vlmeval::{prompt_kind, prompt_text};
use interlace_eval::{read_benchmark, BenchItem, Benchmark, EvalError, ImageData, QuestionKind};

/// The prompt text VLMEvalKit's generic dataset class of the question's kind builds.
fn text(bench: &Benchmark, item: &BenchItem) -> String {
    prompt_text(prompt_kind(bench.dataset, item), item)
}

fn bench(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/bench").join(name)
}

#[test]
fn vlmevalkit_multiple_choice_tsv() {
    let b = read_benchmark(&bench("mcq.tsv"), false).unwrap();
    assert_eq!(b.name, "mcq");
    let indices: Vec<_> = b.items.iter().map(|i| i.index.as_str()).collect();
    assert_eq!(indices, ["0", "1", "2", "3"]);
    assert!(b.items.iter().all(|i| i.kind() == QuestionKind::MultipleChoice));
    // The malformed row is reported with its index and line, not evaluated.
    assert_eq!(b.malformed.len(), 1);
    assert_eq!(b.malformed[0].index, "4");
    assert_eq!(b.malformed[0].line, 6);
    assert!(b.malformed[0].reason.contains("not one of the option letters"), "{}", b.malformed[0].reason);
    // Empty option columns are not options; the quoted hint keeps its quotes.
    let one = &b.items[1];
    assert_eq!(one.options.iter().map(|(l, _)| *l).collect::<String>(), "ABC");
    assert_eq!(one.answer_letter(), Some('A'));
    assert_eq!(
        text(&b, one),
        "Hint: Count each picture once; \"image\" means photo.\nQuestion: How many images are shown?\nOptions:\nA. one\nB. two\nC. three\nPlease select the correct answer from the options above. \n"
    );
    assert_eq!(
        text(&b, &b.items[0]),
        "Question: What is the dominant colour of this picture?\nOptions:\nA. red\nB. gray\nC. green\nD. blue\nPlease select the correct answer from the options above. \n"
    );
    // Row 3 shares row 0's image by index.
    assert_eq!(b.items[3].images, b.items[0].images);
    let image = b.items[0].images[0].load().unwrap();
    assert_eq!((image.width(), image.height()), (100, 100));
    assert_eq!(b.items[0].category.as_deref(), Some("color"));
}

#[test]
fn strict_mode_fails_on_the_malformed_row() {
    match read_benchmark(&bench("mcq.tsv"), true) {
        Err(EvalError::Malformed { index, reason, .. }) => {
            assert_eq!(index, "4");
            assert!(reason.contains('E'));
        }
        other => panic!("expected a malformed-row error, got {other:?}"),
    }
}

#[test]
fn yes_no_and_open_tsv() {
    let yn = read_benchmark(&bench("yesno.tsv"), true).unwrap();
    assert_eq!(yn.items.len(), 3);
    assert!(yn.items.iter().all(|i| i.kind() == QuestionKind::YesNo));
    assert_eq!(text(&yn, &yn.items[1]), "Is there a giraffe in the image?", "ImageYORNDataset sends the question as written");

    let vqa = read_benchmark(&bench("vqa.tsv"), true).unwrap();
    assert!(vqa.items.iter().all(|i| i.kind() == QuestionKind::Open));
    assert_eq!(vqa.items[0].answers.len(), 10);
    assert_eq!(vqa.items[0].answers.iter().filter(|a| *a == "grey").count(), 3);
    assert_eq!(text(&vqa, &vqa.items[2]), "What is shown?\nAnswer the question using a single word or phrase.");

    let chart = read_benchmark(&bench("chart.tsv"), true).unwrap();
    assert_eq!(chart.items[0].answers, vec!["60".to_string()]);
    assert_eq!(chart.items[2].images.len(), 2);
    assert!(matches!(&chart.items[2].images[1], ImageData::Path(p) if p.ends_with("landscape.png")));
    for item in &chart.items {
        for image in &item.images {
            image.load().unwrap();
        }
    }
}

#[test]
fn jsonl_layout() {
    let b = read_benchmark(&bench("mixed.jsonl"), false).unwrap();
    let kinds: Vec<_> = b.items.iter().map(|i| (i.index.as_str(), i.kind())).collect();
    assert_eq!(kinds, [("m0", QuestionKind::MultipleChoice), ("m1", QuestionKind::YesNo), ("m2", QuestionKind::Open), ("m4", QuestionKind::MultipleChoice)]);
    assert_eq!(b.malformed.len(), 1);
    assert_eq!((b.malformed[0].index.as_str(), b.malformed[0].line), ("line 4", 4));
    assert_eq!(b.items[0].options, vec![('A', "red".to_string()), ('B', "gray".to_string())]);
    assert_eq!(b.items[2].answers, vec!["gray".to_string(), "grey".to_string()]);
    assert!(b.items[3].images.is_empty());
    assert_eq!(b.items[1].images[0].load().unwrap().width(), 60);
}

#[test]
fn bad_files_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.tsv");
    assert!(matches!(read_benchmark(&missing, false), Err(EvalError::Io { .. })));
    let no_question = dir.path().join("bad.tsv");
    std::fs::write(&no_question, "index\tanswer\n0\tA\n").unwrap();
    assert!(matches!(read_benchmark(&no_question, false), Err(EvalError::Format { .. })));
    let ragged = dir.path().join("ragged.tsv");
    std::fs::write(&ragged, "index\tquestion\tanswer\n0\tq?\tyes\n1\tonly two\n2\tbad image\tno\t\n").unwrap();
    let b = read_benchmark(&ragged, false).unwrap();
    assert_eq!(b.items.len(), 1);
    assert_eq!(b.malformed.iter().map(|m| m.line).collect::<Vec<_>>(), [3, 4]);
    // A base64 image that is not an image fails when loaded, with a message, not a panic.
    assert!(ImageData::Base64("bm90IGFuIGltYWdl".into()).load().unwrap_err().contains("decode"));
    assert!(ImageData::Base64("***".into()).load().unwrap_err().contains("base64"));
}

/// `--dataset` decides which rows VLMEvalKit keeps, whatever the file is called: MIA-Bench rows
/// have no answer (only a judge scores them).
#[test]
fn a_named_dataset_keeps_its_rows_under_any_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("my_instructions.tsv");
    std::fs::copy(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/vlmeval/MIA-Bench.tsv"), &copy).unwrap();
    let generic = read_benchmark(&copy, false).unwrap();
    assert!(generic.items.is_empty() && generic.malformed.iter().all(|m| m.reason == "no answer"), "{:?}", generic.malformed);
    let named = interlace_eval::read_benchmark_as(&copy, true, Some(interlace_eval::vlmeval::Dataset::MiaBench)).unwrap();
    assert_eq!(named.items.len(), generic.malformed.len());
    assert_eq!(named.dataset, Some(interlace_eval::vlmeval::Dataset::MiaBench));
}
