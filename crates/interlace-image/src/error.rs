//! Typed errors of image decoding.

use std::path::PathBuf;

/// Everything that can go wrong while decoding an image.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A JPEG whose data ends before the decoder has every scan line (Pillow: "image file is
    /// truncated").
    #[error("truncated JPEG: the data ends before the last scan line ({len} bytes)")]
    TruncatedJpeg {
        /// Length of the data that was given.
        len: usize,
    },
    /// libjpeg refused the JPEG data (its own message).
    #[error("corrupt or unsupported JPEG: {0}")]
    Jpeg(String),
    /// A lossless JPEG (`SOF3`): libjpeg-turbo 3 (and so Pillow) reads these, the decoder
    /// built here does not. They are rare outside medical imaging.
    #[error("lossless JPEG (SOF3) is not supported; convert the file to PNG, which keeps the same pixels")]
    LosslessJpeg,
    /// A JPEG with a number of colour components Pillow cannot open (it opens 1, 3 and 4).
    #[error("unsupported JPEG: {0} colour components (1, 3 or 4 are supported)")]
    JpegComponents(i32),
    /// More pixels than Pillow opens (its decompression-bomb limit, `2 × MAX_IMAGE_PIXELS`).
    #[error("image of {width}×{height} pixels is over the limit of {limit} pixels")]
    TooLarge {
        /// Width in pixels.
        width: u64,
        /// Height in pixels.
        height: u64,
        /// The limit in pixels.
        limit: u64,
    },
    /// Any other format, decoded by the `image` crate, failed.
    #[error("{0}")]
    Image(#[from] image::ImageError),
    /// A decoding error, with the file it concerns.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: Box<DecodeError>,
    },
}
