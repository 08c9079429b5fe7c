//! Text scoring in lm-evaluation-harness's conventions (`lm_eval` 0.4, `HFLM`): rolling
//! log-likelihood perplexity and log-likelihood multiple choice, for text LLMs.
//!
//! - A continuation is scored on `(context + continuation)[-(max_length + 1):][:-1]`: the sum of
//!   the log-probabilities of its tokens, and whether each one is the argmax (`is_greedy`).
//! - Context and continuation are tokenized together and split where the context's own tokens
//!   end, with the context's trailing spaces moved to the continuation (`_encode_pair`); an empty
//!   context is the prefix token (BOS, else EOS).
//! - A document's perplexity sums the disjoint rolling windows of its tokens
//!   (`get_rolling_token_windows` with `context_len = 1`, then `make_disjoint_window`), the first
//!   window conditioned on the prefix token; `word_perplexity`, `byte_perplexity` and
//!   `bits_per_byte` weight by `len(re.split(r"\s+", doc))` words and UTF-8 bytes.
//! - Multiple choice: `acc` picks the highest log-likelihood, `acc_norm` the highest per UTF-8
//!   byte of the choice (first one on ties, as `np.argmax`).

use std::marker::PhantomData;

use burn::prelude::{Backend, Int, Tensor};
use burn::tensor::activation::log_softmax;
use interlace_core::{NoObserver, ObservedForward, TapPoint};

/// A causal LM scoring the last tokens of a sequence.
pub trait ContinuationScorer {
    /// The model's error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// For each of the last `k` tokens of `tokens` (`k < tokens.len()`): its log-probability
    /// given every token before it, and whether it is the argmax there.
    fn score_tail(&self, tokens: &[u32], k: usize) -> Result<Vec<(f64, bool)>, Self::Error>;
}

/// Tokenization as `HFLM.tok_encode` does it.
pub trait HarnessTokenizer {
    /// `tokenizer.encode(text, add_special_tokens=special)`.
    fn encode(&self, text: &str, special: bool) -> Result<Vec<u32>, String>;
    /// `tokenizer.decode(ids)` with special tokens kept.
    fn decode(&self, ids: &[u32]) -> Result<String, String>;
    /// `prefix_token_id`: the BOS token, else the EOS token.
    fn prefix_token(&self) -> u32;

    /// `tok_encode(text)`: the tokenizer's own special tokens, unless the text already starts
    /// with the decoded prefix token.
    fn harness_encode(&self, text: &str) -> Result<Vec<u32>, String> {
        let starts_with_prefix = self.decode(&[self.prefix_token()]).is_ok_and(|p| !p.is_empty() && text.starts_with(&p));
        self.encode(text, !starts_with_prefix)
    }
}

/// Errors of harness scoring: the model's, or the tokenizer's.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError<E: std::error::Error + 'static> {
    /// The model failed.
    #[error(transparent)]
    Model(E),
    /// Tokenizing failed, or a request has nothing to score.
    #[error("{0}")]
    Input(String),
}

/// A [`ContinuationScorer`] over any [`ObservedForward`] model whose input is its token ids.
pub struct ForwardScorer<'a, B, M> {
    model: &'a M,
    backend: PhantomData<B>,
}

impl<'a, B, M> ForwardScorer<'a, B, M> {
    /// Wraps `model`.
    pub fn new(model: &'a M) -> Self {
        Self { model, backend: PhantomData }
    }
}

impl<B, M> ContinuationScorer for ForwardScorer<'_, B, M>
where
    B: Backend,
    M: ObservedForward<B>,
    M::Input: From<Vec<u32>>,
    M::Error: std::error::Error + Send + Sync + 'static,
{
    type Error = M::Error;

    fn score_tail(&self, tokens: &[u32], k: usize) -> Result<Vec<(f64, bool)>, M::Error> {
        let n = tokens.len();
        assert!(k >= 1 && k < n, "score_tail needs 1 <= k < {n}, got {k}");
        let input = M::Input::from(tokens[..n - 1].to_vec());
        let logits = self.model.forward_observed(&input, TapPoint::Transformers, &mut NoObserver)?;
        let tail = logits.narrow(1, n - 1 - k, k).cast(burn::tensor::DType::F32);
        let log_probs = log_softmax(tail, 2);
        let device = log_probs.device();
        let targets: Vec<i64> = tokens[n - k..].iter().map(|&t| t as i64).collect();
        let index = Tensor::<B, 1, Int>::from_data(burn::tensor::TensorData::new(targets, [k]), &device).reshape([1, k, 1]);
        let picked = log_probs.clone().gather(2, index).into_data().convert::<f32>().into_vec::<f32>().expect("f32 log-probabilities");
        let best = log_probs.argmax(2).into_data().convert::<i64>().into_vec::<i64>().expect("int argmax");
        Ok(picked.iter().zip(best).zip(&tokens[n - k..]).map(|((&lp, best), &t)| (lp as f64, best == t as i64)).collect())
    }
}

