//! The vision towers of the Qwen-VL families: patch embedding, (Qwen3-VL) interpolated learned
//! positions, 2-D RoPE blocks with per-image or (Qwen2.5-VL) per-window attention, (Qwen3-VL)
//! deepstack taps and the final merger (spec §3). [`VisionKind`] says which parts a tower has.

use burn::module::Module;
use burn::prelude::{Backend, Int, Tensor};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{DType, TensorData};
use interlace_core::attention_kernel::{registered_attention, AttentionMask};

use crate::activation::{gelu, gelu_tanh, quick_gelu, silu};
use crate::config::{VisionConfig, VisionKind};
use crate::linear::HfLinear;
use crate::loader::{named_param, WeightLoader};
use crate::model::row_index;
use crate::norm::VisionNorm;
use crate::rope::{apply_rotary, repeat_along, vision_rope_tables};
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

/// The vision MLP, under each family's tensor names: `linear_fc2(gelu_tanh(linear_fc1(x)))`
/// (Qwen3-VL), `fc2(quick_gelu(fc1(x)))` (Qwen2-VL) or `down_proj(silu(gate_proj(x)) ·
/// up_proj(x))` (Qwen2.5-VL). Exactly one family's projections are present (`Option` fields
/// keep module paths equal to tensor names, as in [`crate::text::TextMlp`]).
#[derive(Module, Debug)]
pub struct VisionMlp<B: Backend> {
    /// Qwen3-VL `[Iv, C]`.
    pub linear_fc1: Option<HfLinear<B>>,
    /// Qwen3-VL `[C, Iv]`.
    pub linear_fc2: Option<HfLinear<B>>,
    /// Qwen2-VL `[Iv, C]`.
    pub fc1: Option<HfLinear<B>>,
    /// Qwen2-VL `[C, Iv]`.
    pub fc2: Option<HfLinear<B>>,
    /// Qwen2.5-VL `[Iv, C]`.
    pub gate_proj: Option<HfLinear<B>>,
    /// Qwen2.5-VL `[Iv, C]`.
    pub up_proj: Option<HfLinear<B>>,
    /// Qwen2.5-VL `[C, Iv]`.
    pub down_proj: Option<HfLinear<B>>,
}

/// One pre-norm vision transformer block.
#[derive(Module, Debug)]
pub struct VisionBlock<B: Backend> {
    /// Norm before attention.
    pub norm1: VisionNorm<B>,
    /// Norm before the MLP.
    pub norm2: VisionNorm<B>,
    /// Attention.
    pub attn: VisionAttention<B>,
    /// MLP.
    pub mlp: VisionMlp<B>,
}

/// Merges `merge²` neighbouring patches into one LLM token: norm, group, then
/// `fc2(gelu(fc1(x)))`.
///
/// The main merger normalises each patch (`C`) before grouping; deepstack mergers group first and
/// normalise the concatenation (`4C`). Qwen3-VL names the parts `norm`, `linear_fc1`,
/// `linear_fc2`; the Qwen2 generation `ln_q`, `mlp.0`, `mlp.2` (an `nn.Sequential` with the GELU
/// at index 1, hence the `None` in the middle of `mlp`).
#[derive(Module, Debug)]
pub struct PatchMerger<B: Backend> {
    /// Qwen3-VL: LayerNorm over `C` (main) or `4C` (deepstack).
    pub norm: Option<VisionNorm<B>>,
    /// Qwen3-VL `[4C, 4C]`.
    pub linear_fc1: Option<HfLinear<B>>,
    /// Qwen3-VL `[H, 4C]`.
    pub linear_fc2: Option<HfLinear<B>>,
    /// Qwen2 generation: LayerNorm (Qwen2-VL) or RMSNorm (Qwen2.5-VL) over `C`.
    pub ln_q: Option<VisionNorm<B>>,
    /// Qwen2 generation: `[Some([4C, 4C]), None, Some([H, 4C])]`, empty otherwise.
    pub mlp: Vec<Option<HfLinear<B>>>,
    /// True for deepstack mergers (norm after grouping).
    pub postshuffle_norm: bool,
}

/// Conv3d patch embedding, stored as a `[C, 3·Tp·P·P]` linear map (same row order as the kernel).
#[derive(Module, Debug)]
pub struct PatchEmbed<B: Backend> {
    /// The flattened convolution.
    pub proj: HfLinear<B>,
}

