//! Fields that hold a list written as a Python literal.
//!
//! VLMEvalKit stores several answers (TextVQA) or several images (multi-image rows) in one TSV
//! cell as `str(list)`, e.g. `['a', "b's"]`; JSON lists (`["a", "b"]`) are accepted too.

/// Parses `['a', "b"]`-style text into its strings; `None` when `text` is not such a list.
pub fn parse_list(text: &str) -> Option<Vec<String>> {
    let inner = text.trim().strip_prefix('[')?.strip_suffix(']')?;
    let mut items = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(quote) = chars.next() else { break };
        if quote != '\'' && quote != '"' {
            return None;
        }
        let mut item = String::new();
        loop {
            match chars.next()? {
                '\\' => match chars.next()? {
                    'n' => item.push('\n'),
                    't' => item.push('\t'),
                    other => item.push(other),
                },
                c if c == quote => break,
                c => item.push(c),
            }
        }
        items.push(item);
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            None => break,
            Some(',') => continue,
            Some(_) => return None,
        }
    }
    Some(items)
}

#[cfg(test)]
mod tests {
    use super::parse_list;

    #[test]
    fn python_and_json_lists() {
        assert_eq!(parse_list("['a', \"b's\", 'c\\'d']").unwrap(), vec!["a", "b's", "c'd"]);
        assert_eq!(parse_list("[\"x\",\"y\"]").unwrap(), vec!["x", "y"]);
        assert_eq!(parse_list("[]").unwrap(), Vec::<String>::new());
        assert_eq!(parse_list("['a', 'b',]").unwrap(), vec!["a", "b"]);
        assert!(parse_list("not a list").is_none());
        assert!(parse_list("[1, 2]").is_none());
        assert!(parse_list("['unterminated]").is_none());
    }
}
