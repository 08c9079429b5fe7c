//! One training step against transformers + torch (fixtures/make_train_fixtures.py): labels,
//! masked loss, gradients of the fine-tune layer, and one AdamW step. On burn-flex (with its own
//! matmul, then with OpenBLAS's where it is installed), and on wgpu when a Vulkan device is
//! present (`interlace_testkit::wgpu_device`).

use std::collections::HashMap;

use burn::backend::Autodiff;
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{GradientsParams, Optimizer};
use burn::prelude::{Backend, Tensor};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::DType;
use interlace_core::{DecoderStack, LayerSet, Plan};
use interlace_qwen3vl::processor::{ChatMessage, Qwen3VlProcessor};
use interlace_qwen3vl::{Qwen3VlForConditionalGeneration, Qwen3VlInput};
use interlace_testkit::{wgpu_device, Flex, Wgpu};
use interlace_train::{assistant_labels, causal_lm_loss, example_gradients, pytorch_adamw, Backward, TrainingExample, TurnMarkers};

mod common;
use common::{fixtures, Golden};

type Cpu = Autodiff<Flex<f32>>;

/// Every float parameter of a module by its checkpoint name, with its gradient if any.
struct Named<'a, B: AutodiffBackend> {
    path: Vec<String>,
    grads: Option<&'a GradientsParams>,
    values: HashMap<String, Vec<f32>>,
    gradients: HashMap<String, Vec<f32>>,
    _b: std::marker::PhantomData<B>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Named<'_, B> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let name = self.path.join(".");
        self.values.insert(name.clone(), param.val().into_data().into_vec::<f32>().unwrap());
        if let Some(grad) = self.grads.and_then(|g| g.get::<B::InnerBackend, D>(param.id)) {
            self.gradients.insert(name, grad.into_data().into_vec::<f32>().unwrap());
        }
    }
}

fn named<'a, B: AutodiffBackend, M: Module<B>>(module: &M, grads: Option<&'a GradientsParams>) -> Named<'a, B> {
    let mut visitor = Named { path: Vec::new(), grads, values: HashMap::new(), gradients: HashMap::new(), _b: std::marker::PhantomData };
    module.visit(&mut visitor);
    visitor
}

fn relative_error(a: &[f32], b: &[f32]) -> f64 {
    let diff: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let norm: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (diff / norm.max(1e-30)).sqrt()
}

fn max_abs(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs() as f64).fold(0.0, f64::max)
}

fn pruned_model<B: AutodiffBackend>(golden: &Golden, device: &B::Device) -> Qwen3VlForConditionalGeneration<B> {
    let plan: Plan = serde_json::from_value(golden.json["plan"].clone()).unwrap();
    let dir = fixtures().join("models/tiny-b");
    let model = Qwen3VlForConditionalGeneration::<B>::from_pretrained(dir, device, DType::F32).unwrap();
    let model = model.remove_layers(&plan.drop_set().unwrap()).unwrap();
    let trainable = LayerSet::new(plan.finetune_after_pruning(), model.num_layers()).unwrap();
    model.set_trainable_layers(&trainable).unwrap()
}

fn golden_input(golden: &Golden) -> Qwen3VlInput {
    let grid = golden.i64("image_grid_thw");
    Qwen3VlInput {
        input_ids: golden.i64("input_ids").into_iter().map(|i| i as u32).collect(),
        pixel_values: golden.f32("pixel_values"),
        image_grid_thw: grid.chunks_exact(3).map(|g| [g[0] as usize, g[1] as usize, g[2] as usize]).collect(),
    }
}

#[test]
fn processor_and_labels_match_the_official_rule() {
    let golden = Golden::load("step");
    let processor = Qwen3VlProcessor::from_dir(fixtures().join("models/tiny-b")).unwrap();
    let mut messages: Vec<ChatMessage> = serde_json::from_value(golden.json["messages"].clone()).unwrap();
    for message in &mut messages {
        for part in &mut message.content {
            if let interlace_qwen3vl::processor::ContentPart::Image(interlace_qwen3vl::processor::ImageSource::Path(p)) = part {
                *p = fixtures().join(&*p);
            }
        }
    }
    let processed = processor.process(&messages, false).unwrap();
    let ids = golden.i64("input_ids");
    assert_eq!(processed.input_ids.iter().map(|&i| i as i64).collect::<Vec<_>>(), ids);
    let tokenizer = processor.tokenizer();
    let markers = TurnMarkers {
        im_start: tokenizer.token_to_id("<|im_start|>").unwrap(),
        assistant_header: processor.encode("assistant\n").unwrap(),
        im_end: tokenizer.token_to_id("<|im_end|>").unwrap(),
    };
    assert_eq!(assistant_labels(&processed.input_ids, &markers), golden.i64("labels"));
}

#[test]
fn loss_gradients_and_adamw_step_match_torch() {
    loss_gradients_and_adamw_step_match::<Cpu>(&Default::default(), "cpu");
    // Again with the linear layers' products and their gradients in OpenBLAS. The kernel is
    // process-wide, so it is registered only after burn-flex's own matmul was checked; no other
    // test of this binary runs on burn-flex.
    match interlace_openblas::use_openblas() {
        Ok(_) => loss_gradients_and_adamw_step_match::<Cpu>(&Default::default(), "cpu+openblas"),
        Err(error) if std::env::var("INTERLACE_OPENBLAS_TESTS").as_deref() == Ok("require") => panic!("INTERLACE_OPENBLAS_TESTS=require: {error}"),
        Err(error) => println!("cpu+openblas skipped: {error}"),
    }
}

