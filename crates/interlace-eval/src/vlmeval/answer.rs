//! VLMEvalKit's answer normalisation (`vlmeval.smp.process_punctuation`,
//! `vqa_eval._process_digit_article`, `vqa_eval.process_answer`) and its yes/no extraction
//! (`yorn.YOrN_Extraction`), rule for rule.

/// Punctuation that `process_punctuation` removes or turns into a space.
const PUNCTUATION: [char; 21] = [';', '/', '[', ']', '"', '{', '}', '(', ')', '=', '+', '\\', '_', '-', '>', '<', '@', '`', ',', '?', '!'];

/// The VQA evaluation's contraction table: a word spelled without its apostrophe gets it back.
const CONTRACTIONS: [(&str, &str); 120] = [
    ("aint", "ain't"),
    ("arent", "aren't"),
    ("cant", "can't"),
    ("couldve", "could've"),
    ("couldnt", "couldn't"),
    ("couldn'tve", "couldn't've"),
    ("couldnt've", "couldn't've"),
    ("didnt", "didn't"),
    ("doesnt", "doesn't"),
    ("dont", "don't"),
    ("hadnt", "hadn't"),
    ("hadnt've", "hadn't've"),
    ("hadn'tve", "hadn't've"),
    ("hasnt", "hasn't"),
    ("havent", "haven't"),
    ("hed", "he'd"),
    ("hed've", "he'd've"),
    ("he'dve", "he'd've"),
    ("hes", "he's"),
    ("howd", "how'd"),
    ("howll", "how'll"),
    ("hows", "how's"),
    ("Id've", "I'd've"),
    ("I'dve", "I'd've"),
    ("Im", "I'm"),
    ("Ive", "I've"),
    ("isnt", "isn't"),
    ("itd", "it'd"),
    ("itd've", "it'd've"),
    ("it'dve", "it'd've"),
    ("itll", "it'll"),
    ("let's", "let's"),
    ("maam", "ma'am"),
    ("mightnt", "mightn't"),
    ("mightnt've", "mightn't've"),
    ("mightn'tve", "mightn't've"),
    ("mightve", "might've"),
    ("mustnt", "mustn't"),
    ("mustve", "must've"),
    ("neednt", "needn't"),
    ("notve", "not've"),
    ("oclock", "o'clock"),
    ("oughtnt", "oughtn't"),
    ("ow's'at", "'ow's'at"),
    ("'ows'at", "'ow's'at"),
    ("'ow'sat", "'ow's'at"),
    ("shant", "shan't"),
    ("shed've", "she'd've"),
    ("she'dve", "she'd've"),
    ("she's", "she's"),
    ("shouldve", "should've"),
    ("shouldnt", "shouldn't"),
    ("shouldnt've", "shouldn't've"),
    ("shouldn'tve", "shouldn't've"),
    ("somebody'd", "somebodyd"),
    ("somebodyd've", "somebody'd've"),
    ("somebody'dve", "somebody'd've"),
    ("somebodyll", "somebody'll"),
    ("somebodys", "somebody's"),
    ("someoned", "someone'd"),
    ("someoned've", "someone'd've"),
    ("someone'dve", "someone'd've"),
    ("someonell", "someone'll"),
    ("someones", "someone's"),
    ("somethingd", "something'd"),
    ("somethingd've", "something'd've"),
    ("something'dve", "something'd've"),
    ("somethingll", "something'll"),
    ("thats", "that's"),
    ("thered", "there'd"),
    ("thered've", "there'd've"),
    ("there'dve", "there'd've"),
    ("therere", "there're"),
    ("theres", "there's"),
    ("theyd", "they'd"),
    ("theyd've", "they'd've"),
    ("they'dve", "they'd've"),
    ("theyll", "they'll"),
    ("theyre", "they're"),
    ("theyve", "they've"),
    ("twas", "'twas"),
    ("wasnt", "wasn't"),
    ("wed've", "we'd've"),
    ("we'dve", "we'd've"),
    ("weve", "we've"),
    ("werent", "weren't"),
    ("whatll", "what'll"),
    ("whatre", "what're"),
    ("whats", "what's"),
    ("whatve", "what've"),
    ("whens", "when's"),
    ("whered", "where'd"),
    ("wheres", "where's"),
    ("whereve", "where've"),
    ("whod", "who'd"),
    ("whod've", "who'd've"),
    ("who'dve", "who'd've"),
    ("wholl", "who'll"),
    ("whos", "who's"),
    ("whove", "who've"),
    ("whyll", "why'll"),
    ("whyre", "why're"),
    ("whys", "why's"),
    ("wont", "won't"),
    ("wouldve", "would've"),
    ("wouldnt", "wouldn't"),
    ("wouldnt've", "wouldn't've"),
    ("wouldn'tve", "wouldn't've"),
    ("yall", "y'all"),
    ("yall'll", "y'all'll"),
    ("y'allll", "y'all'll"),
    ("yall'd've", "y'all'd've"),
    ("y'alld've", "y'all'd've"),
    ("y'all'dve", "y'all'd've"),
    ("youd", "you'd"),
    ("youd've", "you'd've"),
    ("you'dve", "you'd've"),
    ("youll", "you'll"),
    ("youre", "you're"),
    ("youve", "you've"),
];

