//! Benchmark binary for on-disk pruning (not a test: it needs a large local checkpoint).
//!
//! ```text
//! python3 scripts/make_8b_shaped_checkpoint.py /tmp/q8b        # ~17.5 GB of random bf16
//! cargo run -p interlace-surgery --example bench_prune -- /tmp/q8b /tmp/q8b-pruned 3,9,15,21,27,33 [--vision=B,..] [--allow-deepstack] [--no-sync]
//! /usr/bin/time -v target/debug/examples/bench_prune ...          # peak RSS
//! ```
//!
//! Prints wall time, throughput and the report; compare with `time cp -r` of the same directory.

use std::path::PathBuf;
use std::time::Instant;

use interlace_surgery::{prune_checkpoint, DiskPruneOptions, DropSpec, NoProgress};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let sync = !args.iter().any(|a| a == "--no-sync");
    let positional: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let [source, out, drop] = positional.as_slice() else {
        return Err("usage: bench_prune SOURCE OUT DROP[,DROP...] [--vision=B,..] [--allow-deepstack] [--no-sync]".into());
    };
    let drop = drop.split(',').map(str::parse).collect::<Result<Vec<usize>, _>>()?;
    let drop_vision = match args.iter().find_map(|a| a.strip_prefix("--vision=")) {
        Some(list) => list.split(',').map(str::parse).collect::<Result<Vec<usize>, _>>()?,
        None => Vec::new(),
    };
    let allow_deepstack = args.iter().any(|a| a == "--allow-deepstack");
    // surgery detects decoder-only layouts itself; a Qwen-VL family brings its own
    let layout = interlace_qwen3vl::Qwen3VlConfig::from_dir(source).ok().map(|c| c.family.checkpoint_layout());
    let options = DiskPruneOptions { force: true, sync, drop_vision, allow_deepstack, layout };
    let start = Instant::now();
    let report = prune_checkpoint(&PathBuf::from(source), &PathBuf::from(out), &DropSpec::Layers(drop), &options, &mut NoProgress)?;
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "pruned {} -> {} layers, {} -> {} params, {} shards, {:.2} GB copied in {seconds:.2} s ({:.2} GB/s), fsync={sync}",
        report.layers_before,
        report.layers_after,
        report.params_before,
        report.params_after,
        report.shards.len(),
        report.bytes_copied as f64 / 1e9,
        report.bytes_copied as f64 / 1e9 / seconds
    );
    Ok(())
}
