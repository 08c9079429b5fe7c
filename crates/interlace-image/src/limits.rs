//! The pixel-count limit Pillow applies before decoding.

use crate::error::DecodeError;

/// Pillow's `Image.MAX_IMAGE_PIXELS` (a warning above it, an error above twice it).
pub const PIL_MAX_IMAGE_PIXELS: u64 = 89_478_485;

/// The most pixels an image may have: `2 × PIL_MAX_IMAGE_PIXELS`, where Pillow raises
/// `DecompressionBombError`. It also bounds the memory a hostile header can make us allocate.
pub const MAX_PIXELS: u64 = 2 * PIL_MAX_IMAGE_PIXELS;

/// Refuses an image with more than [`MAX_PIXELS`] pixels.
pub(crate) fn check_pixels(width: u64, height: u64) -> Result<(), DecodeError> {
    let pixels = width.saturating_mul(height);
    if pixels > MAX_PIXELS {
        return Err(DecodeError::TooLarge { width, height, limit: MAX_PIXELS });
    }
    Ok(())
}
