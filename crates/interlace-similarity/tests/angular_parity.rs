//! Angular distance over blocks of n layers (Gromov et al.; PruneMe's last-token variant) and
//! ShortGPT's Block Influence against a transformers computation
//! (`fixtures/make_baseline_fixtures.py`, float64 per token from float32 hidden states), measured
//! in the same single calibration pass as the cosines, end to end from the image files; then the
//! block each angular strategy drops, read back from the files `write_outputs` wrote.

use interlace_qwen3vl::processor::Qwen3VlProcessor;
use std::path::PathBuf;

use burn::tensor::DType;
use interlace_qwen3vl::Qwen3VlForConditionalGeneration;
use interlace_similarity::{
    calibrate, sample_order, select, write_outputs, CalibrationConfig, CalibrationData, Calibrator, ChatInputBuilder, Metric, RunMetadata, SimilarityTables,
    Strategy,
};
use interlace_testkit::Flex;
use serde_json::Value;

type Cpu = Flex<f32>;

/// Largest allowed |ours − transformers| of a per-sample distance or a block-influence mean.
/// Measured (burn-flex, f32 cosines and arccos on the device, 2026-12-01): 8.8e-8 on tiny-a,
/// 1.24e-7 on tiny-b.
const DISTANCE_LIMIT: f64 = 5e-7;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn values(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

#[test]
fn angular_distances_block_influence_and_blocks_equal_the_reference() {
    for name in ["tiny-a", "tiny-b"] {
        let g: Value = serde_json::from_str(&std::fs::read_to_string(fixtures().join("golden/angular").join(format!("{name}.json"))).unwrap()).unwrap();
        let n_layers = g["n_layers"].as_u64().unwrap() as usize;
        let dir = fixtures().join("models").join(name);
        let model = Qwen3VlForConditionalGeneration::<Cpu>::from_pretrained(&dir, &Default::default(), DType::F32).unwrap();
        let builder = ChatInputBuilder::new(Qwen3VlProcessor::from_dir(&dir).unwrap());
        let data_path = fixtures().join("calibration/calib.jsonl");
        let mut data = CalibrationData::open(&data_path, None).unwrap();
        let order = sample_order(data.len(), None, 42, None).unwrap();
        let config = CalibrationConfig { packs: vec![1, 2, 3, 4], ..Default::default() };
        let mut calibrator = Calibrator::new(config, n_layers).unwrap();
        let summary = calibrate(&model, &builder, &mut data, &order, &mut calibrator, true, &mut |_| {}).unwrap();
        let result = calibrator.finish();

        let mut worst = 0.0f64;
        for pack in &result.packs {
            for (i, (angular, last)) in pack.per_sample_angular.iter().zip(&pack.per_sample_last_token_angular).enumerate() {
                for (ours, key) in [(angular, "angular"), (last, "angular_last_token")] {
                    let expected = values(&g[key][pack.k.to_string()][i.to_string()]);
                    assert_eq!(ours.len(), expected.len(), "{name} {key} n={} l={i}", pack.k);
                    worst = ours.iter().zip(&expected).fold(worst, |w, (a, e)| w.max((a - e).abs()));
                }
            }
        }
        // ShortGPT's BI of layer i: 1 − cos(h_i, h_{i+1}) per token, averaged; here the report's
        // per-layer mean over samples.
        let (_, influence) = result.packs[0].summaries.iter().find(|(m, _)| *m == Metric::BlockInfluence).unwrap();
        for (i, summary) in influence.iter().enumerate() {
            let expected = values(&g["block_influence"][i.to_string()]);
            let mean = expected.iter().sum::<f64>() / expected.len() as f64;
            worst = worst.max((summary.mean - mean).abs());
        }
        println!("{name}: max |Δ| of angular distances and block influence = {worst:.3e}");
        assert!(worst <= DISTANCE_LIMIT, "{name}: {worst:.3e} > {DISTANCE_LIMIT:e}");

        // The files the block strategies read, then the block each drops for n = 1..4.
        let out = tempfile::tempdir().unwrap();
        let meta = RunMetadata {
            model: dir.clone(),
            data: data_path.clone(),
            seed: 42,
            sample_portion: None,
            max_samples: None,
            records: 6,
            backend: "cpu/f32".into(),
        };
        write_outputs(out.path(), &result, &summary, &meta).unwrap();
        let tables = SimilarityTables::from_dir(out.path()).unwrap();
        for (strategy, key) in [(Strategy::AngularBlock, "angular"), (Strategy::AngularBlockLastToken, "angular_last_token")] {
            for n in 1..=4usize {
                // floor(L × ratio) = n.
                let ratio = (n as f64 + 0.5) / n_layers as f64;
                let plan = select(&tables, strategy, ratio, 42).unwrap();
                let expected: Vec<usize> = g["blocks"][key][n.to_string()]["drop"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect();
                assert_eq!(plan.drop, expected, "{name} {key} n={n}");
                assert!(plan.finetune.is_empty());
            }
        }
    }
}
