//! Token-by-token decoding with a cache: what evaluation (option scoring, greedy replies, speed)
//! needs from a model, whatever its family.

/// A causal model that runs a prompt once into a cache and then one token at a time.
///
/// Logits come back on the host in f32: every caller (scoring, greedy choice, sampling) reads
/// them there, and it keeps the trait free of a backend parameter.
pub trait IncrementalDecoder {
    /// The model's own input type (token ids, images, ...).
    type Input;
    /// The keys and values of one sequence; `Clone` so one prefill can branch into several
    /// continuations.
    type Cache: Clone;
    /// The model's error type.
    type Error: std::error::Error + Send + Sync + 'static;

    /// An empty cache for one sequence.
    fn new_cache(&self) -> Self::Cache;

    /// Number of tokens of `input` (the prompt length).
    fn input_len(&self, input: &Self::Input) -> usize;

    /// Runs `input` into `cache`; the logits `[vocab]` of the token after it.
    fn prefill_logits(&self, input: &Self::Input, cache: &mut Self::Cache) -> Result<Vec<f32>, Self::Error>;

    /// Appends `token` to the sequence in `cache`; the logits `[vocab]` of the token after it.
    fn decode_logits(&self, token: u32, cache: &mut Self::Cache) -> Result<Vec<f32>, Self::Error>;
}
