//! Gradients of one example's loss, either from one ordinary backward pass or with the
//! activations recomputed layer by layer (activation checkpointing).

use burn::module::AutodiffModule;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::prelude::Tensor;
use burn::tensor::backend::AutodiffBackend;
use std::ops::Range;
use std::sync::Mutex;

use burn::tensor::ElementConversion;
use interlace_core::LayerwiseForward;

use crate::data::TrainingExample;
use crate::loss::{token_losses, SupervisedTargets};
use crate::TrainError;

/// How the backward pass gets the activations it needs. Both run the output head and the loss
/// on at most `head_chunk_rows` supervised positions at once, each chunk back-propagated on its
/// own to the top hidden state: the logits of a long sequence (2,048 × 151,936 f32 is 1.2 GB)
/// and their gradients never exist whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backward {
    /// Keep every activation of the forward pass: fastest, most memory.
    KeepActivations {
        /// Supervised positions per head chunk (bounds the logits' memory).
        head_chunk_rows: usize,
    },
    /// Activation checkpointing: keep only each layer's input and recompute the layers one at
    /// a time during the backward pass. Same gradients, far less memory on long sequences.
    Recompute {
        /// Supervised positions per head chunk (bounds the logits' memory).
        head_chunk_rows: usize,
    },
}

/// Gradients of `weight ×` the example's mean token loss over its supervised tokens, and that
/// weighted loss: one training example's contribution to an optimizer step.
///
/// The output head runs on the supervised positions only (exact, as it acts on each position
/// alone). [`Backward::Recompute`] refuses a model whose embeddings or encoders are trainable
/// ([`LayerwiseForward::begin_is_trainable`]).
pub fn example_gradients<B, M>(model: &M, example: &TrainingExample<M::Input>, weight: f64, backward: Backward) -> Result<(GradientsParams, f64), TrainError>
where
    B: AutodiffBackend,
    M: LayerwiseForward<B> + AutodiffModule<B>,
    M::Error: std::error::Error + Send + Sync + 'static,
{
    let (grads, losses) = {
        // burn 0.21's autodiff keeps every graph in one process-wide registry, and a
        // backward pass on one thread can free steps of a graph another thread is building,
        // silently losing a gradient (tracel-ai/burn#5573; here: ~1 in 4 test runs with two
        // trainings in one process gave different weights, 0 in 15 with this lock). Graph
        // building and backward passes are therefore serialised; on a GPU they only enqueue
        // kernels, so data-parallel replicas still compute at the same time.
        let _autodiff = AUTODIFF.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        graph_gradients(model, example, weight, backward)?
    };
    // Reading the loss waits for the device: done outside the lock.
    let value = losses.into_iter().map(|loss| loss.into_scalar().elem::<f64>()).sum();
    Ok((grads, value))
}

/// See [`example_gradients`].
static AUTODIFF: Mutex<()> = Mutex::new(());

/// Gradients of one example, with the (weighted) loss tensors whose sum is its loss.
type ExampleGradients<B> = (GradientsParams, Vec<Tensor<<B as AutodiffBackend>::InnerBackend, 1>>);

/// The gradients and the (weighted) loss tensors whose sum is the example's loss.
fn graph_gradients<B, M>(model: &M, example: &TrainingExample<M::Input>, weight: f64, backward: Backward) -> Result<ExampleGradients<B>, TrainError>
where
    B: AutodiffBackend,
    M: LayerwiseForward<B> + AutodiffModule<B>,
    M::Error: std::error::Error + Send + Sync + 'static,
{
    let supervised = SupervisedTargets::of(&example.labels)?;
    // The weighted mean over supervised tokens, as a sum scaled once.
    let scale = weight / supervised.len() as f64;
    let head_chunk_rows = match backward {
        Backward::Recompute { head_chunk_rows } => return recomputed_gradients(model, example, &supervised, scale, head_chunk_rows.max(1)),
        Backward::KeepActivations { head_chunk_rows } => head_chunk_rows.max(1),
    };
    let (mut hidden, context) = model.begin(&example.input).map_err(model_error)?;
    check_length(&hidden, &example.labels)?;
    for index in 0..model.num_layers() {
        hidden = model.layer(index, hidden, &context);
    }
    let mut accumulator = GradientsAccumulator::<M>::new();
    let top = hidden.clone().detach().require_grad();
    let (upstream, losses) = head_gradients(model, &top, &supervised, scale, head_chunk_rows, &mut accumulator)?;
    // One backward pass through every layer, seeded with the head's gradient of the top hidden
    // state; nothing to do when no layer or encoder learns.
    let below_head_learns = model.begin_is_trainable() || (0..model.num_layers()).any(|index| model.layer_is_trainable(index));
    if let (Some(gradient), true) = (upstream, below_head_learns) {
        accumulator.accumulate(model, GradientsParams::from_grads(backward_from(hidden, gradient), model));
    }
    Ok((accumulator.grads(), losses))
}

/// Back-propagates from `output` given the loss's gradient with respect to it: `sum(output ⊙ g)`
/// has gradient `g` w.r.t. `output`.
fn backward_from<B: AutodiffBackend>(output: Tensor<B, 3>, gradient: Tensor<B::InnerBackend, 3>) -> B::Gradients {
    let seed = Tensor::<B, 3>::from_inner(gradient).cast(output.dtype());
    (output * seed).sum().backward()
}