#[test]
fn on_wgpu_loss_gradients_and_adamw_step_match_torch() {
    let Some(device) = wgpu_device("training step parity") else { return };
    loss_gradients_and_adamw_step_match::<Autodiff<Wgpu>>(&device, "wgpu");
}

fn loss_gradients_and_adamw_step_match<B: AutodiffBackend>(device: &B::Device, backend: &str) {
    let golden = Golden::load("step");
    let model = pruned_model::<B>(&golden, device);
    let logits = model.forward(&golden_input(&golden)).unwrap();
    let loss = causal_lm_loss(logits, &golden.i64("labels")).unwrap();
    let loss_value = loss.clone().into_data().convert::<f64>().into_vec::<f64>().unwrap()[0];
    let expected_loss = golden.f32("loss")[0] as f64;
    assert!((loss_value - expected_loss).abs() / expected_loss < 1e-5, "{backend}: loss {loss_value} vs {expected_loss}");
    println!("{backend}: loss {loss_value} vs torch {expected_loss}");

    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let seen = named::<B, _>(&model, Some(&grads));
    let trainable = golden.names_with_prefix("grad.");
    assert_eq!(seen.gradients.len(), trainable.len(), "exactly the fine-tune layer has gradients");
    for name in &trainable {
        let error = relative_error(&seen.gradients[name], &golden.f32(&format!("grad.{name}")));
        // 1.1e-6 measured (ndarray, f32); 1.33e-6 on wgpu (lavapipe, 2026-12-01).
        assert!(error < 1e-5, "{backend}: gradient of {name}: relative error {error:.2e}");
        println!("{backend}: gradient {name}: relative error {error:.2e}");
    }

    // The trainer's own path: the head and loss on 3 supervised rows at a time, each chunk
    // back-propagated to the top hidden state, then through the layers, kept or recomputed.
    let example = TrainingExample { input: golden_input(&golden), labels: golden.i64("labels") };
    assert!(example.supervised_tokens() > 6, "several head chunks");
    for backward in [Backward::KeepActivations { head_chunk_rows: 3 }, Backward::Recompute { head_chunk_rows: 3 }] {
        let (grads, loss) = example_gradients(&model, &example, 1.0, backward).unwrap();
        assert!((loss - expected_loss).abs() / expected_loss < 1e-5, "{backend}, {backward:?}: loss {loss} vs {expected_loss}");
        let seen = named::<B, _>(&model, Some(&grads));
        assert_eq!(seen.gradients.len(), trainable.len(), "{backend}, {backward:?}: gradients of the fine-tune layer only");
        for name in &trainable {
            let error = relative_error(&seen.gradients[name], &golden.f32(&format!("grad.{name}")));
            assert!(error < 1e-5, "{backend}, {backward:?}: gradient of {name}: relative error {error:.2e}");
            println!("{backend}, {backward:?}: gradient {name}: relative error {error:.2e}");
        }
    }

    for (tag, weight_decay) in [("adamw", 0.0), ("adamw_wd", 0.1)] {
        let mut optimizer = pytorch_adamw(weight_decay).init::<B, Qwen3VlForConditionalGeneration<B>>();
        // Feed torch's exact gradients so the step is compared in isolation.
        let mut torch_grads = GradientsParams::new();
        struct Ids(Vec<(String, burn::module::ParamId)>, Vec<String>);
        impl<B: Backend> ModuleVisitor<B> for Ids {
            fn enter_module(&mut self, name: &str, _: &str) {
                self.1.push(name.into());
            }
            fn exit_module(&mut self, _: &str, _: &str) {
                self.1.pop();
            }
            fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
                self.0.push((self.1.join("."), p.id));
            }
        }
        let mut ids = Ids(Vec::new(), Vec::new());
        model.visit(&mut ids);
        for (name, id) in ids.0 {
            if trainable.contains(&name) {
                let shape = golden.shape(&format!("grad.{name}"));
                let data = burn::tensor::TensorData::new(golden.f32(&format!("grad.{name}")), shape.clone());
                match shape.len() {
                    1 => torch_grads.register::<B::InnerBackend, 1>(id, Tensor::from_data(data, device)),
                    2 => torch_grads.register::<B::InnerBackend, 2>(id, Tensor::from_data(data, device)),
                    _ => unreachable!(),
                }
            }
        }
        let stepped = optimizer.step(1e-3, model.clone(), torch_grads);
        let after = named::<B, _>(&stepped, None);
        let before = named::<B, _>(&model, None);
        for name in &trainable {
            let error = max_abs(&after.values[name], &golden.f32(&format!("{tag}.{name}")));
            assert!(error < 1e-6, "{backend}: {tag} step of {name}: max abs error {error:.2e}");
            println!("{backend}: {tag} {name}: max abs error {error:.2e}");
        }
        for (name, values) in &before.values {
            if !trainable.contains(name) {
                assert_eq!(&after.values[name], values, "{backend}: frozen {name} changed");
            }
        }
    }
}
