//! The Qwen3-VL processor: chat template rendering, tokenization, image preprocessing and
//! 3-D M-RoPE position ids, at parity with transformers' `Qwen3VLProcessor` (5.x, torchvision
//! CPU image backend). Plain CPU Rust; no tensors.
//!
//! ```no_run
//! use interlace_qwen3vl::processor::{ChatMessage, ContentPart, Qwen3VlProcessor};
//! # fn main() -> Result<(), interlace_qwen3vl::processor::ProcessorError> {
//! let proc = Qwen3VlProcessor::from_dir("models/Qwen3-VL-2B-Instruct")?;
//! let msgs = vec![ChatMessage::user(vec![
//!     ContentPart::image_path("cat.png"),
//!     ContentPart::text("Describe this image."),
//! ])];
//! let input = proc.process(&msgs, true)?;
//! let pos = proc.rope_index(&input)?;
//! # let _ = pos; Ok(()) }
//! ```

pub mod config;
pub mod error;
pub mod image;
pub mod positions;

use std::path::{Path, PathBuf};

use tokenizers::Tokenizer;

pub use self::config::ImageProcessorConfig;
pub use self::error::{ProcessorError, Result};
pub use self::image::{load_image, preprocess_image, preprocess_rgb, resize_bicubic_aa, smart_resize, to_rgb_planar, ProcessedImage, RgbPlanar};
pub use self::positions::{rope_index, RopePositions};
pub use interlace_chat::{ChatMessage, ChatTemplate, ContentPart, ImageSource, RenderOptions, Role};

/// The image placeholder token the template emits once per image.
pub const IMAGE_TOKEN: &str = "<|image_pad|>";
/// Token opening a vision segment.
pub const VISION_START_TOKEN: &str = "<|vision_start|>";
/// Token closing a vision segment.
pub const VISION_END_TOKEN: &str = "<|vision_end|>";

/// Model inputs for one prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessedInput {
    /// The rendered prompt, before image-token expansion (one `<|image_pad|>` per image).
    pub text: String,
    /// Token ids of the expanded prompt (no special tokens added by the tokenizer).
    pub input_ids: Vec<u32>,
    /// All images' rows concatenated: `pixel_rows × (3·Tp·P·P)` values, row-major.
    pub pixel_values: Vec<f32>,
    /// Number of rows in `pixel_values` (`Σ t·h·w`).
    pub pixel_rows: usize,
    /// `(t, h, w)` per image, in prompt order.
    pub image_grid_thw: Vec<[usize; 3]>,
}

/// Tokenizer + chat template + image processor of a Qwen3-VL model directory.
#[derive(Debug)]
pub struct Qwen3VlProcessor {
    tokenizer: Tokenizer,
    tokenizer_path: PathBuf,
    template: ChatTemplate,
    image_config: ImageProcessorConfig,
    image_token_id: u32,
    vision_start_id: u32,
    vision_end_id: u32,
}

