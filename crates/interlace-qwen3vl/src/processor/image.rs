//! Image preprocessing of the Qwen2-VL/Qwen3-VL image processor (transformers 5, torchvision
//! backend, CPU): RGB conversion, `smart_resize`, anti-aliased bicubic resize, rescale +
//! normalise, and patchify into `pixel_values` rows.

use std::path::Path;

use image::DynamicImage;

use super::config::ImageProcessorConfig;
use super::error::{ProcessorError, Result};

/// An 8-bit RGB image in planar (channel-first) layout `[3, height, width]`, the layout of
/// the uint8 tensor transformers resizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbPlanar {
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
    /// `3 · height · width` values, channel-major, then rows, then columns.
    pub data: Vec<u8>,
}

impl RgbPlanar {
    /// The `height · width` plane of channel `c` (0 = R, 1 = G, 2 = B).
    pub fn channel(&self, c: usize) -> &[u8] {
        let n = self.height * self.width;
        &self.data[c * n..(c + 1) * n]
    }
}

/// One preprocessed image: its `pixel_values` rows and its patch grid.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessedImage {
    /// `t·h·w` rows of `3·Tp·P·P` values, row-major, in the `(tg, br, bc, ir, ic)` row order
    /// with `(channel, frame, y, x)` order inside a row.
    pub pixel_values: Vec<f32>,
    /// `(t, h, w)`: temporal groups and the patch grid (in patches, not merged tokens).
    pub grid_thw: [usize; 3],
}

impl ProcessedImage {
    /// Number of `pixel_values` rows (`t·h·w`).
    pub fn rows(&self) -> usize {
        self.grid_thw.iter().product()
    }

    /// Number of LLM tokens this image expands to (`t·h·w / merge_size²`).
    pub fn num_tokens(&self, merge_size: usize) -> usize {
        self.rows() / (merge_size * merge_size)
    }
}

/// Opens and decodes an image file as the official pipeline does, with exactly Pillow's pixels
/// (libjpeg-turbo for JPEGs, see [`interlace_image`]). The EXIF orientation is **not** applied:
/// transformers' Qwen3-VL processor decodes a path with torchvision's `decode_image` (the
/// official calibration script) and the official training loader uses `Image.open(path)`;
/// neither transposes. RGB conversion is done by [`to_rgb_planar`].
///
/// Every failure (missing file, unknown format, corrupt or truncated data) is reported as
/// [`ProcessorError::ImageDecode`] naming the path.
pub fn load_image(path: impl AsRef<Path>) -> Result<DynamicImage> {
    let path = path.as_ref();
    interlace_image::open(path).map_err(|e| ProcessorError::ImageDecode {
        path: path.to_path_buf(),
        reason: match e {
            // `open` names the file; the error variant already does.
            interlace_image::DecodeError::File { source, .. } => source.to_string(),
            other => other.to_string(),
        },
    })
}

/// Converts a decoded image to planar RGB8 like Pillow's `convert("RGB")` on the mode Pillow
/// would have opened the file in ([`interlace_image::to_rgb8`]: alpha dropped, not
/// composited; grey replicated; 16-bit grey clipped to 255; other 16-bit modes keep the high
/// byte).
pub fn to_rgb_planar(img: &DynamicImage) -> RgbPlanar {
    let rgb = interlace_image::to_rgb8(img);
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let n = w * h;
    let mut data = vec![0u8; 3 * n];
    for (i, px) in rgb.as_raw().chunks_exact(3).enumerate() {
        data[i] = px[0];
        data[n + i] = px[1];
        data[2 * n + i] = px[2];
    }
    RgbPlanar { height: h, width: w, data }
}

