//! Processor throughput on CPU: image preprocessing (images/s) with the shipped Qwen3-VL
//! settings, and tokenization (tokens/s) with the real Qwen3 tokenizer.
//!
//! `cargo bench -p interlace-qwen3vl --bench preprocess --profile dev -- --quick`
//!
//! Images are decoded once, outside the timed loop: `preprocess_image` (RGB conversion, smart
//! resize, antialiased bicubic, normalisation, patchify) is what is timed, which is what
//! `scripts/bench_processor_transformers.py` times for transformers on the same images.

use std::path::PathBuf;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{black_box, BenchmarkGroup, Criterion, Throughput};
use image::{DynamicImage, Rgb, RgbImage};
use interlace_qwen3vl::processor::{load_image, preprocess_image, ImageProcessorConfig, Qwen3VlProcessor};

/// The RGB photographs among the fixtures (the others are mode/edge-case probes).
const PHOTOS: [&str; 4] = ["landscape.png", "portrait.png", "proc_landscape_208x368.png", "proc_portrait_330x230.png"];

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A deterministic 1920×1080 image with detail everywhere (so resampling cannot shortcut);
/// `scripts/bench_processor_transformers.py` builds the same pixels with the same formula.
fn synthetic_full_hd() -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(1920, 1080, |x, y| Rgb([((x * 7 + y * 3) % 256) as u8, ((x * y) % 256) as u8, ((x ^ y) & 255) as u8])))
}

/// One benchmark per image, each counted as one element so criterion reports images/s.
fn bench_images(group: &mut BenchmarkGroup<'_, WallTime>, images: &[(String, DynamicImage)]) {
    let cfg = ImageProcessorConfig::qwen3_vl();
    group.throughput(Throughput::Elements(1));
    for (name, img) in images {
        group.bench_function(name.as_str(), |b| b.iter(|| black_box(preprocess_image(img, &cfg).expect("preprocess"))));
    }
}

/// The photos plus the synthetic Full-HD frame, named `file (W×H)`.
fn load_images() -> Vec<(String, DynamicImage)> {
    let dir = repo_root().join("fixtures/images");
    let mut images: Vec<(String, DynamicImage)> = PHOTOS.iter().map(|f| (f.to_string(), load_image(dir.join(f)).expect("decode"))).collect();
    images.push(("synthetic".into(), synthetic_full_hd()));
    images.into_iter().map(|(n, img)| (format!("{n} ({}x{})", img.width(), img.height()), img)).collect()
}

/// Encodes the README (real prose, markdown and code, ~15 kB) with the Qwen3 tokenizer.
fn bench_tokenizer(criterion: &mut Criterion) {
    let processor = Qwen3VlProcessor::from_dir(repo_root().join("fixtures/tokenizer/qwen3")).expect("tokenizer");
    let text = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let tokens = processor.encode(&text).expect("encode").len();
    let mut group = criterion.benchmark_group("tokenize/qwen3");
    group.throughput(Throughput::Elements(tokens as u64));
    group.bench_function(format!("readme/{}-chars", text.len()), |b| b.iter(|| black_box(processor.encode(&text).expect("encode"))));
    group.finish();
}

fn main() {
    // Short defaults so a plain `cargo bench` stays quick on a small CPU; CLI flags override.
    let mut criterion = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).configure_from_args();
    let mut group = criterion.benchmark_group("preprocess_image/qwen3_vl");
    bench_images(&mut group, &load_images());
    group.finish();
    bench_tokenizer(&mut criterion);
    criterion.final_summary();
}
