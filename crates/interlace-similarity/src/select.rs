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
    /// Gromov et al., "The Unreasonable Ineffectiveness of the Deeper Layers": drop the block of
    /// `n` consecutive layers `ℓ..ℓ+n` whose input and output are closest, by the angular
    /// distance `arccos(cos(h_ℓ, h_{ℓ+n}))/π` of every token, averaged (`angular{n}.json`);
    /// nothing fine-tuned.
    AngularBlock,
    /// The same with the last token's distance only, as PruneMe computes it
    /// (`angular_last_token{n}.json`).
    AngularBlockLastToken,
}

impl Strategy {
    /// Every strategy.
    pub const ALL: [Strategy; 8] = [
        Strategy::Interlace,
        Strategy::InterlaceOa,
        Strategy::InterlaceTn,
        Strategy::Random,
        Strategy::Consecutive,
        Strategy::LowestInfluence,
        Strategy::AngularBlock,
        Strategy::AngularBlockLastToken,
    ];

    /// The name written into `plan.json` (the official `--pruning_strategy` value).
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Interlace => "interlace",
            Strategy::InterlaceOa => "interlace_oa",
            Strategy::InterlaceTn => "interlace_tn",
            Strategy::Random => "random",
            Strategy::Consecutive => "consecutive",
            Strategy::LowestInfluence => "lowest_influence",
            Strategy::AngularBlock => "angular_block",
            Strategy::AngularBlockLastToken => "angular_block_last_token",
        }
    }

    /// True for the strategies that choose their own fine-tune set (the official five); the
    /// others fine-tune nothing unless a [`FinetuneRule`] says otherwise.
    pub fn defines_finetune(self) -> bool {
        !matches!(self, Strategy::LowestInfluence | Strategy::AngularBlock | Strategy::AngularBlockLastToken)
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
    select_with(tables, strategy, ratio, seed, &SelectOptions::default())
}

/// What every strategy can additionally be told.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectOptions {
    /// Layers never dropped (they may still be fine-tuned or frozen). A candidate whose drop
    /// would hit one is passed over, as if it ranked lower.
    pub protect: Vec<usize>,
    /// The fine-tune set of strategies that do not choose one ([`Strategy::defines_finetune`]
    /// is false); `None` fine-tunes nothing. Refused for the others.
    pub finetune: Option<FinetuneRule>,
}

/// [`select`] with protected layers and an explicit fine-tune rule.
pub fn select_with(tables: &SimilarityTables, strategy: Strategy, ratio: f64, seed: u64, options: &SelectOptions) -> Result<Plan, SimilarityError> {
    // The tables' fields are public: a hand-built NaN or a short pack must not reach the
    // ranking sort or the pair indexing below.
    tables.validate()?;
    let n_layers = tables.n_layers;
    let n_drop = n_drop_for(n_layers, ratio)?;
    let protected = protected_mask(&options.protect, n_layers)?;
    if options.finetune.is_some() && strategy.defines_finetune() {
        return Err(fail(
            strategy,
            "chooses its own fine-tune layers; --finetune applies to lowest_influence, angular_block[_last_token], sleb and manual plans".into(),
        ));
    }
    let need = |k: usize| tables.pack(k).ok_or_else(|| fail(strategy, format!("needs pack{k}.json")));
    let free = |layers: Vec<usize>| layers.into_iter().filter(|&i| !protected[i]);
    let (drop, finetune) = match strategy {
        Strategy::Interlace => interlace(need(1)?, need(3)?, tables.pack(2), n_drop, &protected),
        Strategy::InterlaceOa => interlace_oa(need(3)?, n_drop, &protected),
        Strategy::InterlaceTn => interlace_tn(need(1)?, n_drop, &protected),
        Strategy::Random => random(n_layers, n_drop, seed, &protected),
        Strategy::Consecutive => consecutive(need(1)?, n_layers, n_drop, &protected)?,
        Strategy::LowestInfluence => (free(ranking(need(1)?)).take(n_drop).collect(), Vec::new()),
        Strategy::AngularBlock | Strategy::AngularBlockLastToken => (angular_block(need_angular(tables, strategy, n_drop)?, n_drop, &protected), Vec::new()),
    };
    if drop.len() < n_drop {
        return Err(fail(strategy, shortfall(strategy, tables, n_drop, drop.len(), &options.protect)));
    }
    let finetune = match options.finetune {
        Some(rule) => rule.finetune(n_layers, &drop),
        None => finetune,
    };
    finish(n_layers, strategy.name(), ratio, drop, finetune)
}

