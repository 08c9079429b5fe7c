//! VLMEvalKit's TSV files: what pandas `to_csv(sep="\t")` writes (QUOTE_MINIMAL).
//!
//! A field that contains a tab, a newline or a double quote is enclosed in double quotes, with
//! inner quotes doubled; everything else is verbatim.

/// One data record with the 1-based line on which it starts.
#[derive(Debug)]
pub struct TsvRecord {
    /// Line number of the record's first character.
    pub line: usize,
    /// The fields, in column order.
    pub fields: Vec<String>,
}

/// Splits `text` into records of fields. An unterminated quote is an error naming its line.
pub fn parse_tsv(text: &str) -> Result<Vec<TsvRecord>, String> {
    let mut records = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut line = 1;
    let mut record_line = 1;
    let mut at_field_start = true;
    let mut in_quotes = false;
    let mut quote_line = 0;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if at_field_start => {
                in_quotes = true;
                quote_line = line;
                at_field_start = false;
            }
            '\t' => {
                fields.push(std::mem::take(&mut field));
                at_field_start = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                fields.push(std::mem::take(&mut field));
                records.push(TsvRecord { line: record_line, fields: std::mem::take(&mut fields) });
                line += 1;
                record_line = line;
                at_field_start = true;
            }
            _ => {
                field.push(c);
                at_field_start = false;
            }
        }
    }
    if in_quotes {
        return Err(format!("the quoted field opened on line {quote_line} is never closed"));
    }
    if !field.is_empty() || !fields.is_empty() {
        fields.push(field);
        records.push(TsvRecord { line: record_line, fields });
    }
    // Blank lines carry no row (pandas skips them too).
    records.retain(|r| !(r.fields.len() == 1 && r.fields[0].trim().is_empty()));
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::parse_tsv;

    #[test]
    fn quoting_and_lines() {
        let text = "a\tb\n1\t\"x\ty \"\"q\"\"\"\n\n2\t\"multi\nline\"\r\n3\tz";
        let records = parse_tsv(text).unwrap();
        let fields: Vec<_> = records.iter().map(|r| (r.line, r.fields.clone())).collect();
        assert_eq!(
            fields,
            vec![
                (1, vec!["a".to_string(), "b".into()]),
                (2, vec!["1".into(), "x\ty \"q\"".into()]),
                (4, vec!["2".into(), "multi\nline".into()]),
                (6, vec!["3".into(), "z".into()]),
            ]
        );
        assert!(parse_tsv("a\n\"open").unwrap_err().contains("line 2"));
    }
}
