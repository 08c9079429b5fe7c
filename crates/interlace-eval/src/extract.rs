//! Reading the answer out of generated text (`--generate` mode).
//!
//! Follows the spirit of VLMEvalKit's `can_infer` (without its LLM judge): a reply that starts
//! with an option letter (`B`, `B.`, `(B) gray`) is that option; otherwise the one option letter
//! that stands alone as a word; otherwise the one option whose text the reply contains. Yes/no
//! follows `YOrN_Extraction`: the reply must contain exactly one of the words.

/// The option letter a reply chooses, or `None` when it cannot be told.
pub fn extract_choice(reply: &str, options: &[(char, String)]) -> Option<char> {
    let is_option = |c: char| options.iter().any(|(l, _)| *l == c);
    let text = reply.trim();
    let start = text.trim_start_matches(['(', '[', '*', ' ']);
    let mut chars = start.chars();
    if let Some(first) = chars.next() {
        let next = chars.next();
        if is_option(first) && next.is_none_or(|n| !n.is_alphanumeric()) {
            return Some(first);
        }
    }
    let mut standalone: Vec<char> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter_map(|w| {
            let mut cs = w.chars();
            match (cs.next(), cs.next()) {
                (Some(c), None) if is_option(c) => Some(c),
                _ => None,
            }
        })
        .collect();
    standalone.dedup();
    if standalone.len() == 1 {
        return Some(standalone[0]);
    }
    let lower = text.to_lowercase();
    let contained: Vec<char> = options.iter().filter(|(_, o)| lower.contains(&o.to_lowercase())).map(|(l, _)| *l).collect();
    (contained.len() == 1).then(|| contained[0])
}

/// `Some(true)` for a reply with the word yes and not no, `Some(false)` for the reverse, `None`
/// otherwise.
pub fn extract_yes_no(reply: &str) -> Option<bool> {
    let lower = reply.to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric()).collect();
    match (words.contains(&"yes"), words.contains(&"no")) {
        (true, false) => Some(true),
        (false, true) => Some(false),
        _ => None,
    }
}

/// The part of a reply compared with open answers: the first line, trimmed.
pub fn open_answer(reply: &str) -> String {
    reply.trim().lines().next().unwrap_or("").trim().to_string()
}
