//! Log-likelihood choice (the fast `--scoring loglik` mode), against hand-computed results.
//! VLMEvalKit's answer extraction and metrics are checked against VLMEvalKit itself in
//! `vlmevalkit.rs`.

use interlace_eval::{best_choice, log_softmax};

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
