//! Gradients of one example's loss, either from one ordinary backward pass or with the
//! activations recomputed layer by layer (activation checkpointing).

use burn::module::AutodiffModule;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::prelude::Tensor;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::ElementConversion;
use interlace_core::{LayerwiseForward, NoObserver, TapPoint};

use crate::data::TrainingExample;
use crate::loss::causal_lm_loss;
use crate::TrainError;

/// Gradients of `weight ×` the example's mean token loss over its supervised tokens, and that
/// weighted loss: one training example's contribution to an optimizer step.
///
/// With `recompute` (activation checkpointing) only each layer's input is kept during the
/// forward pass and the backward pass recomputes the layers one at a time; the gradients are
/// the same. It refuses a model whose embeddings or encoders are trainable
/// ([`LayerwiseForward::begin_is_trainable`]).
pub fn example_gradients<B, M>(
    model: &M,
    example: &TrainingExample<M::Input>,
    weight: f64,
    recompute: bool,
) -> Result<(GradientsParams, f64), TrainError>
where
    B: AutodiffBackend,
    M: LayerwiseForward<B> + AutodiffModule<B>,
    M::Error: std::error::Error + Send + Sync + 'static,
{
    if recompute {
        return recomputed_gradients(model, example, weight);
    }
    let logits = model.forward_observed(&example.input, TapPoint::Transformers, &mut NoObserver).map_err(model_error)?;
    let loss = causal_lm_loss(logits, &example.labels)? * weight;
    let value = loss.clone().into_scalar().elem::<f64>();
    Ok((GradientsParams::from_grads(loss.backward(), model), value))
}

fn model_error<E: std::error::Error + Send + Sync + 'static>(error: E) -> TrainError {
    TrainError::Model(Box::new(error))
}

/// Activation checkpointing. The forward pass keeps only the hidden state entering each layer
/// from the lowest trainable one up; the backward pass then runs one segment at a time, top
/// down: the head with the loss, then each layer recomputed from its saved input and
/// back-propagated from the gradient of its output (`sum(out ⊙ g)` has gradient `g` w.r.t.
/// `out`). Only one layer's activations are alive at once, at the price of a second forward
/// pass through the layers above the lowest trainable one — PyTorch's
/// `gradient_checkpointing` trade.
fn recomputed_gradients<B, M>(model: &M, example: &TrainingExample<M::Input>, weight: f64) -> Result<(GradientsParams, f64), TrainError>
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
    let (saved_inputs, top) = forward_keeping_layer_inputs(model, h0.detach(), &context);
    let top = top.require_grad();
    let loss = causal_lm_loss(model.finish(top.clone()), &example.labels)? * weight;
    let value = loss.clone().into_scalar().elem::<f64>();
    let grads = loss.backward();
    let mut upstream = top.grad(&grads);
    let mut accumulator = GradientsAccumulator::<M>::new();
    accumulator.accumulate(model, GradientsParams::from_grads(grads, model));
    for (index, input) in saved_inputs.into_iter().enumerate().rev() {
        let (Some(input), Some(gradient)) = (input, upstream.take()) else { break };
        let input = input.require_grad();
        let output = model.layer(index, input.clone(), &context);
        let seed = Tensor::<B, 3>::from_inner(gradient).cast(output.dtype());
        let grads = (output * seed).sum().backward();
        upstream = input.grad(&grads);
        accumulator.accumulate(model, GradientsParams::from_grads(grads, model));
    }
    Ok((accumulator.grads(), value))
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
