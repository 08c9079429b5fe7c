//! Key/value cache for incremental decoding.

use burn::prelude::{Backend, Tensor};

/// Keys and values of one decoder layer, `[batch, kv_heads, seq, head_dim]`, stored after
/// k-norm and RoPE.
#[derive(Debug, Clone, Default)]
pub struct LayerCache<B: Backend> {
    keys: Option<Tensor<B, 4>>,
    values: Option<Tensor<B, 4>>,
}

impl<B: Backend> LayerCache<B> {
    /// Appends this step's keys and values and returns everything cached so far.
    pub fn append(&mut self, keys: Tensor<B, 4>, values: Tensor<B, 4>) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let join = |old: Option<Tensor<B, 4>>, new: Tensor<B, 4>| match old {
            Some(old) => Tensor::cat(vec![old, new], 2),
            None => new,
        };
        let keys = join(self.keys.take(), keys);
        let values = join(self.values.take(), values);
        self.keys = Some(keys.clone());
        self.values = Some(values.clone());
        (keys, values)
    }

    /// Number of cached positions.
    pub fn len(&self) -> usize {
        self.keys.as_ref().map_or(0, |k| k.dims()[2])
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The cache of a whole model plus the M-RoPE offset of the prompt.
#[derive(Debug, Clone)]
pub struct KvCache<B: Backend> {
    /// One cache per decoder layer.
    pub layers: Vec<LayerCache<B>>,
    /// `max position + 1 − prompt length`: decode step at sequence index `s` uses position
    /// `s + rope_delta` on all three axes (usually negative after images).
    pub rope_delta: i64,
}

impl<B: Backend> KvCache<B> {
    /// An empty cache for `num_layers` layers.
    pub fn new(num_layers: usize) -> Self {
        Self { layers: (0..num_layers).map(|_| LayerCache::default()).collect(), rope_delta: 0 }
    }

    /// Number of cached positions (the sequence index of the next token).
    pub fn seq_len(&self) -> usize {
        self.layers.first().map_or(0, LayerCache::len)
    }
}
