//! "Any decoder stack": a small text decoder defined here, with no Qwen code, goes through
//! calibrate → select → prune → adapt using only the generic building blocks.

use burn::backend::{Autodiff, NdArray};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::prelude::{Backend, Int, Tensor, TensorData};
use burn::tensor::activation::gelu;
use interlace_prune::core::{has_trainable_params, CoreError, DecoderStack, HiddenStateObserver, LayerSet, LayerwiseForward, ObservedForward, TapPoint};
use interlace_prune::similarity::{select, CalibrationConfig, Calibrator, Metric, SimilarityTables, Strategy};
use interlace_prune::surgery::prune_stack_with_plan;
use interlace_prune::train::{train, train_data_parallel, ExampleSource, TrainConfig, TrainError, TrainingExample};

type B = Autodiff<NdArray<f32>>;

/// One residual MLP block.
#[derive(Module, Debug)]
struct Block<B: Backend> {
    up: Linear<B>,
    down: Linear<B>,
}

/// A toy decoder: embeddings, `L` residual blocks, an output head.
#[derive(Module, Debug)]
struct TinyDecoder<B: Backend> {
    embed: Embedding<B>,
    blocks: Vec<Block<B>>,
    head: Linear<B>,
}

impl<B: Backend> TinyDecoder<B> {
    fn new(layers: usize, device: &B::Device) -> Self {
        // The seed is global to the backend: tests running in parallel must not interleave.
        static SEEDED: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _alone = SEEDED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        B::seed(device, 11);
        let block = || Block { up: LinearConfig::new(16, 32).init(device), down: LinearConfig::new(32, 16).init(device) };
        let model = Self {
            embed: EmbeddingConfig::new(50, 16).init(device),
            blocks: (0..layers).map(|_| block()).collect(),
            head: LinearConfig::new(16, 50).init(device),
        };
        // burn draws parameters lazily: draw them now, while the seed is ours.
        model.visit(&mut Materialize);
        model
    }
}

struct Materialize;

impl<B: Backend> ModuleVisitor<B> for Materialize {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let _ = param.val();
    }
}

struct Trainable(bool);

impl<B: Backend> ModuleMapper<B> for Trainable {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        param.set_require_grad(self.0)
    }
}

impl<B: Backend> DecoderStack for TinyDecoder<B> {
    fn num_layers(&self) -> usize {
        self.blocks.len()
    }
    fn layer_param_count(&self, index: usize) -> Result<usize, CoreError> {
        self.blocks.get(index).map(Module::num_params).ok_or(CoreError::LayerOutOfRange { index, num_layers: self.blocks.len() })
    }
    fn param_count(&self) -> usize {
        self.num_params()
    }
    fn remove_layers(mut self, drop: &LayerSet) -> Result<Self, CoreError> {
        let blocks = std::mem::take(&mut self.blocks);
        self.blocks = blocks.into_iter().enumerate().filter(|(i, _)| !drop.contains(*i)).map(|(_, b)| b).collect();
        Ok(self)
    }
    fn set_trainable_layers(self, trainable: &LayerSet) -> Result<Self, CoreError> {
        let mut model = self.map(&mut Trainable(false));
        let blocks = std::mem::take(&mut model.blocks);
        model.blocks = blocks.into_iter().enumerate().map(|(i, b)| b.map(&mut Trainable(trainable.contains(i)))).collect();
        Ok(model)
    }
}

impl<B: Backend> ObservedForward<B> for TinyDecoder<B> {
    type Input = Vec<u32>;
    type Error = CoreError;

    fn forward_observed(&self, input: &Vec<u32>, _tap: TapPoint, observer: &mut dyn HiddenStateObserver<B>) -> Result<Tensor<B, 3>, CoreError> {
        let (mut h, ()) = self.begin(input)?;
        observer.observe(0, h.clone())?;
        for l in 0..self.blocks.len() {
            h = self.layer(l, h, &());
            observer.observe(l + 1, h.clone())?;
        }
        Ok(self.finish(h))
    }
}

