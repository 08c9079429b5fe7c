//! Parity of the Qwen3-VL processor with transformers 5.x goldens in `fixtures/`:
//! rendered prompt, input_ids, image_grid_thw, pixel_values, the resized uint8 images and the
//! 3-D position ids / rope_delta of the tiny-model goldens.

use std::path::PathBuf;

use interlace_qwen3vl::processor::{
    image::resize_for_model, load_image, rope_index, to_rgb_planar, ChatMessage, ContentPart, ImageSource, ProcessorError, Qwen3VlProcessor,
};
use safetensors::{Dtype, SafeTensors};
use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures"))
}

/// Golden JSON + safetensors cases of a golden subdirectory, sorted by name.
fn cases(sub: &str) -> Vec<(String, Value, Vec<u8>)> {
    let dir = fixtures().join("golden").join(sub);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fixture dir {} missing: {e}", dir.display()))
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "json").then(|| p.file_stem()?.to_str().map(str::to_string))?
        })
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let json: Value = serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{n}.json"))).unwrap()).unwrap();
            let st = std::fs::read(dir.join(format!("{n}.safetensors"))).unwrap();
            (n, json, st)
        })
        .collect()
}

fn tensor_i64(st: &SafeTensors, name: &str) -> Option<(Vec<usize>, Vec<i64>)> {
    let t = st.tensor(name).ok()?;
    assert_eq!(t.dtype(), Dtype::I64, "{name}");
    let v = t.data().chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect();
    Some((t.shape().to_vec(), v))
}

fn tensor_f32(st: &SafeTensors, name: &str) -> Option<(Vec<usize>, Vec<f32>)> {
    let t = st.tensor(name).ok()?;
    assert_eq!(t.dtype(), Dtype::F32, "{name}");
    let v = t.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    Some((t.shape().to_vec(), v))
}

fn tensor_u8(st: &SafeTensors, name: &str) -> Option<(Vec<usize>, Vec<u8>)> {
    let t = st.tensor(name).ok()?;
    assert_eq!(t.dtype(), Dtype::U8, "{name}");
    Some((t.shape().to_vec(), t.data().to_vec()))
}

/// Messages of a golden with image paths resolved against `fixtures/`.
fn messages(json: &Value) -> Vec<ChatMessage> {
    let mut msgs: Vec<ChatMessage> = serde_json::from_value(json["messages"].clone()).unwrap();
    for m in &mut msgs {
        for part in &mut m.content {
            if let ContentPart::Image(ImageSource::Path(p)) = part {
                *p = fixtures().join(&*p);
            }
        }
    }
    msgs
}

fn ids_u32(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn grids(st: &SafeTensors) -> Vec<[usize; 3]> {
    match tensor_i64(st, "image_grid_thw") {
        Some((_, v)) => v.chunks_exact(3).map(|c| [c[0] as usize, c[1] as usize, c[2] as usize]).collect(),
        None => vec![],
    }
}

/// Number of positions where `a` and `b` differ bit for bit, and the largest |a − b|.
fn differences(a: &[f32], b: &[f32]) -> (usize, f32) {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).filter(|(x, y)| x.to_bits() != y.to_bits()).fold((0, 0f32), |(n, max), (x, y)| (n + 1, max.max((x - y).abs())))
}

