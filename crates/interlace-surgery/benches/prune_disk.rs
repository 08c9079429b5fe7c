//! On-disk surgery throughput (bytes/s) of `prune_checkpoint` on a small sharded bf16 Qwen3-VL
//! checkpoint generated in a temporary directory, next to a plain copy of the same files (what
//! `cp -r` does) as the floor to compare with.
//!
//! `cargo bench -p interlace-surgery --bench prune_disk --profile dev -- --quick`
//!
//! The checkpoint (~70 MB, 8 text layers, 4 shards) has the 8B layout of
//! `scripts/make_8b_shaped_checkpoint.py` at small widths, random bytes for weights (content does
//! not matter to a byte copy) and the non-weight files of `fixtures/models/tiny-b`. Pruning runs
//! with `sync: false` so both benchmarks measure the copy path, not the disk's flush latency;
//! `examples/bench_prune.rs` is the full-size, fsync'd measurement.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use interlace_surgery::{prune_checkpoint, DiskPruneOptions, DropSpec, NoProgress};
use serde_json::{json, Value};

/// Text widths: hidden, MLP, query heads, KV heads, head dim, vocabulary, layers.
const H: usize = 512;
const I: usize = 1536;
const NQ: usize = 8;
const NKV: usize = 2;
const D: usize = 64;
const V: usize = 8192;
const L: usize = 8;
/// Vision widths: hidden, MLP, depth (tiny-b's, so its deepstack taps [2, 0, 1] stay valid),
/// learned positions, patch size.
const C: usize = 128;
const IV: usize = 256;
const DEPTH: usize = 3;
const POS: usize = 64;
const P: usize = 16;
/// Shards are filled up to this size, like the hub's 4.9 GB limit at this scale.
const SHARD_LIMIT: usize = 20 << 20;
/// Layers dropped by the benchmark (a quarter of the stack).
const DROP: [usize; 2] = [2, 5];

/// Every tensor name and shape, sorted by name as the hub orders shards.
fn tensors() -> BTreeMap<String, Vec<usize>> {
    let mut t = BTreeMap::new();
    let mut add = |name: String, shape: &[usize]| t.insert(name, shape.to_vec());
    add("lm_head.weight".into(), &[V, H]);
    add("model.language_model.embed_tokens.weight".into(), &[V, H]);
    add("model.language_model.norm.weight".into(), &[H]);
    for i in 0..L {
        let p = format!("model.language_model.layers.{i}.");
        for (n, shape) in [
            ("input_layernorm.weight", vec![H]),
            ("post_attention_layernorm.weight", vec![H]),
            ("self_attn.q_proj.weight", vec![NQ * D, H]),
            ("self_attn.k_proj.weight", vec![NKV * D, H]),
            ("self_attn.v_proj.weight", vec![NKV * D, H]),
            ("self_attn.o_proj.weight", vec![H, NQ * D]),
            ("self_attn.q_norm.weight", vec![D]),
            ("self_attn.k_norm.weight", vec![D]),
            ("mlp.gate_proj.weight", vec![I, H]),
            ("mlp.up_proj.weight", vec![I, H]),
            ("mlp.down_proj.weight", vec![H, I]),
        ] {
            add(p.clone() + n, &shape);
        }
    }
    let v = "model.visual.";
    add(format!("{v}patch_embed.proj.weight"), &[C, 3, 2, P, P]);
    add(format!("{v}patch_embed.proj.bias"), &[C]);
    add(format!("{v}pos_embed.weight"), &[POS, C]);
    for b in 0..DEPTH {
        let p = format!("{v}blocks.{b}.");
        for (n, shape) in [
            ("norm1.weight", vec![C]),
            ("norm1.bias", vec![C]),
            ("norm2.weight", vec![C]),
            ("norm2.bias", vec![C]),
            ("attn.qkv.weight", vec![3 * C, C]),
            ("attn.qkv.bias", vec![3 * C]),
            ("attn.proj.weight", vec![C, C]),
            ("attn.proj.bias", vec![C]),
            ("mlp.linear_fc1.weight", vec![IV, C]),
            ("mlp.linear_fc1.bias", vec![IV]),
            ("mlp.linear_fc2.weight", vec![C, IV]),
            ("mlp.linear_fc2.bias", vec![C]),
        ] {
            add(p.clone() + n, &shape);
        }
    }
    let mergers = std::iter::once((format!("{v}merger."), C)).chain((0..3).map(|j| (format!("{v}deepstack_merger_list.{j}."), 4 * C)));
    for (p, norm) in mergers {
        for (n, shape) in [
            ("norm.weight", vec![norm]),
            ("norm.bias", vec![norm]),
            ("linear_fc1.weight", vec![4 * C, 4 * C]),
            ("linear_fc1.bias", vec![4 * C]),
            ("linear_fc2.weight", vec![H, 4 * C]),
            ("linear_fc2.bias", vec![H]),
        ] {
            add(p.clone() + n, &shape);
        }
    }
    t
}

/// Bytes of a bf16 tensor.
fn nbytes(shape: &[usize]) -> usize {
    2 * shape.iter().product::<usize>()
}

