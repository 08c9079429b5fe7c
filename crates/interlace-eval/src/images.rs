//! Benchmark images: base64 in the row (VLMEvalKit TSVs) or a path next to the file.

use std::path::PathBuf;

use base64::Engine;
use image::DynamicImage;

/// One image of a benchmark row, decoded only when the row is evaluated so that a benchmark of
/// thousands of rows does not hold thousands of decoded images.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageData {
    /// Base64-encoded file bytes (PNG, JPEG, ...), as in VLMEvalKit's `image` column.
    Base64(String),
    /// A file, already resolved against the benchmark file's folder.
    Path(PathBuf),
}

impl ImageData {
    /// Decodes the image with Pillow's pixels ([`interlace_image`]; EXIF orientation not
    /// applied, as VLMEvalKit's `Image.open` leaves it). The
    /// message names what failed, for the malformed-row report.
    pub fn load(&self) -> Result<DynamicImage, String> {
        match self {
            ImageData::Base64(text) => {
                // VLMEvalKit writes standard base64; tolerate line breaks some exporters insert.
                let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
                let bytes = base64::engine::general_purpose::STANDARD.decode(compact.as_bytes()).map_err(|e| format!("image is not valid base64: {e}"))?;
                interlace_image::decode(&bytes).map_err(|e| format!("cannot decode the base64 image: {e}"))
            }
            ImageData::Path(path) => interlace_image::open(path).map_err(|e| format!("cannot open image: {e}")),
        }
    }
}