/// Number words the VQA evaluation writes as digits.
const NUMBER_WORDS: [(&str, &str); 12] = [
    ("none", "0"),
    ("zero", "0"),
    ("one", "1"),
    ("two", "2"),
    ("three", "3"),
    ("four", "4"),
    ("five", "5"),
    ("six", "6"),
    ("seven", "7"),
    ("eight", "8"),
    ("nine", "9"),
    ("ten", "10"),
];

/// Python's `\d` in a `str` pattern. Python also matches non-ASCII decimal digits (Arabic-Indic,
/// fullwidth, ...); Rust's standard library cannot tell those from other numeric characters, so
/// only ASCII digits count here, the one known divergence, and only for such replies.
fn is_digit(c: char) -> bool {
    c.is_ascii_digit()
}

/// Whether `text` has a comma between two digits (`commaStrip` matches).
fn has_digit_comma(chars: &[char]) -> bool {
    chars.windows(3).any(|w| is_digit(w[0]) && w[1] == ',' && is_digit(w[2]))
}

/// `process_punctuation`: each listed mark is removed when it touches a space somewhere in the
/// text (or the text has a digit comma anywhere), else replaced by a space; then periods not
/// next to a digit are removed, at most 32 of them (`re.sub(..., re.UNICODE)` passes the flag
/// as the replacement count).
pub fn process_punctuation(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let digit_comma = has_digit_comma(&chars);
    let mut out = text.to_string();
    for mark in PUNCTUATION {
        let touches_space = text.contains(&format!("{mark} ")) || text.contains(&format!(" {mark}"));
        out = out.replace(mark, if touches_space || digit_comma { "" } else { " " });
    }
    let chars: Vec<char> = out.chars().collect();
    let mut stripped = String::with_capacity(out.len());
    let mut removed = 0;
    for (i, &c) in chars.iter().enumerate() {
        let lone_period = c == '.' && !(i > 0 && is_digit(chars[i - 1])) && !chars.get(i + 1).is_some_and(|&n| is_digit(n));
        if lone_period && removed < 32 {
            removed += 1;
            continue;
        }
        stripped.push(c);
    }
    stripped
}

/// `_process_digit_article`: lowercase, number words to digits, articles dropped, contractions
/// restored, words joined by single spaces.
pub fn process_digit_article(text: &str) -> String {
    let lower = text.to_lowercase();
    let words =
        lower.split_whitespace().map(|w| NUMBER_WORDS.iter().find(|(k, _)| *k == w).map_or(w, |(_, v)| *v)).filter(|w| !matches!(*w, "a" | "an" | "the"));
    words.map(|w| CONTRACTIONS.iter().find(|(k, _)| *k == w).map_or(w, |(_, v)| *v)).collect::<Vec<_>>().join(" ")
}

/// `process_answer`: line breaks and tabs to spaces, trimmed, punctuation, then digits and
/// articles. Both the prediction and every reference go through it before VQA accuracy.
pub fn process_answer(text: &str) -> String {
    let flat = text.replace(['\n', '\t'], " ");
    process_digit_article(&process_punctuation(flat.trim()))
}

/// `YOrN_Extraction`: `Yes` when the reply's words include yes and not no, `No` for the
/// reverse, `Unknown` otherwise.
pub fn yes_or_no(reply: &str) -> &'static str {
    let normalised = process_punctuation(&reply.to_lowercase());
    let words: Vec<&str> = normalised.split_whitespace().collect();
    match (words.contains(&"yes"), words.contains(&"no")) {
        (true, false) => "Yes",
        (false, true) => "No",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn punctuation_follows_the_vqa_script() {
        assert_eq!(process_punctuation("black-and-white"), "black and white");
        assert_eq!(process_punctuation("1,000 - ok"), "1000  ok");
        assert_eq!(process_punctuation("3.5 ft."), "3.5 ft");
        assert_eq!(process_answer("The Two dogs."), "2 dogs");
        assert_eq!(process_answer("dont"), "don't");
        assert_eq!(yes_or_no("Yes, there is."), "Yes");
        assert_eq!(yes_or_no("yes and no"), "Unknown");
    }
}