/// `(log-likelihood, is_greedy)` of `continuation` after `context` (token ids), scored on the
/// last `max_length + 1` tokens as the harness does. An empty continuation has log-likelihood 0;
/// an empty context leaves the first token unscored (give the prefix token as context).
pub fn loglikelihood_tokens<S: ContinuationScorer>(scorer: &S, context: &[u32], continuation: &[u32], max_length: usize) -> Result<(f64, bool), S::Error> {
    if continuation.is_empty() || context.len() + continuation.len() < 2 {
        return Ok((0.0, true));
    }
    let whole: Vec<u32> = context.iter().chain(continuation).copied().collect();
    let kept = &whole[whole.len().saturating_sub(max_length + 1)..];
    let scored = scorer.score_tail(kept, continuation.len().min(kept.len() - 1))?;
    Ok((scored.iter().map(|s| s.0).sum(), scored.iter().all(|s| s.1)))
}

/// The context and continuation token ids of a text request (`_encode_pair`; an empty context
/// is the prefix token).
pub fn encode_pair<T: HarnessTokenizer>(tokenizer: &T, context: &str, continuation: &str) -> Result<(Vec<u32>, Vec<u32>), String> {
    if context.is_empty() {
        let continuation = tokenizer.encode(continuation, false)?;
        return Ok(match continuation.first() {
            Some(&first) if first == tokenizer.prefix_token() => (vec![first], continuation[1..].to_vec()),
            _ => (vec![tokenizer.prefix_token()], continuation),
        });
    }
    let trimmed = context.trim_end_matches(is_python_space);
    let (context, continuation) = (trimmed, format!("{}{continuation}", &context[trimmed.len()..]));
    let whole = tokenizer.harness_encode(&format!("{context}{continuation}"))?;
    let context_ids = tokenizer.harness_encode(context)?;
    let split = context_ids.len().min(whole.len());
    Ok((context_ids, whole[split..].to_vec()))
}

/// The disjoint scoring windows of a document's tokens: `(context, predicted)` pairs covering
/// every token once, each input at most `max_length` tokens.
pub fn rolling_windows(tokens: &[u32], prefix: u32, max_length: usize) -> Vec<(Vec<u32>, Vec<u32>)> {
    assert!(max_length >= 1, "max_length must be positive");
    let mut windows = Vec::new();
    if tokens.is_empty() {
        return windows;
    }
    let first = max_length.min(tokens.len());
    windows.push((std::iter::once(prefix).chain(tokens[..first - 1].iter().copied()).collect::<Vec<_>>(), tokens[..first].to_vec()));
    let mut predicted = first;
    while predicted < tokens.len() {
        let length = (tokens.len() - predicted).min(max_length);
        let end = predicted + length;
        let start = end.saturating_sub(max_length + 1);
        windows.push((tokens[start..end - 1].to_vec(), tokens[end - length..end].to_vec()));
        predicted += length;
    }
    // make_disjoint_window: the context stops where the predicted tokens begin.
    windows.into_iter().map(|(context, predicted)| (context[..context.len() + 1 - predicted.len()].to_vec(), predicted)).collect()
}

/// One document's rolling log-likelihood and the weights of its perplexities.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DocumentScore {
    /// Sum of the log-probabilities of every token.
    pub loglikelihood: f64,
    /// Tokens scored.
    pub tokens: usize,
    /// `len(re.split(r"\s+", doc))`.
    pub words: usize,
    /// UTF-8 bytes.
    pub bytes: usize,
}

/// The rolling log-likelihood of `document` (`loglikelihood_rolling`).
pub fn score_document<S: ContinuationScorer, T: HarnessTokenizer>(
    scorer: &S,
    tokenizer: &T,
    document: &str,
    max_length: usize,
) -> Result<DocumentScore, HarnessError<S::Error>> {
    let tokens = tokenizer.harness_encode(document).map_err(HarnessError::Input)?;
    let mut loglikelihood = 0.0;
    for (context, predicted) in rolling_windows(&tokens, tokenizer.prefix_token(), max_length) {
        loglikelihood += loglikelihood_tokens(scorer, &context, &predicted, max_length).map_err(HarnessError::Model)?.0;
    }
    Ok(DocumentScore { loglikelihood, tokens: tokens.len(), words: count_words(document), bytes: document.len() })
}