/// Checks one golden case (processor or model) and returns a report line.
///
/// Every input-side tensor of the golden (`input_ids`, `mm_token_type_ids`, `image_grid_thw`,
/// `pixel_values`, `resized.{k}`, `position_ids`) must be equal, bit for bit, to ours; for
/// processor goldens the test fails if the golden holds a tensor not compared here.
fn check_case(proc: &Qwen3VlProcessor, name: &str, json: &Value, st_bytes: &[u8]) -> String {
    let st = SafeTensors::deserialize(st_bytes).unwrap();
    let mut compared: Vec<String> = Vec::new();
    let msgs = messages(json);
    let agp = json["add_generation_prompt"].as_bool().unwrap();
    let out = proc.process(&msgs, agp).unwrap_or_else(|e| panic!("{name}: {e}"));

    assert_eq!(out.text, json["prompt"].as_str().unwrap(), "{name}: prompt");
    let want_ids = ids_u32(&json["input_ids"]);
    assert_eq!(out.input_ids, want_ids, "{name}: input_ids");
    let (_, st_ids) = tensor_i64(&st, "input_ids").unwrap();
    assert_eq!(st_ids, want_ids.iter().map(|&x| x as i64).collect::<Vec<_>>(), "{name}: json vs safetensors input_ids");
    compared.push("input_ids".into());
    // transformers marks image tokens with 1; interlace finds them by `image_token_id`.
    let (_, mm) = tensor_i64(&st, "mm_token_type_ids").unwrap();
    let image_token = proc.image_token_id();
    assert_eq!(mm, out.input_ids.iter().map(|&id| i64::from(id == image_token)).collect::<Vec<_>>(), "{name}: mm_token_type_ids");
    compared.push("mm_token_type_ids".into());

    let want_grids = grids(&st);
    assert_eq!(out.image_grid_thw, want_grids, "{name}: image_grid_thw");
    compared.push("image_grid_thw".into());

    let mut report = format!("{name}: prompt+ids ok ({} tokens)", out.input_ids.len());
    if let Some((shape, pv)) = tensor_f32(&st, "pixel_values") {
        assert_eq!(shape, vec![out.pixel_rows, proc.image_config().row_len()], "{name}: pixel_values shape");
        let (differ, max) = differences(&out.pixel_values, &pv);
        report += &format!(", pixel_values bit-identical ({} values)", pv.len());
        assert_eq!(differ, 0, "{name}: {differ} of {} pixel_values differ (max-abs {max:e}); they must be bit-identical", pv.len());
        compared.push("pixel_values".into());
    } else {
        assert_eq!(out.pixel_rows, 0, "{name}: no pixel_values in golden");
    }

    // Resized uint8 images, where dumped.
    let images: Vec<&ImageSource> = msgs.iter().flat_map(|m| m.images()).collect();
    for (k, src) in images.iter().enumerate() {
        let Some((shape, want)) = tensor_u8(&st, &format!("resized.{k}")) else {
            continue;
        };
        let ImageSource::Path(p) = src else { continue };
        let rgb = to_rgb_planar(&load_image(p).unwrap());
        let got = resize_for_model(&rgb, proc.image_config()).unwrap();
        assert_eq!(shape, vec![3, got.height, got.width], "{name}: resized.{k} shape");
        let differ = got.data.iter().zip(&want).filter(|(a, b)| a != b).count();
        report += &format!(", resized.{k} identical");
        assert_eq!(differ, 0, "{name}: {differ} of {} uint8 values of resized.{k} differ", want.len());
        compared.push(format!("resized.{k}"));
    }

    // Position ids, where dumped (model goldens).
    if let Some((shape, pos)) = tensor_i64(&st, "position_ids") {
        let s = want_ids.len();
        assert_eq!(shape, vec![3, s], "{name}: position_ids shape");
        let ours = proc.rope_index(&out).unwrap();
        assert_eq!(ours.to_rows(), pos, "{name}: position_ids");
        let golden_based = rope_index(&want_ids, &want_grids, proc.image_token_id(), proc.image_config().merge_size).unwrap();
        assert_eq!(golden_based.to_rows(), pos, "{name}: position_ids (golden inputs)");
        let delta = json["rope_delta"].as_i64().unwrap();
        assert_eq!(ours.rope_delta, delta, "{name}: rope_delta");
        report += &format!(", position_ids ok (rope_delta {delta})");
        compared.push("position_ids".into());
    }
    // Model goldens also hold the model's outputs (compared in tests/model_parity.rs, which
    // checks that every one of their tensors is compared); processor goldens hold nothing else.
    if json.get("model").is_none() {
        let missing: Vec<&str> = st.names().into_iter().filter(|n| !compared.iter().any(|c| c == *n)).collect();
        assert!(missing.is_empty(), "{name}: golden tensors not compared: {missing:?}");
    }
    report
}

#[test]
fn processor_goldens_match_transformers() {
    let mut n = 0;
    for (name, json, st) in cases("processor") {
        let tok_dir = fixtures().join(json["tokenizer"].as_str().unwrap_or("tokenizer/qwen3"));
        let proc = Qwen3VlProcessor::from_dir(&tok_dir).unwrap();
        println!("{}", check_case(&proc, &name, &json, &st));
        n += 1;
    }
    assert!(n >= 1, "no processor goldens found");
}

/// The Qwen2-VL / Qwen2.5-VL processor (`fixtures/make_qwen2vl_fixtures.py`): the real Qwen3
/// tokenizer (the same vocabulary and special tokens), the Qwen2-VL Instruct template (which
/// adds a default system prompt) and the hub's legacy `min_pixels` / `max_pixels` preprocessor
/// config (patch 14, CLIP mean and std).
#[test]
fn qwen2_generation_processor_goldens_match_transformers() {
    let mut n = 0;
    for (name, json, st) in cases("processor-qwen2vl") {
        let dir = copy_fixture_dir(&format!("qwen2vl-{name}"), &["chat_template.jinja", "preprocessor_config.json", "video_preprocessor_config.json"]);
        std::fs::copy(fixtures().join(json["chat_template"].as_str().unwrap()), dir.join("chat_template.jinja")).unwrap();
        std::fs::write(dir.join("preprocessor_config.json"), json["preprocessor_config"].to_string()).unwrap();
        let proc = Qwen3VlProcessor::from_dir(&dir).unwrap();
        assert_eq!(proc.image_config().patch_size, 14);
        println!("{}", check_case(&proc, &name, &json, &st));
        n += 1;
    }
    assert_eq!(n, 5, "the five Qwen2-VL processor goldens");
}

