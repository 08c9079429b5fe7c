//! Typed errors of the Qwen3-VL processor.

use std::path::PathBuf;

/// Result alias used throughout the processor.
pub type Result<T> = std::result::Result<T, ProcessorError>;

/// Everything that can go wrong while turning chat messages and images into model inputs.
///
/// Every variant that concerns a file names the file; variants about a configuration value
/// also name the JSON field.
#[derive(Debug, thiserror::Error)]
pub enum ProcessorError {
    /// A required file does not exist (or none of the accepted alternatives exists).
    #[error("missing file {}: {reason}", path.display())]
    MissingFile {
        /// The file that was looked for (the first alternative when there are several).
        path: PathBuf,
        /// What was looked for and why it is needed.
        reason: String,
    },
    /// A file exists but cannot be read or parsed at all.
    #[error("invalid file {}: {reason}", path.display())]
    InvalidFile {
        /// The offending file.
        path: PathBuf,
        /// Why it was rejected.
        reason: String,
    },
    /// A JSON configuration file has a field with an unusable value.
    #[error("invalid config {}: field `{field}`: {reason}", path.display())]
    InvalidConfig {
        /// The configuration file.
        path: PathBuf,
        /// The JSON field (dotted path) at fault.
        field: String,
        /// Why the value was rejected.
        reason: String,
    },
    /// The chat template failed to compile or to render.
    #[error("chat template {}: {reason}", source_name)]
    Template {
        /// Where the template came from (file name, possibly with the JSON field).
        source_name: String,
        /// The template engine's message.
        reason: String,
    },
    /// The tokenizer failed to load, encode or decode.
    #[error("tokenizer {}: {reason}", path.display())]
    Tokenizer {
        /// The tokenizer file (`tokenizer.json`).
        path: PathBuf,
        /// The tokenizer library's message.
        reason: String,
    },
    /// A special token that the processor needs is not in the tokenizer's vocabulary.
    #[error("tokenizer {}: special token `{token}` not found", path.display())]
    MissingSpecialToken {
        /// The tokenizer file.
        path: PathBuf,
        /// The missing token string.
        token: String,
    },
    /// An image file could not be opened or decoded.
    #[error("cannot decode image {}: {reason}", path.display())]
    ImageDecode {
        /// The image file (or `<memory>` for in-memory images).
        path: PathBuf,
        /// The decoder's message.
        reason: String,
    },
    /// The image's aspect ratio exceeds the limit of `smart_resize` (200).
    #[error("image of {height}x{width} (HxW) has an absolute aspect ratio of {ratio:.3}, which must be at most 200")]
    AspectRatio {
        /// Height in pixels.
        height: usize,
        /// Width in pixels.
        width: usize,
        /// `max(h, w) / min(h, w)`.
        ratio: f64,
    },
    /// The image size cannot be processed (zero-sized, or not a multiple of the patch grid
    /// when resizing is disabled).
    #[error("invalid image size {height}x{width} (HxW): {reason}")]
    InvalidImageSize {
        /// Height in pixels.
        height: usize,
        /// Width in pixels.
        width: usize,
        /// Why it cannot be processed.
        reason: String,
    },
    /// The number of `<|image_pad|>` placeholders in the rendered prompt differs from the number
    /// of images supplied.
    #[error("the prompt has {placeholders} image placeholder(s) but {images} image(s) were given")]
    ImageCountMismatch {
        /// Placeholders found in the rendered text.
        placeholders: usize,
        /// Images supplied.
        images: usize,
    },
    /// The image tokens in `input_ids` do not match the image grids (for position ids).
    #[error("image tokens do not match image_grid_thw: {reason}")]
    ImageTokenMismatch {
        /// What does not match.
        reason: String,
    },
}

impl From<interlace_chat::ChatError> for ProcessorError {
    fn from(error: interlace_chat::ChatError) -> Self {
        use interlace_chat::ChatError;
        match error {
            ChatError::MissingFile { path, reason } => Self::MissingFile { path, reason },
            ChatError::InvalidFile { path, reason } => Self::InvalidFile { path, reason },
            ChatError::InvalidConfig { path, field, reason } => Self::InvalidConfig { path, field, reason },
            ChatError::Template { source_name, reason } => Self::Template { source_name, reason },
        }
    }
}
