//! The Qwen3-VL vision tower: patch embedding, interpolated learned positions, 2-D RoPE blocks
//! with per-image attention, deepstack taps and the final merger (spec §3).

use burn::module::Module;
use burn::prelude::{Backend, Int, Tensor};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{DType, TensorData};

use crate::activation::{gelu, gelu_tanh};
use crate::config::VisionConfig;
use crate::linear::HfLinear;
use crate::loader::{named_param, WeightLoader};
use crate::norm::LayerNorm;
use crate::rope::{apply_rotary, vision_rope_tables};
use crate::{Qwen3VlError, Result};

const NORM_EPS: f64 = 1e-6;

/// Output of the vision tower for all images of one prompt.
#[derive(Debug, Clone)]
pub struct VisionOutput<B: Backend> {
    /// Main merger output `[tokens, text_hidden]`: one row per `<|image_pad|>` token.
    pub image_embeds: Tensor<B, 2>,
    /// Deepstack features, one `[tokens, text_hidden]` tensor per tap in ascending block order.
    pub deepstack: Vec<Tensor<B, 2>>,
}

/// An intermediate result of the vision tower, handed to the inspector of
/// [`VisionModel::forward_inspected`] (the tensors transformers' `visual.patch_embed`,
/// interpolated `pos_embed` and `visual.blocks[b]` produce).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisionStage {
    /// Output of the patch embedding `[patches, C]`, before positions are added.
    PatchEmbed,
    /// The interpolated learned position embedding `[patches, C]` that is added to it (f32).
    PositionEmbed,
    /// Output of vision block `b` `[patches, C]`.
    Block(usize),
}

/// Self-attention of a vision block; one fused `qkv` projection.
#[derive(Module, Debug)]
pub struct VisionAttention<B: Backend> {
    /// `[3C, C]` projection producing q, k, v (each head-major).
    pub qkv: HfLinear<B>,
    /// `[C, C]` output projection.
    pub proj: HfLinear<B>,
    /// Number of heads.
    pub num_heads: usize,
}

/// The vision MLP: `fc2(gelu_tanh(fc1(x)))`.
#[derive(Module, Debug)]
pub struct VisionMlp<B: Backend> {
    /// `[Iv, C]`.
    pub linear_fc1: HfLinear<B>,
    /// `[C, Iv]`.
    pub linear_fc2: HfLinear<B>,
}

/// One pre-norm vision transformer block.
#[derive(Module, Debug)]
pub struct VisionBlock<B: Backend> {
    /// Norm before attention.
    pub norm1: LayerNorm<B>,
    /// Norm before the MLP.
    pub norm2: LayerNorm<B>,
    /// Attention.
    pub attn: VisionAttention<B>,
    /// MLP.
    pub mlp: VisionMlp<B>,
}

/// Merges `merge²` neighbouring patches into one LLM token.
///
/// The main merger normalises each patch (`C`) before grouping; deepstack mergers group first and
/// normalise the concatenation (`4C`).
#[derive(Module, Debug)]
pub struct PatchMerger<B: Backend> {
    /// LayerNorm over `C` (main) or `4C` (deepstack).
    pub norm: LayerNorm<B>,
    /// `[4C, 4C]`.
    pub linear_fc1: HfLinear<B>,
    /// `[H, 4C]`.
    pub linear_fc2: HfLinear<B>,
    /// True for deepstack mergers (norm after grouping).
    pub postshuffle_norm: bool,
}

/// Conv3d patch embedding, stored as a `[C, 3·Tp·P·P]` linear map (same row order as the kernel).
#[derive(Module, Debug)]
pub struct PatchEmbed<B: Backend> {
    /// The flattened convolution.
    pub proj: HfLinear<B>,
}

/// The whole vision tower (`model.visual`).
#[derive(Module, Debug)]
pub struct VisionModel<B: Backend> {
    /// Patch embedding.
    pub patch_embed: PatchEmbed<B>,
    /// Learned position table `[G², C]` (bilinearly interpolated per image).
    pub pos_embed: burn::nn::Embedding<B>,
    /// Transformer blocks.
    pub blocks: Vec<VisionBlock<B>>,
    /// Final merger producing image embeddings.
    pub merger: PatchMerger<B>,
    /// Deepstack mergers, in `deepstack_visual_indexes` order.
    pub deepstack_merger_list: Vec<PatchMerger<B>>,
    /// Tower settings.
    #[module(skip)]
    pub config: VisionConfig,
}

