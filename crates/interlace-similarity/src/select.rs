//! Layer selection: which layers to drop, fine-tune and freeze.
//!
//! Semantics of the official `src/train/train_interlace.py` (`select_layers_*`), re-implemented:
//!
//! - rankings sort layers by mean similarity, highest first; ties keep the lower layer first
//!   (Python's stable `sorted(..., reverse=True)` over keys in numeric order);
//! - within a pair `(i, i+1)` the layer with the higher pack-1 similarity is dropped and the other
//!   fine-tuned; on equal similarity `i` is dropped (`if s[i] < s[i+1]: drop i+1 else drop i`);
//! - a candidate is taken only when none of its layers is already assigned;
//! - `n_drop = int(L × ratio)`.
//!
//! Where the official code would silently produce an inconsistent plan (too few candidates, a
//! consecutive block past the last layer), we return an error that says why.

use interlace_core::Plan;

use crate::pyrandom::PyRandom;
use crate::tables::SimilarityTables;
use crate::SimilarityError;

/// A selection strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Pack-3 triplets `(i, i+1, i+2)` by similarity: drop the more redundant of `i`, `i+1`
    /// (pack 1), fine-tune the other, keep `i+2` frozen as an anchor; pairs from pack 2 if the
    /// triplets run out.
    Interlace,
    /// Ordered assignment: in each pack-3 triplet drop `i`, fine-tune `i+1` (no pack-2 fallback,
    /// as in the official code).
    InterlaceOa,
    /// Train-next: by pack-1 similarity, drop `i` and fine-tune `i+1`.
    InterlaceTn,
    /// Seeded random drop set and fine-tune set (CPython `random.sample`, seed 42 by default).
    Random,
    /// Drop the block of `n` layers starting at the most redundant layer (pack 1), fine-tune the
    /// next `n`.
    Consecutive,
    /// ShortGPT: drop the `n` layers with the highest pack-1 similarity; nothing fine-tuned.
    LowestInfluence,
}

impl Strategy {
    /// Every strategy.
    pub const ALL: [Strategy; 6] =
        [Strategy::Interlace, Strategy::InterlaceOa, Strategy::InterlaceTn, Strategy::Random, Strategy::Consecutive, Strategy::LowestInfluence];

    /// The name written into `plan.json` (the official `--pruning_strategy` value).
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Interlace => "interlace",
            Strategy::InterlaceOa => "interlace_oa",
            Strategy::InterlaceTn => "interlace_tn",
            Strategy::Random => "random",
            Strategy::Consecutive => "consecutive",
            Strategy::LowestInfluence => "lowest_influence",
        }
    }

    /// Parses a name (`-` and `_` are interchangeable).
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.replace('-', "_");
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// `int(L × ratio)` after checking `0 < ratio < 1` and that at least one layer goes.
pub fn n_drop_for(n_layers: usize, ratio: f64) -> Result<usize, SimilarityError> {
    if !(ratio > 0.0 && ratio < 1.0) {
        return Err(SimilarityError::InvalidOption { option: "--ratio", reason: format!("{ratio} is not in (0, 1)") });
    }
    let n = (n_layers as f64 * ratio) as usize;
    if n == 0 {
        return Err(SimilarityError::InvalidOption {
            option: "--ratio",
            reason: format!("{ratio} × {n_layers} layers drops no layer (int({}) = 0)", n_layers as f64 * ratio),
        });
    }
    Ok(n)
}

/// The plan `strategy` gives for dropping `int(L × ratio)` layers.
pub fn select(tables: &SimilarityTables, strategy: Strategy, ratio: f64, seed: u64) -> Result<Plan, SimilarityError> {
    // The tables' fields are public: a hand-built NaN or a short pack must not reach the
    // ranking sort or the pair indexing below.
    tables.validate()?;
    let n_layers = tables.n_layers;
    let n_drop = n_drop_for(n_layers, ratio)?;
    let need = |k: usize| tables.pack(k).ok_or_else(|| fail(strategy, format!("needs pack{k}.json")));
    let (drop, finetune) = match strategy {
        Strategy::Interlace => interlace(need(1)?, need(3)?, tables.pack(2), n_drop),
        Strategy::InterlaceOa => interlace_oa(need(3)?, n_drop),
        Strategy::InterlaceTn => interlace_tn(need(1)?, n_drop),
        Strategy::Random => random(n_layers, n_drop, seed),
        Strategy::Consecutive => consecutive(need(1)?, n_layers, n_drop)?,
        Strategy::LowestInfluence => (ranking(need(1)?).into_iter().take(n_drop).collect(), Vec::new()),
    };
    if drop.len() < n_drop {
        return Err(fail(strategy, shortfall(strategy, tables, n_drop, drop.len())));
    }
    finish(n_layers, strategy.name(), ratio, drop, finetune)
}

/// A plan dropping exactly `drop` (strategy `manual`, nothing fine-tuned,
/// `ratio = |drop| / L`).
pub fn manual_plan(n_layers: usize, drop: &[usize]) -> Result<Plan, SimilarityError> {
    let set = interlace_core::LayerSet::for_removal(drop.iter().copied(), n_layers)?;
    if set.is_empty() {
        return Err(SimilarityError::InvalidOption { option: "--drop", reason: "lists no layer".into() });
    }
    finish(n_layers, "manual", set.len() as f64 / n_layers as f64, set.as_slice().to_vec(), Vec::new())
}

