//! `interlace`: the command-line face of the interlace toolkit.

mod backend;
mod generate;
mod inspect;

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
    /// Generate a reply to a prompt (with optional images) from a Qwen3-VL model directory.
    Generate(generate::GenerateArgs),
    /// Print the architecture and parameter counts of a model directory (no weights loaded).
    Inspect(inspect::InspectArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Generate(args) => generate::run(args),
        Command::Inspect(args) => inspect::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
