//! Every file of `fixtures/decode/` decodes to exactly the pixels Pillow gives
//! (`Image.open(f).convert("RGB")`), with the EXIF orientation Pillow reads (and, applied, what
//! `ImageOps.exif_transpose` gives), and every file Pillow refuses is refused. Goldens:
//! `fixtures/make_image_fixtures.py`.

use std::path::PathBuf;

use interlace_image::{decode, decode_with_orientation, open, to_rgb8, DecodeError};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/decode")
}

/// Files Pillow decodes and this crate refuses, each with the error it must give instead.
const KNOWN_GAPS: &[&str] = &["ic_lossless"];

fn manifest() -> serde_json::Value {
    let text = std::fs::read_to_string(fixtures().join("manifest.json")).expect("manifest.json");
    serde_json::from_str(&text).expect("manifest is JSON")
}

/// The expected pixels, stored as a lossless RGB PNG.
fn expected(file: &str) -> image::RgbImage {
    image::open(fixtures().join(file)).expect("expected PNG").to_rgb8()
}

#[test]
fn every_fixture_matches_pillow_pixel_for_pixel() {
    let manifest = manifest();
    let cases = manifest["cases"].as_array().expect("cases");
    assert!(cases.len() >= 50, "fixture set is complete");
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let path = fixtures().join(case["file"].as_str().unwrap());
        let decoded = open(&path);
        if KNOWN_GAPS.contains(&name) {
            continue;
        }
        match (case.get("expected").and_then(|e| e.as_str()), decoded) {
            (Some(expected_file), Ok(image)) => {
                let ours = to_rgb8(&image);
                let theirs = expected(expected_file);
                if ours.dimensions() != theirs.dimensions() {
                    failures.push(format!("{name}: size {:?} vs Pillow {:?}", ours.dimensions(), theirs.dimensions()));
                    continue;
                }
                let differing = ours.as_raw().iter().zip(theirs.as_raw()).filter(|(a, b)| a != b).count();
                let max = ours.as_raw().iter().zip(theirs.as_raw()).map(|(a, b)| a.abs_diff(*b)).max().unwrap_or(0);
                if differing != 0 {
                    failures.push(format!("{name}: {differing} samples differ from Pillow (max {max} steps)"));
                }
            }
            (Some(_), Err(e)) => failures.push(format!("{name}: Pillow decodes it, we fail: {e}")),
            (None, Ok(_)) => failures.push(format!("{name}: Pillow refuses it ({}), we decode it", case["error"])),
            (None, Err(_)) => {}
        }
    }
    assert!(failures.is_empty(), "{} of {} cases differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn truncated_jpegs_are_a_clear_error() {
    for name in ["truncated_half", "truncated_progressive", "truncated_no_eoi", "truncated_progressive_no_eoi"] {
        let bytes = std::fs::read(fixtures().join(format!("{name}.jpg"))).unwrap();
        match decode(&bytes) {
            Err(DecodeError::TruncatedJpeg { len }) => assert_eq!(len, bytes.len()),
            other => panic!("{name}: expected TruncatedJpeg, got {other:?}"),
        }
    }
}

#[test]
fn errors_name_the_file() {
    let path = fixtures().join("truncated_half.jpg");
    let message = open(&path).unwrap_err().to_string();
    assert!(message.contains("truncated_half.jpg") && message.contains("truncated JPEG"), "{message}");
    let missing = fixtures().join("no_such_image.jpg");
    let message = open(&missing).unwrap_err().to_string();
    assert!(message.contains("no_such_image.jpg"), "{message}");
}

#[test]
fn garbage_and_empty_input_are_errors_not_panics() {
    for bytes in [&b""[..], b"\xFF\xD8\xFF", b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00", b"not an image at all", &[0u8; 64]] {
        assert!(decode(bytes).is_err(), "{bytes:?}");
    }
    // Every prefix of a real JPEG: an error or an image, never a panic or an abort.
    let bytes = std::fs::read(fixtures().join("pil_progressive.jpg")).unwrap();
    for cut in (0..bytes.len()).step_by(7) {
        let _ = decode(&bytes[..cut]);
    }
}

#[test]
fn a_header_announcing_too_many_pixels_is_refused_before_allocating() {
    // A valid baseline header whose SOF claims 60000 × 60000 pixels (libjpeg itself
    // accepts up to 65500 per side).
    let mut bytes = std::fs::read(fixtures().join("pil_q75_420.jpg")).unwrap();
    let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).expect("SOF0");
    bytes[sof + 5..sof + 9].copy_from_slice(&[0xEA, 0x60, 0xEA, 0x60]);
    match decode(&bytes) {
        Err(DecodeError::TooLarge { width: 60000, height: 60000, .. }) => {}
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

/// The reason this crate exists, kept measurable: the `image` crate's own JPEG decoder does not
/// give Pillow's pixels, so a test that passed with it could not tell.
#[test]
fn the_image_crate_decoder_differs_from_pillow_on_jpegs() {
    let manifest = manifest();
    let mut differing_files = 0;
    let mut jpegs = 0;
    for case in manifest["cases"].as_array().unwrap() {
        let file = case["file"].as_str().unwrap();
        let (Some(expected_file), true) = (case.get("expected").and_then(|e| e.as_str()), file.ends_with(".jpg")) else {
            continue;
        };
        jpegs += 1;
        let Ok(theirs) = image::open(fixtures().join(file)) else { continue };
        let theirs = theirs.to_rgb8();
        let pillow = expected(expected_file);
        if theirs.as_raw() != pillow.as_raw() {
            differing_files += 1;
            let max = theirs.as_raw().iter().zip(pillow.as_raw()).map(|(a, b)| a.abs_diff(*b)).max();
            eprintln!("{file}: image crate differs from Pillow by up to {max:?} steps");
        }
    }
    assert!(jpegs >= 30 && differing_files >= jpegs / 2, "{differing_files} of {jpegs} JPEGs differ with the image crate");
}

#[test]
fn lossless_jpeg_is_refused_with_a_clear_error() {
    let bytes = std::fs::read(fixtures().join("ic_lossless.jpg")).unwrap();
    assert!(matches!(decode(&bytes), Err(DecodeError::LosslessJpeg)));
}

#[test]
fn exif_orientation_is_read_as_pillow_reads_it_and_applies_as_exif_transpose() {
    let manifest = manifest();
    let mut checked = 0;
    for case in manifest["cases"].as_array().unwrap() {
        let Some(transposed) = case.get("transposed").and_then(|t| t.as_str()) else { continue };
        let bytes = std::fs::read(fixtures().join(case["file"].as_str().unwrap())).unwrap();
        let (mut image, orientation) = decode_with_orientation(&bytes).unwrap();
        assert_eq!(u64::from(orientation.to_exif()), case["orientation"].as_u64().unwrap(), "{}", case["name"]);
        image.apply_orientation(orientation);
        assert_eq!(to_rgb8(&image).as_raw(), expected(transposed).as_raw(), "{}", case["name"]);
        checked += 1;
    }
    assert_eq!(checked, 8, "orientations 1-8");
}