/// The same pass in stages, which lets the trainer recompute activations layer by layer.
impl<B: Backend> LayerwiseForward<B> for TinyDecoder<B> {
    type Context = ();

    fn begin(&self, input: &Vec<u32>) -> Result<(Tensor<B, 3>, ()), CoreError> {
        let ids: Vec<i64> = input.iter().map(|&t| t as i64).collect();
        let device = self.head.weight.val().device();
        Ok((self.embed.forward(Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [1, input.len()]), &device)), ()))
    }

    fn layer(&self, index: usize, h: Tensor<B, 3>, _context: &()) -> Tensor<B, 3> {
        let block = &self.blocks[index];
        h.clone() + block.down.forward(gelu(block.up.forward(h)))
    }

    fn finish(&self, h: Tensor<B, 3>) -> Tensor<B, 3> {
        self.head.forward(h)
    }

    fn layer_is_trainable(&self, index: usize) -> bool {
        has_trainable_params(&self.blocks[index])
    }

    fn begin_is_trainable(&self) -> bool {
        has_trainable_params(&self.embed)
    }
}

/// Next-token prediction on fixed token sequences.
struct Sequences(Vec<Vec<u32>>);

impl ExampleSource for Sequences {
    type Input = Vec<u32>;
    fn len(&self) -> usize {
        self.0.len()
    }
    fn example(&self, index: usize) -> Result<TrainingExample<Vec<u32>>, TrainError> {
        let ids = self.0[index].clone();
        Ok(TrainingExample { labels: ids.iter().map(|&t| t as i64).collect(), input: ids })
    }
}

#[test]
fn a_non_qwen_decoder_goes_through_the_whole_pipeline() {
    let device = Default::default();
    let model = TinyDecoder::<B>::new(8, &device);
    let samples: Vec<Vec<u32>> = (0..4).map(|s| (0..12).map(|j| ((j * 7 + s * 5) % 50) as u32).collect()).collect();

    // Calibrate: one observed pass per sample, packs 1..3.
    let mut calibrator = Calibrator::new(CalibrationConfig { packs: vec![1, 2, 3], tap: TapPoint::Transformers }, 8).unwrap();
    for sample in &samples {
        calibrator.run_sample(&model, sample).unwrap();
    }
    let result = calibrator.finish();
    assert_eq!(result.samples, 4);

    // Select: the official pack tables cover layers 0..L-k.
    let means = |k: usize| {
        let pack = result.packs.iter().find(|p| p.k == k).unwrap();
        let cosine = &pack.summaries.iter().find(|(m, _)| *m == Metric::Cosine).unwrap().1;
        Some(cosine[..8 - k].iter().map(|s| s.mean).collect::<Vec<f64>>())
    };
    let tables = SimilarityTables::from_means(8, means(1), means(2), means(3)).unwrap();
    let plan = select(&tables, Strategy::Interlace, 0.25, 42).unwrap();
    assert_eq!((plan.drop.len(), plan.finetune.len()), (2, 2));

    // Prune in memory.
    let (pruned, report) = prune_stack_with_plan(model, &plan).unwrap();
    assert_eq!((report.before.layers, report.after.layers), (8, 6));
    assert!(report.after.params < report.before.params);

    // Adapt: only the fine-tune blocks change.
    let trainable = LayerSet::new(plan.finetune_after_pruning(), 6).unwrap();
    let pruned = pruned.set_trainable_layers(&trainable).unwrap();
    let before: Vec<Vec<f32>> = pruned.blocks.iter().map(|b| b.up.weight.val().into_data().into_vec().unwrap()).collect();
    let dir = tempfile::tempdir().unwrap();
    let config = TrainConfig { epochs: 3, lr: 1e-2, ..TrainConfig::default() };
    let (trained, run) = train(pruned, &Sequences(samples), &config, dir.path(), false, |_| {}).unwrap();
    assert_eq!(run.steps, 12);
    for (i, block) in trained.blocks.iter().enumerate() {
        let after: Vec<f32> = block.up.weight.val().into_data().into_vec().unwrap();
        assert_eq!(after != before[i], trainable.contains(i), "block {i}");
    }
}

