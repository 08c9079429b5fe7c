//! The sampling portion and the label the official script derives from it for its file names.

use crate::DataError;

/// Checks that `portion` is a fraction in (0, 1].
pub fn check_portion(portion: f64) -> Result<f64, DataError> {
    if portion.is_finite() && portion > 0.0 && portion <= 1.0 {
        Ok(portion)
    } else {
        Err(DataError::Argument(format!("--portion must be in (0, 1], got {portion}")))
    }
}

/// The label in the official output names, `str(portion).split(".")[-1]`: `01` for 0.01,
/// `001` for 0.001, `5` for 0.5, `0` for 1.0, and `1e-05` for 0.00001 (Python writes floats
/// below 1e-4 in scientific notation, which has no dot).
pub fn portion_label(portion: f64) -> String {
    let repr = python_float_repr(portion);
    repr.rsplit('.').next().unwrap_or(&repr).to_string()
}

/// `repr(x)` of a Python float: the shortest digits that round-trip (as Rust's formatting),
/// positional for decimal exponents in [-4, 16), scientific (`1e-05`, `1.5e+16`) otherwise,
/// and always with a `.0` when positional and integral.
fn python_float_repr(x: f64) -> String {
    if x == 0.0 {
        return "0.0".into();
    }
    // `{:e}` gives the shortest round-trip digits: "2.5e-5", "1e-2", "1e0".
    let scientific = format!("{:e}", x.abs());
    let (mantissa, exponent) = scientific.split_once('e').expect("`{:e}` always has an exponent");
    let exponent: i32 = exponent.parse().expect("`{:e}` exponent is an integer");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if x < 0.0 { "-" } else { "" };
    if (-4..16).contains(&exponent) {
        let point = exponent + 1;
        let body = if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            format!("{}.{}", &digits[..point as usize], &digits[point as usize..])
        };
        format!("{sign}{body}")
    } else {
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{exponent_sign}{:02}", exponent.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_match_python_str_split() {
        // Each pair is (portion, str(portion).split(".")[-1]) as CPython 3.11 prints it.
        for (portion, label) in [
            (0.01, "01"),
            (0.001, "001"),
            (0.0001, "0001"),
            (0.00001, "1e-05"),
            (0.000025, "5e-05"),
            (0.5, "5"),
            (1.0, "0"),
            (0.25, "25"),
            (0.1, "1"),
            (0.015, "015"),
        ] {
            assert_eq!(portion_label(portion), label, "{portion}");
        }
        assert_eq!(python_float_repr(1e16), "1e+16");
        assert_eq!(python_float_repr(123.0), "123.0");
        assert_eq!(python_float_repr(0.3), "0.3");
    }

    #[test]
    fn portions_outside_the_unit_interval_are_refused() {
        for bad in [0.0, -0.1, 1.5, f64::NAN] {
            assert!(check_portion(bad).is_err(), "{bad}");
        }
        assert_eq!(check_portion(1.0).unwrap(), 1.0);
    }
}
