//! Image decoding that gives exactly the pixels Pillow gives.
//!
//! Hugging Face processors open images with Pillow (`PIL.Image.open`, then transformers'
//! `load_image`: `ImageOps.exif_transpose` and `convert("RGB")`). A model that must match
//! transformers to 1e-6 needs the same pixels, and decoders differ: the `image` crate's JPEG
//! decoder and Pillow's libjpeg-turbo differ by a step or two per sample, which moved
//! calibration similarities of real photos by up to 5e-4. This crate decodes
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
//! # JPEG
//! Pillow maps 1, 3 and 4 components to modes `L`, `RGB` and `CMYK`; a 4-component JPEG is
//! read with the Adobe (inverted) convention and converted to RGB with Pillow's `cmyk2rgb`.
//! libjpeg warnings (corrupt data it can step over) are ignored, as Pillow ignores them; data
//! that ends before the last scan line is [`DecodeError::TruncatedJpeg`], Pillow's "image file
//! is truncated".
//!
//! ```no_run
//! let image = interlace_image::open("photo.jpg")?; // decoded, EXIF orientation applied
//! let rgb = interlace_image::to_rgb8(&image);      // Pillow's convert("RGB")
//! # Ok::<(), interlace_image::DecodeError>(())
//! ```

mod convert;
mod error;
mod jpeg;
mod limits;

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};

pub use convert::to_rgb8;
pub use error::DecodeError;
pub use limits::{MAX_PIXELS, PIL_MAX_IMAGE_PIXELS};

/// Reads and decodes an image file like transformers' `load_image`: Pillow's pixels, then the
/// EXIF orientation applied (`ImageOps.exif_transpose`). Errors name the file.
pub fn open(path: impl AsRef<Path>) -> Result<DynamicImage, DecodeError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| DecodeError::Io { path: path.to_path_buf(), source })?;
    decode(&bytes).map_err(|source| DecodeError::File { path: path.to_path_buf(), source: Box::new(source) })
}

/// Decodes an image file's bytes (format from its content) and applies its EXIF orientation,
/// as transformers' `load_image` does.
pub fn decode(bytes: &[u8]) -> Result<DynamicImage, DecodeError> {
    let (mut image, orientation) = decode_with_orientation(bytes)?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// Decodes an image file's bytes as `PIL.Image.open(...).load()` does, without applying the
/// EXIF orientation, which is returned (`NoTransforms` when absent or unreadable, as Pillow
/// ignores a broken EXIF block).
pub fn decode_with_orientation(bytes: &[u8]) -> Result<(DynamicImage, image::metadata::Orientation), DecodeError> {
    use image::metadata::Orientation;
    if is_jpeg(bytes) {
        let pixels = jpeg::decode(bytes)?;
        let orientation = pixels
            .exif
            .as_deref()
            .and_then(Orientation::from_exif_chunk)
            .unwrap_or(Orientation::NoTransforms);
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
        jpeg::JpegColor::Cmyk => {
            RgbImage::from_raw(width, height, convert::cmyk_to_rgb(&samples)).map(DynamicImage::ImageRgb8)
        }
    };
    image.expect("decoded JPEG buffer has width·height·channels samples")
}
