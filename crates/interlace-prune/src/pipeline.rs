//! The INTERLACE pipeline on a Qwen3-VL checkpoint: calibrate → select → prune → adapt.
//!
//! Every step reads and writes plain files under a work directory (`similarity/`, `plan.json`,
//! `pruned/`), so a step can be re-run, inspected or replaced by the CLI command of the same
//! name.

use std::path::{Path, PathBuf};

use burn::prelude::Backend;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::DType;
use interlace_core::{CoreError, DecoderStack, LayerSet, ObservedForward, Plan, PlanError, TapPoint};
use interlace_llama::{LlamaForCausalLM, TextProcessor};
use interlace_qwen3vl::processor::Qwen3VlProcessor;
use interlace_qwen3vl::{Qwen3VlError, Qwen3VlForConditionalGeneration};
use interlace_similarity::{
    calibrate, sample_order, select, write_outputs, CalibrationConfig, CalibrationData, CalibrationEvent, CalibrationResult, Calibrator, ChatInputBuilder,
    RunMetadata, RunSummary, SimilarityError, SimilarityTables, Strategy,
};
use interlace_surgery::{prune_checkpoint, DiskPruneOptions, DiskPruneReport, DropSpec, Progress, SurgeryError};
use interlace_train::{train_data_parallel, ConversationDataset, Skipped, StepLog, TrainConfig, TrainError, TrainReport};

/// Any step of the pipeline failed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Loading or running the model.
    #[error(transparent)]
    Model(#[from] Qwen3VlError),
    /// Loading or running a text decoder.
    #[error(transparent)]
    TextModel(#[from] interlace_llama::LlamaError),
    /// Calibration or selection.
    #[error(transparent)]
    Similarity(#[from] SimilarityError),
    /// Surgery.
    #[error(transparent)]
    Surgery(#[from] SurgeryError),
    /// Adaptation.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// Evaluation.
    #[error(transparent)]
    Eval(#[from] interlace_eval::EvalError),
    /// A plan file.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A layer set.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The work directory.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating-system error.
        source: std::io::Error,
    },
    /// Inconsistent inputs (e.g. a plan for another model).
    #[error("{0}")]
    Invalid(String),
    /// The plan is not the one the pruned directory was made with (its `interlace.json`
    /// records another drop set): training it would train the wrong layers.
    #[error(
        "{dir} was pruned with another plan: its interlace.json records dropping {recorded_drop:?} of {recorded_layers} layers, \
         the plan given drops {drop:?} of {n_layers}; pass the plan that `interlace prune` was given, or prune again with this one"
    )]
    PlanMismatch {
        /// The pruned directory.
        dir: PathBuf,
        /// `n_layers` of the recorded plan.
        recorded_layers: usize,
        /// Drop set of the recorded plan.
        recorded_drop: Vec<usize>,
        /// `n_layers` of the plan given.
        n_layers: usize,
        /// Drop set of the plan given.
        drop: Vec<usize>,
    },
}

/// How calibration samples are drawn and measured.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrationOptions {
    /// Layer distances `k` measured (default 1, 2, 3).
    pub packs: Vec<usize>,
    /// Which hidden states are compared.
    pub tap: TapPoint,
    /// Random fraction of the records to use (`None`: all, in file order).
    pub sample_portion: Option<f64>,
    /// Cap on the number of samples.
    pub max_samples: Option<usize>,
    /// Seed of the subset draw (CPython-compatible, as the official script).
    pub seed: u64,
    /// Folder image paths are relative to (default: the data file's folder).
    pub image_root: Option<PathBuf>,
    /// Fail on the first bad record instead of skipping it.
    pub strict: bool,
}

impl Default for CalibrationOptions {
    fn default() -> Self {
        Self { packs: vec![1, 2, 3], tap: TapPoint::Transformers, sample_portion: None, max_samples: None, seed: 42, image_root: None, strict: false }
    }
}