impl Qwen3VlProcessor {
    /// Loads `tokenizer.json`, the chat template (see [`ChatTemplate::from_dir`]) and the image
    /// processor settings (see [`ImageProcessorConfig::from_dir`]) from a model directory, and
    /// looks up `<|image_pad|>`, `<|vision_start|>`, `<|vision_end|>` in the tokenizer.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let tokenizer_path = dir.join("tokenizer.json");
        if !tokenizer_path.is_file() {
            return Err(ProcessorError::MissingFile { path: tokenizer_path, reason: "the tokenizer (tokenizer.json) is required".into() });
        }
        let tokenizer = Tokenizer::from_file(&tokenizer_path).map_err(|e| ProcessorError::Tokenizer { path: tokenizer_path.clone(), reason: e.to_string() })?;
        let template = ChatTemplate::from_dir(dir)?;
        let image_config = ImageProcessorConfig::from_dir(dir)?;
        Self::from_parts(tokenizer, tokenizer_path, template, image_config)
    }

    /// Assembles a processor from loaded parts; `tokenizer_path` is only used in messages.
    pub fn from_parts(tokenizer: Tokenizer, tokenizer_path: impl Into<PathBuf>, template: ChatTemplate, image_config: ImageProcessorConfig) -> Result<Self> {
        let tokenizer_path = tokenizer_path.into();
        let id =
            |tok: &str| tokenizer.token_to_id(tok).ok_or_else(|| ProcessorError::MissingSpecialToken { path: tokenizer_path.clone(), token: tok.to_string() });
        let image_token_id = id(IMAGE_TOKEN)?;
        let vision_start_id = id(VISION_START_TOKEN)?;
        let vision_end_id = id(VISION_END_TOKEN)?;
        Ok(Self { tokenizer, tokenizer_path, template, image_config, image_token_id, vision_start_id, vision_end_id })
    }

    /// The underlying Hugging Face tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The chat template.
    pub fn chat_template(&self) -> &ChatTemplate {
        &self.template
    }

    /// The image processor settings, to change (e.g. the pixel budget used for training).
    pub fn image_config_mut(&mut self) -> &mut ImageProcessorConfig {
        &mut self.image_config
    }

    /// The image preprocessing settings.
    pub fn image_config(&self) -> &ImageProcessorConfig {
        &self.image_config
    }

    /// Id of `<|image_pad|>`.
    pub fn image_token_id(&self) -> u32 {
        self.image_token_id
    }

    /// Id of `<|vision_start|>`.
    pub fn vision_start_id(&self) -> u32 {
        self.vision_start_id
    }

    /// Id of `<|vision_end|>`.
    pub fn vision_end_id(&self) -> u32 {
        self.vision_end_id
    }

    /// Renders the chat template (no image expansion).
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        Ok(self.template.render(messages, add_generation_prompt)?)
    }

    /// Renders, loads and preprocesses the images in message order, expands each
    /// `<|image_pad|>` to `t·h·w / merge²` copies and tokenizes, like transformers'
    /// `processor.apply_chat_template(messages, tokenize=True, return_dict=True)`.
    pub fn process(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<ProcessedInput> {
        self.process_with(messages, RenderOptions { add_generation_prompt, add_vision_id: false })
    }

    /// [`process`](Self::process) with explicit render options.
    pub fn process_with(&self, messages: &[ChatMessage], opts: RenderOptions) -> Result<ProcessedInput> {
        let text = self.template.render_with(messages, opts)?;
        let images: Vec<ImageSource> = messages.iter().flat_map(|m| m.images().cloned()).collect();
        self.process_text(text, &images)
    }

    /// For callers that render the prompt themselves: `text` must contain one `<|image_pad|>`
    /// per image (in order); expands and tokenizes it and preprocesses the images.
    pub fn process_text(&self, text: String, images: &[ImageSource]) -> Result<ProcessedInput> {
        let placeholders = text.matches(IMAGE_TOKEN).count();
        if placeholders != images.len() {
            return Err(ProcessorError::ImageCountMismatch { placeholders, images: images.len() });
        }
        let processed = self.process_images(images)?;
        let merge = self.image_config.merge_size;
        // Sequential replacement of the k-th placeholder (as transformers does through a
        // temporary placeholder, so inserted tokens are never re-counted).
        let mut expanded = String::with_capacity(text.len());
        for (k, piece) in text.split(IMAGE_TOKEN).enumerate() {
            if k > 0 {
                let n = processed[k - 1].num_tokens(merge);
                expanded.reserve(n * IMAGE_TOKEN.len());
                for _ in 0..n {
                    expanded.push_str(IMAGE_TOKEN);
                }
            }
            expanded.push_str(piece);
        }
        let input_ids = self.encode(&expanded)?;
        let pixel_rows = processed.iter().map(ProcessedImage::rows).sum();
        let mut pixel_values = Vec::with_capacity(pixel_rows * self.image_config.row_len());
        let mut image_grid_thw = Vec::with_capacity(processed.len());
        for p in processed {
            pixel_values.extend_from_slice(&p.pixel_values);
            image_grid_thw.push(p.grid_thw);
        }
        Ok(ProcessedInput { text, input_ids, pixel_values, pixel_rows, image_grid_thw })
    }

    /// Loads (paths: decoded as the official pipeline does, EXIF orientation not applied) and
    /// preprocesses images independently.
    pub fn process_images(&self, images: &[ImageSource]) -> Result<Vec<ProcessedImage>> {
        images
            .iter()
            .map(|src| {
                let rgb = match src {
                    ImageSource::Path(p) => to_rgb_planar(&load_image(p)?),
                    ImageSource::Memory(img) => to_rgb_planar(img),
                };
                preprocess_rgb(&rgb, &self.image_config)
            })
            .collect()
    }

    /// Tokenizes text without adding special tokens (the Qwen tokenizer adds none anyway).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.tokenizer.encode(text, false).map_err(|e| ProcessorError::Tokenizer { path: self.tokenizer_path.clone(), reason: e.to_string() })?;
        Ok(enc.get_ids().to_vec())
    }

    /// Decodes token ids, optionally skipping special tokens.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        self.tokenizer.decode(ids, skip_special_tokens).map_err(|e| ProcessorError::Tokenizer { path: self.tokenizer_path.clone(), reason: e.to_string() })
    }

    /// 3-D M-RoPE positions of a processed prompt (spec §5).
    pub fn rope_index(&self, input: &ProcessedInput) -> Result<RopePositions> {
        rope_index(&input.input_ids, &input.image_grid_thw, self.image_token_id, self.image_config.merge_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::image::{DynamicImage, Rgb, RgbImage};

    /// A word-level tokenizer with the Qwen special tokens, for tests without fixtures.
    pub(crate) const MINI_TOKENIZER: &str = r#"{
      "version": "1.0", "truncation": null, "padding": null,
      "added_tokens": [
        {"id": 10, "content": "<|im_start|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
        {"id": 11, "content": "<|im_end|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
        {"id": 12, "content": "<|vision_start|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
        {"id": 13, "content": "<|vision_end|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
        {"id": 14, "content": "<|image_pad|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
      ],
      "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null, "decoder": null,
      "model": {"type": "WordLevel", "vocab": {"[UNK]": 0, "user": 1, "assistant": 2, "hi": 3,
        "<|im_start|>": 10, "<|im_end|>": 11, "<|vision_start|>": 12, "<|vision_end|>": 13, "<|image_pad|>": 14},
        "unk_token": "[UNK]"}
    }"#;

    const MINI_TEMPLATE: &str = "{%- for message in messages %}{{- '<|im_start|>' + message.role + ' ' }}{%- for c in message.content %}{%- if c.type == 'image' %}<|vision_start|><|image_pad|><|vision_end|>{%- else %}{{- c.text }}{%- endif %}{%- endfor %}{{- '<|im_end|> ' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant ' }}{%- endif %}";

    pub(crate) fn mini_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("interlace-proc-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("tokenizer.json"), MINI_TOKENIZER).unwrap();
        std::fs::write(dir.join("chat_template.jinja"), MINI_TEMPLATE).unwrap();
        std::fs::write(
            dir.join("preprocessor_config.json"),
            r#"{"size": {"shortest_edge": 65536, "longest_edge": 16777216}, "patch_size": 16,
                "temporal_patch_size": 2, "merge_size": 2, "image_mean": [0.5,0.5,0.5], "image_std": [0.5,0.5,0.5]}"#,
        )
        .unwrap();
        dir
    }

    #[test]
    fn end_to_end_with_mini_tokenizer() {
        let dir = mini_dir("e2e");
        let p = Qwen3VlProcessor::from_dir(&dir).unwrap();
        assert_eq!(p.image_token_id(), 14);
        let img = RgbImage::from_fn(100, 100, |x, y| Rgb([x as u8, y as u8, 0]));
        let msgs = vec![ChatMessage::user(vec![ContentPart::image(DynamicImage::ImageRgb8(img)), ContentPart::text("hi")])];
        let out = p.process(&msgs, true).unwrap();
        assert_eq!(out.text, "<|im_start|>user <|vision_start|><|image_pad|><|vision_end|>hi<|im_end|> <|im_start|>assistant ");
        assert_eq!(out.image_grid_thw, vec![[1, 16, 16]]);
        assert_eq!(out.pixel_rows, 256);
        assert_eq!(out.pixel_values.len(), 256 * 1536);
        let pads = out.input_ids.iter().filter(|&&t| t == 14).count();
        assert_eq!(pads, 64);
        assert_eq!(&out.input_ids[..3], &[10, 1, 12]);
        let pos = p.rope_index(&out).unwrap();
        assert_eq!(pos.len(), out.input_ids.len());
        // 3 text tokens, the image advances by 8, then 5 text tokens: max position 15.
        assert_eq!(out.input_ids.len(), 72);
        assert_eq!(pos.rope_delta, 16 - 72);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn errors_name_files() {
        let dir = mini_dir("errs");
        let msgs = vec![ChatMessage::user(vec![ContentPart::image_path(dir.join("missing.png")), ContentPart::text("hi")])];
        let p = Qwen3VlProcessor::from_dir(&dir).unwrap();
        let e = p.process(&msgs, false).unwrap_err();
        assert!(matches!(e, ProcessorError::ImageDecode { .. }), "{e:?}");
        assert!(e.to_string().contains("missing.png"));

        let e = p.process_text("<|image_pad|><|image_pad|>".into(), &[]).unwrap_err();
        assert!(matches!(e, ProcessorError::ImageCountMismatch { placeholders: 2, images: 0 }));

        std::fs::write(dir.join("preprocessor_config.json"), "{not json").unwrap();
        let e = Qwen3VlProcessor::from_dir(&dir).unwrap_err();
        assert!(matches!(e, ProcessorError::InvalidFile { .. }), "{e:?}");
        assert!(e.to_string().contains("preprocessor_config.json"));

        std::fs::remove_file(dir.join("chat_template.jinja")).unwrap();
        let e = Qwen3VlProcessor::from_dir(&dir).unwrap_err();
        assert!(matches!(e, ProcessorError::MissingFile { .. }), "{e:?}");
        assert!(e.to_string().contains("chat_template"));

        std::fs::remove_file(dir.join("tokenizer.json")).unwrap();
        let e = Qwen3VlProcessor::from_dir(&dir).unwrap_err();
        assert!(matches!(e, ProcessorError::MissingFile { .. }), "{e:?}");
        assert!(e.to_string().contains("tokenizer.json"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
