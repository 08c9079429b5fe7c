//! Image decoding that gives exactly the pixels Pillow gives.
//!
//! The official INTERLACE pipeline opens images with Pillow (its training loader:
//! `Image.open(path).convert("RGB")`) or, for calibration, through transformers' Qwen3-VL
//! processor, which decodes a path with torchvision's `decode_image(mode=RGB)`: both are
//! libjpeg-turbo and give the same pixels (`fixtures/make_image_fixtures.py` checks it). A model
//! that must match transformers to 1e-6 needs those pixels, and decoders differ: the `image`
//! crate's JPEG decoder and libjpeg-turbo differ by up to 4 steps per sample, which moved
//! calibration similarities of real photos by up to 5.9e-4. This crate decodes
//!
//! * **JPEG** with libjpeg-turbo's own decoder, configured as Pillow configures it (baseline,
//!   progressive, any subsampling, restart markers, grey, RGB, CMYK and YCCK), see
//!   [`jpeg`](crate#jpeg);
//! * **PNG, WebP, GIF, BMP, TIFF** with the `image` crate, whose pixels for these formats equal
//!   Pillow's (lossless formats; WebP through a port of libwebp's own conversion);
//!
//! and returns an [`image::DynamicImage`] holding what Pillow's mode holds, so that
//! [`to_rgb8`] can apply `convert("RGB")` with Pillow's rules. The tests compare every case
//! pixel for pixel with Pillow on files written by several encoders
//! (`fixtures/make_image_fixtures.py`).
//!
//! [`encode_jpeg`] goes the other way as Pillow's `save` does: libjpeg-turbo's baseline
//! encoder with its defaults, byte for byte Pillow's file.
//!
//! # JPEG
//! Pillow maps 1, 3 and 4 components to modes `L`, `RGB` and `CMYK`; a 4-component JPEG is
//! read with the Adobe (inverted) convention and converted to RGB with Pillow's `cmyk2rgb`.
//! libjpeg warnings (corrupt data it can step over) are ignored, as Pillow ignores them; data
//! that ends before the last scan line is [`DecodeError::TruncatedJpeg`], Pillow's "image file
//! is truncated".
//!
//! # EXIF orientation
//! Neither official loader applies the EXIF orientation, so [`open`] and [`decode`] do not
//! either. Transformers' `load_image` does (`ImageOps.exif_transpose`); for that, use
//! [`decode_with_orientation`] and apply the returned orientation.
//!
//! ```no_run
//! let image = interlace_image::open("photo.jpg")?; // Pillow's pixels, as stored
//! let rgb = interlace_image::to_rgb8(&image);      // Pillow's convert("RGB")
//! # Ok::<(), interlace_image::DecodeError>(())
//! ```

mod convert;
mod error;
mod jpeg;
mod jpeg_encode;
mod limits;

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};

pub use convert::to_rgb8;
pub use error::DecodeError;
pub use jpeg_encode::{encode_jpeg, PIL_JPEG_QUALITY};
pub use limits::{MAX_PIXELS, PIL_MAX_IMAGE_PIXELS};

/// Reads and decodes an image file as `PIL.Image.open(path).load()` does (EXIF orientation not
/// applied, as in the official loaders). Errors name the file.
pub fn open(path: impl AsRef<Path>) -> Result<DynamicImage, DecodeError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| DecodeError::Io { path: path.to_path_buf(), source })?;
    decode(&bytes).map_err(|source| DecodeError::File { path: path.to_path_buf(), source: Box::new(source) })
}

/// Decodes an image file's bytes (format from their content) as `PIL.Image.open(...).load()`
/// does; the EXIF orientation is not applied.
pub fn decode(bytes: &[u8]) -> Result<DynamicImage, DecodeError> {
    decode_with_orientation(bytes).map(|(image, _)| image)
}

/// Decodes like [`decode`] and also returns the EXIF orientation (`NoTransforms` when absent
/// or unreadable, as Pillow ignores a broken EXIF block). `image.apply_orientation(o)` then
/// equals `PIL.ImageOps.exif_transpose`, which transformers' `load_image` applies.
pub fn decode_with_orientation(bytes: &[u8]) -> Result<(DynamicImage, image::metadata::Orientation), DecodeError> {
    use image::metadata::Orientation;
    if is_jpeg(bytes) {
        let pixels = jpeg::decode(bytes)?;
        let orientation = pixels.exif.as_deref().and_then(Orientation::from_exif_chunk).unwrap_or(Orientation::NoTransforms);
        return Ok((jpeg_image(pixels), orientation));
    }
    let reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(image::ImageError::IoError)?;
    let mut decoder = reader.into_decoder()?;
    let (width, height) = decoder.dimensions();
    limits::check_pixels(width.into(), height.into())?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    Ok((DynamicImage::from_decoder(decoder)?, orientation))
}

/// JPEG's start-of-image marker followed by the first marker's `FF`, which is how Pillow
/// recognises a JPEG (`prefix[:3] == b"\xFF\xD8\xFF"`).
fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8, 0xFF])
}

fn jpeg_image(pixels: jpeg::JpegPixels) -> DynamicImage {
    let jpeg::JpegPixels { width, height, color, samples, .. } = pixels;
    // Buffer sizes are `width · height · channels` by construction.
    let image = match color {
        jpeg::JpegColor::Gray => image::GrayImage::from_raw(width, height, samples).map(DynamicImage::ImageLuma8),
        jpeg::JpegColor::Rgb => RgbImage::from_raw(width, height, samples).map(DynamicImage::ImageRgb8),
        jpeg::JpegColor::Cmyk => RgbImage::from_raw(width, height, convert::cmyk_to_rgb(&samples)).map(DynamicImage::ImageRgb8),
    };
    image.expect("decoded JPEG buffer has width·height·channels samples")
}