/// transformers' `smart_resize`: the target `(height, width)` — multiples of `factor` — with
/// a pixel count in `[min_pixels, max_pixels]` and nearly the original aspect ratio.
///
/// Computed in f64 with Python semantics and operation order (round = ties-to-even):
/// ```text
/// hb = round(h/f)·f ; wb = round(w/f)·f
/// if hb·wb > max:  β = sqrt(h·w/max); hb = max(f, floor(h/β/f)·f); wb = max(f, floor(w/β/f)·f)
/// elif hb·wb < min: β = sqrt(min/(h·w)); hb = ceil(h·β/f)·f; wb = ceil(w·β/f)·f
/// ```
/// Errors: [`ProcessorError::AspectRatio`] if `max(h,w)/min(h,w) > 200`,
/// [`ProcessorError::InvalidImageSize`] for a zero dimension or zero factor.
pub fn smart_resize(height: usize, width: usize, factor: usize, min_pixels: usize, max_pixels: usize) -> Result<(usize, usize)> {
    if height == 0 || width == 0 || factor == 0 {
        return Err(ProcessorError::InvalidImageSize {
            height,
            width,
            reason: if factor == 0 { "resize factor is zero".into() } else { "image has a zero dimension".into() },
        });
    }
    let (h, w, f) = (height as f64, width as f64, factor as f64);
    let ratio = h.max(w) / h.min(w);
    if ratio > 200.0 {
        return Err(ProcessorError::AspectRatio { height, width, ratio });
    }
    let mut hb = (h / f).round_ties_even() * f;
    let mut wb = (w / f).round_ties_even() * f;
    // Python: `height * width` is an exact integer product, then true division.
    let hw = (height as u128 * width as u128) as f64;
    if hb * wb > max_pixels as f64 {
        let beta = (hw / max_pixels as f64).sqrt();
        hb = f.max((h / beta / f).floor() * f);
        wb = f.max((w / beta / f).floor() * f);
    } else if hb * wb < min_pixels as f64 {
        let beta = (min_pixels as f64 / hw).sqrt();
        hb = (h * beta / f).ceil() * f;
        wb = (w * beta / f).ceil() * f;
    }
    Ok((hb as usize, wb as usize))
}

/// Per-axis tap table of torch's uint8 anti-aliased resize (int16 weights).
struct AxisTaps {
    /// First input index of each output index.
    start: Vec<usize>,
    /// Number of taps of each output index.
    len: Vec<usize>,
    /// `out · stride` int16 weights (as i32), zero-padded.
    weights: Vec<i32>,
    /// Taps stored per output index.
    stride: usize,
    /// Fixed-point precision of the weights (bits).
    precision: u32,
}

/// Keys cubic convolution kernel with a = −0.5, exactly as torch's `aa_filter`
/// (`cubic_convolution1` / `cubic_convolution2`).
fn cubic_aa_filter(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A
    } else {
        0.0
    }
}

/// torch `_compute_index_ranges_int16_weights` for bicubic, antialias=True, align_corners=False,
/// no explicit scale: weights computed in f64, normalised, then quantised to int16 with the
/// largest precision that keeps the maximal weight below 2^15.
fn axis_taps(in_size: usize, out_size: usize) -> AxisTaps {
    let scale = in_size as f64 / out_size as f64;
    let support = if scale >= 1.0 { 2.0 * scale } else { 2.0 };
    let max_interp = support.ceil() as usize * 2 + 1;
    let invscale = if scale >= 1.0 { 1.0 / scale } else { 1.0 };
    let mut start = Vec::with_capacity(out_size);
    let mut len = Vec::with_capacity(out_size);
    let mut wf = vec![0.0f64; out_size * max_interp];
    let mut wt_max = 0.0f64;
    for i in 0..out_size {
        let center = scale * (i as f64 + 0.5);
        // C++ `static_cast<int64_t>` truncates toward zero.
        let xmin = ((center - support + 0.5) as i64).max(0);
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64);
        let xsize = (xmax - xmin).clamp(0, max_interp as i64) as usize;
        let row = &mut wf[i * max_interp..(i + 1) * max_interp];
        let mut total = 0.0f64;
        for (j, w) in row.iter_mut().enumerate().take(xsize) {
            let v = cubic_aa_filter(((j as i64 + xmin) as f64 - center + 0.5) * invscale);
            *w = v;
            total += v;
        }
        if total != 0.0 {
            for w in row.iter_mut().take(xsize) {
                *w /= total;
                wt_max = wt_max.max(*w);
            }
        }
        start.push(xmin as usize);
        len.push(xsize);
    }
    let mut precision = 0u32;
    while precision < 22 {
        let next = (0.5 + wt_max * (1i64 << (precision + 1)) as f64) as i64;
        if next >= (1 << 15) {
            break;
        }
        precision += 1;
    }
    let mul = (1i64 << precision) as f64;
    let weights = wf
        .iter()
        .map(|&w| {
            let v = w * mul;
            let q = if v < 0.0 { (-0.5 + v) as i32 } else { (0.5 + v) as i32 };
            q as i16 as i32
        })
        .collect();
    AxisTaps { start, len, weights, stride: max_interp, precision }
}