/// How the pruned model is adapted.
#[derive(Debug, Clone, PartialEq)]
pub struct AdaptOptions {
    /// Optimizer, schedule, batching, checkpoints.
    pub train: TrainConfig,
    /// Conversations are truncated to this many tokens.
    pub max_length: usize,
    /// Pixel budget override for training images (official: 784 .. 50176).
    pub min_pixels: Option<usize>,
    /// See `min_pixels`.
    pub max_pixels: Option<usize>,
    /// Folder image paths are relative to (default: the data file's folder).
    pub image_root: Option<PathBuf>,
    /// Also train the vision tower.
    pub tune_vision: bool,
    /// Also train the main merger.
    pub tune_merger: bool,
    /// Train the whole language model.
    pub tune_llm: bool,
    /// Continue from the latest checkpoint of the run directory.
    pub resume: bool,
    /// Replace a non-empty output directory.
    pub force: bool,
}

impl Default for AdaptOptions {
    fn default() -> Self {
        Self {
            train: TrainConfig::default(),
            max_length: 8192,
            min_pixels: None,
            max_pixels: None,
            image_root: None,
            tune_vision: false,
            tune_merger: false,
            tune_llm: false,
            resume: false,
            force: false,
        }
    }
}

/// The INTERLACE pipeline for one model directory, with its intermediate files in `work_dir`.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// The Hugging Face model directory (never written to).
    pub model_dir: PathBuf,
    /// Where `similarity/`, `plan.json`, `pruned/` and the training run go.
    pub work_dir: PathBuf,
    /// Float dtype of weights and activations (trainable layers keep f32 master weights).
    pub dtype: DType,
}

impl Pipeline {
    /// A pipeline in f32 (use [`Pipeline::with_dtype`] for bf16 on GPU).
    pub fn new(model_dir: impl Into<PathBuf>, work_dir: impl Into<PathBuf>) -> Self {
        Self { model_dir: model_dir.into(), work_dir: work_dir.into(), dtype: DType::F32 }
    }

    /// Sets the float dtype.
    pub fn with_dtype(mut self, dtype: DType) -> Self {
        self.dtype = dtype;
        self
    }

    /// `work_dir/similarity`: pack tables, report and plot.
    pub fn similarity_dir(&self) -> PathBuf {
        self.work_dir.join("similarity")
    }

    /// `work_dir/plan.json`.
    pub fn plan_path(&self) -> PathBuf {
        self.work_dir.join("plan.json")
    }

    /// `work_dir/pruned`: the pruned checkpoint.
    pub fn pruned_dir(&self) -> PathBuf {
        self.work_dir.join("pruned")
    }

    /// Measures layer redundancy on `data` (one forward pass per sample) and writes
    /// `similarity/` (official `pack{k}.json`, `report.json`, `similarity.png`).
    pub fn calibrate<B: Backend>(
        &self,
        data: &Path,
        options: &CalibrationOptions,
        device: &B::Device,
        on_event: &mut dyn FnMut(&CalibrationEvent),
    ) -> Result<(CalibrationResult, RunSummary), PipelineError> {
        let mut records = CalibrationData::open(data, options.image_root.as_deref())?;
        let order = sample_order(records.len(), options.sample_portion, options.seed, options.max_samples)?;
        let config = CalibrationConfig { packs: options.packs.clone(), tap: options.tap };
        // Text decoders take documents and conversations through their own tokenizer and template.
        let (result, summary) = if crate::registry::text_architecture(&self.model_dir)?.is_some() {
            let builder = ChatInputBuilder::new(TextProcessor::from_dir(&self.model_dir)?);
            let model = LlamaForCausalLM::<B>::from_pretrained(&self.model_dir, device, self.dtype)?;
            measure(&model, &builder, &mut records, &order, config, options.strict, on_event)?
        } else {
            let builder = ChatInputBuilder::new(Qwen3VlProcessor::from_dir(&self.model_dir).map_err(Qwen3VlError::from)?);
            let model = Qwen3VlForConditionalGeneration::<B>::from_pretrained(&self.model_dir, device, self.dtype)?;
            measure(&model, &builder, &mut records, &order, config, options.strict, on_event)?
        };
        if summary.used == 0 {
            return Err(PipelineError::Invalid(format!("no record of {} could be used ({} skipped)", data.display(), summary.skipped.len())));
        }
        let meta = RunMetadata {
            model: self.model_dir.clone(),
            data: data.to_path_buf(),
            seed: options.seed,
            sample_portion: options.sample_portion,
            max_samples: options.max_samples,
            records: records.len(),
            backend: format!("{}/{:?}", std::any::type_name::<B>(), self.dtype),
        };
        write_outputs(&self.similarity_dir(), &result, &summary, &meta)?;
        Ok((result, summary))
    }

