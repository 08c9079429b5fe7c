//! Choosing among answers by their log-likelihood.

/// Log-softmax of `logits`, in f64 so that the sums of multi-token answers stay exact enough
/// to compare.
pub fn log_softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
    let sum: f64 = logits.iter().map(|&x| (x as f64 - max).exp()).sum();
    let log_z = max + sum.ln();
    logits.iter().map(|&x| x as f64 - log_z).collect()
}

/// Index of the highest score; ties go to the first (so "A" wins a tie, as an argmax over the
/// option letters in order would). `None` for an empty list or when every score is NaN.
pub fn best_choice(scores: &[f64]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, &s) in scores.iter().enumerate() {
        if s.is_nan() {
            continue;
        }
        match best {
            Some(b) if scores[b] >= s => {}
            _ => best = Some(i),
        }
    }
    best
}