/// `a` is a multiple of `b` (false for `b == 0`); `is_multiple_of` needs Rust 1.87.
pub(crate) fn divisible(a: usize, b: usize) -> bool {
    a.checked_rem(b) == Some(0)
}

#[inline]
fn finish(acc: i32, precision: u32) -> u8 {
    (acc >> precision).clamp(0, 255) as u8
}

/// Resizes with the kernel of `torchvision.transforms.v2.functional.resize(uint8 tensor,
/// BICUBIC, antialias=True)` on CPU (torch's native uint8 path): separable PIL-style
/// anti-aliased Keys cubic (a = −0.5) with int16 fixed-point weights, **width pass first**,
/// uint8 intermediate (rounded via the fixed-point bias, clamped), then the height pass.
/// An axis whose size is unchanged is not resampled.
pub fn resize_bicubic_aa(img: &RgbPlanar, out_h: usize, out_w: usize) -> RgbPlanar {
    let (in_h, in_w) = (img.height, img.width);
    if out_h == 0 || out_w == 0 || in_h == 0 || in_w == 0 {
        return RgbPlanar { height: out_h, width: out_w, data: vec![0; 3 * out_h * out_w] };
    }
    // Horizontal pass.
    let horiz: std::borrow::Cow<'_, [u8]> = if out_w != in_w {
        let t = axis_taps(in_w, out_w);
        let bias = 1i32 << (t.precision - 1);
        let mut out = vec![0u8; 3 * in_h * out_w];
        for (src_row, dst_row) in img.data.chunks_exact(in_w).zip(out.chunks_exact_mut(out_w)) {
            for (x, d) in dst_row.iter_mut().enumerate() {
                let s = t.start[x];
                let n = t.len[x];
                let w = &t.weights[x * t.stride..x * t.stride + n];
                let mut acc = bias;
                for (p, k) in src_row[s..s + n].iter().zip(w) {
                    acc += *p as i32 * *k;
                }
                *d = finish(acc, t.precision);
            }
        }
        out.into()
    } else {
        img.data.as_slice().into()
    };
    // Vertical pass.
    let data = if out_h != in_h {
        let t = axis_taps(in_h, out_h);
        let bias = 1i32 << (t.precision - 1);
        let mut out = vec![0u8; 3 * out_h * out_w];
        let mut acc = vec![0i32; out_w];
        for c in 0..3 {
            let src = &horiz[c * in_h * out_w..(c + 1) * in_h * out_w];
            let dst = &mut out[c * out_h * out_w..(c + 1) * out_h * out_w];
            for (y, dst_row) in dst.chunks_exact_mut(out_w).enumerate() {
                acc.fill(bias);
                let s = t.start[y];
                let n = t.len[y];
                for j in 0..n {
                    let k = t.weights[y * t.stride + j];
                    let row = &src[(s + j) * out_w..(s + j + 1) * out_w];
                    for (a, p) in acc.iter_mut().zip(row) {
                        *a += *p as i32 * k;
                    }
                }
                for (d, a) in dst_row.iter_mut().zip(&acc) {
                    *d = finish(*a, t.precision);
                }
            }
        }
        out
    } else {
        horiz.into_owned()
    };
    RgbPlanar { height: out_h, width: out_w, data }
}