    /// Turns the similarity tables into a plan with `strategy` and writes `plan.json`.
    pub fn select(&self, strategy: Strategy, ratio: f64, seed: u64) -> Result<Plan, PipelineError> {
        let tables = SimilarityTables::from_dir(&self.similarity_dir())?;
        let plan = select(&tables, strategy, ratio, seed)?;
        std::fs::create_dir_all(&self.work_dir).map_err(|source| PipelineError::Io { path: self.work_dir.clone(), source })?;
        let text = serde_json::to_string_pretty(&plan).expect("plan serialises");
        std::fs::write(self.plan_path(), text).map_err(|source| PipelineError::Io { path: self.plan_path(), source })?;
        Ok(plan)
    }

    /// Writes `pruned/`: the checkpoint without the plan's dropped layers (streaming, every kept
    /// tensor byte-identical, config and index updated, provenance recorded).
    pub fn prune(&self, plan: &Plan, force: bool, progress: &mut dyn Progress) -> Result<DiskPruneReport, PipelineError> {
        let options = DiskPruneOptions { force, ..crate::registry::prune_options(&self.model_dir)? };
        Ok(prune_checkpoint(&self.model_dir, &self.pruned_dir(), &DropSpec::Plan(plan.clone()), &options, progress)?)
    }

    /// Trains the fine-tune layers of `pruned/` on the conversations in `data` and writes the
    /// result to `out` (Hugging Face layout). The run's checkpoints, `log.jsonl` and `loss.png`
    /// go to `run_dir`. Returns the report and the records skipped while reading `data`.
    ///
    /// With several `devices`, training is data-parallel (one replica per device, gradients
    /// all-reduced by `burn::collective`; see [`interlace_train::train_data_parallel`]).
    #[allow(clippy::too_many_arguments)]
    pub fn adapt<B: AutodiffBackend>(
        &self,
        plan: &Plan,
        data: &Path,
        options: &AdaptOptions,
        out: &Path,
        run_dir: &Path,
        devices: &[B::Device],
        on_step: impl FnMut(&StepLog),
    ) -> Result<(TrainReport, Vec<Skipped>), PipelineError> {
        adapt_dir::<B>(&self.pruned_dir(), plan, data, options, out, run_dir, self.dtype, devices, on_step)
    }
}

/// [`Pipeline::adapt`] for any pruned directory (what `interlace train` runs).
#[allow(clippy::too_many_arguments)]
pub fn adapt_dir<B: AutodiffBackend>(
    pruned: &Path,
    plan: &Plan,
    data: &Path,
    options: &AdaptOptions,
    out: &Path,
    run_dir: &Path,
    dtype: DType,
    devices: &[B::Device],
    on_step: impl FnMut(&StepLog),
) -> Result<(TrainReport, Vec<Skipped>), PipelineError> {
    let Some(device) = devices.first() else {
        return Err(PipelineError::Invalid("no device to train on".into()));
    };
    // Refuse before hours of training, not after.
    let occupied = std::fs::read_dir(out).map(|mut d| d.next().is_some()).unwrap_or(false);
    if occupied && !options.force {
        return Err(PipelineError::Invalid(format!("{} exists and is not empty (use --force to replace it)", out.display())));
    }
    check_pixel_limits(options)?;
    check_plan_matches(pruned, plan)?;
    if crate::registry::text_architecture(pruned)?.is_some() {
        return adapt_text_dir::<B>(pruned, plan, data, options, out, run_dir, dtype, devices, on_step);
    }
    let model = Qwen3VlForConditionalGeneration::<B>::from_pretrained(pruned, device, dtype)?;
    let mut processor = Qwen3VlProcessor::from_dir(pruned).map_err(Qwen3VlError::from)?;
    if let Some(min) = options.min_pixels {
        processor.image_config_mut().min_pixels = min;
    }
    if let Some(max) = options.max_pixels {
        processor.image_config_mut().max_pixels = max;
    }
    let (dataset, skipped) = ConversationDataset::open(data, options.image_root.as_deref(), processor, options.max_length)?;
    let trainable = LayerSet::new(plan.finetune_after_pruning(), model.num_layers())?;
    // Trainable layers keep f32 master weights (and compute in f32) inside a bf16/f16 model.
    let mut model = model.cast_layers(&trainable, DType::F32).set_trainable_layers(&trainable)?;
    if options.tune_vision {
        model = model.unfreeze_vision();
    }
    if options.tune_merger {
        model = model.unfreeze_merger();
    }
    if options.tune_llm {
        model = model.unfreeze_llm();
    }
    let train = with_run_settings(&options.train, plan, data, options, dtype)?;
    let (model, report) = train_data_parallel(model, &dataset, &train, devices, run_dir, options.resume, on_step)?;
    // Written back under the checkpoint's own names (hub Qwen2.5-VL files use older ones).
    let trained: Vec<_> =
        interlace_train::params::trainable_tensors(&model).into_iter().map(|(name, data)| (model.checkpoint_tensor_name(&name), data)).collect();
    export(Export { pruned, plan, data, options, out, run_dir, devices: devices.len() }, &train, &report, skipped.len(), &trained)?;
    Ok((report, skipped))
}