#[test]
fn model_goldens_inputs_and_positions_match_transformers() {
    let mut n = 0;
    for model in ["tiny-a", "tiny-b", "tiny-qwen2vl", "tiny-qwen25vl"] {
        let proc = Qwen3VlProcessor::from_dir(fixtures().join("models").join(model)).unwrap();
        for (name, json, st) in cases(model) {
            println!("{model}/{}", check_case(&proc, &name, &json, &st));
            n += 1;
        }
    }
    assert!(n >= 1, "no model goldens found");
}

/// Copies the real Qwen3 tokenizer fixture dir (without `skip`) to a fresh temp dir.
fn copy_fixture_dir(tag: &str, skip: &[&str]) -> PathBuf {
    let src = fixtures().join("tokenizer/qwen3");
    let dst = std::env::temp_dir().join(format!("interlace-parity-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dst);
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        let fname = p.file_name().unwrap().to_str().unwrap().to_string();
        if p.is_file() && !skip.contains(&fname.as_str()) {
            std::fs::copy(&p, dst.join(&fname)).unwrap();
        }
    }
    dst
}

fn assert_err_names(e: ProcessorError, file: &str) {
    assert!(e.to_string().contains(file), "error should name {file}: {e}");
}

#[test]
fn error_missing_tokenizer() {
    let d = copy_fixture_dir("notok", &["tokenizer.json"]);
    let e = Qwen3VlProcessor::from_dir(&d).unwrap_err();
    assert!(matches!(e, ProcessorError::MissingFile { .. }), "{e:?}");
    assert_err_names(e, "tokenizer.json");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn error_missing_template() {
    let d = copy_fixture_dir("notpl", &["chat_template.jinja", "chat_template.json"]);
    // Also drop the template from tokenizer_config.json if present.
    let cfg_path = d.join("tokenizer_config.json");
    let mut cfg: Value = serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    cfg.as_object_mut().unwrap().remove("chat_template");
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let e = Qwen3VlProcessor::from_dir(&d).unwrap_err();
    assert!(matches!(e, ProcessorError::MissingFile { .. }), "{e:?}");
    assert_err_names(e, "chat_template");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn error_invalid_preprocessor_json() {
    let d = copy_fixture_dir("badpre", &[]);
    std::fs::write(d.join("preprocessor_config.json"), "{\"size\": ").unwrap();
    let e = Qwen3VlProcessor::from_dir(&d).unwrap_err();
    assert!(matches!(e, ProcessorError::InvalidFile { .. }), "{e:?}");
    assert_err_names(e, "preprocessor_config.json");

    std::fs::write(d.join("preprocessor_config.json"), r#"{"size": {"shortest_edge": 65536}, "patch_size": 16}"#).unwrap();
    let e = Qwen3VlProcessor::from_dir(&d).unwrap_err();
    match &e {
        ProcessorError::InvalidConfig { field, .. } => assert_eq!(field, "size"),
        other => panic!("{other:?}"),
    }
    assert_err_names(e, "preprocessor_config.json");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn error_unreadable_image_and_wrong_count() {
    let proc = Qwen3VlProcessor::from_dir(fixtures().join("tokenizer/qwen3")).unwrap();
    let d = copy_fixture_dir("badimg", &[]);
    let bad = d.join("not_an_image.png");
    std::fs::write(&bad, b"definitely not a png").unwrap();
    let msgs = vec![ChatMessage::user(vec![ContentPart::image_path(&bad), ContentPart::text("hi")])];
    let e = proc.process(&msgs, true).unwrap_err();
    assert!(matches!(e, ProcessorError::ImageDecode { .. }), "{e:?}");
    assert_err_names(e, "not_an_image.png");

    let e = proc
        .process_text(
            "<|vision_start|><|image_pad|><|vision_end|>".into(),
            &[ImageSource::Path(fixtures().join("images/tiny.png")), ImageSource::Path(fixtures().join("images/tiny.png"))],
        )
        .unwrap_err();
    assert!(matches!(e, ProcessorError::ImageCountMismatch { placeholders: 1, images: 2 }), "{e:?}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn error_extreme_aspect_ratio() {
    let proc = Qwen3VlProcessor::from_dir(fixtures().join("tokenizer/qwen3")).unwrap();
    let img = image::DynamicImage::new_rgb8(402, 2);
    let msgs = vec![ChatMessage::user(vec![ContentPart::image(img)])];
    let e = proc.process(&msgs, true).unwrap_err();
    assert!(matches!(e, ProcessorError::AspectRatio { .. }), "{e:?}");
}

#[test]
fn decode_round_trip() {
    let proc = Qwen3VlProcessor::from_dir(fixtures().join("tokenizer/qwen3")).unwrap();
    let ids = proc.encode("<|im_start|>user\nHello world<|im_end|>").unwrap();
    assert_eq!(ids[0], 151644);
    assert_eq!(proc.decode(&ids, true).unwrap(), "user\nHello world");
    assert_eq!(proc.decode(&ids, false).unwrap(), "<|im_start|>user\nHello world<|im_end|>");
}
