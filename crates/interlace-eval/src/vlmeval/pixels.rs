//! The image sizes VLMEvalKit feeds Qwen3-VL.
//!
//! VLMEvalKit's Qwen3-VL wrapper resizes images with `qwen_vl_utils.process_vision_info` and
//! then calls the processor with `do_resize=False`, so the model's `preprocessor_config.json`
//! bounds (Qwen3-VL: at least 65536 pixels) do not apply. `qwen_vl_utils` bounds the pixel count
//! to between 4 and 16384 merged patches (`4·f²` and `16384·f²` for the resize factor
//! `f = patch_size · merge_size`, 32 for Qwen3-VL), and the wrapper raises the lower bound to
//! 102400 pixels for OCRBench. interlace applies the same bounds; the resize itself stays the
//! processor's (torch's anti-aliased bicubic, where `qwen_vl_utils` uses Pillow's bicubic), which
//! can differ by a grey level here and there.

use super::Dataset;

/// `(min_pixels, max_pixels)` for images of `dataset` with resize factor `factor`.
pub fn pixel_bounds(dataset: Option<Dataset>, factor: usize) -> (usize, usize) {
    let min = if dataset == Some(Dataset::OcrBench) { 10 * 10 * 32 * 32 } else { 4 * factor * factor };
    (min, 16384 * factor * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qwen3_vl_bounds() {
        assert_eq!(pixel_bounds(Some(Dataset::Pope), 32), (4096, 16_777_216));
        assert_eq!(pixel_bounds(Some(Dataset::OcrBench), 32), (102_400, 16_777_216));
        assert_eq!(pixel_bounds(None, 28), (3136, 12_845_056));
    }
}