/// Runs the head and the loss on the supervised positions of `top` (a leaf that requires a
/// gradient) `head_chunk_rows` at a time, back-propagating each chunk on its own: adds the
/// head's own parameter gradients to `accumulator` and returns the summed gradient of `top` with
/// the chunks' (weighted) loss tensors.
#[allow(clippy::type_complexity)]
fn head_gradients<B, M>(
    model: &M,
    top: &Tensor<B, 3>,
    supervised: &SupervisedTargets,
    scale: f64,
    head_chunk_rows: usize,
    accumulator: &mut GradientsAccumulator<M>,
) -> Result<(Option<Tensor<B::InnerBackend, 3>>, Vec<Tensor<B::InnerBackend, 1>>), TrainError>
where
    B: AutodiffBackend,
    M: LayerwiseForward<B> + AutodiffModule<B>,
{
    let mut upstream: Option<Tensor<B::InnerBackend, 3>> = None;
    let mut losses = Vec::new();
    for start in (0..supervised.len()).step_by(head_chunk_rows) {
        let range = start..(start + head_chunk_rows).min(supervised.len());
        let loss = head_loss_sum(model, top.clone(), supervised, range)? * scale;
        losses.push(loss.clone().inner());
        let grads = loss.backward();
        upstream = match (upstream, top.grad(&grads)) {
            (Some(sum), Some(part)) => Some(sum + part),
            (sum, part) => sum.or(part),
        };
        accumulator.accumulate(model, GradientsParams::from_grads(grads, model));
    }
    Ok((upstream, losses))
}

fn model_error<E: std::error::Error + Send + Sync + 'static>(error: E) -> TrainError {
    TrainError::Model(Box::new(error))
}

fn check_length<B: AutodiffBackend>(hidden: &Tensor<B, 3>, labels: &[i64]) -> Result<(), TrainError> {
    let [batch, seq, _] = hidden.dims();
    if batch != 1 || seq != labels.len() {
        return Err(TrainError::Shape(format!("the model produced [{batch}, {seq}] hidden states for {} labels", labels.len())));
    }
    Ok(())
}

/// Summed token losses of the supervised positions `range`: the head (final norm, output
/// projection) runs on those rows only, which is exact because it acts on each position alone.
fn head_loss_sum<B, M>(model: &M, hidden: Tensor<B, 3>, supervised: &SupervisedTargets, range: Range<usize>) -> Result<Tensor<B, 1>, TrainError>
where
    B: AutodiffBackend,
    M: LayerwiseForward<B>,
{
    let index = supervised.position_index(range.clone(), &hidden.device());
    let logits = model.finish(hidden.select(1, index));
    Ok(token_losses(logits.squeeze_dim::<2>(0), &supervised.targets[range])?.sum())
}

/// Activation checkpointing. The forward pass keeps only the hidden state entering each layer
/// from the lowest trainable one up; the backward pass then runs one segment at a time, top
/// down: the head with the loss (in chunks of supervised rows), then each layer recomputed from
/// its saved input and back-propagated from the gradient of its output (`sum(out ⊙ g)` has
/// gradient `g` w.r.t. `out`). Only one layer's activations are alive at once, at the price of
/// a second forward pass through the layers above the lowest trainable one — PyTorch's
/// `gradient_checkpointing` trade.
fn recomputed_gradients<B, M>(
    model: &M,
    example: &TrainingExample<M::Input>,
    supervised: &SupervisedTargets,
    scale: f64,
    head_chunk_rows: usize,
) -> Result<ExampleGradients<B>, TrainError>
where
    B: AutodiffBackend,
    M: LayerwiseForward<B> + AutodiffModule<B>,
    M::Error: std::error::Error + Send + Sync + 'static,
{
    if model.begin_is_trainable() {
        return Err(TrainError::Config(
            "activation checkpointing trains decoder layers and what follows them; here the embeddings or an encoder are trainable too \
             (--tune-vision, --tune-merger or --tune-llm): train without activation checkpointing"
                .into(),
        ));
    }
    let (h0, context) = model.begin(&example.input).map_err(model_error)?;
    check_length(&h0, &example.labels)?;
    let (saved_inputs, top) = forward_keeping_layer_inputs(model, h0.detach(), &context);
    let top = top.require_grad();
    let mut accumulator = GradientsAccumulator::<M>::new();
    let (mut upstream, losses) = head_gradients(model, &top, supervised, scale, head_chunk_rows, &mut accumulator)?;
    for (index, input) in saved_inputs.into_iter().enumerate().rev() {
        let (Some(input), Some(gradient)) = (input, upstream.take()) else { break };
        let input = input.require_grad();
        let output = model.layer(index, input.clone(), &context);
        let grads = backward_from(output, gradient);
        upstream = input.grad(&grads);
        accumulator.accumulate(model, GradientsParams::from_grads(grads, model));
    }
    Ok((accumulator.grads(), losses))
}

/// Runs the layers without keeping their graphs; returns, per layer, its input when the layer
/// or one below it learns (`None` below the lowest trainable layer), and the last hidden state.
fn forward_keeping_layer_inputs<B, M>(model: &M, h0: Tensor<B, 3>, context: &M::Context) -> (Vec<Option<Tensor<B, 3>>>, Tensor<B, 3>)
where
    B: AutodiffBackend,
    M: LayerwiseForward<B>,
{
    let mut saved = Vec::with_capacity(model.num_layers());
    let mut hidden = h0;
    let mut below_trainable = true;
    for index in 0..model.num_layers() {
        below_trainable &= !model.layer_is_trainable(index);
        let output = model.layer(index, hidden.clone(), context).detach();
        saved.push((!below_trainable).then_some(hidden));
        hidden = output;
    }
    (saved, hidden)
}