fn finish(n_layers: usize, strategy: &str, ratio: f64, drop: Vec<usize>, finetune: Vec<usize>) -> Result<Plan, SimilarityError> {
    if n_layers > interlace_core::MAX_LAYERS {
        return Err(SimilarityError::InvalidOption {
            option: "layer count",
            reason: format!("{n_layers} layers; at most {} are accepted", interlace_core::MAX_LAYERS),
        });
    }
    let freeze = (0..n_layers).filter(|i| !drop.contains(i) && !finetune.contains(i)).collect();
    Ok(Plan::new(n_layers, strategy, ratio, drop, finetune, freeze)?)
}

fn fail(strategy: Strategy, reason: String) -> SimilarityError {
    SimilarityError::Selection { strategy: strategy.name().to_string(), reason }
}

fn shortfall(strategy: Strategy, tables: &SimilarityTables, n_drop: usize, found: usize) -> String {
    let base = format!("only {found} of the {n_drop} layers to drop could be chosen from {} layers", tables.n_layers);
    match strategy {
        Strategy::Interlace if tables.pack2.is_none() => format!("{base}: not enough disjoint pack-3 triplets and no pack2.json for the pack-2 fallback"),
        Strategy::Interlace => format!("{base}: not enough disjoint pack-3 triplets, and the pack-2 fallback ran out of disjoint pairs"),
        Strategy::InterlaceOa => format!("{base}: not enough disjoint pack-3 triplets (interlace_oa has no fallback)"),
        Strategy::Random => format!("{base}: random needs 2 × {n_drop} distinct layers (drop + fine-tune)"),
        _ => format!("{base}: not enough disjoint candidates"),
    }
}

/// Layer indices by similarity, highest first; equal values keep the lower index first.
fn ranking(means: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..means.len()).collect();
    // Stable sort, like Python's sorted(reverse=True). `select` has checked the values are
    // finite; total_cmp keeps the order total (no panic) even if one were not, and with -0.0
    // read as 0.0 it orders finite values exactly as Python compares them.
    let key = |x: f64| if x == 0.0 { 0.0 } else { x };
    order.sort_by(|&a, &b| key(means[b]).total_cmp(&key(means[a])));
    order
}

/// `(drop, finetune)` for neighbours `i`, `i+1`: the more similar (pack 1) goes, `i` on a tie.
fn split_pair(pack1: &[f64], i: usize) -> (usize, usize) {
    if pack1[i] < pack1[i + 1] {
        (i + 1, i)
    } else {
        (i, i + 1)
    }
}

/// Greedy walk over `ranking(means)`: a candidate `i` covers `i..i+width`; `take` turns it into a
/// (drop, finetune) pair. Stops at `n_drop` drops.
fn greedy(means: &[f64], width: usize, n_drop: usize, assigned: &mut [bool], out: &mut (Vec<usize>, Vec<usize>), take: impl Fn(usize) -> (usize, usize)) {
    for i in ranking(means) {
        if out.0.len() == n_drop {
            return;
        }
        let span = i..i + width;
        if span.clone().any(|j| assigned.get(j).copied().unwrap_or(true)) {
            continue;
        }
        span.for_each(|j| assigned[j] = true);
        let (d, f) = take(i);
        out.0.push(d);
        out.1.push(f);
    }
}

fn interlace(pack1: &[f64], pack3: &[f64], pack2: Option<&[f64]>, n_drop: usize) -> (Vec<usize>, Vec<usize>) {
    let mut assigned = vec![false; pack1.len() + 1];
    let mut out = (Vec::new(), Vec::new());
    greedy(pack3, 3, n_drop, &mut assigned, &mut out, |i| split_pair(pack1, i));
    if let Some(pack2) = pack2 {
        greedy(pack2, 2, n_drop, &mut assigned, &mut out, |i| split_pair(pack1, i));
    }
    out
}

fn interlace_oa(pack3: &[f64], n_drop: usize) -> (Vec<usize>, Vec<usize>) {
    let mut assigned = vec![false; pack3.len() + 3];
    let mut out = (Vec::new(), Vec::new());
    greedy(pack3, 3, n_drop, &mut assigned, &mut out, |i| (i, i + 1));
    out
}

fn interlace_tn(pack1: &[f64], n_drop: usize) -> (Vec<usize>, Vec<usize>) {
    let mut assigned = vec![false; pack1.len() + 1];
    let mut out = (Vec::new(), Vec::new());
    greedy(pack1, 2, n_drop, &mut assigned, &mut out, |i| (i, i + 1));
    out
}

/// `random.seed(seed); drop = sample(range(L), n); finetune = sample(rest, n)`.
fn random(n_layers: usize, n_drop: usize, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut rng = PyRandom::new(seed);
    let drop = rng.sample(n_layers, n_drop).unwrap_or_default();
    let rest: Vec<usize> = (0..n_layers).filter(|i| !drop.contains(i)).collect();
    let finetune: Vec<usize> = rng.sample(rest.len(), n_drop).map(|picks| picks.into_iter().map(|j| rest[j]).collect()).unwrap_or_default();
    if finetune.len() < n_drop {
        return (Vec::new(), Vec::new());
    }
    (drop, finetune)
}

fn consecutive(pack1: &[f64], n_layers: usize, n_drop: usize) -> Result<(Vec<usize>, Vec<usize>), SimilarityError> {
    let first = ranking(pack1)[0];
    if first + 2 * n_drop > n_layers {
        return Err(fail(
            Strategy::Consecutive,
            format!(
                "the most redundant layer is {first}: dropping {first}..{} and fine-tuning {}..{} runs past the last layer {}",
                first + n_drop - 1,
                first + n_drop,
                first + 2 * n_drop - 1,
                n_layers - 1
            ),
        ));
    }
    Ok(((first..first + n_drop).collect(), (first + n_drop..first + 2 * n_drop).collect()))
}