/// The patch matmul's contraction length is padded with zeros to a multiple of this.
///
/// CubeCL 0.10's double-buffered unit matmuls (`matmul_double_unit_{min,max}_tile_size`)
/// compute wrong values when the contraction length is an odd multiple of 8, and autotune
/// picks them whenever they time fastest. Qwen2-VL's and Qwen2.5-VL's patch (3·2·14·14 = 1176)
/// is such a length: measured on wgpu (lavapipe), 64×1176 by a transposed 32×1176, those two
/// kernels were off by 7.6e-2 and 8.1e-2 relative, the two single-buffered ones by 6e-7; at
/// 1184, 1216, 1280 and 1536 all four were within 7.3e-7. Zero columns do not change the product.
const PATCH_DIM_ALIGN: usize = 16;

impl<B: Backend> PatchEmbed<B> {
    /// Embeds `pixel_values` `[patches, 3·Tp·P·P]` (in the weight's dtype) to `[patches, C]`.
    pub fn forward(&self, pixel_values: Tensor<B, 2>) -> Tensor<B, 2> {
        let [patches, patch_dim] = pixel_values.dims();
        let pad = patch_dim.next_multiple_of(PATCH_DIM_ALIGN) - patch_dim;
        if pad == 0 {
            return self.proj.forward(pixel_values);
        }
        let weight = self.proj.weight.val();
        let options = (&pixel_values.device(), weight.dtype());
        let x = Tensor::cat(vec![pixel_values, Tensor::zeros([patches, pad], options)], 1);
        let weight = Tensor::cat(vec![weight.clone(), Tensor::zeros([weight.dims()[0], pad], options)], 1);
        self.proj.forward_with_weight(x, weight)
    }
}