/// `mask[i]` is true for a protected layer; indices are checked against the stack.
fn protected_mask(protect: &[usize], n_layers: usize) -> Result<Vec<bool>, SimilarityError> {
    let set = interlace_core::LayerSet::new(protect.iter().copied(), n_layers)?;
    Ok((0..n_layers).map(|i| set.contains(i)).collect())
}

/// The angular-distance table a block of `n` layers needs.
fn need_angular(tables: &SimilarityTables, strategy: Strategy, n: usize) -> Result<&[f64], SimilarityError> {
    let (map, name) = match strategy {
        Strategy::AngularBlockLastToken => (&tables.angular_last_token, "angular_last_token"),
        _ => (&tables.angular, "angular"),
    };
    map.get(&n).map(Vec::as_slice).ok_or_else(|| {
        fail(
            strategy,
            format!("a block of {n} layers needs {name}{n}.json, which `interlace similarity` writes for every pack it measures (--packs: include {n})"),
        )
    })
}

/// The block `ℓ..ℓ+n` with the smallest distance and no protected layer; the lowest `ℓ` on a
/// tie. Empty when every block holds a protected layer.
fn angular_block(distances: &[f64], n: usize, protected: &[bool]) -> Vec<usize> {
    let key = |x: f64| if x == 0.0 { 0.0 } else { x };
    let starts = (0..distances.len()).filter(|&start| !protected[start..start + n].iter().any(|&p| p));
    starts.min_by(|&a, &b| key(distances[a]).total_cmp(&key(distances[b])).then(a.cmp(&b))).map(|start| (start..start + n).collect()).unwrap_or_default()
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

fn shortfall(strategy: Strategy, tables: &SimilarityTables, n_drop: usize, found: usize, protect: &[usize]) -> String {
    let mut base = format!("only {found} of the {n_drop} layers to drop could be chosen from {} layers", tables.n_layers);
    if !protect.is_empty() {
        base += &format!(" with layers {protect:?} protected");
    }
    match strategy {
        Strategy::Interlace if tables.pack2.is_none() => format!("{base}: not enough disjoint pack-3 triplets and no pack2.json for the pack-2 fallback"),
        Strategy::Interlace => format!("{base}: not enough disjoint pack-3 triplets, and the pack-2 fallback ran out of disjoint pairs"),
        Strategy::InterlaceOa => format!("{base}: not enough disjoint pack-3 triplets (interlace_oa has no fallback)"),
        Strategy::Random => format!("{base}: random needs 2 × {n_drop} distinct layers (drop + fine-tune)"),
        Strategy::AngularBlock | Strategy::AngularBlockLastToken => format!("{base}: every block of {n_drop} consecutive layers holds a protected layer"),
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
/// (drop, finetune) pair, passed over when the drop is protected. Stops at `n_drop` drops.
fn greedy(
    means: &[f64],
    width: usize,
    n_drop: usize,
    assigned: &mut [bool],
    protected: &[bool],
    out: &mut (Vec<usize>, Vec<usize>),
    take: impl Fn(usize) -> (usize, usize),
) {
    for i in ranking(means) {
        if out.0.len() == n_drop {
            return;
        }
        let span = i..i + width;
        if span.clone().any(|j| assigned.get(j).copied().unwrap_or(true)) {
            continue;
        }
        let (d, f) = take(i);
        if protected[d] {
            continue;
        }
        span.for_each(|j| assigned[j] = true);
        out.0.push(d);
        out.1.push(f);
    }
}

fn interlace(pack1: &[f64], pack3: &[f64], pack2: Option<&[f64]>, n_drop: usize, protected: &[bool]) -> (Vec<usize>, Vec<usize>) {
    let mut assigned = vec![false; pack1.len() + 1];
    let mut out = (Vec::new(), Vec::new());
    greedy(pack3, 3, n_drop, &mut assigned, protected, &mut out, |i| split_pair(pack1, i));
    if let Some(pack2) = pack2 {
        greedy(pack2, 2, n_drop, &mut assigned, protected, &mut out, |i| split_pair(pack1, i));
    }
    out
}

fn interlace_oa(pack3: &[f64], n_drop: usize, protected: &[bool]) -> (Vec<usize>, Vec<usize>) {
    let mut assigned = vec![false; pack3.len() + 3];
    let mut out = (Vec::new(), Vec::new());
    greedy(pack3, 3, n_drop, &mut assigned, protected, &mut out, |i| (i, i + 1));
    out
}

fn interlace_tn(pack1: &[f64], n_drop: usize, protected: &[bool]) -> (Vec<usize>, Vec<usize>) {
    let mut assigned = vec![false; pack1.len() + 1];
    let mut out = (Vec::new(), Vec::new());
    greedy(pack1, 2, n_drop, &mut assigned, protected, &mut out, |i| (i, i + 1));
    out
}

/// `random.seed(seed); drop = sample(range(L), n); finetune = sample(rest, n)`; with protected
/// layers, `drop = sample(unprotected, n)`.
fn random(n_layers: usize, n_drop: usize, seed: u64, protected: &[bool]) -> (Vec<usize>, Vec<usize>) {
    let mut rng = PyRandom::new(seed);
    let candidates: Vec<usize> = (0..n_layers).filter(|&i| !protected[i]).collect();
    let drop: Vec<usize> = rng.sample(candidates.len(), n_drop).map(|picks| picks.into_iter().map(|j| candidates[j]).collect()).unwrap_or_default();
    let rest: Vec<usize> = (0..n_layers).filter(|i| !drop.contains(i)).collect();
    let finetune: Vec<usize> = rng.sample(rest.len(), n_drop).map(|picks| picks.into_iter().map(|j| rest[j]).collect()).unwrap_or_default();
    if finetune.len() < n_drop {
        return (Vec::new(), Vec::new());
    }
    (drop, finetune)
}

/// Official: the block starts at the most redundant layer. With protected layers: at the most
/// redundant layer whose drop block holds none.
fn consecutive(pack1: &[f64], n_layers: usize, n_drop: usize, protected: &[bool]) -> Result<(Vec<usize>, Vec<usize>), SimilarityError> {
    let clear = |first: usize| !(first..(first + n_drop).min(n_layers)).any(|j| protected[j]);
    let Some(first) = ranking(pack1).into_iter().find(|&first| clear(first)) else {
        return Ok((Vec::new(), Vec::new()));
    };
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

/// Which layers a plan fine-tunes when its strategy does not say (loss-based rules, a manual
/// drop list): `--finetune next|none|all-remaining`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FinetuneRule {
    /// For every dropped layer, the first kept layer after it (the kept layer before it when
    /// it is at the end of the stack): the layer that now receives its input, as INTERLACE
    /// fine-tunes a neighbour.
    #[default]
    Next,
    /// Nothing is fine-tuned (training-free pruning, as SLEB and ShortGPT publish it).
    None,
    /// Every kept layer is fine-tuned.
    AllRemaining,
}

impl FinetuneRule {
    /// Parses `next`, `none` or `all-remaining` (`_` accepted for `-`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name.replace('_', "-").as_str() {
            "next" => Some(FinetuneRule::Next),
            "none" => Some(FinetuneRule::None),
            "all-remaining" => Some(FinetuneRule::AllRemaining),
            _ => None,
        }
    }

    /// The fine-tune set for dropping `drop` (validated) from `n_layers` layers.
    pub fn finetune(self, n_layers: usize, drop: &[usize]) -> Vec<usize> {
        let kept = |i: &usize| !drop.contains(i);
        match self {
            FinetuneRule::None => Vec::new(),
            FinetuneRule::AllRemaining => (0..n_layers).filter(kept).collect(),
            FinetuneRule::Next => {
                let mut layers: Vec<usize> = drop.iter().filter_map(|&d| (d + 1..n_layers).find(kept).or_else(|| (0..d).rev().find(kept))).collect();
                layers.sort_unstable();
                layers.dedup();
                layers
            }
        }
    }
}

/// The plan that drops `drop` (from any strategy, e.g. [`crate::select_by_loss`]) and
/// fine-tunes what `finetune` says; `ratio` is the requested fraction.
pub fn plan_for_drop(n_layers: usize, strategy: &str, ratio: f64, drop: &[usize], finetune: FinetuneRule) -> Result<Plan, SimilarityError> {
    let set = interlace_core::LayerSet::for_removal(drop.iter().copied(), n_layers)?;
    finish(n_layers, strategy, ratio, set.as_slice().to_vec(), finetune.finetune(n_layers, set.as_slice()))
}
