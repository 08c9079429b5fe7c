//! 3-D M-RoPE position ids (`get_rope_index`) for one unpadded sequence.

use super::error::{ProcessorError, Result};
use super::image::divisible;

/// Per-token (t, h, w) rotary positions of a prompt and its `rope_delta`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RopePositions {
    /// Temporal positions, one per token.
    pub t: Vec<i64>,
    /// Height positions, one per token.
    pub h: Vec<i64>,
    /// Width positions, one per token.
    pub w: Vec<i64>,
    /// `max position + 1 − sequence length`; decode step at sequence index `s` uses position
    /// `s + rope_delta` on all three axes.
    pub rope_delta: i64,
}

impl RopePositions {
    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.t.len()
    }

    /// Whether the sequence is empty.
    pub fn is_empty(&self) -> bool {
        self.t.is_empty()
    }

    /// The positions as a row-major `[3, S]` array (t row, h row, w row), the layout of
    /// transformers' `position_ids`.
    pub fn to_rows(&self) -> Vec<i64> {
        let mut v = Vec::with_capacity(3 * self.len());
        v.extend_from_slice(&self.t);
        v.extend_from_slice(&self.h);
        v.extend_from_slice(&self.w);
        v
    }
}

/// Computes the 3-D positions of spec §5 for one unpadded sequence.
///
/// Text tokens (everything that is not `image_token_id`) get `(p, p, p)` with a running `p`.
/// Image `k` (in the order of `image_grid_thw`) must appear as `t·h·w / merge²` consecutive
/// image tokens; with `h' = h/merge`, `w' = w/merge` the token at merged grid `(a, b)` of
/// temporal group `g` gets `(p, p + a, p + b)`, and `p` advances by `max(h', w')` per group.
/// `rope_delta = max position + 1 − len`.
///
/// Errors ([`ProcessorError::ImageTokenMismatch`]) if the image tokens do not match the grids
/// (count, contiguity, divisibility by `merge_size`).
pub fn rope_index(input_ids: &[u32], image_grid_thw: &[[usize; 3]], image_token_id: u32, merge_size: usize) -> Result<RopePositions> {
    let n = input_ids.len();
    let mut t = Vec::with_capacity(n);
    let mut h = Vec::with_capacity(n);
    let mut w = Vec::with_capacity(n);
    let mismatch = |reason: String| ProcessorError::ImageTokenMismatch { reason };
    if merge_size == 0 {
        return Err(mismatch("merge_size is zero".into()));
    }
    let mut p: i64 = 0;
    let mut max_pos: i64 = -1;
    let mut i = 0;
    let mut img = 0;
    while i < n {
        if input_ids[i] != image_token_id {
            t.push(p);
            h.push(p);
            w.push(p);
            max_pos = max_pos.max(p);
            p += 1;
            i += 1;
            continue;
        }
        let Some(&[gt, gh, gw]) = image_grid_thw.get(img) else {
            return Err(mismatch(format!("image token at index {i} but only {} image grid(s) given", image_grid_thw.len())));
        };
        if !divisible(gh, merge_size) || !divisible(gw, merge_size) || gt == 0 || gh == 0 || gw == 0 {
            return Err(mismatch(format!("grid {:?} of image {img} is not a positive multiple of merge_size {merge_size}", [gt, gh, gw])));
        }
        let (hm, wm) = (gh / merge_size, gw / merge_size);
        let count = gt * hm * wm;
        if i + count > n || input_ids[i..i + count].iter().any(|&x| x != image_token_id) {
            return Err(mismatch(format!("image {img} (grid {:?}) needs {count} consecutive image tokens from index {i}", [gt, gh, gw])));
        }
        for _g in 0..gt {
            for a in 0..hm as i64 {
                for b in 0..wm as i64 {
                    t.push(p);
                    h.push(p + a);
                    w.push(p + b);
                }
            }
            max_pos = max_pos.max(p + (hm.max(wm) as i64) - 1);
            p += hm.max(wm) as i64;
        }
        i += count;
        img += 1;
    }
    if img != image_grid_thw.len() {
        return Err(mismatch(format!("{} image grid(s) given but the sequence contains {img} image run(s)", image_grid_thw.len())));
    }
    let rope_delta = max_pos + 1 - n as i64;
    Ok(RopePositions { t, h, w, rope_delta })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAD: u32 = 151655;

    fn worked_example_ids() -> Vec<u32> {
        // <|im_start|> user \n <|vision_start|> 6×pad <|vision_end|> Hi <|im_end|> \n
        // <|im_start|> assistant \n
        let mut ids = vec![151644, 872, 198, 151652];
        ids.extend([PAD; 6]);
        ids.extend([151653, 13048, 151645, 198, 151644, 77091, 198]);
        ids
    }

    #[test]
    fn spec_worked_example() {
        let ids = worked_example_ids();
        assert_eq!(ids.len(), 17);
        let r = rope_index(&ids, &[[1, 4, 6]], PAD, 2).unwrap();
        assert_eq!(r.t, vec![0, 1, 2, 3, 4, 4, 4, 4, 4, 4, 7, 8, 9, 10, 11, 12, 13]);
        assert_eq!(r.h, vec![0, 1, 2, 3, 4, 4, 4, 5, 5, 5, 7, 8, 9, 10, 11, 12, 13]);
        assert_eq!(r.w, vec![0, 1, 2, 3, 4, 5, 6, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
        assert_eq!(r.rope_delta, -3);
        assert_eq!(r.to_rows().len(), 51);
    }

    #[test]
    fn text_only() {
        let r = rope_index(&[1, 2, 3, 4], &[], PAD, 2).unwrap();
        assert_eq!(r.t, vec![0, 1, 2, 3]);
        assert_eq!(r.h, r.t);
        assert_eq!(r.w, r.t);
        assert_eq!(r.rope_delta, 0);
        let r = rope_index(&[], &[], PAD, 2).unwrap();
        assert!(r.is_empty());
        assert_eq!(r.rope_delta, 0);
    }

    #[test]
    fn tall_image_advances_by_height() {
        // grid (1, 6, 2) → merged 3×1, advance 3.
        let ids = [5, PAD, PAD, PAD, 6];
        let r = rope_index(&ids, &[[1, 6, 2]], PAD, 2).unwrap();
        assert_eq!(r.t, vec![0, 1, 1, 1, 4]);
        assert_eq!(r.h, vec![0, 1, 2, 3, 4]);
        assert_eq!(r.w, vec![0, 1, 1, 1, 4]);
        assert_eq!(r.rope_delta, 0);
    }

    #[test]
    fn mismatches_are_errors() {
        let mut ids = worked_example_ids();
        assert!(rope_index(&ids, &[], PAD, 2).is_err());
        assert!(rope_index(&ids, &[[1, 4, 6], [1, 2, 2]], PAD, 2).is_err());
        assert!(rope_index(&ids, &[[1, 4, 8]], PAD, 2).is_err());
        ids.remove(5);
        assert!(matches!(rope_index(&ids, &[[1, 4, 6]], PAD, 2), Err(ProcessorError::ImageTokenMismatch { .. })));
    }
}
