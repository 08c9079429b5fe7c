//! Pillow's `convert("RGB")` for the modes decoding produces.

use image::{DynamicImage, RgbImage};

/// Pillow's `cmyk2rgb` on inverted (Adobe) CMYK samples, 4 per pixel:
/// `nk = 255 − k; out = nk − round(c · nk / 255)` with Pillow's `MULDIV255` rounding.
pub(crate) fn cmyk_to_rgb(cmyk: &[u8]) -> Vec<u8> {
    let muldiv255 = |a: i32, b: i32| {
        let t = a * b + 128;
        ((t >> 8) + t) >> 8
    };
    let mut rgb = Vec::with_capacity(cmyk.len() / 4 * 3);
    for px in cmyk.chunks_exact(4) {
        let nk = 255 - i32::from(px[3]);
        for &c in &px[..3] {
            rgb.push((nk - muldiv255(i32::from(c), nk)).clamp(0, 255) as u8);
        }
    }
    rgb
}

/// Converts a decoded image to 8-bit RGB as Pillow's `convert("RGB")` converts the mode Pillow
/// would have opened the file in:
///
/// * RGB8 → unchanged; RGBA8 → alpha **dropped** (not composited); grey → replicated; grey +
///   alpha → grey replicated, alpha dropped (palette images are already expanded by the
///   decoder, which equals Pillow's palette lookup);
/// * 16-bit grey (Pillow mode `I;16`) → values **clipped** to 255, not scaled;
/// * 16-bit RGB/RGBA/LA (Pillow reads these with the `;16B` raw modes, keeping the high byte)
///   → `v >> 8`;
/// * float images → `image`'s `to_rgb8` (clamp and round; Pillow has no exact equivalent).
pub fn to_rgb8(image: &DynamicImage) -> RgbImage {
    let (w, h) = (image.width(), image.height());
    let grey = |values: Vec<u8>| RgbImage::from_fn(w, h, |x, y| image::Rgb([values[(y * w + x) as usize]; 3]));
    match image {
        DynamicImage::ImageRgb8(im) => im.clone(),
        DynamicImage::ImageRgba8(im) => RgbImage::from_fn(w, h, |x, y| {
            let p = im.get_pixel(x, y).0;
            image::Rgb([p[0], p[1], p[2]])
        }),
        DynamicImage::ImageLuma8(im) => grey(im.as_raw().clone()),
        DynamicImage::ImageLumaA8(im) => grey(im.as_raw().chunks_exact(2).map(|p| p[0]).collect()),
        DynamicImage::ImageLuma16(im) => grey(im.as_raw().iter().map(|&v| v.min(255) as u8).collect()),
        DynamicImage::ImageLumaA16(im) => grey(im.as_raw().chunks_exact(2).map(|p| (p[0] >> 8) as u8).collect()),
        DynamicImage::ImageRgb16(im) => RgbImage::from_fn(w, h, |x, y| {
            let p = im.get_pixel(x, y).0;
            image::Rgb([(p[0] >> 8) as u8, (p[1] >> 8) as u8, (p[2] >> 8) as u8])
        }),
        DynamicImage::ImageRgba16(im) => RgbImage::from_fn(w, h, |x, y| {
            let p = im.get_pixel(x, y).0;
            image::Rgb([(p[0] >> 8) as u8, (p[1] >> 8) as u8, (p[2] >> 8) as u8])
        }),
        other => other.to_rgb8(),
    }
}
