//! Images as the official scripts save them: `PIL.Image.convert("RGB")` then `save(path)` with a
//! `.jpg` name, which is libjpeg-turbo's baseline JPEG at Pillow's default quality, 75.

use std::io::Write;
use std::path::Path;

use crate::atomic::write_atomically;
use crate::DataError;

/// PIL's default JPEG quality.
pub const JPEG_QUALITY: u8 = interlace_image::PIL_JPEG_QUALITY;

/// Decodes an encoded image (JPEG, PNG, WebP, GIF, BMP, TIFF) into exactly the RGB pixels
/// Pillow's `convert("RGB")` gives ([`interlace_image`]: libjpeg-turbo for JPEGs, Pillow's mode
/// rules: grey replicated, alpha dropped, palettes expanded, CMYK converted).
pub fn decode_rgb(encoded: &[u8]) -> Result<image::RgbImage, String> {
    let image = interlace_image::decode(encoded).map_err(|e| format!("undecodable image: {e}"))?;
    Ok(interlace_image::to_rgb8(&image))
}

/// Decodes `encoded` and writes it to `path` as Pillow's `convert("RGB").save(path)` would
/// (the same bytes: [`interlace_image::encode_jpeg`]), atomically. The inner error is a row
/// problem (an undecodable image), the outer one an I/O failure.
pub fn write_rgb_jpeg(encoded: &[u8], path: &Path) -> Result<Result<(), String>, DataError> {
    let rgb = match decode_rgb(encoded) {
        Ok(rgb) => rgb,
        Err(what) => return Ok(Err(what)),
    };
    let bytes = match interlace_image::encode_jpeg(&rgb, JPEG_QUALITY) {
        Ok(bytes) => bytes,
        Err(e) => return Ok(Err(e.to_string())),
    };
    write_atomically(path, |out| out.write_all(&bytes))?;
    Ok(Ok(()))
}
