//! VLMEvalKit's option extraction without a judge model (`vlmeval.utils.matching_util`):
//! `can_infer_option`, then `can_infer_text`.

/// Replies that VLMEvalKit reads as a refusal: the answer `Z`, which matches no option.
const REFUSALS: [&str; 4] = [
    "Sorry, I can't help with images of people yet.",
    "I can't process this file.",
    "I'm sorry, but without the image provided",
    "Cannot determine the answer",
];

/// What extraction made of a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extracted {
    /// An option letter (or `Z`, VLMEvalKit's "refused" answer).
    Letter(char),
    /// Nothing could be read; without a judge VLMEvalKit counts it wrong.
    Unknown,
}

impl Extracted {
    /// The letter, if one was read.
    pub fn letter(self) -> Option<char> {
        match self {
            Extracted::Letter(c) => Some(c),
            Extracted::Unknown => None,
        }
    }
}

/// `can_infer_option`: the reply's words (after `.()[],:;!*#{}` become spaces) contain exactly
/// one option letter, and it is among the last four words; or they contain no option letter
/// but the word `Z`.
fn infer_option(reply: &str, options: &[(char, String)]) -> Extracted {
    if reply.contains("Failed to obtain answer via API") {
        return Extracted::Unknown;
    }
    if REFUSALS.iter().any(|r| reply.contains(r)) {
        return Extracted::Letter('Z');
    }
    let spaced: String = reply.chars().map(|c| if ".()[],:;!*#{}".contains(c) { ' ' } else { c }).collect();
    let words: Vec<&str> = spaced.split_whitespace().collect();
    let is_word = |letter: char| words.iter().any(|w| w.chars().eq(std::iter::once(letter)));
    let count = options.iter().filter(|(l, _)| is_word(*l)).count();
    if count == 1 {
        for (letter, _) in options {
            let first = words.iter().position(|w| w.chars().eq(std::iter::once(*letter)));
            // Python: `splits.index(ch) > len(splits) - 5`.
            if first.is_some_and(|i| i as isize > words.len() as isize - 5) {
                return Extracted::Letter(*letter);
            }
        }
    } else if count == 0 && is_word('Z') {
        return Extracted::Letter('Z');
    }
    Extracted::Unknown
}

/// `can_infer_text`: the lowercased reply, at most twice as long as all option texts together,
/// contains exactly one option's lowercased text.
fn infer_text(reply: &str, options: &[(char, String)]) -> Extracted {
    let reply = reply.to_lowercase();
    let budget: usize = options.iter().map(|(_, text)| text.chars().count()).sum();
    if reply.chars().count() > 2 * budget {
        return Extracted::Unknown;
    }
    let hits: Vec<char> = options.iter().filter(|(_, text)| reply.contains(&text.to_lowercase())).map(|(l, _)| *l).collect();
    match hits.as_slice() {
        [one] => Extracted::Letter(*one),
        _ => Extracted::Unknown,
    }
}

/// `can_infer`: the option a reply chooses, as VLMEvalKit reads it without a judge.
/// `options` are the row's non-empty option columns in letter order, as `str()` shows them.
pub fn infer_choice(reply: &str, options: &[(char, String)]) -> Extracted {
    match infer_option(reply, options) {
        Extracted::Unknown => infer_text(reply, options),
        found => found,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> Vec<(char, String)> {
        [('A', "red"), ('B', "gray"), ('C', "green"), ('D', "blue")].into_iter().map(|(l, t)| (l, t.to_string())).collect()
    }

    #[test]
    fn letters_and_texts() {
        assert_eq!(infer_choice("B", &options()), Extracted::Letter('B'));
        assert_eq!(infer_choice("(B) gray", &options()), Extracted::Letter('B'));
        assert_eq!(infer_choice("The answer is B", &options()), Extracted::Letter('B'));
        assert_eq!(infer_choice("B is the answer to this long question here", &options()), Extracted::Unknown);
        assert_eq!(infer_choice("it is green", &options()), Extracted::Letter('C'));
        assert_eq!(infer_choice("A or B", &options()), Extracted::Unknown);
        assert_eq!(infer_choice("Cannot determine the answer", &options()), Extracted::Letter('Z'));
    }
}
