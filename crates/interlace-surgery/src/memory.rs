//! Pruning a model that is already in memory, through the generic [`DecoderStack`] trait.

use interlace_core::{DecoderStack, LayerSet, Plan};
use serde::Serialize;

use crate::SurgeryError;

/// Layer and parameter counts of a model at one point in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StackCounts {
    /// Number of decoder layers.
    pub layers: usize,
    /// Number of parameters of the whole model.
    pub params: usize,
}

impl StackCounts {
    /// Counts of `stack`.
    pub fn of<S: DecoderStack>(stack: &S) -> Self {
        Self { layers: stack.num_layers(), params: stack.param_count() }
    }
}

/// What an in-memory pruning did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    /// Counts before removal.
    pub before: StackCounts,
    /// Counts after removal.
    pub after: StackCounts,
    /// The removed layers, in the numbering of the unpruned stack.
    pub dropped: Vec<usize>,
}

/// Removes the layers of `drop` from `stack` (order of the rest kept, renumbered consecutively).
///
/// `drop` must have been validated against a stack of the same depth; a set validated for a
/// different depth is refused rather than silently applied.
pub fn prune_stack<S: DecoderStack>(stack: S, drop: &LayerSet) -> Result<(S, PruneReport), SurgeryError> {
    let before = StackCounts::of(&stack);
    if drop.num_layers() != before.layers {
        return Err(SurgeryError::PlanMismatch { plan_layers: drop.num_layers(), model_layers: before.layers, model: "the model in memory".into() });
    }
    // Re-validate for removal: a plain `LayerSet::new` may contain every layer.
    let drop =
        LayerSet::for_removal(drop.as_slice().iter().copied(), before.layers).map_err(|source| SurgeryError::InvalidDrop { what: "text layers", source })?;
    let pruned = stack.remove_layers(&drop).map_err(SurgeryError::Stack)?;
    let after = StackCounts::of(&pruned);
    Ok((pruned, PruneReport { before, after, dropped: drop.as_slice().to_vec() }))
}

/// Removes the `drop` layers of a [`Plan`] from `stack`.
pub fn prune_stack_with_plan<S: DecoderStack>(stack: S, plan: &Plan) -> Result<(S, PruneReport), SurgeryError> {
    plan.validate()?;
    if plan.n_layers != stack.num_layers() {
        return Err(SurgeryError::PlanMismatch { plan_layers: plan.n_layers, model_layers: stack.num_layers(), model: "the model in memory".into() });
    }
    let drop = plan.drop_set().map_err(|source| SurgeryError::InvalidDrop { what: "text layers", source })?;
    prune_stack(stack, &drop)
}
