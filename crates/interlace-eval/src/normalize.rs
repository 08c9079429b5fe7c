//! Matching short open answers: TextVQA-style normalisation and ChartQA relaxed accuracy.
//!
//! - [`normalize_answer`] follows the VQA evaluation script (used by TextVQA and VLMEvalKit):
//!   lowercase; a comma between digits is dropped (`1,000` → `1000`) and a period between digits
//!   kept (`3.5`); other punctuation becomes a space between two letters or digits
//!   (`black-and-white` → `black and white`) and is dropped elsewhere; number words `none`,
//!   `zero`..`ten` become digits; the articles `a`, `an`, `the` are removed. The script's
//!   contraction table (`dont` → `don't`) is not reproduced: it only matters for answers with
//!   apostrophes, which both sides then lose the same way.
//! - [`vqa_accuracy`]: `min(1, matches / 3)` over the human answers (TextVQA has ten).
//! - [`relaxed_match`]: ChartQA's relaxed correctness: numbers (a trailing `%` divides by 100)
//!   within 5% of a non-zero target; anything else must match exactly, ignoring case.
//! - [`open_score`] picks between them: three or more references are human answers (VQA
//!   accuracy); fewer are alternatives, any of which may match normalised or relaxed.

/// The VQA-evaluation normal form of an answer.
pub fn normalize_answer(text: &str) -> String {
    let lower = text.trim().to_lowercase();
    let chars: Vec<char> = lower.chars().collect();
    let mut cleaned = String::with_capacity(chars.len());
    for (i, &c) in chars.iter().enumerate() {
        if c.is_alphanumeric() || c.is_whitespace() || c == '\'' {
            if c != '\'' {
                cleaned.push(c);
            }
            continue;
        }
        let prev = i.checked_sub(1).map(|j| chars[j]);
        let next = chars.get(i + 1).copied();
        let between_digits = prev.is_some_and(|p| p.is_ascii_digit()) && next.is_some_and(|n| n.is_ascii_digit());
        let between_words = prev.is_some_and(char::is_alphanumeric) && next.is_some_and(char::is_alphanumeric);
        match c {
            '.' if between_digits => cleaned.push('.'),
            ',' if between_digits => {}
            _ if between_words => cleaned.push(' '),
            _ => {}
        }
    }
    cleaned
        .split_whitespace()
        .filter(|w| !matches!(*w, "a" | "an" | "the"))
        .map(|w| match w {
            "none" | "zero" => "0",
            "one" => "1",
            "two" => "2",
            "three" => "3",
            "four" => "4",
            "five" => "5",
            "six" => "6",
            "seven" => "7",
            "eight" => "8",
            "nine" => "9",
            "ten" => "10",
            other => other,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// TextVQA / VQAv2 accuracy of `prediction` against the human `answers`:
/// `min(1, (number of answers equal after normalisation) / 3)`.
pub fn vqa_accuracy(prediction: &str, answers: &[String]) -> f64 {
    let prediction = normalize_answer(prediction);
    let matches = answers.iter().filter(|a| normalize_answer(a) == prediction).count();
    (matches as f64 / 3.0).min(1.0)
}

fn to_float(text: &str) -> Option<f64> {
    let text = text.trim();
    match text.strip_suffix('%') {
        Some(number) => number.trim().parse::<f64>().ok().map(|v| v / 100.0),
        None => text.parse::<f64>().ok(),
    }
}

/// ChartQA's relaxed correctness: within 5% of a non-zero numeric target, otherwise an exact
/// case-insensitive match. A trailing period of the prediction (a sentence end) is ignored.
pub fn relaxed_match(prediction: &str, target: &str) -> bool {
    let prediction = prediction.trim();
    let prediction = prediction.strip_suffix('.').unwrap_or(prediction);
    match (to_float(prediction), to_float(target)) {
        (Some(p), Some(t)) if t != 0.0 => ((p - t) / t).abs() <= 0.05,
        _ => prediction.to_lowercase() == target.trim().to_lowercase(),
    }
}

/// Score in `[0, 1]` of an open answer (see the module documentation for the rule).
pub fn open_score(prediction: &str, answers: &[String]) -> f64 {
    if answers.len() >= 3 {
        return vqa_accuracy(prediction, answers);
    }
    let normalized = normalize_answer(prediction);
    let hit = answers.iter().any(|a| normalize_answer(a) == normalized || relaxed_match(prediction, a));
    if hit {
        1.0
    } else {
        0.0
    }
}