/// The whole vision tower (`model.visual`).
#[derive(Module, Debug)]
pub struct VisionModel<B: Backend> {
    /// Patch embedding.
    pub patch_embed: PatchEmbed<B>,
    /// Learned position table `[G², C]` (bilinearly interpolated per image; Qwen3-VL only).
    pub pos_embed: Option<burn::nn::Embedding<B>>,
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
        let qwen3 = config.kind == VisionKind::Qwen3Vl;
        let stored_kernel = [c, config.in_channels, config.temporal_patch_size, config.patch_size, config.patch_size];
        let kernel_name = format!("{prefix}.patch_embed.proj.weight");
        let proj = HfLinear {
            weight: named_param(&kernel_name, loader.reshaped(&kernel_name, &stored_kernel, [c, config.patch_dim()])?),
            // Only Qwen3-VL's Conv3d has a bias.
            bias: if qwen3 { Some(loader.param(&format!("{prefix}.patch_embed.proj.bias"), [c])?) } else { None },
        };
        let pos_embed = if qwen3 {
            Some(burn::nn::Embedding { weight: loader.param(&format!("{prefix}.pos_embed.weight"), [config.num_position_embeddings, c])? })
        } else {
            None
        };
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
        let dtype = self.patch_embed.proj.weight.val().dtype();
        let device = pixel_values.device();
        let mut x = self.patch_embed.forward(pixel_values.cast(dtype));
        inspect(VisionStage::PatchEmbed, &x);
        if self.pos_embed.is_some() {
            let positions = self.interpolated_positions(&layout, grid_thw, &device);
            inspect(VisionStage::PositionEmbed, &positions);
            x = x + positions.cast(dtype);
        }
        // Qwen2.5-VL reorders the merged tokens window by window for the whole tower (a window's
        // patches become one contiguous segment) and restores the image order after the merger.
        let windows =
            (self.config.kind == VisionKind::Qwen25Vl).then(|| WindowLayout::new(grid_thw, self.config.spatial_merge_size, self.config.merged_window_side()));
        let mut coordinates = layout.coordinates.clone();
        if let Some(windows) = &windows {
            let unit = self.config.spatial_merge_size * self.config.spatial_merge_size;
            let rows = windows.patch_rows(unit);
            x = x.select(0, row_index::<B>(&rows, &device));
            coordinates = rows.iter().map(|&r| layout.coordinates[r]).collect();
        }
        let (cos, sin) = vision_rope_tables::<B>(&coordinates, self.config.head_dim(), self.config.rope_theta, &device);
        // `[patches, heads, head_dim]`: repeated over the heads once for all blocks (see `repeat_along`).
        let heads = self.config.num_heads;
        let rope = (repeat_along(cos.unsqueeze_dim::<3>(1), 1, heads), repeat_along(sin.unsqueeze_dim::<3>(1), 1, heads));
        let mut deepstack = Vec::new();
        for (b, block) in self.blocks.iter().enumerate() {
            let segments = match &windows {
                Some(windows) if self.config.is_windowed_block(b) => &windows.segments,
                _ => &layout.segments,
            };
            x = block.forward(x, &rope, segments);
            inspect(VisionStage::Block(b), &x);
            if let Some(j) = self.config.deepstack_visual_indexes.iter().position(|&i| i == b) {
                deepstack.push(self.deepstack_merger_list[j].forward(x.clone()));
            }
        }
        let mut image_embeds = self.merger.forward(x);
        if let Some(windows) = &windows {
            image_embeds = image_embeds.select(0, row_index::<B>(&windows.inverse(), &device));
        }
        Ok(VisionOutput { image_embeds, deepstack })
    }

    /// Bilinear (align-corners) interpolation of the learned position grid at every patch,
    /// computed in f32 as transformers 5 does.
    fn interpolated_positions(&self, layout: &PatchLayout, grid_thw: &[[usize; 3]], device: &B::Device) -> Tensor<B, 2> {
        let side = self.config.position_grid_side();
        let table = self.pos_embed.as_ref().expect("only towers with a position table interpolate").weight.val().cast(DType::F32);
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

/// For a windowed tower (Qwen2.5-VL), the merged tokens of `grid_thw` in the order the blocks
/// see them: window by window, each window row-major (transformers' `window_index`); `None`
/// for towers without windows.
pub fn window_order(grid_thw: &[[usize; 3]], config: &VisionConfig) -> Result<Option<Vec<usize>>> {
    if config.kind != VisionKind::Qwen25Vl {
        return Ok(None);
    }
    PatchLayout::new(grid_thw, config.spatial_merge_size)?;
    Ok(Some(WindowLayout::new(grid_thw, config.spatial_merge_size, config.merged_window_side()).window_index))
}

/// Qwen2.5-VL's attention windows (transformers' `get_window_index`): each frame's grid of
/// merged tokens is cut into `side × side` windows, padded at the bottom and right edges.
struct WindowLayout {
    /// Merged-token index (processor order) of every position in window order.
    window_index: Vec<usize>,
    /// `(start, len)` in patch rows of every non-empty window, in window order.
    segments: Vec<(usize, usize)>,
}

impl WindowLayout {
    /// `grid_thw` must already be validated by [`PatchLayout::new`].
    fn new(grid_thw: &[[usize; 3]], merge: usize, side: usize) -> Self {
        let unit = merge * merge;
        let (mut window_index, mut segments) = (Vec::new(), Vec::new());
        let mut offset = 0;
        for &[t, h, w] in grid_thw {
            let (rows, cols) = (h / merge, w / merge);
            // transformers pads by `side - n % side`, a whole empty window when `side` divides
            // `n`; empty windows add no segment, as `unique_consecutive` drops them there.
            let (windows_down, windows_across) = ((rows + side - rows % side) / side, (cols + side - cols % side) / side);
            for frame in 0..t {
                for wr in 0..windows_down {
                    for wc in 0..windows_across {
                        let start = window_index.len();
                        for r in wr * side..((wr + 1) * side).min(rows) {
                            for c in wc * side..((wc + 1) * side).min(cols) {
                                window_index.push(offset + (frame * rows + r) * cols + c);
                            }
                        }
                        if window_index.len() > start {
                            segments.push((start * unit, (window_index.len() - start) * unit));
                        }
                    }
                }
            }
            offset += t * rows * cols;
        }
        Self { window_index, segments }
    }

    /// Patch rows in window order: the `unit` rows of each merged token stay together.
    fn patch_rows(&self, unit: usize) -> Vec<usize> {
        self.window_index.iter().flat_map(|&u| u * unit..(u + 1) * unit).collect()
    }

    /// For each merged token in processor order, its position in window order.
    fn inverse(&self) -> Vec<usize> {
        let mut inverse = vec![0; self.window_index.len()];
        for (position, &u) in self.window_index.iter().enumerate() {
            inverse[u] = position;
        }
        inverse
    }
}

impl<B: Backend> VisionBlock<B> {
    fn forward(&self, x: Tensor<B, 2>, rope: &(Tensor<B, 3>, Tensor<B, 3>), segments: &[(usize, usize)]) -> Tensor<B, 2> {
        let x = x.clone() + self.attn.forward(self.norm1.forward(x), rope, segments);
        x.clone() + self.mlp.forward(self.norm2.forward(x))
    }
}

impl<B: Backend> VisionMlp<B> {
    fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let m = self;
        match (&m.linear_fc1, &m.linear_fc2, &m.fc1, &m.fc2, &m.gate_proj, &m.up_proj, &m.down_proj) {
            (Some(fc1), Some(fc2), None, None, None, None, None) => fc2.forward(gelu_tanh(fc1.forward(x))),
            (None, None, Some(fc1), Some(fc2), None, None, None) => fc2.forward(quick_gelu(fc1.forward(x))),
            (None, None, None, None, Some(gate), Some(up), Some(down)) => down.forward(silu(gate.forward(x.clone())) * up.forward(x)),
            _ => unreachable!("VisionMlp holds exactly one family's projections"),
        }
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
                let (q, k, v) = (heads(&q), heads(&k), heads(&v));
                let options = AttentionModuleOptions { scale: None, softcap: None, is_causal: false };
                let out = registered_attention(&q, &k, &v, AttentionMask::None).unwrap_or_else(|| attention(q, k, v, None, None, options));
                out.squeeze_dim::<3>(0).swap_dims(0, 1).reshape([n, width])
            })
            .collect();
        self.proj.forward(Tensor::cat(outputs, 0))
    }
}