/// 1 MiB of xorshift noise, repeated as tensor data: incompressible enough, cheap to make.
fn noise_block() -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    (0..1 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Writes one safetensors shard: 8-byte header length, space-padded JSON header, then data.
fn write_shard(path: &Path, items: &[(&String, &Vec<usize>)], block: &[u8]) {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), json!({"format": "pt"}));
    let mut offset = 0;
    for (name, shape) in items {
        header.insert(name.to_string(), json!({"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + nbytes(shape)]}));
        offset += nbytes(shape);
    }
    let mut text = Value::Object(header).to_string().into_bytes();
    text.resize(text.len().next_multiple_of(8), b' ');
    let mut file = BufWriter::new(File::create(path).expect("create shard"));
    file.write_all(&(text.len() as u64).to_le_bytes()).and_then(|_| file.write_all(&text)).expect("write header");
    while offset > 0 {
        let n = offset.min(block.len());
        file.write_all(&block[..n]).expect("write data");
        offset -= n;
    }
    file.flush().expect("flush shard");
}

/// Groups tensors into shards of at most `SHARD_LIMIT` bytes, in name order.
fn shard_groups(t: &BTreeMap<String, Vec<usize>>) -> Vec<Vec<(&String, &Vec<usize>)>> {
    let mut groups = vec![Vec::new()];
    let mut size = 0;
    for item in t {
        if size + nbytes(item.1) > SHARD_LIMIT && !groups.last().unwrap().is_empty() {
            groups.push(Vec::new());
            size = 0;
        }
        size += nbytes(item.1);
        groups.last_mut().unwrap().push(item);
    }
    groups
}

/// tiny-b's `config.json` with the widths above, so config and tensors agree.
fn config(template: &Path) -> Value {
    let mut c: Value = serde_json::from_str(&fs::read_to_string(template).expect("read config")).expect("parse config");
    let text = &mut c["text_config"];
    for (k, v) in [
        ("hidden_size", H),
        ("intermediate_size", I),
        ("num_attention_heads", NQ),
        ("num_key_value_heads", NKV),
        ("head_dim", D),
        ("vocab_size", V),
        ("num_hidden_layers", L),
    ] {
        text[k] = json!(v);
    }
    text["rope_parameters"]["mrope_section"] = json!([12, 10, 10]); // sums to head_dim / 2
    let vision = &mut c["vision_config"];
    for (k, v) in [("hidden_size", C), ("intermediate_size", IV), ("depth", DEPTH), ("num_position_embeddings", POS), ("out_hidden_size", H), ("num_heads", 2)]
    {
        vision[k] = json!(v);
    }
    c
}

/// Writes the checkpoint into `dir`: shards, index, patched config, tiny-b's other files.
fn write_checkpoint(dir: &Path) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/models/tiny-b");
    let (t, block) = (tensors(), noise_block());
    let groups = shard_groups(&t);
    let mut weight_map = serde_json::Map::new();
    for (k, items) in groups.iter().enumerate() {
        let file = format!("model-{:05}-of-{:05}.safetensors", k + 1, groups.len());
        write_shard(&dir.join(&file), items, &block);
        weight_map.extend(items.iter().map(|(name, _)| (name.to_string(), json!(file))));
    }
    let total: usize = t.values().map(|s| nbytes(s)).sum();
    let index = json!({"metadata": {"total_size": total}, "weight_map": weight_map});
    fs::write(dir.join("model.safetensors.index.json"), serde_json::to_string_pretty(&index).unwrap()).expect("write index");
    fs::write(dir.join("config.json"), serde_json::to_string_pretty(&config(&fixture.join("config.json"))).unwrap()).expect("write config");
    for entry in fs::read_dir(&fixture).expect("read tiny-b") {
        let name = entry.expect("entry").file_name();
        let name = name.to_string_lossy();
        if !name.ends_with(".safetensors") && name != "model.safetensors.index.json" && name != "config.json" {
            fs::copy(fixture.join(&*name), dir.join(&*name)).expect("copy fixture file");
        }
    }
}

/// The baseline: every file of `src` copied into `dst` with `std::fs::copy`; returns bytes.
fn copy_dir(src: &Path, dst: &Path) -> u64 {
    fs::create_dir_all(dst).expect("create copy dir");
    fs::read_dir(src)
        .expect("read source")
        .map(|e| {
            let e = e.expect("entry");
            fs::copy(e.path(), dst.join(e.file_name())).expect("copy file")
        })
        .sum()
}

/// One on-disk prune into `out` (replaced each time), without fsync; returns tensor bytes copied.
fn prune(src: &Path, out: &Path) -> u64 {
    let options = DiskPruneOptions { sync: false, force: true, layout: Some(Box::new(interlace_qwen3vl::layout::Qwen3VlLayout)), ..Default::default() };
    prune_checkpoint(src, out, &DropSpec::Layers(DROP.to_vec()), &options, &mut NoProgress).expect("prune").bytes_copied
}

fn main() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (src, pruned, copied) = (tmp.path().join("ckpt"), tmp.path().join("pruned"), tmp.path().join("copy"));
    fs::create_dir(&src).expect("create source dir");
    write_checkpoint(&src);
    // One untimed run of each gives the byte counts criterion divides by.
    let (prune_bytes, copy_bytes) = (prune(&src, &pruned), copy_dir(&src, &copied));
    println!("checkpoint: {copy_bytes} bytes in {}; prune drops layers {DROP:?} and copies {prune_bytes} tensor bytes", src.display());

    // Short defaults (each iteration writes ~70 MB); CLI flags override.
    let mut criterion =
        Criterion::default().sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5)).configure_from_args();
    let mut group = criterion.benchmark_group("disk/bf16-70MB");
    group.throughput(Throughput::Bytes(prune_bytes));
    group.bench_function(format!("prune_checkpoint/drop-{}-of-{L}", DROP.len()), |b| b.iter(|| prune(&src, &pruned)));
    group.throughput(Throughput::Bytes(copy_bytes));
    group.bench_function("fs-copy-all-files", |b| b.iter(|| copy_dir(&src, &copied)));
    group.finish();
    criterion.final_summary();
}