impl<B: Backend> VisionModel<B> {
    /// Loads `{prefix}.*` (normally `model.visual`).
    pub fn load(loader: &WeightLoader<B>, prefix: &str, config: &VisionConfig, text_hidden: usize) -> Result<Self> {
        let c = config.hidden_size;
        let stored_kernel = [c, config.in_channels, config.temporal_patch_size, config.patch_size, config.patch_size];
        let kernel_name = format!("{prefix}.patch_embed.proj.weight");
        let proj = HfLinear {
            weight: named_param(&kernel_name, loader.reshaped(&kernel_name, &stored_kernel, [c, config.patch_dim()])?),
            bias: Some(loader.param(&format!("{prefix}.patch_embed.proj.bias"), [c])?),
        };
        let pos_embed = burn::nn::Embedding { weight: loader.param(&format!("{prefix}.pos_embed.weight"), [config.num_position_embeddings, c])? };
        let blocks = (0..config.depth).map(|b| load_block(loader, &format!("{prefix}.blocks.{b}"), config)).collect::<Result<Vec<_>>>()?;
        let merger = load_merger(loader, &format!("{prefix}.merger"), config, text_hidden, false)?;
        let deepstack_merger_list = (0..config.deepstack_visual_indexes.len())
            .map(|j| load_merger(loader, &format!("{prefix}.deepstack_merger_list.{j}"), config, text_hidden, true))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { patch_embed: PatchEmbed { proj }, pos_embed, blocks, merger, deepstack_merger_list, config: config.clone() })
    }

    /// Runs the tower on `pixel_values` `[patches, patch_dim]` (f32, processor row order) for
    /// images with grids `grid_thw` (in prompt order).
    pub fn forward(&self, pixel_values: Tensor<B, 2>, grid_thw: &[[usize; 3]]) -> Result<VisionOutput<B>> {
        self.forward_inspected(pixel_values, grid_thw, &mut |_, _| {})
    }

    /// [`forward`](Self::forward), also handing every intermediate ([`VisionStage`]) to
    /// `inspect` as soon as it is computed, in tower order; for parity tests and debugging.
    /// The result is the same as `forward`'s.
    pub fn forward_inspected(
        &self,
        pixel_values: Tensor<B, 2>,
        grid_thw: &[[usize; 3]],
        inspect: &mut dyn FnMut(VisionStage, &Tensor<B, 2>),
    ) -> Result<VisionOutput<B>> {
        let layout = PatchLayout::new(grid_thw, self.config.spatial_merge_size)?;
        let [rows, width] = pixel_values.dims();
        if rows != layout.coordinates.len() || width != self.config.patch_dim() {
            return Err(Qwen3VlError::Input(format!(
                "pixel_values is [{rows}, {width}] but image_grid_thw implies [{}, {}]",
                layout.coordinates.len(),
                self.config.patch_dim()
            )));
        }
        let dtype = self.pos_embed.weight.val().dtype();
        let device = pixel_values.device();
        let mut x = self.patch_embed.proj.forward(pixel_values.cast(dtype));
        inspect(VisionStage::PatchEmbed, &x);
        let positions = self.interpolated_positions(&layout, grid_thw, &device);
        inspect(VisionStage::PositionEmbed, &positions);
        x = x + positions.cast(dtype);
        let (cos, sin) = vision_rope_tables::<B>(&layout.coordinates, self.config.head_dim(), self.config.rope_theta, &device);
        let rope = (cos.unsqueeze_dim::<3>(1), sin.unsqueeze_dim::<3>(1));
        let mut deepstack = Vec::new();
        for (b, block) in self.blocks.iter().enumerate() {
            x = block.forward(x, &rope, &layout.segments);
            inspect(VisionStage::Block(b), &x);
            if let Some(j) = self.config.deepstack_visual_indexes.iter().position(|&i| i == b) {
                deepstack.push(self.deepstack_merger_list[j].forward(x.clone()));
            }
        }
        Ok(VisionOutput { image_embeds: self.merger.forward(x), deepstack })
    }

    /// Bilinear (align-corners) interpolation of the learned position grid at every patch,
    /// computed in f32 as transformers 5 does.
    fn interpolated_positions(&self, layout: &PatchLayout, grid_thw: &[[usize; 3]], device: &B::Device) -> Tensor<B, 2> {
        let side = self.config.position_grid_side();
        let table = self.pos_embed.weight.val().cast(DType::F32);
        let n = layout.coordinates.len();
        let mut indices = [const { Vec::new() }; 4];
        let mut weights = [const { Vec::new() }; 4];
        let mut patch = 0;
        for &[t, h, w] in grid_thw {
            for _ in 0..t * h * w {
                let (r, c) = layout.coordinates[patch];
                let (r0, r1, fr) = interpolation_axis(r, h, side);
                let (c0, c1, fc) = interpolation_axis(c, w, side);
                let taps = [(r0, c0, (1.0 - fr) * (1.0 - fc)), (r0, c1, (1.0 - fr) * fc), (r1, c0, fr * (1.0 - fc)), (r1, c1, fr * fc)];
                for (k, (row, col, weight)) in taps.into_iter().enumerate() {
                    indices[k].push((row * side + col) as i64);
                    weights[k].push(weight);
                }
                patch += 1;
            }
        }
        let mut sum: Option<Tensor<B, 2>> = None;
        for k in 0..4 {
            let index = Tensor::<B, 1, Int>::from_data(TensorData::new(std::mem::take(&mut indices[k]), [n]), device);
            let weight = Tensor::<B, 1>::from_data(TensorData::new(std::mem::take(&mut weights[k]), [n]), (device, DType::F32));
            let term = table.clone().select(0, index) * weight.unsqueeze_dim::<2>(1);
            sum = Some(match sum {
                Some(total) => total + term,
                None => term,
            });
        }
        sum.expect("four interpolation taps")
    }
}