impl<B: Backend> PatchMerger<B> {
    fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let [len, width] = x.dims();
        let (norm, fc1, fc2) = match (&self.norm, &self.linear_fc1, &self.linear_fc2, &self.ln_q, self.mlp.as_slice()) {
            (Some(norm), Some(fc1), Some(fc2), None, []) => (norm, fc1, fc2),
            (None, None, None, Some(norm), [Some(fc1), None, Some(fc2)]) => (norm, fc1, fc2),
            _ => unreachable!("PatchMerger holds exactly one family's modules"),
        };
        let group = fc1.weight.dims()[1] / width;
        let grouped =
            if self.postshuffle_norm { norm.forward(x.reshape([len / group, width * group])) } else { norm.forward(x).reshape([len / group, width * group]) };
        fc2.forward(gelu(fc1.forward(grouped)))
    }
}

fn load_block<B: Backend>(loader: &WeightLoader<B>, prefix: &str, config: &VisionConfig) -> Result<VisionBlock<B>> {
    let (c, i) = (config.hidden_size, config.intermediate_size);
    let layer_norm = config.kind != VisionKind::Qwen25Vl;
    let linear = |name: &str, out: usize, inp: usize| loader.linear(&format!("{prefix}.mlp.{name}"), out, inp, true).map(Some);
    let mlp = match config.kind {
        VisionKind::Qwen3Vl => VisionMlp { linear_fc1: linear("linear_fc1", i, c)?, linear_fc2: linear("linear_fc2", c, i)?, ..VisionMlp::empty() },
        VisionKind::Qwen2Vl => VisionMlp { fc1: linear("fc1", i, c)?, fc2: linear("fc2", c, i)?, ..VisionMlp::empty() },
        VisionKind::Qwen25Vl => {
            VisionMlp { gate_proj: linear("gate_proj", i, c)?, up_proj: linear("up_proj", i, c)?, down_proj: linear("down_proj", c, i)?, ..VisionMlp::empty() }
        }
    };
    Ok(VisionBlock {
        norm1: loader.vision_norm(&format!("{prefix}.norm1"), c, NORM_EPS, layer_norm)?,
        norm2: loader.vision_norm(&format!("{prefix}.norm2"), c, NORM_EPS, layer_norm)?,
        attn: VisionAttention {
            qkv: loader.linear(&format!("{prefix}.attn.qkv"), 3 * c, c, true)?,
            proj: loader.linear(&format!("{prefix}.attn.proj"), c, c, true)?,
            num_heads: config.num_heads,
        },
        mlp,
    })
}

