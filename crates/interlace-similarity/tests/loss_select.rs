//! SLEB and the one-shot perplexity rule on a synthetic stack whose answer is known: layers that
//! do nothing, a redundant pair (either one alone does the job), and layers that matter by known
//! amounts. Nothing here knows a model family: the stack implements the core traits only.

use std::cell::Cell;

use burn::backend::Flex;
use burn::prelude::{Tensor, TensorData};
use burn::tensor::activation::relu;
use interlace_core::{CoreError, DecoderStack, HiddenStateObserver, LayerSet, ObservedForward, SkipLayersForward, TapPoint};
use interlace_similarity::{loss_selection_passes, nll_sum, plan_for_drop, select_by_loss, FinetuneRule, LossRule, LossSelectionConfig, SimilarityError};

type B = Flex<f32>;

const VOCAB: usize = 8;

/// What a toy layer does to the logit of each position's next token (the hidden state is the
/// logit vector itself; the head is the identity).
#[derive(Debug, Clone, Copy)]
enum Layer {
    /// Returns its input unchanged.
    Identity,
    /// Adds `c` to the target logit.
    Push(f32),
    /// Raises the target logit to at least `t`: a second copy right after the first does nothing.
    Saturate(f32),
}

struct Stack {
    layers: Vec<Layer>,
    passes: Cell<usize>,
}

/// Full stack: target logit 0.5 → 2.0 → 2.0 → 2.0 → 3.0 → 3.0 → 3.25 → 3.75.
/// Layers 2 and 5 do nothing; 1 and 3 are a redundant pair; 4 and 6 add 1.0 and 0.25.
fn stack() -> Stack {
    use Layer::*;
    let layers = vec![Push(0.5), Saturate(2.0), Identity, Saturate(2.0), Push(1.0), Identity, Push(0.25), Push(0.5)];
    Stack { layers, passes: Cell::new(0) }
}

impl Stack {
    fn run(&self, tokens: &[u32], skip: &[usize]) -> Tensor<B, 3> {
        self.passes.set(self.passes.get() + 1);
        let seq = tokens.len();
        let mut target = vec![0.0f32; seq * VOCAB];
        for t in 0..seq - 1 {
            target[t * VOCAB + tokens[t + 1] as usize] = 1.0;
        }
        let device = Default::default();
        let s = Tensor::<B, 3>::from_data(TensorData::new(target, [1, seq, VOCAB]), &device);
        let mut h = Tensor::<B, 3>::zeros([1, seq, VOCAB], &device);
        for (l, layer) in self.layers.iter().enumerate() {
            if skip.contains(&l) {
                continue;
            }
            h = match *layer {
                Layer::Identity => h,
                Layer::Push(c) => h + s.clone() * c,
                Layer::Saturate(t) => h.clone() + relu(s.clone() * t - h) * s.clone(),
            };
        }
        h
    }
}

impl DecoderStack for Stack {
    fn num_layers(&self) -> usize {
        self.layers.len()
    }
    fn layer_param_count(&self, _index: usize) -> Result<usize, CoreError> {
        Ok(0)
    }
    fn param_count(&self) -> usize {
        0
    }
    fn remove_layers(self, drop: &LayerSet) -> Result<Self, CoreError> {
        let layers = self.layers.iter().enumerate().filter(|(i, _)| !drop.contains(*i)).map(|(_, l)| *l).collect();
        Ok(Self { layers, passes: self.passes })
    }
    fn set_trainable_layers(self, _trainable: &LayerSet) -> Result<Self, CoreError> {
        Ok(self)
    }
}

impl ObservedForward<B> for Stack {
    type Input = Vec<u32>;
    type Error = CoreError;

    fn forward_observed(&self, input: &Vec<u32>, _tap: TapPoint, _observer: &mut dyn HiddenStateObserver<B>) -> Result<Tensor<B, 3>, CoreError> {
        Ok(self.run(input, &[]))
    }
}