/// The resized (or, with `do_resize = false`, the original) RGB image the processor
/// normalises and patchifies; errors if the size cannot form whole merge blocks.
pub fn resize_for_model(img: &RgbPlanar, cfg: &ImageProcessorConfig) -> Result<RgbPlanar> {
    let factor = cfg.factor();
    if cfg.do_resize {
        let (hb, wb) = smart_resize(img.height, img.width, factor, cfg.min_pixels, cfg.max_pixels)?;
        if (hb, wb) == (img.height, img.width) {
            Ok(img.clone())
        } else {
            Ok(resize_bicubic_aa(img, hb, wb))
        }
    } else if !divisible(img.height, factor) || !divisible(img.width, factor) || img.height == 0 || img.width == 0 {
        Err(ProcessorError::InvalidImageSize {
            height: img.height,
            width: img.width,
            reason: format!("do_resize is false and the size is not a positive multiple of patch_size·merge_size = {factor}"),
        })
    } else {
        Ok(img.clone())
    }
}

/// Per-channel lookup table uint8 → normalised f32, computed in fp32 as transformers does:
/// with rescale and normalise both on, mean and std are fused (`mean·(1/rescale)`,
/// `std·(1/rescale)`, in fp32) and `v = (x − mean′) / std′`.
pub fn normalization_lut(cfg: &ImageProcessorConfig) -> [[f32; 256]; 3] {
    let mut lut = [[0f32; 256]; 3];
    let inv = (1.0 / cfg.rescale_factor) as f32;
    for (c, lut_c) in lut.iter_mut().enumerate() {
        for (x, slot) in lut_c.iter_mut().enumerate() {
            let x = x as f32;
            *slot = match (cfg.do_rescale, cfg.do_normalize) {
                (true, true) => {
                    let m = cfg.image_mean[c] * inv;
                    let s = cfg.image_std[c] * inv;
                    (x - m) / s
                }
                (true, false) => x * cfg.rescale_factor as f32,
                (false, true) => (x - cfg.image_mean[c]) / cfg.image_std[c],
                (false, false) => x,
            };
        }
    }
    lut
}

