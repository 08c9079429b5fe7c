//! `interlace`: the command-line face of the interlace toolkit.

mod bench;
mod compare;
mod data;
mod eval;
mod eval_text;
mod generate;
mod hub;
mod inspect;
mod prune;
mod run;
mod select;
mod similarity;
mod sleb;
mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Prune and adapt vision-language models with INTERLACE.
#[derive(Debug, Parser)]
#[command(name = "interlace", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure how much each decoder layer changes the hidden state on calibration data (packs 1/2/3).
    Similarity(similarity::SimilarityArgs),
    /// Choose layers to drop, fine-tune and freeze from similarity tables; prints plan.json.
    Select(select::SelectArgs),
    /// Choose layers to drop by calibration loss with each one removed (SLEB, or --one-shot PPL); writes plan.json.
    Sleb(sleb::SlebArgs),
    /// Run every selection strategy on one calibration set: drop sets, agreement and calibration loss of each pruned model.
    Compare(compare::CompareArgs),
    /// Write a copy of a checkpoint without some decoder layers (streaming, byte-identical tensors).
    Prune(prune::PruneArgs),
    /// Train the fine-tune layers of a pruned model on conversations (everything else frozen).
    Train(train::TrainArgs),
    /// similarity → select → prune → train in one command.
    Run(run::RunArgs),
    /// Score a (pruned) model and its base on benchmarks, held-out loss and time to first token.
    Eval(eval::EvalArgs),
    /// Generate a reply to a prompt (with optional images) from a Qwen3-VL model directory.
    Generate(generate::GenerateArgs),
    /// Print the architecture and parameter counts of a model directory (no weights loaded).
    Inspect(inspect::InspectArgs),
    /// Measure forward and training-step throughput of a real-size model with random weights.
    Bench(bench::BenchArgs),
    /// Prepare training data without Python: FineVision and the official domain sets to LLaVA records.
    Data(data::DataArgs),
}

fn main() -> ExitCode {
    // Tensors of tens to hundreds of MB are freed and allocated again on every pass: keep that
    // memory in the process instead of faulting it in again (a training step 1.2-1.3x faster).
    interlace_prune::keep_freed_memory();
    // burn-flex's linear layers through OpenBLAS where the machine has it (1.2-1.4x faster GEMMs
    // on the AVX-512 Xeon of docs/performance.md); without it burn-flex's own matmul stays.
    #[cfg(feature = "flex")]
    if let Err(error) = interlace_prune::use_openblas() {
        // A library the user named that does not load is worth a word; a machine without OpenBLAS is not.
        if std::env::var_os(interlace_prune::OPENBLAS_ENV).is_some_and(|v| v != "off") {
            eprintln!("warning: {error}; using burn-flex's matmul");
        }
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Generate(args) => generate::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Run(args) => run::run(args),
        Command::Train(args) => train::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Prune(args) => prune::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Similarity(args) => similarity::run(args),
        Command::Select(args) => select::run(args),
        Command::Sleb(args) => sleb::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Data(args) => data::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