impl SkipLayersForward<B> for Stack {
    fn forward_skipping(&self, input: &Vec<u32>, skip: &LayerSet) -> Result<Tensor<B, 3>, CoreError> {
        Ok(self.run(input, skip.as_slice()))
    }
    fn text_targets(&self, input: &Vec<u32>) -> Vec<Option<u32>> {
        (0..input.len()).map(|t| input.get(t + 1).copied()).collect()
    }
}

fn samples() -> Vec<Vec<u32>> {
    vec![vec![1, 5, 2, 7, 3], vec![0, 4, 4, 6], vec![3, 1, 2, 0, 5, 7, 6]]
}

/// NLL of one scored token whose target logit is `x` and every other logit 0.
fn nll_at(x: f64) -> f64 {
    -x + (x.exp() + (VOCAB - 1) as f64).ln()
}

fn config(rule: LossRule, n_drop: usize) -> LossSelectionConfig {
    LossSelectionConfig { rule, n_drop, protect: LossSelectionConfig::sleb_barriers(8) }
}

#[test]
fn sleb_drops_the_do_nothing_layers_first_and_keeps_one_of_the_redundant_pair() {
    let stack = stack();
    let tokens: usize = samples().iter().map(|s| s.len() - 1).sum();
    let result = select_by_loss(&stack, &samples(), &config(LossRule::Sleb, 4), &mut || {}).unwrap();
    // Round 1: layers 1, 2, 3 and 5 all cost nothing; the lowest goes (SLEB's strict `<`).
    // Round 2: with 1 gone, 3 is the only saturation left and now matters; 2 and 5 are free.
    // Round 4: 3 (target 2.25), 4 (2.75) or 6 (3.5): 6 costs least.
    assert_eq!(result.order, vec![1, 2, 5, 6]);
    assert_eq!(result.protect, vec![0, 7]);
    let round1: Vec<usize> = result.rounds[0].scores.iter().map(|s| s.layer).collect();
    assert_eq!(round1, vec![1, 2, 3, 4, 5, 6], "every unprotected layer is scored, in order");
    let free = result.rounds[0].scores.iter().filter(|s| s.nll == result.baseline.nll).map(|s| s.layer).collect::<Vec<_>>();
    assert_eq!(free, vec![1, 2, 3, 5], "removing a do-nothing layer leaves the loss bit-identical");
    assert_eq!(result.rounds[1].removed_before, vec![1]);
    let round2 = |layer: usize| result.rounds[1].scores.iter().find(|s| s.layer == layer).unwrap().nll;
    assert!(round2(3) > round2(4), "after round 1, the remaining saturation layer is the most important");
    // The losses are the closed form of the toy: target logit 3.75 unpruned, 3.5 after SLEB.
    assert!((result.baseline.nll - tokens as f64 * nll_at(3.75)).abs() < 1e-4, "{}", result.baseline.nll);
    assert!((result.pruned_nll - tokens as f64 * nll_at(3.5)).abs() < 1e-4, "{}", result.pruned_nll);
    assert_eq!(result.baseline.tokens, tokens);
}

#[test]
fn the_one_shot_rule_falls_into_the_redundant_pair_that_sleb_avoids() {
    let stack = stack();
    let sleb = select_by_loss(&stack, &samples(), &config(LossRule::Sleb, 4), &mut || {}).unwrap();
    let shot = select_by_loss(&stack, &samples(), &config(LossRule::OneShot, 4), &mut || {}).unwrap();
    // Scored once, the four free layers tie at the baseline: one-shot drops both of the pair.
    let mut drop = shot.order.clone();
    drop.sort_unstable();
    assert_eq!(drop, vec![1, 2, 3, 5]);
    assert_eq!(shot.rounds.len(), 1);
    let tokens = sleb.baseline.tokens as f64;
    assert!((shot.pruned_nll - tokens * nll_at(2.25)).abs() < 1e-4, "{}", shot.pruned_nll);
    assert!(shot.pruned_nll > sleb.pruned_nll + 1.0, "re-scoring after each removal is what SLEB buys");
}

