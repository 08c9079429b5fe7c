//! Reading the datasets straight from the Hugging Face Hub: only the shards a conversion reads
//! are downloaded (into the standard cache, verified, resumable), and the conversion then runs
//! on the cached snapshot directory.

use std::path::{Path, PathBuf};

use interlace_hub::{HubDataset, HubOptions};

use crate::finevision::{is_train_file, plan_finevision, subset_configs, FineVisionOptions, SampleCounts};
use crate::split::{file_rows, is_shard_of};
use crate::DataError;

/// The Hub repository of FineVision.
pub const FINEVISION_REPO: &str = "HuggingFaceM4/FineVision";

/// Downloads from dataset `repo` at `revision` what a FineVision conversion with `portion` and
/// `counts` reads: the dataset card, then, subset by subset, train shards in order until they
/// hold the rows the plan takes (counted from each shard's footer). Returns the snapshot
/// directory, to pass as [`FineVisionOptions::source`] with the same `counts`.
///
/// `counts` is the card's split sizes ([`SampleCounts::Card`]) or the official counts file:
/// footer counts of whole subsets would need every shard of every subset.
///
/// Offline (`HF_HUB_OFFLINE=1`), the Hub's file list is unknown: the snapshot the revision last
/// resolved to is used with the shards already in it.
pub fn fetch_finevision(repo: &str, revision: &str, portion: f64, counts: &SampleCounts, hub: &HubOptions) -> Result<PathBuf, DataError> {
    if *counts == SampleCounts::Footers {
        return Err(DataError::Argument("from the Hub, the counts come from the dataset card or a counts file: footer counts would need every shard".into()));
    }
    let dataset = HubDataset::open(repo, revision, hub)?;
    dataset.fetch("README.md")?;
    let options = FineVisionOptions { counts: counts.clone(), ..FineVisionOptions::new(dataset.snapshot_dir(), PathBuf::new(), portion) };
    let configs = subset_configs(&options.source)?;
    for subset in plan_finevision(&options)? {
        let config = configs.iter().find(|c| c.name == subset.name).expect("the plan is made from these configs");
        let shards = shard_names(&dataset, |name| is_train_file(config, name));
        fetch_until(&dataset, &shards, subset.take)?;
    }
    Ok(dataset.snapshot_dir())
}

/// Downloads from dataset `repo` (for the official sets, [`crate::DomainDataset::repo`]) at `revision`
/// the train shards that hold its first `n_samples` rows (all of them without a limit) and
/// returns the snapshot directory, to pass as [`crate::DomainOptions::source`].
pub fn fetch_domain(repo: &str, revision: &str, n_samples: Option<u64>, hub: &HubOptions) -> Result<PathBuf, DataError> {
    let dataset = HubDataset::open(repo, revision, hub)?;
    let shards = shard_names(&dataset, |name| is_shard_of(name, "train"));
    if shards.is_empty() {
        return Err(DataError::Source {
            path: dataset.snapshot_dir(),
            what: format!("{repo} has no train parquet shards at {revision} (for a dataset kept as a loading script, its parquet conversion is at revision refs/convert/parquet)"),
        });
    }
    fetch_until(&dataset, &shards, n_samples.unwrap_or(u64::MAX))?;
    Ok(dataset.snapshot_dir())
}

/// The names of the files `keep` accepts, in the order the conversion reads them.
fn shard_names(dataset: &HubDataset, keep: impl Fn(&str) -> bool) -> Vec<String> {
    let mut names: Vec<String> = dataset.files().iter().map(|f| f.name.clone()).filter(|n| keep(n)).collect();
    names.sort_by(|a, b| Path::new(a).cmp(Path::new(b)));
    names
}

/// Fetches `shards` in order until they hold `rows` rows.
fn fetch_until(dataset: &HubDataset, shards: &[String], rows: u64) -> Result<(), DataError> {
    let mut have = 0u64;
    for shard in shards {
        if have >= rows {
            break;
        }
        have += file_rows(&dataset.fetch(shard)?)?;
    }
    Ok(())
}
