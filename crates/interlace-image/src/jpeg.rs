//! JPEG through libjpeg-turbo's own decoder, set up as Pillow sets it up.
//!
//! Pillow decodes JPEGs with libjpeg-turbo: accurate integer IDCT (`JDCT_ISLOW`), fancy
//! (triangle-filter) chroma upsampling, the library's fixed-point YCbCr→RGB tables and its
//! YCCK→CMYK conversion. Any other decoder (the `image` crate's, zune-jpeg) rounds differently
//! and moves pixels by a step or two, which moved calibration similarities by up to 5e-4. So the
//! pixels come from the same library (mozjpeg's decompressor is libjpeg-turbo's), driven with
//! Pillow's settings:
//!
//! * the output colour space follows the component count, as Pillow's mode does
//!   (1 → grey `L`, 3 → `RGB`, 4 → `CMYK`); libjpeg detects YCbCr/RGB/YCCK from the JFIF and
//!   Adobe markers as it does for Pillow;
//! * warnings (corrupt data the library can step over) are ignored, as Pillow ignores them;
//! * data that ends before the last scan line is an error, as Pillow's "image file is
//!   truncated" (no grey fill).

use std::mem;
use std::os::raw::{c_int, c_long};
use std::panic::{self, AssertUnwindSafe};

use mozjpeg_sys as ffi;

use crate::error::DecodeError;
use crate::limits::check_pixels;

/// Colour layout of decoded JPEG samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JpegColor {
    /// One grey sample per pixel (Pillow mode `L`).
    Gray,
    /// R, G, B per pixel (Pillow mode `RGB`).
    Rgb,
    /// C, M, Y, K per pixel, already inverted as Pillow's `CMYK;I` raw mode does (Pillow mode
    /// `CMYK`).
    Cmyk,
}

/// A decoded JPEG, before any mode conversion.
pub(crate) struct JpegPixels {
    pub width: u32,
    pub height: u32,
    pub color: JpegColor,
    /// `width · height · channels` samples, row-major, interleaved.
    pub samples: Vec<u8>,
    /// The TIFF part of the first `APP1` Exif segment (after `Exif\0\0`), which Pillow's
    /// `getexif()` reads.
    pub exif: Option<Vec<u8>>,
}

/// Why decoding stopped early; carried by an unwind out of libjpeg's callbacks.
enum Stop {
    /// The decoder asked for data past the end.
    OutOfData,
    /// libjpeg's `error_exit` with its formatted message.
    Fatal(String),
    /// A check of ours.
    Refused(DecodeError),
}

const APP1: c_int = 0xE1;
const EXIF_HEADER: &[u8] = b"Exif\0\0";

/// Decodes a JPEG file's bytes.
pub(crate) fn decode(data: &[u8]) -> Result<JpegPixels, DecodeError> {
    // SAFETY: both structs are plain C data for which all-zero is the documented "not yet
    // created" state; `jpeg_destroy_decompress` accepts a zeroed (never created) struct.
    let mut err: Box<ffi::jpeg_error_mgr> = Box::new(unsafe { mem::zeroed() });
    let mut cinfo: Box<ffi::jpeg_decompress_struct> = Box::new(unsafe { mem::zeroed() });
    let mut source: Box<ffi::jpeg_source_mgr> = Box::new(unsafe { mem::zeroed() });
    unsafe { ffi::jpeg_std_error(&mut err) };
    err.error_exit = Some(error_exit);
    err.emit_message = Some(ignore_message);
    cinfo.common.err = &mut *err;
    source.next_input_byte = data.as_ptr();
    source.bytes_in_buffer = data.len();
    source.init_source = Some(source_noop);
    source.fill_input_buffer = Some(out_of_data);
    source.skip_input_data = Some(skip_input_data);
    source.resync_to_restart = Some(ffi::jpeg_resync_to_restart);
    source.term_source = Some(source_noop);

    let outcome = panic::catch_unwind(AssertUnwindSafe(|| unsafe { run(&mut cinfo, &mut source) }));
    // SAFETY: frees whatever libjpeg allocated, whether or not decoding finished.
    unsafe { ffi::jpeg_destroy_decompress(&mut cinfo) };
    match outcome {
        Ok(pixels) => Ok(pixels),
        Err(payload) => match payload.downcast::<Stop>() {
            Ok(stop) => Err(match *stop {
                Stop::OutOfData => DecodeError::TruncatedJpeg { len: data.len() },
                Stop::Fatal(message) if message.contains("SOF type 0xc3") => DecodeError::LosslessJpeg,
                Stop::Fatal(message) => DecodeError::Jpeg(message),
                Stop::Refused(error) => error,
            }),
            // A real panic of ours: keep it a panic.
            Err(other) => panic::resume_unwind(other),
        },
    }
}

