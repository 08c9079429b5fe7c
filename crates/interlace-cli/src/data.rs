//! `interlace data`: the official data preparation (`scripts/prepare_dataset.sh`,
//! `dataset_prep_domain.py`) without Python.

use std::error::Error;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use interlace_prune::data::{
    fetch_domain, fetch_finevision, prepare_domain, prepare_finevision, DomainDataset, DomainOptions, FineVisionOptions, SampleCounts, FINEVISION_REPO,
};
use interlace_prune::hub::{HubOptions, ModelSource};

/// Arguments of `interlace data`.
#[derive(Debug, Args)]
pub struct DataArgs {
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(Debug, Subcommand)]
enum DataCommand {
    /// A portion of every FineVision subset as LLaVA records and JPEGs (official dataset_prep.py).
    Finevision(FineVisionArgs),
    /// TextVQA, ChartQA or ScienceQA as LLaVA records (official dataset_prep_domain.py).
    Domain(DomainArgs),
    /// A text column of parquet files as {"text": ...} JSONL (calibration data for text LLMs).
    Text(TextArgs),
}

/// Arguments of `interlace data text`.
#[derive(Debug, Args)]
struct TextArgs {
    /// A parquet file, or a folder whose .parquet files are read in path order.
    #[arg(long)]
    from: PathBuf,
    /// The string column holding the documents.
    #[arg(long, default_value = "text")]
    column: String,
    /// Write at most N documents.
    #[arg(long)]
    limit: Option<usize>,
    /// The JSONL file to write.
    #[arg(long)]
    out: PathBuf,
}

fn run_text(args: TextArgs) -> Result<(), Box<dyn Error>> {
    let files = interlace_prune::data::parquet_files(&args.from)?;
    let report = interlace_prune::data::parquet_documents(&files, &args.column, args.limit, &args.out)?;
    eprintln!("wrote {} documents from {} file(s) to {} ({} null or empty skipped)", report.written, files.len(), args.out.display(), report.skipped);
    Ok(())
}

/// Arguments of `interlace data finevision`.
#[derive(Debug, Args)]
struct FineVisionArgs {
    /// Fraction of each subset to take from its start: int(count × portion) rows, at least 1.
    #[arg(long, default_value_t = 0.01)]
    portion: f64,
    /// Output directory: FineVision_{p}.jsonl, FineVision_{p}.json and the images in FineVision_{p}/.
    #[arg(long)]
    out: PathBuf,
    /// A local copy of the dataset (its README.md, whose configs give the subsets and their files, and the parquet shards) or a Hub id
    /// (owner/name[@revision]); default HuggingFaceM4/FineVision from the Hub, fetching only the shards read.
    #[arg(long = "from")]
    source: Option<String>,
    /// The official per-subset counts (dataset_sample_counts.json). Without it: from a local copy, the row counts of the
    /// parquet files; from the Hub, the train split sizes in the dataset card.
    #[arg(long)]
    sample_counts: Option<PathBuf>,
    /// Accepted for the official command line's sake; the official script takes rows from the start, so nothing is random.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// Arguments of `interlace data domain`.
#[derive(Debug, Args)]
struct DomainArgs {
    /// textvqa, chartqa or scienceqa.
    #[arg(long)]
    dataset: String,
    /// A local copy of the dataset repository or a Hub id (owner/name[@revision]); default the official
    /// repository (facebook/textvqa, HuggingFaceM4/ChartQA, derek-thomas/ScienceQA) from the Hub.
    #[arg(long = "from")]
    source: Option<String>,
    /// Output directory: {Name}_train.json and images/.
    #[arg(long)]
    out: PathBuf,
    /// Read at most this many rows of the train split.
    #[arg(long)]
    n_samples: Option<u64>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// Runs `interlace data`.
pub fn run(args: DataArgs) -> Result<(), Box<dyn Error>> {
    match args.command {
        DataCommand::Finevision(args) => finevision(args),
        DataCommand::Domain(args) => domain(args),
        DataCommand::Text(args) => run_text(args),
    }
}

/// Where `--from` points: a local directory, or a Hub dataset at a revision.
fn source(arg: Option<&str>, default_repo: &str) -> Result<ModelSource, Box<dyn Error>> {
    match arg {
        None => Ok(ModelSource::Hub { repo: default_repo.into(), revision: "main".into() }),
        Some(arg) if Path::new(arg).is_dir() => Ok(ModelSource::Local(arg.into())),
        Some(arg) => Ok(ModelSource::parse(arg).map_err(|_| format!("--from {arg}: neither a directory nor a Hub dataset id (owner/name[@revision])"))?),
    }
}

fn finevision(args: FineVisionArgs) -> Result<(), Box<dyn Error>> {
    let _ = args.seed;
    let (dir, counts) = match source(args.source.as_deref(), FINEVISION_REPO)? {
        ModelSource::Local(dir) => (dir, args.sample_counts.clone().map_or(SampleCounts::Footers, SampleCounts::File)),
        ModelSource::Hub { repo, revision } => {
            let counts = args.sample_counts.clone().map_or(SampleCounts::Card, SampleCounts::File);
            eprintln!("fetching the shards to read from {repo}@{revision}");
            let dir = fetch_finevision(&repo, &revision, args.portion, &counts, &HubOptions::from_env())?;
            (dir, counts)
        }
    };
    let options = FineVisionOptions { counts, progress: !args.quiet, ..FineVisionOptions::new(dir, args.out, args.portion) };
    let report = prepare_finevision(&options)?;
    if report.resumed {
        eprintln!("resumed an interrupted run");
    }
    for subset in &report.subsets {
        if subset.missing {
            eprintln!("{}: no train shards in the source, skipped", subset.name);
        } else if subset.undecodable > 0 {
            eprintln!("{}: {} rows skipped for an undecodable image", subset.name, subset.undecodable);
        }
    }
    let skipped: u64 = report.subsets.iter().map(|s| s.too_many_images).sum();
    println!(
        "{} records from {} subsets ({skipped} rows with more than 3 images skipped): {} and {}, images in {}",
        report.records(),
        report.subsets.iter().filter(|s| !s.missing).count(),
        report.jsonl.display(),
        report.json.display(),
        report.images_dir.display()
    );
    Ok(())
}

fn domain(args: DomainArgs) -> Result<(), Box<dyn Error>> {
    let dataset = DomainDataset::parse(&args.dataset)?;
    let dir = match source(args.source.as_deref(), dataset.repo())? {
        ModelSource::Local(dir) => dir,
        ModelSource::Hub { repo, revision } => {
            eprintln!("fetching the train shards to read from {repo}@{revision}");
            fetch_domain(&repo, &revision, args.n_samples, &HubOptions::from_env())?
        }
    };
    let options = DomainOptions { dataset, source: dir, out: args.out, n_samples: args.n_samples, progress: !args.quiet };
    let report = prepare_domain(&options)?;
    println!(
        "{} records from {} rows ({} without an image skipped): {}, images in {}",
        report.records,
        report.rows,
        report.without_image,
        report.json.display(),
        report.images_dir.display()
    );
    Ok(())
}
