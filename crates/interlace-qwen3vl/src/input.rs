//! What one forward pass of Qwen3-VL consumes.

use crate::processor::ProcessedInput;

/// Token ids plus, when the prompt has images, their pixel rows and grids.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Qwen3VlInput {
    /// Token ids, `<|image_pad|>` already expanded to one token per image feature.
    pub input_ids: Vec<u32>,
    /// Concatenated patch rows of all images (`[patches, 3·Tp·P·P]`, row-major, f32).
    pub pixel_values: Vec<f32>,
    /// `(t, h, w)` in patches for each image, in prompt order.
    pub image_grid_thw: Vec<[usize; 3]>,
}

impl Qwen3VlInput {
    /// A text-only input.
    pub fn text(input_ids: Vec<u32>) -> Self {
        Self { input_ids, ..Self::default() }
    }
}

impl From<ProcessedInput> for Qwen3VlInput {
    fn from(p: ProcessedInput) -> Self {
        Self { input_ids: p.input_ids, pixel_values: p.pixel_values, image_grid_thw: p.image_grid_thw }
    }
}