/// One calibration pass of `model` over the records `order`.
fn measure<B, M, I>(
    model: &M,
    builder: &I,
    records: &mut CalibrationData,
    order: &[usize],
    config: CalibrationConfig,
    strict: bool,
    on_event: &mut dyn FnMut(&CalibrationEvent),
) -> Result<(CalibrationResult, RunSummary), PipelineError>
where
    B: Backend,
    M: ObservedForward<B>,
    M::Error: std::fmt::Display,
    I: interlace_similarity::InputBuilder<Input = M::Input>,
{
    let mut calibrator = Calibrator::new(config, model.num_layers())?;
    let summary = calibrate(model, builder, records, order, &mut calibrator, strict, on_event)?;
    Ok((calibrator.finish(), summary))
}

/// Where and how an adaptation run is written.
struct Export<'a> {
    pruned: &'a Path,
    plan: &'a Plan,
    data: &'a Path,
    options: &'a AdaptOptions,
    out: &'a Path,
    run_dir: &'a Path,
    devices: usize,
}

/// The loss plot, and the pruned checkpoint with the trained tensors replaced, written to `out`.
fn export(e: Export, train: &TrainConfig, report: &TrainReport, skipped: usize, trained: &[(String, burn::tensor::TensorData)]) -> Result<(), PipelineError> {
    interlace_train::plot::loss_curve(&e.run_dir.join("log.jsonl"), &e.run_dir.join("loss.png"))?;
    let settings = serde_json::json!({
        "config": train, "data": e.data, "final_loss": report.final_loss, "steps": report.steps,
        "skipped_records": skipped, "plan": e.plan, "devices": e.devices,
    });
    interlace_train::export::save_trained(e.pruned, e.out, trained, settings, e.options.force)?;
    Ok(())
}

/// [`adapt_dir`] for a text decoder (Llama, Mistral, Qwen2, Qwen3): conversations through the
/// checkpoint's chat template, supervised on the assistant turns; tensor names are the file's.
#[allow(clippy::too_many_arguments)]
fn adapt_text_dir<B: AutodiffBackend>(
    pruned: &Path,
    plan: &Plan,
    data: &Path,
    options: &AdaptOptions,
    out: &Path,
    run_dir: &Path,
    dtype: DType,
    devices: &[B::Device],
    on_step: impl FnMut(&StepLog),
) -> Result<(TrainReport, Vec<Skipped>), PipelineError> {
    if options.tune_vision || options.tune_merger || options.min_pixels.is_some() || options.max_pixels.is_some() {
        return Err(PipelineError::Invalid(format!("{} is a text model: it has no vision tower to tune or images to size", pruned.display())));
    }
    let device = &devices[0];
    let model = LlamaForCausalLM::<B>::from_pretrained(pruned, device, dtype)?;
    let processor = TextProcessor::from_dir(pruned)?;
    let (dataset, skipped) = ConversationDataset::open(data, options.image_root.as_deref(), processor, options.max_length)?;
    let trainable = LayerSet::new(plan.finetune_after_pruning(), model.num_layers())?;
    let mut model = model.cast_layers(&trainable, DType::F32).set_trainable_layers(&trainable)?;
    if options.tune_llm {
        model = model.unfreeze_all();
    }
    let train = with_run_settings(&options.train, plan, data, options, dtype)?;
    let (model, report) = train_data_parallel(model, &dataset, &train, devices, run_dir, options.resume, on_step)?;
    let trained = interlace_train::params::trainable_tensors(&model);
    export(Export { pruned, plan, data, options, out, run_dir, devices: devices.len() }, &train, &report, skipped.len(), &trained)?;
    Ok((report, skipped))
}

