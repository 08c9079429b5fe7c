//! Reading single cells out of Arrow arrays, whichever of the equivalent physical types
//! (`Utf8`/`LargeUtf8`/`Utf8View`, `List`/`LargeList`, any integer width) a writer chose.

use arrow_array::cast::AsArray;
use arrow_array::types::{Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type, UInt64Type, UInt8Type};
use arrow_array::{Array, ArrayRef, StructArray};

/// The string at `i` (`None` for null), or what the array holds instead.
pub fn string_at(array: &dyn Array, i: usize) -> Result<Option<String>, String> {
    if array.is_null(i) {
        return Ok(None);
    }
    if let Some(a) = array.as_string_opt::<i32>() {
        return Ok(Some(a.value(i).to_string()));
    }
    if let Some(a) = array.as_string_opt::<i64>() {
        return Ok(Some(a.value(i).to_string()));
    }
    if let Some(a) = array.as_string_view_opt() {
        return Ok(Some(a.value(i).to_string()));
    }
    Err(format!("expected strings, found {}", array.data_type()))
}

/// The bytes at `i` (`None` for null).
pub fn bytes_at(array: &dyn Array, i: usize) -> Result<Option<&[u8]>, String> {
    if array.is_null(i) {
        return Ok(None);
    }
    if let Some(a) = array.as_binary_opt::<i32>() {
        return Ok(Some(a.value(i)));
    }
    if let Some(a) = array.as_binary_opt::<i64>() {
        return Ok(Some(a.value(i)));
    }
    if let Some(a) = array.as_binary_view_opt() {
        return Ok(Some(a.value(i)));
    }
    Err(format!("expected binary, found {}", array.data_type()))
}

/// The list at `i` as an array of its elements (`None` for null).
pub fn list_at(array: &dyn Array, i: usize) -> Result<Option<ArrayRef>, String> {
    if array.is_null(i) {
        return Ok(None);
    }
    if let Some(a) = array.as_list_opt::<i32>() {
        return Ok(Some(a.value(i)));
    }
    if let Some(a) = array.as_list_opt::<i64>() {
        return Ok(Some(a.value(i)));
    }
    if let Some(a) = array.as_fixed_size_list_opt() {
        return Ok(Some(a.value(i)));
    }
    Err(format!("expected a list, found {}", array.data_type()))
}

/// The strings of the list at `i`, nulls kept (`None` for a null list).
pub fn strings_at(array: &dyn Array, i: usize) -> Result<Option<Vec<Option<String>>>, String> {
    let Some(items) = list_at(array, i)? else { return Ok(None) };
    (0..items.len()).map(|k| string_at(items.as_ref(), k)).collect::<Result<Vec<_>, _>>().map(Some)
}

/// The integer at `i` (`None` for null).
pub fn int_at(array: &dyn Array, i: usize) -> Result<Option<i64>, String> {
    if array.is_null(i) {
        return Ok(None);
    }
    macro_rules! try_type {
        ($($t:ty),*) => {$(
            if let Some(a) = array.as_primitive_opt::<$t>() {
                return i64::try_from(a.value(i)).map(Some).map_err(|_| format!("{} does not fit in 64 bits", a.value(i)));
            }
        )*};
    }
    try_type!(Int64Type, Int32Type, Int16Type, Int8Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type);
    Err(format!("expected integers, found {}", array.data_type()))
}

/// `array` as a struct array.
pub fn as_struct(array: &dyn Array) -> Result<&StructArray, String> {
    array.as_struct_opt().ok_or_else(|| format!("expected a struct, found {}", array.data_type()))
}

/// The encoded bytes of a Hugging Face `Image` cell (a struct of `bytes` and `path`) at `i`:
/// `None` for a null cell, an error for a cell that only names a file.
pub fn image_bytes_at(array: &dyn Array, i: usize) -> Result<Option<&[u8]>, String> {
    if array.is_null(i) {
        return Ok(None);
    }
    let image = as_struct(array)?;
    let bytes = image.column_by_name("bytes").ok_or("an image struct without a `bytes` field")?;
    match bytes_at(bytes.as_ref(), i)? {
        Some(bytes) => Ok(Some(bytes)),
        None => {
            let path = image.column_by_name("path").map(|p| string_at(p.as_ref(), i)).transpose()?.flatten();
            Err(format!("an image without embedded bytes (path {path:?}): only embedded images can be read"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::builder::{ListBuilder, StringBuilder};
    use arrow_array::{Int32Array, LargeStringArray, StringViewArray};

    #[test]
    fn every_string_layout_reads_the_same() {
        let plain = arrow_array::StringArray::from(vec![Some("a"), None]);
        let large = LargeStringArray::from(vec![Some("a"), None]);
        let view = StringViewArray::from(vec![Some("a"), None]);
        for array in [&plain as &dyn Array, &large, &view] {
            assert_eq!(string_at(array, 0).unwrap().as_deref(), Some("a"));
            assert_eq!(string_at(array, 1).unwrap(), None);
        }
        assert!(string_at(&Int32Array::from(vec![1]), 0).unwrap_err().contains("expected strings"));
    }

    #[test]
    fn lists_of_strings_keep_their_nulls() {
        let mut builder = ListBuilder::new(StringBuilder::new());
        builder.values().append_value("x");
        builder.values().append_null();
        builder.append(true);
        builder.append(false);
        let lists = builder.finish();
        assert_eq!(strings_at(&lists, 0).unwrap(), Some(vec![Some("x".to_string()), None]));
        assert_eq!(strings_at(&lists, 1).unwrap(), None);
        assert_eq!(int_at(&Int32Array::from(vec![Some(-3), None]), 0).unwrap(), Some(-3));
    }
}
