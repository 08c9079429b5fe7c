//! `interlace select`: a pruning plan from similarity tables (INTERLACE, the official baselines,
//! ShortGPT's block influence, Gromov et al.'s angular distance over a block).

use std::error::Error;
use std::path::PathBuf;

use clap::Args;
use interlace_similarity::{manual_plan, plan_for_drop, select_with, FinetuneRule, SelectOptions, SimilarityTables, Strategy};

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
    /// interlace, interlace_oa, interlace_tn, random, consecutive, lowest-influence,
    /// angular-block or angular-block-last-token (a block of floor(L × ratio) layers needs
    /// angular{n}.json: `interlace similarity --packs 1,2,3,n`).
    #[arg(long, default_value = "interlace", value_parser = parse_strategy)]
    strategy: Strategy,
    /// Layers never dropped, comma-separated.
    #[arg(long, value_delimiter = ',')]
    protect: Vec<usize>,
    /// Fine-tune set of the strategies that choose none (lowest-influence, angular-block*, and
    /// --drop): next (the kept layer after each dropped one), none (default) or all-remaining.
    #[arg(long, value_parser = parse_finetune)]
    finetune: Option<FinetuneRule>,
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

fn parse_finetune(name: &str) -> Result<FinetuneRule, String> {
    FinetuneRule::from_name(name).ok_or_else(|| format!("unknown fine-tune rule `{name}`; choose next, none or all-remaining"))
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
        (Some(drop), _) => {
            if let Some(&layer) = drop.iter().find(|l| args.protect.contains(l)) {
                return Err(format!("--drop {layer}: the layer is protected").into());
            }
            let manual = manual_plan(tables.n_layers, drop)?;
            plan_for_drop(manual.n_layers, "manual", manual.ratio, &manual.drop, args.finetune.unwrap_or(FinetuneRule::None))?
        }
        (None, Some(ratio)) => {
            let options = SelectOptions { protect: args.protect.clone(), finetune: args.finetune };
            select_with(&tables, args.strategy, ratio, args.seed, &options)?
        }
        (None, None) => return Err("either --ratio or --drop is required".into()),
    };
    let json = serde_json::to_string_pretty(&plan)?;
    if let Some(path) = &args.out {
        std::fs::write(path, format!("{json}\n")).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    println!("{json}");
    Ok(())
}
