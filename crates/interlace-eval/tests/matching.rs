//! Answer normalisation, relaxed accuracy and answer extraction, against hand-computed results.

use interlace_eval::extract::{extract_choice, extract_yes_no, open_answer};
use interlace_eval::normalize::{normalize_answer, open_score, relaxed_match, vqa_accuracy};
use interlace_eval::{best_choice, log_softmax};

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn textvqa_normalisation() {
    assert_eq!(normalize_answer("  The Cat! "), "cat");
    assert_eq!(normalize_answer("Two dogs."), "2 dogs");
    assert_eq!(normalize_answer("1,000"), "1000");
    assert_eq!(normalize_answer("3.5"), "3.5");
    assert_eq!(normalize_answer("black-and-white"), "black and white");
    assert_eq!(normalize_answer("an apple, a pear"), "apple pear");
    assert_eq!(normalize_answer("None"), "0");
    assert_eq!(normalize_answer("don't"), "dont");
}

#[test]
fn vqa_accuracy_counts_matches_over_three() {
    let answers = strings(&["gray", "gray", "gray", "gray", "gray", "gray", "grey", "grey", "grey", "silver"]);
    assert_eq!(vqa_accuracy("Gray.", &answers), 1.0);
    assert_eq!(vqa_accuracy("grey", &answers), 1.0);
    assert!((vqa_accuracy("silver", &answers) - 1.0 / 3.0).abs() < 1e-12);
    assert_eq!(vqa_accuracy("gold", &answers), 0.0);
    let two = strings(&["one", "one", "1", "1", "1", "1", "1", "1", "1", "1"]);
    assert_eq!(vqa_accuracy("one", &two), 1.0, "number words normalise to digits");
}

#[test]
fn chartqa_relaxed_accuracy() {
    assert!(relaxed_match("61", "60")); // 1.7% off
    assert!(relaxed_match("63", "60")); // exactly 5%
    assert!(!relaxed_match("63.1", "60"));
    assert!(relaxed_match("57.5%", "0.58")); // 0.575 vs 0.58: 0.9% off
    assert!(relaxed_match("60.", "60"));
    assert!(relaxed_match("second", "Second"));
    assert!(!relaxed_match("0.01", "0")); // a zero target needs an exact match
    assert!(relaxed_match("0", "0"));
    // Fewer than three references: any may match, normalised or relaxed.
    assert_eq!(open_score("the grey", &strings(&["gray", "grey"])), 1.0);
    assert_eq!(open_score("104", &strings(&["100"])), 1.0);
    assert_eq!(open_score("106", &strings(&["100"])), 0.0);
}

#[test]
fn choice_extraction() {
    let options = vec![('A', "red".to_string()), ('B', "gray".to_string()), ('C', "green".to_string())];
    assert_eq!(extract_choice("B", &options), Some('B'));
    assert_eq!(extract_choice("(C) green", &options), Some('C'));
    assert_eq!(extract_choice("B. gray", &options), Some('B'));
    assert_eq!(extract_choice("The answer is C.", &options), Some('C'));
    assert_eq!(extract_choice("It looks gray to me", &options), Some('B'));
    assert_eq!(extract_choice("Between", &options), None, "a word starting with B is not the letter B");
    assert_eq!(extract_choice("A or B", &options), Some('A'), "a leading letter wins");
    assert_eq!(extract_choice("either B or C", &options), None);
    assert_eq!(extract_choice("purple", &options), None);
    assert_eq!(extract_yes_no("Yes, it is."), Some(true));
    assert_eq!(extract_yes_no("no"), Some(false));
    assert_eq!(extract_yes_no("yes and no"), None);
    assert_eq!(extract_yes_no("Nothing"), None);
    assert_eq!(open_answer("  60\nbecause ..."), "60");
}

#[test]
fn log_softmax_and_argmax() {
    let lp = log_softmax(&[0.0, (2.0f32).ln(), 0.0]);
    // probabilities 1/4, 2/4, 1/4
    let expected = [0.25f64.ln(), 0.5f64.ln(), 0.25f64.ln()];
    for (a, b) in lp.iter().zip(expected) {
        assert!((a - b).abs() < 1e-7, "{a} vs {b}");
    }
    assert_eq!(best_choice(&[-2.0, -1.0, -1.0]), Some(1), "ties go to the first");
    assert_eq!(best_choice(&[f64::NAN, -3.0]), Some(1));
    assert_eq!(best_choice(&[]), None);
}
