//! Layers of two kinds picked by index, as mixture-of-experts configs pick sparse layers.
//!
//! Qwen2-MoE, Qwen3-MoE and Qwen3-VL-MoE build layer `i` sparse when `(i + 1) % step == 0` and
//! `i` is not listed as an exception (`decoder_sparse_step`, `mlp_only_layers`). Removing layers
//! shifts indices, so the pruned config must say again which survivors are sparse.

/// `(i + 1) % step == 0 && i ∉ exceptions` marks layer `i` as the periodic kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodicLayerKinds {
    /// The period (`decoder_sparse_step`); must be positive.
    pub step: usize,
    /// Layers that never have the periodic kind (`mlp_only_layers`).
    pub exceptions: Vec<usize>,
}

impl PeriodicLayerKinds {
    /// Whether layer `index` has the periodic kind.
    pub fn is_periodic(&self, index: usize) -> bool {
        self.step > 0 && (index + 1).is_multiple_of(self.step) && !self.exceptions.contains(&index)
    }

    /// The rule after keeping only layers `kept` (old indices, ascending), giving every survivor
    /// its old kind: step 1, and the survivors without the periodic kind as exceptions under
    /// their new indices. With step 1 this is the old exception list renumbered.
    ///
    /// ```
    /// use interlace_core::PeriodicLayerKinds;
    /// let rule = PeriodicLayerKinds { step: 2, exceptions: vec![3] }; // periodic: 1, 5
    /// let kept = rule.keeping(&[0, 1, 3, 5]);
    /// assert_eq!(kept, PeriodicLayerKinds { step: 1, exceptions: vec![0, 2] });
    /// assert_eq!((0..4).map(|i| kept.is_periodic(i)).collect::<Vec<_>>(), [false, true, false, true]);
    /// ```
    pub fn keeping(&self, kept: &[usize]) -> Self {
        let exceptions = kept.iter().enumerate().filter(|(_, &old)| !self.is_periodic(old)).map(|(new, _)| new).collect();
        Self { step: 1, exceptions }
    }
}

/// Where a family's config keeps a [`PeriodicLayerKinds`] rule (JSON pointers, RFC 6901).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeriodicKindsLayout {
    /// The step field (`/text_config/decoder_sparse_step`); absent means 1.
    pub step_field: &'static str,
    /// The exception list (`/text_config/mlp_only_layers`); absent means empty.
    pub exceptions_field: &'static str,
}
