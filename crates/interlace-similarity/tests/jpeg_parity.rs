//! Calibration on real JPEG photos against transformers (`fixtures/make_similarity_fixtures.py`,
//! calibration set `calib_jpeg.jsonl`): the official data preparation stores every FineVision
//! image as a JPEG, so this is what calibration sees in practice. The photos cover a plain
//! Pillow-saved photo, a progressive one, grey, an EXIF-rotated one (not transposed, as the official loaders
//! leave it), YCCK and 4:1:1 chroma
//! (`fixtures/decode/`). With the `image` crate's JPEG decoder these similarities were up to
//! 5.9e-4 off; with Pillow's pixels they agree to 2.1e-7.

use interlace_qwen3vl::processor::Qwen3VlProcessor;
use std::path::PathBuf;

use burn::backend::Flex;
use burn::tensor::DType;
use interlace_qwen3vl::Qwen3VlForConditionalGeneration;
use interlace_similarity::{calibrate, sample_order, CalibrationConfig, CalibrationData, Calibrator, ChatInputBuilder};
use serde_json::Value;

type B = Flex<f32>;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

#[test]
fn end_to_end_from_jpeg_photos_matches_transformers_within_1e_5() {
    for name in ["tiny-a", "tiny-b"] {
        let path = fixtures().join("golden/similarity/jpeg").join(format!("{name}.json"));
        let golden: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let dir = fixtures().join("models").join(name);
        let model = Qwen3VlForConditionalGeneration::<B>::from_pretrained(&dir, &Default::default(), DType::F32).unwrap();
        let builder = ChatInputBuilder::new(Qwen3VlProcessor::from_dir(&dir).unwrap());
        let mut data = CalibrationData::open(fixtures().join("calibration/calib_jpeg.jsonl"), None).unwrap();
        let order = sample_order(data.len(), None, 42, None).unwrap();
        let n_layers = golden["n_layers"].as_u64().unwrap() as usize;
        let mut calibrator = Calibrator::new(CalibrationConfig::default(), n_layers).unwrap();
        let summary = calibrate(&model, &builder, &mut data, &order, &mut calibrator, true, &mut |_| {}).unwrap();
        assert_eq!(summary.used, 3);
        let result = calibrator.finish();
        let tokens: u64 = golden["tokens"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap()).sum();
        assert_eq!(result.tokens, tokens, "{name}: same prompts and image grids, same token counts");
        let mut worst = 0.0f64;
        for pack in &result.packs {
            for (i, values) in pack.per_sample.iter().enumerate() {
                let expected = &golden["cosine"][pack.k.to_string()][i.to_string()];
                let expected: Vec<f64> = expected.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
                assert_eq!(values.len(), expected.len());
                for (a, e) in values.iter().zip(&expected) {
                    worst = worst.max((a - e).abs());
                }
            }
        }
        println!("{name}: max |Δcos| end to end on JPEG photos = {worst:.3e}");
        assert!(worst < 1e-5, "{name}: {worst}");
    }
}
