//! What a TSV cell becomes after `pandas.read_csv(sep='\t')` and `str()`.
//!
//! VLMEvalKit reads benchmark TSVs with pandas' default type inference and formats the cells
//! into prompts and answer choices with `str(...)`. So a column of option texts `3`, `2.5` and
//! one empty cell becomes a float column, and the prompt shows `3.0`; a column of `3` and `4`
//! stays integral. Reproducing that is what makes interlace's prompts identical to VLMEvalKit's.

/// pandas' default missing-value spellings (`pandas._libs.parsers.STR_NA_VALUES`).
const NA_VALUES: [&str; 19] = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
];

/// Whether pandas reads `cell` as a missing value (NaN).
pub fn is_missing(cell: &str) -> bool {
    NA_VALUES.contains(&cell)
}

fn as_int(cell: &str) -> Option<i64> {
    let digits = cell.strip_prefix(['+', '-']).unwrap_or(cell);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    cell.parse::<i64>().ok()
}

fn as_float(cell: &str) -> Option<f64> {
    // Rust's parser accepts what pandas' C parser does for ordinary numbers, plus `inf`/`nan`
    // spellings, which pandas accepts too.
    let plain = cell.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'));
    let special = matches!(cell.to_ascii_lowercase().trim_start_matches(['+', '-']), "inf" | "infinity");
    if !plain && !special {
        return None;
    }
    cell.parse::<f64>().ok()
}

fn as_bool(cell: &str) -> Option<bool> {
    match cell {
        "True" | "TRUE" | "true" => Some(true),
        "False" | "FALSE" | "false" => Some(false),
        _ => None,
    }
}

/// Python's `repr(float)`: the shortest digits that round-trip, positional for exponents in
/// `-4..16` (with a trailing `.0` when integral), scientific (`1e+16`, `2.5e-05`) otherwise.
pub fn python_float(value: f64) -> String {
    if value.is_nan() {
        return "nan".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.into();
    }
    if value == 0.0 {
        return if value.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    let sci = format!("{value:e}");
    let (mantissa, exponent) = sci.split_once('e').expect("`{:e}` always has an exponent");
    let exponent: i32 = exponent.parse().expect("`{:e}` writes an integer exponent");
    if (-4..16).contains(&exponent) {
        let text = format!("{value}");
        if text.contains('.') {
            text
        } else {
            format!("{text}.0")
        }
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.unsigned_abs())
    }
}

/// One TSV column as pandas types it, each cell as `str()` of its value; `None` for NaN.
///
/// pandas tries, per column: all integers and nothing missing → `int64`; all numbers (missing
/// allowed) → `float64`; all booleans and nothing missing → `bool`; anything else → the strings
/// as written. A missing cell is NaN in every case.
pub fn column_as_pandas(cells: &[&str]) -> Vec<Option<String>> {
    let present: Vec<&str> = cells.iter().copied().filter(|c| !is_missing(c)).collect();
    let any_missing = present.len() < cells.len();
    let render = |f: &dyn Fn(&str) -> String| cells.iter().map(|c| (!is_missing(c)).then(|| f(c))).collect();
    if present.is_empty() {
        return vec![None; cells.len()];
    }
    if !any_missing && present.iter().all(|c| as_int(c).is_some()) {
        return render(&|c| as_int(c).expect("checked above").to_string());
    }
    if present.iter().all(|c| as_int(c).is_some() || as_float(c).is_some()) {
        return render(&|c| python_float(as_float(c).expect("an integer or float parses as f64")));
    }
    if !any_missing && present.iter().all(|c| as_bool(c).is_some()) {
        return render(&|c| if as_bool(c) == Some(true) { "True" } else { "False" }.to_string());
    }
    render(&|c| c.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_python_does() {
        assert_eq!(python_float(3.0), "3.0");
        assert_eq!(python_float(2.5), "2.5");
        assert_eq!(python_float(0.1), "0.1");
        assert_eq!(python_float(1e16), "1e+16");
        assert_eq!(python_float(123456789012345.0), "123456789012345.0");
        assert_eq!(python_float(0.0001), "0.0001");
        assert_eq!(python_float(0.00001), "1e-05");
        assert_eq!(python_float(-2.5e-7), "-2.5e-07");
    }

    #[test]
    fn columns_take_pandas_types() {
        assert_eq!(column_as_pandas(&["3", "04"]), [Some("3".into()), Some("4".into())]);
        assert_eq!(column_as_pandas(&["3", ""]), [Some("3.0".into()), None]);
        assert_eq!(column_as_pandas(&["3", "2.50"]), [Some("3.0".into()), Some("2.5".into())]);
        assert_eq!(column_as_pandas(&["3", "cat"]), [Some("3".into()), Some("cat".into())]);
        assert_eq!(column_as_pandas(&["true", "False"]), [Some("True".into()), Some("False".into())]);
        assert_eq!(column_as_pandas(&["NA", "x"]), [None, Some("x".into())]);
    }
}