/// The libjpeg calls; every failure unwinds with a [`Stop`].
///
/// # Safety
/// `cinfo` has a valid error manager and `source` points into live data.
unsafe fn run(cinfo: &mut ffi::jpeg_decompress_struct, source: &mut ffi::jpeg_source_mgr) -> JpegPixels {
    ffi::jpeg_create_decompress(cinfo);
    cinfo.src = source;
    ffi::jpeg_save_markers(cinfo, APP1, 0xFFFF);
    if ffi::jpeg_read_header(cinfo, 1) != 1 {
        refuse(DecodeError::Jpeg("the file holds tables only, no image".into()));
    }
    let color = match cinfo.num_components {
        1 => JpegColor::Gray,
        3 => JpegColor::Rgb,
        4 => JpegColor::Cmyk,
        n => refuse(DecodeError::JpegComponents(n)),
    };
    if let Err(e) = check_pixels(cinfo.image_width.into(), cinfo.image_height.into()) {
        refuse(e);
    }
    cinfo.out_color_space = match color {
        JpegColor::Gray => ffi::J_COLOR_SPACE::JCS_GRAYSCALE,
        JpegColor::Rgb => ffi::J_COLOR_SPACE::JCS_RGB,
        JpegColor::Cmyk => ffi::J_COLOR_SPACE::JCS_CMYK,
    };
    // libjpeg's defaults, and Pillow's: stated so that a changed default cannot change pixels.
    cinfo.dct_method = ffi::J_DCT_METHOD::JDCT_ISLOW;
    cinfo.do_fancy_upsampling = 1;
    let exif = first_exif(cinfo);
    ffi::jpeg_start_decompress(cinfo);
    let width = cinfo.output_width;
    let height = cinfo.output_height;
    let row = width as usize * cinfo.output_components as usize;
    let mut samples = vec![0u8; row * height as usize];
    while cinfo.output_scanline < height {
        let mut line = samples[cinfo.output_scanline as usize * row..].as_mut_ptr();
        ffi::jpeg_read_scanlines(cinfo, &mut line, 1);
    }
    // Not `jpeg_finish_decompress`: like Pillow, a file whose image is complete is accepted
    // even if what follows the last scan (the EOI marker) is missing.
    if color == JpegColor::Cmyk {
        // Pillow reads every 4-component JPEG with the Adobe convention (raw mode `CMYK;I`).
        for v in &mut samples {
            *v = 255 - *v;
        }
    }
    JpegPixels { width, height, color, samples, exif }
}

/// The TIFF data of the first `APP1` segment that starts with `Exif\0\0`.
unsafe fn first_exif(cinfo: &ffi::jpeg_decompress_struct) -> Option<Vec<u8>> {
    let mut marker = cinfo.marker_list;
    while let Some(m) = marker.as_ref() {
        if c_int::from(m.marker) == APP1 && !m.data.is_null() {
            let bytes = std::slice::from_raw_parts(m.data, m.data_length as usize);
            if let Some(tiff) = bytes.strip_prefix(EXIF_HEADER) {
                return Some(tiff.to_vec());
            }
        }
        marker = m.next;
    }
    None
}

fn refuse(error: DecodeError) -> ! {
    panic::resume_unwind(Box::new(Stop::Refused(error)))
}

unsafe extern "C-unwind" fn error_exit(cinfo: &mut ffi::jpeg_common_struct) {
    let message = format_message(cinfo);
    panic::resume_unwind(Box::new(Stop::Fatal(message)))
}

/// libjpeg's own text for the pending message.
unsafe fn format_message(cinfo: &mut ffi::jpeg_common_struct) -> String {
    let Some(err) = cinfo.err.as_ref() else { return "unknown libjpeg error".into() };
    let Some(format) = err.format_message else { return format!("libjpeg error {}", err.msg_code) };
    // The binding declares the buffer `&[u8; 80]`, but libjpeg writes into it.
    let format: unsafe extern "C-unwind" fn(&mut ffi::jpeg_common_struct, &mut [u8; 80]) = mem::transmute(format);
    let mut buffer = [0u8; 80];
    format(cinfo, &mut buffer);
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    String::from_utf8_lossy(&buffer[..end]).into_owned()
}

/// Warnings and traces: Pillow installs a silent `output_message` and so sees none.
unsafe extern "C-unwind" fn ignore_message(_cinfo: &mut ffi::jpeg_common_struct, _level: c_int) {}

unsafe extern "C-unwind" fn source_noop(_cinfo: &mut ffi::jpeg_decompress_struct) {}

/// All data was handed over at the start, so a request for more means the file is truncated.
unsafe extern "C-unwind" fn out_of_data(_cinfo: &mut ffi::jpeg_decompress_struct) -> ffi::boolean {
    panic::resume_unwind(Box::new(Stop::OutOfData))
}

unsafe extern "C-unwind" fn skip_input_data(cinfo: &mut ffi::jpeg_decompress_struct, count: c_long) {
    let Ok(count) = usize::try_from(count) else { return };
    let source = &mut *cinfo.src;
    if count > source.bytes_in_buffer {
        panic::resume_unwind(Box::new(Stop::OutOfData));
    }
    source.next_input_byte = source.next_input_byte.add(count);
    source.bytes_in_buffer -= count;
}