/// Corpus perplexities, as the harness aggregates them (`weighted_perplexity`, `bits_per_byte`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Perplexity {
    /// `exp(-Σ loglikelihood / Σ words)`.
    pub word_perplexity: f64,
    /// `exp(-Σ loglikelihood / Σ bytes)`.
    pub byte_perplexity: f64,
    /// `-Σ loglikelihood / Σ bytes / ln 2`.
    pub bits_per_byte: f64,
    /// `exp(-Σ loglikelihood / Σ tokens)` (not a harness metric; tokenizer-dependent).
    pub token_perplexity: f64,
}

/// The perplexities of a set of scored documents.
pub fn perplexity(documents: &[DocumentScore]) -> Perplexity {
    let ll: f64 = documents.iter().map(|d| d.loglikelihood).sum();
    let sum = |f: fn(&DocumentScore) -> usize| documents.iter().map(f).sum::<usize>() as f64;
    let (words, bytes, tokens) = (sum(|d| d.words), sum(|d| d.bytes), sum(|d| d.tokens));
    Perplexity {
        word_perplexity: (-ll / words).exp(),
        byte_perplexity: (-ll / bytes).exp(),
        bits_per_byte: -ll / bytes / std::f64::consts::LN_2,
        token_perplexity: (-ll / tokens).exp(),
    }
}

/// One multiple-choice question's choice log-likelihoods and picks.
#[derive(Debug, Clone, PartialEq)]
pub struct ChoiceScore {
    /// Log-likelihood of each choice after the context.
    pub loglikelihoods: Vec<f64>,
    /// The choice with the highest log-likelihood (`acc`).
    pub pick: usize,
    /// The choice with the highest log-likelihood per UTF-8 byte (`acc_norm`).
    pub pick_norm: usize,
}

/// Scores `choices` as continuations of `context` (the harness's `multiple_choice` output type:
/// each choice is scored as `target_delimiter + choice`, so pass them with the delimiter, e.g.
/// `" Paris"`).
pub fn score_choices<S: ContinuationScorer, T: HarnessTokenizer>(
    scorer: &S,
    tokenizer: &T,
    context: &str,
    choices: &[String],
    max_length: usize,
) -> Result<ChoiceScore, HarnessError<S::Error>> {
    if choices.is_empty() {
        return Err(HarnessError::Input("a multiple-choice question needs at least one choice".into()));
    }
    let mut loglikelihoods = Vec::with_capacity(choices.len());
    for choice in choices {
        let (context_ids, continuation) = encode_pair(tokenizer, context, choice).map_err(HarnessError::Input)?;
        if continuation.is_empty() {
            return Err(HarnessError::Input(format!("choice {choice:?} adds no token to the context")));
        }
        loglikelihoods.push(loglikelihood_tokens(scorer, &context_ids, &continuation, max_length).map_err(HarnessError::Model)?.0);
    }
    let normalised: Vec<f64> = loglikelihoods.iter().zip(choices).map(|(ll, c)| ll / c.len() as f64).collect();
    Ok(ChoiceScore { pick: first_argmax(&loglikelihoods), pick_norm: first_argmax(&normalised), loglikelihoods })
}

fn first_argmax(values: &[f64]) -> usize {
    values.iter().enumerate().fold(0, |best, (i, &v)| if v > values[best] { i } else { best })
}

/// `len(re.split(r"\s+", doc))`: one more than the number of whitespace runs.
pub fn count_words(document: &str) -> usize {
    let mut runs = 0;
    let mut in_run = false;
    for c in document.chars() {
        let space = is_python_space(c);
        if space && !in_run {
            runs += 1;
        }
        in_run = space;
    }
    runs + 1
}

/// Python's `str.isspace` / `\s` for `str` patterns: Unicode whitespace plus the ASCII
/// separators `\x1c`–`\x1f`, which Rust's `char::is_whitespace` leaves out.
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolling_windows_cover_every_token_once_with_bounded_inputs() {
        let tokens: Vec<u32> = (10..23).collect();
        let windows = rolling_windows(&tokens, 1, 4);
        let predicted: Vec<u32> = windows.iter().flat_map(|(_, p)| p.clone()).collect();
        assert_eq!(predicted, tokens);
        assert_eq!(windows[0], (vec![1], vec![10, 11, 12, 13]));
        assert_eq!(windows[1], (vec![13], vec![14, 15, 16, 17]));
        for (context, predicted) in &windows {
            assert!(context.len() + predicted.len() - 1 <= 4);
        }
    }

    #[test]
    fn words_follow_python_re_split() {
        assert_eq!(count_words("a b"), 2);
        assert_eq!(count_words(" a  b\n"), 4); // ['', 'a', 'b', '']
        assert_eq!(count_words(""), 1);
        assert_eq!(count_words("a\u{1f}b"), 2);
    }
}
