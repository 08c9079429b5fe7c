//! `interlace prune`: write a copy of a checkpoint without some decoder layers.

use std::error::Error;
use std::ops::ControlFlow;
use std::path::PathBuf;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use interlace_core::Plan;
use interlace_surgery::{prune_checkpoint, DiskPruneOptions, DiskPruneReport, DropSpec, Progress};

/// Arguments of `interlace prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Model to prune (never modified): a Hugging Face directory or a Hub id (owner/name[@revision]).
    #[arg(long)]
    model: PathBuf,
    /// Text layers to drop, comma-separated (e.g. 3,9,15).
    #[arg(long, value_delimiter = ',', conflicts_with = "plan", required_unless_present = "plan")]
    drop: Vec<usize>,
    /// A plan.json whose `drop` list is applied (its finetune/freeze lists are recorded).
    #[arg(long)]
    plan: Option<PathBuf>,
    /// Output directory (created; must not exist or be empty unless --force).
    #[arg(long)]
    out: PathBuf,
    /// Vision blocks to drop, comma-separated.
    #[arg(long, value_delimiter = ',')]
    drop_vision: Vec<usize>,
    /// Allow dropping a vision block read by a deepstack tap (the tap and its merger are removed).
    #[arg(long)]
    allow_deepstack: bool,
    /// Replace an existing non-empty output directory.
    #[arg(long)]
    force: bool,
    /// Do not show a progress bar.
    #[arg(long)]
    quiet: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `interlace prune`.
pub fn run(mut args: PruneArgs) -> Result<(), Box<dyn Error>> {
    args.model = crate::hub::model_dir(&args.model)?;
    let drop = match &args.plan {
        Some(path) => DropSpec::Plan(Plan::from_file(path)?),
        None => DropSpec::Layers(args.drop.clone()),
    };
    let options = DiskPruneOptions {
        drop_vision: args.drop_vision.clone(),
        allow_deepstack: args.allow_deepstack,
        force: args.force,
        ..interlace_prune::registry::prune_options(&args.model)?
    };
    let mut bar = Bar::new(args.quiet || args.json);
    let report = prune_checkpoint(&args.model, &args.out, &drop, &options, &mut bar)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

fn print_report(report: &DiskPruneReport) {
    let pct = |after: usize, before: usize| 100.0 * after as f64 / before.max(1) as f64;
    println!("wrote {}", report.out.display());
    println!("text layers: {} -> {}", report.layers_before, report.layers_after);
    if let Some(v) = &report.vision {
        println!("vision blocks: {} -> {} (deepstack taps {:?} -> {:?})", v.depth_before, v.depth_after, v.taps_before, v.taps_after);
    }
    println!("parameters:  {} -> {} ({:.1}%)", report.params_before, report.params_after, pct(report.params_after, report.params_before));
    println!("shards: {} ({} bytes of tensors copied)", report.shards.len(), report.bytes_copied);
    if !report.skipped_files.is_empty() {
        println!("not copied (weights in other formats / hidden): {}", report.skipped_files.join(", "));
    }
}

/// An indicatif progress bar over the tensor bytes.
struct Bar {
    bar: ProgressBar,
}

impl Bar {
    fn new(hidden: bool) -> Self {
        let bar = if hidden { ProgressBar::hidden() } else { ProgressBar::new(0) };
        let style =
            ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}").unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        Self { bar }
    }
}

impl Progress for Bar {
    fn start(&mut self, total_bytes: u64) {
        self.bar.set_length(total_bytes);
    }

    fn advance(&mut self, bytes: u64) -> ControlFlow<()> {
        self.bar.inc(bytes);
        ControlFlow::Continue(())
    }

    fn finish(&mut self) {
        self.bar.finish_and_clear();
    }
}