/// Trainable weights after a short run of `config` on `devices` replicas (all on the CPU).
fn trained_weights(config: &TrainConfig, devices: usize, trainable: &LayerSet, samples: &[Vec<u32>]) -> Vec<f32> {
    let device = Default::default();
    let model = TinyDecoder::<B>::new(8, &device).set_trainable_layers(trainable).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (trained, run) = train_data_parallel(model, &Sequences(samples.to_vec()), config, &vec![device; devices], dir.path(), false, |_| {}).unwrap();
    assert_eq!(run.steps, config.total_steps(samples.len(), devices));
    trained.blocks.iter().flat_map(|b| [b.up.weight.val(), b.down.weight.val()]).flat_map(|w| w.into_data().into_vec::<f32>().unwrap()).collect()
}

#[test]
fn checkpointing_and_data_parallelism_train_like_the_plain_loop() {
    let samples: Vec<Vec<u32>> = (0..8).map(|s| (0..6 + 3 * s).map(|j| ((j * 7 + s * 5) % 50) as u32).collect()).collect();
    let trainable = LayerSet::new(vec![2, 5], 8).unwrap();
    let plain = TrainConfig { epochs: 2, lr: 1e-2, grad_accum: 2, ..TrainConfig::default() };
    let reference = trained_weights(&plain, 1, &trainable, &samples);
    let untrained = trained_weights(&TrainConfig { lr: 1e-30, ..plain.clone() }, 1, &trainable, &samples);
    let changed = reference.iter().zip(&untrained).filter(|(a, b)| a != b).count();
    assert!(changed > 1000, "training changed only {changed} weights");
    let variants = [
        ("activation checkpointing", TrainConfig { activation_checkpointing: true, head_chunk_rows: 5, ..plain.clone() }, 1),
        ("2 replicas", TrainConfig { grad_accum: 1, ..plain.clone() }, 2),
        ("2 replicas with checkpointing", TrainConfig { grad_accum: 1, activation_checkpointing: true, ..plain.clone() }, 2),
    ];
    for (name, config, devices) in variants {
        let weights = trained_weights(&config, devices, &trainable, &samples);
        let worst = weights.iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        println!("{name}: max |Δw| = {worst:e}");
        assert!(worst < 1e-5, "{name}: weights differ by {worst}");
    }
}

#[test]
fn a_failing_replica_stops_all_replicas_with_its_error() {
    // Token 999 is outside the 50-word embedding: the replica that gets it fails mid-step.
    let mut samples: Vec<Vec<u32>> = (0..4).map(|s| (0..8).map(|j| ((j * 3 + s) % 50) as u32).collect()).collect();
    samples[2][3] = 999;
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let device = Default::default();
        let model = TinyDecoder::<B>::new(4, &device).set_trainable_layers(&LayerSet::new([1], 4).unwrap()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = TrainConfig { epochs: 2, ..TrainConfig::default() };
        let result = train_data_parallel(model, &Sequences(samples), &config, &[device, device], dir.path(), false, |_| {});
        send.send(result.err().map(|e| e.to_string())).unwrap();
    });
    let error = receive.recv_timeout(std::time::Duration::from_secs(120)).expect("the replicas stop instead of waiting for each other");
    let error = error.expect("the run fails");
    println!("{error}");
    // The panic text is the embedding lookup's bounds check (ndarray's "index < dim"; with the
    // dependencies' debug assertions on, burn's "Index 999 out of bounds"), so match either.
    let bounds_check = error.contains("index < dim") || error.contains("Index 999");
    assert!(error.contains("panicked") && bounds_check, "the failing replica's own error: {error}");
}