/// Normalises and patchifies an RGB image whose sides are multiples of `P·m` (one still
/// image, repeated to `Tp` frames): the `[Tp, 3, H, W]` array viewed as
/// `(tg, Tp, 3, h/m, m, P, w/m, m, P)`, permuted to `(tg, h/m, w/m, m, m, 3, Tp, P, P)`.
pub fn patchify(img: &RgbPlanar, cfg: &ImageProcessorConfig) -> Result<ProcessedImage> {
    let (p, m, tp) = (cfg.patch_size, cfg.merge_size, cfg.temporal_patch_size);
    let factor = p * m;
    if img.height == 0 || img.width == 0 || !divisible(img.height, factor) || !divisible(img.width, factor) {
        return Err(ProcessorError::InvalidImageSize {
            height: img.height,
            width: img.width,
            reason: format!("patchify needs positive multiples of {factor}"),
        });
    }
    let lut = normalization_lut(cfg);
    let (gh, gw) = (img.height / p, img.width / p);
    let row_len = cfg.row_len();
    let mut out = Vec::with_capacity(gh * gw * row_len);
    let w = img.width;
    // One temporal group (a single image padded to Tp frames by repetition).
    for br in 0..gh / m {
        for bc in 0..gw / m {
            for ir in 0..m {
                for ic in 0..m {
                    let (r, col) = (br * m + ir, bc * m + ic);
                    for (c, lut_c) in lut.iter().enumerate() {
                        let plane = img.channel(c);
                        for _t in 0..tp {
                            for y in 0..p {
                                let base = (r * p + y) * w + col * p;
                                out.extend(plane[base..base + p].iter().map(|&v| lut_c[v as usize]));
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(ProcessedImage { pixel_values: out, grid_thw: [1, gh, gw] })
}

/// Full preprocessing of one RGB image: resize (if enabled), rescale/normalise, patchify.
pub fn preprocess_rgb(img: &RgbPlanar, cfg: &ImageProcessorConfig) -> Result<ProcessedImage> {
    let resized = resize_for_model(img, cfg)?;
    patchify(&resized, cfg)
}

/// Full preprocessing of one decoded image (RGB conversion as PIL `convert("RGB")` first).
pub fn preprocess_image(img: &DynamicImage, cfg: &ImageProcessorConfig) -> Result<ProcessedImage> {
    preprocess_rgb(&to_rgb_planar(img), cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayAlphaImage, GrayImage, Rgb, RgbImage, RgbaImage};

    const MIN: usize = 65_536;
    const MAX: usize = 16_777_216;

    #[test]
    fn smart_resize_spec_examples() {
        for ((h, w), want) in [
            ((480, 640), (480, 640)),
            ((720, 1280), (704, 1280)),
            ((1080, 1920), (1088, 1920)),
            ((300, 500), (288, 512)),
            ((100, 100), (256, 256)),
            ((200, 300), (224, 320)),
            ((1365, 2048), (1376, 2048)),
            ((5000, 4000), (4576, 3648)),
        ] {
            assert_eq!(smart_resize(h, w, 32, MIN, MAX).unwrap(), want, "{h}x{w}");
        }
        // Token counts quoted in the spec.
        let (h, w) = smart_resize(5000, 4000, 32, MIN, MAX).unwrap();
        assert_eq!(h * w / 1024, 16302);
        let (h, w) = smart_resize(1080, 1920, 32, MIN, MAX).unwrap();
        assert_eq!(h * w / 1024, 2040);
    }

    #[test]
    fn smart_resize_aspect_ratio() {
        assert!(smart_resize(10, 2000, 32, MIN, MAX).is_ok());
        match smart_resize(10, 2001, 32, MIN, MAX) {
            Err(ProcessorError::AspectRatio { height, width, ratio }) => {
                assert_eq!((height, width), (10, 2001));
                assert!(ratio > 200.0);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(smart_resize(0, 5, 32, MIN, MAX), Err(ProcessorError::InvalidImageSize { .. })));
    }

    #[test]
    fn rgb_conversion_rules() {
        let rgba = RgbaImage::from_raw(2, 1, vec![10, 20, 30, 0, 40, 50, 60, 128]).unwrap();
        let p = to_rgb_planar(&DynamicImage::ImageRgba8(rgba));
        assert_eq!(p.data, vec![10, 40, 20, 50, 30, 60]);

        let la = GrayAlphaImage::from_raw(2, 1, vec![7, 0, 200, 255]).unwrap();
        let p = to_rgb_planar(&DynamicImage::ImageLumaA8(la));
        assert_eq!(p.data, vec![7, 200, 7, 200, 7, 200]);

        let l = GrayImage::from_raw(1, 2, vec![3, 250]).unwrap();
        let p = to_rgb_planar(&DynamicImage::ImageLuma8(l));
        assert_eq!((p.height, p.width), (2, 1));
        assert_eq!(p.data, vec![3, 250, 3, 250, 3, 250]);

        let l16 = image::ImageBuffer::<image::Luma<u16>, _>::from_raw(2, 1, vec![100u16, 1000]).unwrap();
        let p = to_rgb_planar(&DynamicImage::ImageLuma16(l16));
        assert_eq!(p.data, vec![100, 255, 100, 255, 100, 255]);

        let rgb16 = image::ImageBuffer::<image::Rgb<u16>, _>::from_raw(1, 1, vec![0x1234u16, 0xff00, 0x00ff]).unwrap();
        let p = to_rgb_planar(&DynamicImage::ImageRgb16(rgb16));
        assert_eq!(p.data, vec![0x12, 0xff, 0x00]);
    }

    #[test]
    fn unreadable_image_names_path() {
        let e = load_image("/nonexistent/dir/img.png").unwrap_err();
        assert!(matches!(e, ProcessorError::ImageDecode { .. }));
        assert!(e.to_string().contains("/nonexistent/dir/img.png"));
    }

    #[test]
    fn resize_identity_and_constant() {
        let img = RgbImage::from_fn(40, 30, |x, y| Rgb([(x * 6) as u8, (y * 8) as u8, 77]));
        let p = to_rgb_planar(&DynamicImage::ImageRgb8(img));
        assert_eq!(resize_bicubic_aa(&p, 30, 40), p);
        let c = RgbPlanar { height: 13, width: 17, data: vec![200; 3 * 13 * 17] };
        for (h, w) in [(32, 64), (5, 7), (13, 40), (64, 17)] {
            let r = resize_bicubic_aa(&c, h, w);
            assert!(r.data.iter().all(|&v| v == 200), "{h}x{w}");
        }
    }

    #[test]
    fn patch_layout() {
        // Small config: P = 2, m = 2, Tp = 2 → factor 4, rows of 3·2·2·2 = 24.
        let cfg = ImageProcessorConfig {
            patch_size: 2,
            merge_size: 2,
            temporal_patch_size: 2,
            do_resize: false,
            do_normalize: false,
            do_rescale: false,
            ..ImageProcessorConfig::default()
        };
        let (h, w) = (8usize, 12usize);
        let mut data = vec![0u8; 3 * h * w];
        for c in 0..3 {
            for y in 0..h {
                for x in 0..w {
                    // Encode (c, y, x) into the value (mod 256).
                    data[(c * h + y) * w + x] = ((c * 96 + y * 12 + x) % 256) as u8;
                }
            }
        }
        let img = RgbPlanar { height: h, width: w, data };
        let out = patchify(&img, &cfg).unwrap();
        assert_eq!(out.grid_thw, [1, 4, 6]);
        assert_eq!(out.pixel_values.len(), 24 * 24);
        // Row order (spec §3.1): (0,0),(0,1),(1,0),(1,1),(0,2),...
        let expect_patch = |k: usize| -> (usize, usize) {
            let (blk, inner) = (k / 4, k % 4);
            let (br, bc) = (blk / 3, blk % 3);
            (br * 2 + inner / 2, bc * 2 + inner % 2)
        };
        for k in 0..24 {
            let (r, c) = expect_patch(k);
            let row = &out.pixel_values[k * 24..(k + 1) * 24];
            for ch in 0..3 {
                for t in 0..2 {
                    for y in 0..2 {
                        for x in 0..2 {
                            let v = row[((ch * 2 + t) * 2 + y) * 2 + x];
                            let want = ((ch * 96 + (r * 2 + y) * 12 + c * 2 + x) % 256) as f32;
                            assert_eq!(v, want, "row {k} ch {ch} t {t} y {y} x {x}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn normalization_is_fused_fp32() {
        let lut = normalization_lut(&ImageProcessorConfig::qwen3_vl());
        assert_eq!(lut[0][0], -1.0);
        assert_eq!(lut[1][255], 1.0);
        assert_eq!(lut[2][128], (128.0f32 - 127.5) / 127.5);
    }

    #[test]
    fn preprocess_small_image_upscales() {
        let img = RgbImage::from_fn(100, 100, |x, y| Rgb([x as u8, y as u8, (x + y) as u8]));
        let out = preprocess_image(&DynamicImage::ImageRgb8(img), &ImageProcessorConfig::qwen3_vl()).unwrap();
        assert_eq!(out.grid_thw, [1, 16, 16]);
        assert_eq!(out.pixel_values.len(), 256 * 1536);
        assert_eq!(out.num_tokens(2), 64);
        assert!(out.pixel_values.iter().all(|v| (-1.0..=1.0).contains(v)));
    }
}
