//! JPEG encoding as Pillow's `Image.save(path)` does it for an RGB image: libjpeg-turbo's
//! baseline encoder with its defaults (quality 75, 4:2:0 chroma subsampling, the Annex K
//! quantisation tables scaled by `jpeg_set_quality`, the standard Huffman tables, JFIF header,
//! accurate integer DCT), so the file equals Pillow's byte for byte.
//!
//! mozjpeg is a libjpeg-turbo fork whose defaults differ (progressive scans, trellis
//! quantisation, other tables); its `JCP_FASTEST` profile restores libjpeg-turbo's.
//! `interlace-data`'s `tests/official.rs` compares the files with Pillow's byte for byte
//! (RGB images from PNG RGB/RGBA/L/P/LA and JPEG RGB/L sources, 12-28 pixels a side).

use std::mem;
use std::os::raw::c_int;
use std::panic::{self, AssertUnwindSafe};

use image::RgbImage;
use mozjpeg_sys as ffi;

use crate::error::DecodeError;

/// Pillow's default JPEG quality.
pub const PIL_JPEG_QUALITY: u8 = 75;

/// Encodes `rgb` as Pillow's `save(..., "JPEG", quality=quality)` with no other options
/// (`quality` 1 to 100; Pillow's default is [`PIL_JPEG_QUALITY`]).
pub fn encode_jpeg(rgb: &RgbImage, quality: u8) -> Result<Vec<u8>, DecodeError> {
    if rgb.width() == 0 || rgb.height() == 0 || rgb.width() > 65_500 || rgb.height() > 65_500 {
        return Err(DecodeError::Jpeg(format!("cannot encode a {}x{} image as JPEG", rgb.width(), rgb.height())));
    }
    // SAFETY: all-zero is the "not yet created" state of these C structs, and
    // `jpeg_destroy_compress` accepts a never-created one.
    let mut err: Box<ffi::jpeg_error_mgr> = Box::new(unsafe { mem::zeroed() });
    let mut cinfo: Box<ffi::jpeg_compress_struct> = Box::new(unsafe { mem::zeroed() });
    let mut dest = Box::new(VecDestination { mgr: unsafe { mem::zeroed() }, out: Vec::new(), chunk: vec![0; 1 << 16] });
    unsafe { ffi::jpeg_std_error(&mut err) };
    err.error_exit = Some(error_exit);
    err.emit_message = Some(ignore_message);
    cinfo.common.err = &mut *err;
    dest.mgr.init_destination = Some(init_destination);
    dest.mgr.empty_output_buffer = Some(empty_output_buffer);
    dest.mgr.term_destination = Some(term_destination);
    let quality = c_int::from(quality.clamp(1, 100));
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| unsafe { compress(&mut cinfo, &mut dest, rgb, quality) }));
    // SAFETY: frees what libjpeg allocated, finished or not.
    unsafe { ffi::jpeg_destroy_compress(&mut cinfo) };
    match outcome {
        Ok(()) => Ok(mem::take(&mut dest.out)),
        Err(payload) => match payload.downcast::<String>() {
            Ok(message) => Err(DecodeError::Jpeg(*message)),
            Err(other) => panic::resume_unwind(other),
        },
    }
}

/// The destination manager first, so libjpeg's `cinfo.dest` pointer is also ours.
#[repr(C)]
struct VecDestination {
    mgr: ffi::jpeg_destination_mgr,
    out: Vec<u8>,
    chunk: Vec<u8>,
}

/// # Safety
/// `cinfo` has a valid error manager; `dest` outlives the call.
unsafe fn compress(cinfo: &mut ffi::jpeg_compress_struct, dest: &mut VecDestination, rgb: &RgbImage, quality: c_int) {
    ffi::jpeg_create_compress(cinfo);
    cinfo.dest = &mut dest.mgr;
    cinfo.image_width = rgb.width();
    cinfo.image_height = rgb.height();
    cinfo.input_components = 3;
    cinfo.in_color_space = ffi::J_COLOR_SPACE::JCS_RGB;
    // Before `jpeg_set_defaults`, which reads it: libjpeg-turbo's defaults, not mozjpeg's.
    ffi::jpeg_c_set_int_param(cinfo, ffi::J_INT_PARAM::JINT_COMPRESS_PROFILE, ffi::JINT_COMPRESS_PROFILE_VALUE::JCP_FASTEST as c_int);
    ffi::jpeg_set_defaults(cinfo);
    // Pillow: `jpeg_set_quality(&cinfo, quality, TRUE)` (force baseline tables).
    ffi::jpeg_set_quality(cinfo, quality, 1);
    cinfo.dct_method = ffi::J_DCT_METHOD::JDCT_ISLOW;
    cinfo.optimize_coding = 0;
    ffi::jpeg_start_compress(cinfo, 1);
    let row = rgb.width() as usize * 3;
    let samples = rgb.as_raw();
    while cinfo.next_scanline < cinfo.image_height {
        let line = samples[cinfo.next_scanline as usize * row..].as_ptr();
        ffi::jpeg_write_scanlines(cinfo, &line, 1);
    }
    ffi::jpeg_finish_compress(cinfo);
}

unsafe extern "C-unwind" fn init_destination(cinfo: &mut ffi::jpeg_compress_struct) {
    let dest = &mut *(cinfo.dest as *mut VecDestination);
    dest.mgr.next_output_byte = dest.chunk.as_mut_ptr();
    dest.mgr.free_in_buffer = dest.chunk.len();
}

/// libjpeg calls this when the chunk is full, and then the whole chunk is output.
unsafe extern "C-unwind" fn empty_output_buffer(cinfo: &mut ffi::jpeg_compress_struct) -> ffi::boolean {
    let dest = &mut *(cinfo.dest as *mut VecDestination);
    dest.out.extend_from_slice(&dest.chunk);
    dest.mgr.next_output_byte = dest.chunk.as_mut_ptr();
    dest.mgr.free_in_buffer = dest.chunk.len();
    1
}

unsafe extern "C-unwind" fn term_destination(cinfo: &mut ffi::jpeg_compress_struct) {
    let dest = &mut *(cinfo.dest as *mut VecDestination);
    let used = dest.chunk.len() - dest.mgr.free_in_buffer;
    dest.out.extend_from_slice(&dest.chunk[..used]);
}

unsafe extern "C-unwind" fn error_exit(cinfo: &mut ffi::jpeg_common_struct) {
    let code = cinfo.err.as_ref().map_or(0, |e| e.msg_code);
    panic::resume_unwind(Box::new(format!("libjpeg error {code} while encoding")))
}

unsafe extern "C-unwind" fn ignore_message(_cinfo: &mut ffi::jpeg_common_struct, _level: c_int) {}
