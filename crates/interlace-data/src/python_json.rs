//! JSON text exactly as Python's `json` module writes it, so our files equal the official ones
//! byte for byte: `json.dumps(x)` (separators `", "` and `": "`) for JSONL lines and
//! `json.dump(x, f, indent=4)` for arrays, both with `ensure_ascii=True` (every character
//! outside printable ASCII as `\uXXXX`, astral ones as surrogate pairs).

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{Formatter, PrettyFormatter};

/// `json.dumps(value)`: one line, Python's default separators, ASCII only.
pub fn to_python_line<T: Serialize>(value: &T) -> String {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, AsciiFormatter(PythonCompact));
    value.serialize(&mut serializer).expect("serialising to memory cannot fail");
    String::from_utf8(out).expect("ASCII output")
}

/// `json.dumps(value, indent=4)`: four-space indentation, ASCII only.
pub fn to_python_indented<T: Serialize>(value: &T) -> String {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, AsciiFormatter(PrettyFormatter::with_indent(b"    ")));
    value.serialize(&mut serializer).expect("serialising to memory cannot fail");
    String::from_utf8(out).expect("ASCII output")
}

/// Writes a JSON array element by element as `json.dump(list, f, indent=4)` would, so an array of
/// any length is written with one element in memory at a time.
pub struct PythonArrayWriter<W: Write> {
    out: W,
    len: usize,
}

impl<W: Write> PythonArrayWriter<W> {
    /// Starts an array on `out`.
    pub fn new(out: W) -> Self {
        Self { out, len: 0 }
    }

    /// Appends one element.
    pub fn push<T: Serialize>(&mut self, value: &T) -> io::Result<()> {
        self.out.write_all(if self.len == 0 { b"[\n" } else { b",\n" })?;
        let text = to_python_indented(value);
        // Nested one level: every line of the element gets four more spaces. Strings never hold a
        // raw newline (it is escaped), so splitting on '\n' splits lines only.
        for (i, line) in text.split('\n').enumerate() {
            if i > 0 {
                self.out.write_all(b"\n")?;
            }
            self.out.write_all(b"    ")?;
            self.out.write_all(line.as_bytes())?;
        }
        self.len += 1;
        Ok(())
    }

    /// Closes the array (`[]` when empty, as Python writes it) and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(if self.len == 0 { b"[]" } else { b"\n]" })?;
        Ok(self.out)
    }
}

/// Python's compact default separators: `", "` between items, `": "` after keys.
#[derive(Default)]
struct PythonCompact;

impl Formatter for PythonCompact {
    fn begin_array_value<W: ?Sized + Write>(&mut self, writer: &mut W, first: bool) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, writer: &mut W, first: bool) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }
}

/// Wraps a formatter and escapes what serde_json leaves raw but Python's `ensure_ascii` does
/// not: every character outside `' '..='~'`.
struct AsciiFormatter<F>(F);

impl<F: Formatter> Formatter for AsciiFormatter<F> {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }

    fn write_string_fragment<W: ?Sized + Write>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()> {
        if fragment.bytes().all(|b| (b' '..=b'~').contains(&b)) {
            return writer.write_all(fragment.as_bytes());
        }
        let mut units = [0u16; 2];
        for c in fragment.chars() {
            if (' '..='~').contains(&c) {
                writer.write_all(&[c as u8])?;
            } else {
                for unit in c.encode_utf16(&mut units) {
                    write!(writer, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lines_use_python_separators_and_ascii_escapes() {
        let value = json!({"a": ["x", null, "é中😀\u{7f}\n\"\\/"]});
        assert_eq!(to_python_line(&value), r#"{"a": ["x", null, "\u00e9\u4e2d\ud83d\ude00\u007f\n\"\\/"]}"#);
    }

    #[test]
    fn arrays_nest_elements_four_spaces_deeper() {
        let mut writer = PythonArrayWriter::new(Vec::new());
        writer.push(&json!({"k": [1, 2], "e": []})).unwrap();
        writer.push(&json!("s")).unwrap();
        let text = String::from_utf8(writer.finish().unwrap()).unwrap();
        assert_eq!(text, "[\n    {\n        \"e\": [],\n        \"k\": [\n            1,\n            2\n        ]\n    },\n    \"s\"\n]");
        assert_eq!(String::from_utf8(PythonArrayWriter::new(Vec::new()).finish().unwrap()).unwrap(), "[]");
    }
}