/// Refuses to train `plan` on a directory pruned with another one.
///
/// With an `interlace.json` (written by `interlace prune`), its recorded plan must drop the
/// same layers of a stack of the same depth (the fine-tune set may differ: choosing other layers
/// to train on the same pruned model is legitimate). Without one (a checkpoint pruned by other
/// tools), only the layer count can be checked: `config.json` must have the `n_layers - |drop|`
/// layers the plan leaves.
pub fn check_plan_matches(pruned: &Path, plan: &Plan) -> Result<(), PipelineError> {
    // The fields are public: a hand-built plan is checked before its arithmetic is trusted.
    plan.validate()?;
    if let Some(recorded) = interlace_surgery::recorded_plan(pruned)? {
        if recorded.n_layers != plan.n_layers || recorded.drop != plan.drop {
            return Err(PipelineError::PlanMismatch {
                dir: pruned.to_path_buf(),
                recorded_layers: recorded.n_layers,
                recorded_drop: recorded.drop,
                n_layers: plan.n_layers,
                drop: plan.drop.clone(),
            });
        }
    }
    let layers = crate::registry::num_layers(pruned)?;
    let expected = plan.n_layers - plan.drop.len();
    if layers != expected {
        return Err(PipelineError::Invalid(format!(
            "{} has {layers} text layers but the plan leaves {expected} of {}: pass the pruned model (`interlace prune --plan ...`)",
            pruned.display(),
            plan.n_layers
        )));
    }
    Ok(())
}

/// Largest image area `--min-pixels` / `--max-pixels` accept (2^28 pixels, 16 times the
/// largest Qwen3-VL default): a bigger one would resize an image past any memory.
pub const MAX_PIXELS: usize = 1 << 28;

/// The pixel overrides replace the processor's own (validated) limits, so they are checked here.
fn check_pixel_limits(options: &AdaptOptions) -> Result<(), PipelineError> {
    for (flag, value) in [("--min-pixels", options.min_pixels), ("--max-pixels", options.max_pixels)] {
        if value.is_some_and(|v| v == 0 || v > MAX_PIXELS) {
            return Err(PipelineError::Invalid(format!("{flag} {} must be from 1 to {MAX_PIXELS}", value.unwrap_or_default())));
        }
    }
    if let (Some(min), Some(max)) = (options.min_pixels, options.max_pixels) {
        if min > max {
            return Err(PipelineError::Invalid(format!("--min-pixels {min} is larger than --max-pixels {max}")));
        }
    }
    Ok(())
}

/// `train` with the settings outside the trainer that shape the run added to its
/// `run_settings`, so checkpoints record them and a resume with other values is refused.
fn with_run_settings(train: &TrainConfig, plan: &Plan, data: &Path, options: &AdaptOptions, dtype: DType) -> Result<TrainConfig, PipelineError> {
    let mut train = train.clone();
    let settings = [
        ("data_sha256", serde_json::json!(sha256_file(data)?)),
        ("max_length", serde_json::json!(options.max_length)),
        ("min_pixels", serde_json::json!(options.min_pixels)),
        ("max_pixels", serde_json::json!(options.max_pixels)),
        ("tune_vision", serde_json::json!(options.tune_vision)),
        ("tune_merger", serde_json::json!(options.tune_merger)),
        ("tune_llm", serde_json::json!(options.tune_llm)),
        ("plan_drop", serde_json::json!(plan.drop)),
        ("plan_finetune", serde_json::json!(plan.finetune)),
        ("dtype", serde_json::json!(format!("{dtype:?}"))),
    ];
    train.run_settings.extend(settings.into_iter().map(|(k, v)| (k.to_string(), v)));
    Ok(train)
}

/// Lower-case hex SHA-256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String, PipelineError> {
    use sha2::Digest;
    let io = |source| PipelineError::Io { path: path.to_path_buf(), source };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(io)?;
    Ok(format!("{:x}", hasher.finalize()))
}
