//! Assistant-only supervision of a ChatML conversation (`<|im_start|>role\n ... <|im_end|>`), as the
//! official Qwen-VL fine-tuning masks its labels; the families that render ChatML share it.

/// Label of a position that takes no part in the loss (PyTorch's `ignore_index`).
pub const IGNORE_INDEX: i64 = -100;

/// Token ids that delimit assistant turns in a rendered conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnMarkers {
    /// `<|im_start|>`.
    pub im_start: u32,
    /// Tokens of `assistant\n` (the role header after `<|im_start|>`).
    pub assistant_header: Vec<u32>,
    /// `<|im_end|>`.
    pub im_end: u32,
}

/// Labels for a rendered conversation: after each `<|im_start|>assistant\n`, every token up to
/// and including `<|im_end|>` and the newline after it is supervised; every other position is
/// [`IGNORE_INDEX`].
///
/// This is the rule of the official Qwen-VL fine-tuning code (`preprocess_qwen_visual`: from two
/// tokens after `assistant` through `<|im_end|>` + 1), keyed on the whole header so that the word
/// "assistant" inside a user turn cannot start a supervised span.
pub fn assistant_labels(ids: &[u32], markers: &TurnMarkers) -> Vec<i64> {
    let mut labels = vec![IGNORE_INDEX; ids.len()];
    let header_len = markers.assistant_header.len();
    let mut pos = 0;
    while pos < ids.len() {
        let header = ids.get(pos + 1..pos + 1 + header_len);
        if ids[pos] == markers.im_start && header == Some(markers.assistant_header.as_slice()) {
            let start = pos + 1 + header_len;
            let end = ids[start..].iter().position(|&t| t == markers.im_end).map_or(ids.len(), |k| start + k);
            let stop = (end + 2).min(ids.len());
            for (label, &id) in labels[start..stop].iter_mut().zip(&ids[start..stop]) {
                *label = id as i64;
            }
            pos = stop;
        } else {
            pos += 1;
        }
    }
    labels
}

/// Number of positions that contribute to the loss after the causal shift.
pub fn supervised_tokens(labels: &[i64]) -> usize {
    labels.iter().skip(1).filter(|&&l| l != IGNORE_INDEX).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supervises_assistant_turns_through_im_end_and_newline() {
        // <s> user \n hi </s> \n <s> assistant \n ok ! </s> \n <s> user ...
        let markers = TurnMarkers { im_start: 1, assistant_header: vec![7, 3], im_end: 2 };
        let ids = [1, 5, 3, 9, 2, 3, 1, 7, 3, 11, 12, 2, 3, 1, 5];
        let labels = assistant_labels(&ids, &markers);
        let expected: Vec<i64> = vec![-100, -100, -100, -100, -100, -100, -100, -100, -100, 11, 12, 2, 3, -100, -100];
        assert_eq!(labels, expected);
        assert_eq!(supervised_tokens(&labels), 4);
    }

    #[test]
    fn unterminated_turn_runs_to_the_end() {
        let markers = TurnMarkers { im_start: 1, assistant_header: vec![7], im_end: 2 };
        assert_eq!(assistant_labels(&[1, 7, 4, 4], &markers), vec![-100, -100, 4, 4]);
        assert_eq!(assistant_labels(&[7, 4], &markers), vec![-100, -100]);
    }
}