impl<B: Backend> VisionMlp<B> {
    fn empty() -> Self {
        Self { linear_fc1: None, linear_fc2: None, fc1: None, fc2: None, gate_proj: None, up_proj: None, down_proj: None }
    }
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
    let linear = |name: &str, out: usize| loader.linear(&format!("{prefix}.{name}"), out, merged, true);
    Ok(match config.kind {
        VisionKind::Qwen3Vl => PatchMerger {
            norm: Some(loader.vision_norm(&format!("{prefix}.norm"), norm_width, NORM_EPS, true)?),
            linear_fc1: Some(linear("linear_fc1", merged)?),
            linear_fc2: Some(linear("linear_fc2", text_hidden)?),
            ln_q: None,
            mlp: Vec::new(),
            postshuffle_norm,
        },
        VisionKind::Qwen2Vl | VisionKind::Qwen25Vl => PatchMerger {
            norm: None,
            linear_fc1: None,
            linear_fc2: None,
            ln_q: Some(loader.vision_norm(&format!("{prefix}.ln_q"), norm_width, NORM_EPS, config.kind == VisionKind::Qwen2Vl)?),
            mlp: vec![Some(linear("mlp.0", merged)?), None, Some(linear("mlp.2", text_hidden)?)],
            postshuffle_norm,
        },
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
    fn windows_follow_transformers_get_window_index() {
        // 3 × 5 merged tokens, windows of 2: rows {0,1},{2}, columns {0,1},{2,3},{4}.
        let windows = WindowLayout::new(&[[1, 6, 10]], 2, 2);
        assert_eq!(&windows.window_index[..6], &[0, 1, 5, 6, 2, 3]);
        assert_eq!(windows.window_index.len(), 15);
        let sizes: Vec<usize> = windows.segments.iter().map(|&(_, n)| n / 4).collect();
        assert_eq!(sizes, [4, 4, 2, 2, 2, 1]);
        // A side the grid divides: the extra padded window is empty and adds no segment.
        let exact = WindowLayout::new(&[[1, 4, 4], [1, 2, 2]], 2, 2);
        assert_eq!(exact.segments, [(0, 16), (16, 4)]);
        assert_eq!(exact.window_index, [0, 1, 2, 3, 4]);
        let inverse = windows.inverse();
        assert!(inverse.iter().enumerate().all(|(u, &p)| windows.window_index[p] == u));
    }

    /// The zero padding of the contraction leaves the product what the unpadded formula gives,
    /// with and without a bias, on a padded (1176) and an aligned (1536) patch length.
    #[test]
    fn padded_patch_embedding_is_the_plain_product() {
        use burn::backend::Flex;
        use burn::tensor::Distribution;
        let device = Default::default();
        for (patch_dim, with_bias) in [(1176, false), (1176, true), (1536, true)] {
            let x = Tensor::<Flex, 2>::random([5, patch_dim], Distribution::Normal(0.0, 1.0), &device);
            let w = Tensor::<Flex, 2>::random([3, patch_dim], Distribution::Normal(0.0, 1.0), &device);
            let b = Tensor::<Flex, 1>::random([3], Distribution::Normal(0.0, 1.0), &device);
            let embed = PatchEmbed { proj: HfLinear::new(w.clone(), with_bias.then(|| b.clone())) };
            let got = embed.forward(x.clone()).into_data().to_vec::<f32>().unwrap();
            let [x, w, b] = [x.into_data(), w.into_data(), b.into_data()].map(|d| d.to_vec::<f32>().unwrap());
            let mut worst = 0f64;
            for (i, value) in got.iter().enumerate() {
                let (row, col) = (i / 3, i % 3);
                let dot: f64 = (0..patch_dim).map(|k| f64::from(x[row * patch_dim + k]) * f64::from(w[col * patch_dim + k])).sum();
                let want = dot + if with_bias { f64::from(b[col]) } else { 0.0 };
                worst = worst.max((f64::from(*value) - want).abs());
            }
            eprintln!("patch_dim {patch_dim}, bias {with_bias}: worst absolute error {worst:.2e}");
            // f32 sums of 1176–1536 products of unit normals: measured 8.2e-6–1.6e-5 in three runs.
            assert!(worst < 3e-5, "patch_dim {patch_dim}: worst absolute error {worst:.2e}");
        }
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