/// Grid index below, grid index above and fractional weight of patch coordinate `p` on an axis of
/// `len` patches mapped onto `side` learned positions (align-corners).
fn interpolation_axis(p: usize, len: usize, side: usize) -> (usize, usize, f32) {
    let scaled = p as f32 * (side - 1) as f32 / (len.max(2) - 1) as f32;
    let low = scaled.floor() as usize;
    (low, (low + 1).min(side - 1), scaled - low as f32)
}

/// Patch coordinates in the processor's merge-block order and the attention segments.
struct PatchLayout {
    /// Full-resolution `(row, col)` of every patch row of `pixel_values`.
    coordinates: Vec<(usize, usize)>,
    /// `(start, len)` of every attention segment (one per image and temporal group).
    segments: Vec<(usize, usize)>,
}

impl PatchLayout {
    fn new(grid_thw: &[[usize; 3]], merge: usize) -> Result<Self> {
        let mut coordinates = Vec::new();
        let mut segments = Vec::new();
        for (i, &[t, h, w]) in grid_thw.iter().enumerate() {
            if t == 0 || h == 0 || w == 0 || h % merge != 0 || w % merge != 0 {
                return Err(Qwen3VlError::Input(format!(
                    "image {i} has grid (t={t}, h={h}, w={w}); h and w must be positive multiples of the merge size {merge}"
                )));
            }
            for _ in 0..t {
                segments.push((coordinates.len(), h * w));
                for br in 0..h / merge {
                    for bc in 0..w / merge {
                        for ir in 0..merge {
                            for ic in 0..merge {
                                coordinates.push((br * merge + ir, bc * merge + ic));
                            }
                        }
                    }
                }
            }
        }
        Ok(Self { coordinates, segments })
    }
}

impl<B: Backend> VisionBlock<B> {
    fn forward(&self, x: Tensor<B, 2>, rope: &(Tensor<B, 3>, Tensor<B, 3>), segments: &[(usize, usize)]) -> Tensor<B, 2> {
        let x = x.clone() + self.attn.forward(self.norm1.forward(x), rope, segments);
        let hidden = gelu_tanh(self.mlp.linear_fc1.forward(self.norm2.forward(x.clone())));
        x + self.mlp.linear_fc2.forward(hidden)
    }
}

