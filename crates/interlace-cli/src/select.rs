//! `interlace select`: an INTERLACE pruning plan from similarity tables.

use std::error::Error;
use std::path::PathBuf;

use clap::Args;
use interlace_similarity::{manual_plan, select, SimilarityTables, Strategy};

/// Arguments of `interlace select`.
#[derive(Debug, Args)]
pub struct SelectArgs {
    /// Directory with pack1.json, pack2.json, pack3.json (and report.json) from `interlace similarity`
    /// or the official get_hidden_states.py.
    #[arg(long)]
    sims: PathBuf,
    /// Fraction of layers to drop, in (0, 1): int(L × ratio) layers go.
    #[arg(long, required_unless_present = "drop")]
    ratio: Option<f64>,
    /// interlace, interlace_oa, interlace_tn, random, consecutive or lowest-influence.
    #[arg(long, default_value = "interlace", value_parser = parse_strategy)]
    strategy: Strategy,
    /// Seed of the `random` strategy (CPython-compatible; the official default is 42).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Drop exactly these layers (comma-separated) instead of running a strategy.
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["ratio", "strategy"])]
    drop: Option<Vec<usize>>,
    /// Also write the plan to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn parse_strategy(name: &str) -> Result<Strategy, String> {
    Strategy::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Strategy::ALL.iter().map(|s| s.name()).collect();
        format!("unknown strategy `{name}`; choose from {}", names.join(", "))
    })
}

/// Prints the plan as JSON on stdout (and writes it to `--out`).
pub fn run(args: SelectArgs) -> Result<(), Box<dyn Error>> {
    let tables = SimilarityTables::from_dir(&args.sims)?;
    let plan = match (&args.drop, args.ratio) {
        (Some(drop), _) => manual_plan(tables.n_layers, drop)?,
        (None, Some(ratio)) => select(&tables, args.strategy, ratio, args.seed)?,
        (None, None) => return Err("either --ratio or --drop is required".into()),
    };
    let json = serde_json::to_string_pretty(&plan)?;
    if let Some(path) = &args.out {
        std::fs::write(path, format!("{json}\n")).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    println!("{json}");
    Ok(())
}