#[test]
fn passes_are_counted_up_front_and_reported_one_by_one() {
    for (rule, n_drop) in [(LossRule::Sleb, 4), (LossRule::OneShot, 4), (LossRule::Sleb, 1)] {
        let stack = stack();
        let mut reported = 0;
        let result = select_by_loss(&stack, &samples(), &config(rule, n_drop), &mut || reported += 1).unwrap();
        let expected = loss_selection_passes(&config(rule, n_drop), 8, samples().len());
        assert_eq!((result.passes, reported, stack.passes.get()), (expected, expected, expected), "{rule:?}");
    }
    // SLEB: 6 + 5 + 4 + 3 candidates, plus the baseline and the final model, per sample.
    assert_eq!(loss_selection_passes(&config(LossRule::Sleb, 4), 8, 3), (18 + 2) * 3);
}

#[test]
fn protected_layers_are_never_scored_or_dropped() {
    let stack = stack();
    let protect = vec![0, 1, 2, 7];
    let config = LossSelectionConfig { rule: LossRule::Sleb, n_drop: 2, protect };
    let result = select_by_loss(&stack, &samples(), &config, &mut || {}).unwrap();
    assert_eq!(result.order, vec![3, 5]);
    assert!(result.rounds.iter().flat_map(|r| &r.scores).all(|s| ![0, 1, 2, 7].contains(&s.layer)));
}

#[test]
fn impossible_requests_are_refused_with_the_reason() {
    let stack = stack();
    let too_many = LossSelectionConfig { rule: LossRule::Sleb, n_drop: 7, protect: vec![0, 7] };
    let err = select_by_loss(&stack, &samples(), &too_many, &mut || {}).unwrap_err().to_string();
    assert!(err.contains("cannot drop 7 of 8 layers: 6 are not protected"), "{err}");
    let bad_protect = LossSelectionConfig { rule: LossRule::OneShot, n_drop: 1, protect: vec![8] };
    assert!(matches!(select_by_loss(&stack, &samples(), &bad_protect, &mut || {}), Err(SimilarityError::Core(_))));
    let no_data = select_by_loss(&stack, &[], &config(LossRule::Sleb, 1), &mut || {}).unwrap_err().to_string();
    assert!(no_data.contains("no calibration sample"), "{no_data}");
    assert_eq!(stack.passes.get(), 0, "refused before any forward pass");
}

#[test]
fn nll_sum_equals_the_closed_form_and_checks_its_inputs() {
    let logits = Tensor::<B, 3>::from_data(TensorData::new(vec![2.0f32, 0.0, 0.0, 0.0, 1.0, 0.0], [1, 2, 3]), &Default::default());
    let sum = nll_sum(logits.clone(), &[Some(0), None]).unwrap();
    let expected = -2.0 + (2.0f64.exp() + 2.0).ln();
    assert!((sum.nll - expected).abs() < 1e-6 && sum.tokens == 1, "{sum:?}");
    assert!(nll_sum(logits.clone(), &[Some(3), None]).unwrap_err().to_string().contains("outside the vocabulary"));
    assert!(nll_sum(logits, &[Some(0)]).is_err(), "one target per position");
}

#[test]
fn finetune_rules_give_explicit_sets() {
    let drop = [1, 2, 5, 7];
    assert_eq!(FinetuneRule::Next.finetune(8, &drop), vec![3, 6], "the kept layer after each drop; the one before at the end");
    assert_eq!(FinetuneRule::None.finetune(8, &drop), Vec::<usize>::new());
    assert_eq!(FinetuneRule::AllRemaining.finetune(8, &drop), vec![0, 3, 4, 6]);
    let plan = plan_for_drop(8, "sleb", 0.5, &[5, 1, 7, 2], FinetuneRule::Next).unwrap();
    assert_eq!((plan.drop, plan.finetune, plan.freeze, plan.strategy), (vec![1, 2, 5, 7], vec![3, 6], vec![0, 4], "sleb".to_string()));
    assert!(plan_for_drop(3, "sleb", 0.5, &[0, 1, 2], FinetuneRule::None).is_err(), "every layer");
    assert_eq!(FinetuneRule::from_name("all_remaining"), Some(FinetuneRule::AllRemaining));
    assert_eq!(FinetuneRule::from_name("later"), None);
}