impl<B: Backend> VisionAttention<B> {
    fn forward(&self, x: Tensor<B, 2>, rope: &(Tensor<B, 3>, Tensor<B, 3>), segments: &[(usize, usize)]) -> Tensor<B, 2> {
        let [len, width] = x.dims();
        let head_dim = width / self.num_heads;
        let dtype = x.dtype();
        let qkv = self.qkv.forward(x).reshape([len, 3, self.num_heads, head_dim]);
        let part = |i: usize| qkv.clone().narrow(1, i, 1).reshape([len, self.num_heads, head_dim]);
        // Vision RoPE runs in f32 and rounds q, k back once (transformers upcasts here).
        let rotate = |t: Tensor<B, 3>| apply_rotary(t.cast(DType::F32), rope.0.clone(), rope.1.clone()).cast(dtype);
        let (q, k, v) = (rotate(part(0)), rotate(part(1)), part(2));
        // Images never attend to each other: one attention call per segment.
        let outputs: Vec<Tensor<B, 2>> = segments
            .iter()
            .map(|&(start, n)| {
                let heads = |t: &Tensor<B, 3>| t.clone().narrow(0, start, n).swap_dims(0, 1).unsqueeze_dim::<4>(0);
                let options = AttentionModuleOptions { scale: None, softcap: None, is_causal: false };
                attention(heads(&q), heads(&k), heads(&v), None, None, options).squeeze_dim::<3>(0).swap_dims(0, 1).reshape([n, width])
            })
            .collect();
        self.proj.forward(Tensor::cat(outputs, 0))
    }
}

impl<B: Backend> PatchMerger<B> {
    fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let [len, width] = x.dims();
        let group = self.linear_fc1.weight.dims()[1] / width;
        let grouped = if self.postshuffle_norm {
            self.norm.forward(x.reshape([len / group, width * group]))
        } else {
            self.norm.forward(x).reshape([len / group, width * group])
        };
        self.linear_fc2.forward(gelu(self.linear_fc1.forward(grouped)))
    }
}

fn load_block<B: Backend>(loader: &WeightLoader<B>, prefix: &str, config: &VisionConfig) -> Result<VisionBlock<B>> {
    let c = config.hidden_size;
    Ok(VisionBlock {
        norm1: loader.layer_norm(&format!("{prefix}.norm1"), c, NORM_EPS)?,
        norm2: loader.layer_norm(&format!("{prefix}.norm2"), c, NORM_EPS)?,
        attn: VisionAttention {
            qkv: loader.linear(&format!("{prefix}.attn.qkv"), 3 * c, c, true)?,
            proj: loader.linear(&format!("{prefix}.attn.proj"), c, c, true)?,
            num_heads: config.num_heads,
        },
        mlp: VisionMlp {
            linear_fc1: loader.linear(&format!("{prefix}.mlp.linear_fc1"), config.intermediate_size, c, true)?,
            linear_fc2: loader.linear(&format!("{prefix}.mlp.linear_fc2"), c, config.intermediate_size, true)?,
        },
    })
}

fn load_merger<B: Backend>(
    loader: &WeightLoader<B>,
    prefix: &str,
    config: &VisionConfig,
    text_hidden: usize,
    postshuffle_norm: bool,
) -> Result<PatchMerger<B>> {
    let merged = config.merged_width();
    let norm_width = if postshuffle_norm { merged } else { config.hidden_size };
    Ok(PatchMerger {
        norm: loader.layer_norm(&format!("{prefix}.norm"), norm_width, NORM_EPS)?,
        linear_fc1: loader.linear(&format!("{prefix}.linear_fc1"), merged, merged, true)?,
        linear_fc2: loader.linear(&format!("{prefix}.linear_fc2"), text_hidden, merged, true)?,
        postshuffle_norm,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_follows_merge_blocks() {
        let layout = PatchLayout::new(&[[1, 4, 6]], 2).unwrap();
        assert_eq!(&layout.coordinates[..8], &[(0, 0), (0, 1), (1, 0), (1, 1), (0, 2), (0, 3), (1, 2), (1, 3)]);
        assert_eq!(layout.coordinates[12], (2, 0));
        assert_eq!(layout.segments, vec![(0, 24)]);
    }

    #[test]
    fn odd_grids_are_rejected() {
        assert!(PatchLayout::new(&[[1, 3, 4]], 2).is_err());
    }

    #[test]
    fn interpolation_hits_the_corners() {
        assert_eq!(interpolation_axis(0, 4, 48), (0, 1, 0.0));
        let (low, high, frac) = interpolation_axis(3, 4, 48);
        assert_eq!((low, high, frac), (47, 47, 0.0));
    }
}
