//! Rotary position embeddings of the Llama family, with the `linear` and `llama3` frequency rules.
//!
//! Frequencies and angles are computed on the host in f32 in transformers' order of operations
//! (`modeling_rope_utils.py`), then uploaded once per forward pass: the tables are only
//! `seq × head_dim`.

use burn::prelude::{Backend, Tensor};
use burn::tensor::{DType, TensorData};

use crate::config::{RopeConfig, RopeScaling};

/// The inverse frequencies `[head_dim / 2]` of `rope`, in f32 as transformers computes them.
pub fn inverse_frequencies(rope: &RopeConfig, head_dim: usize) -> Vec<f32> {
    let theta = rope.theta as f32;
    let default = (0..head_dim / 2).map(|j| 1.0 / theta.powf((2 * j) as f32 / head_dim as f32));
    match rope.scaling {
        RopeScaling::Default => default.collect(),
        RopeScaling::Linear { factor } => default.map(|f| f / factor as f32).collect(),
        RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position_embeddings } => {
            let (factor, low, high, context) = (factor as f32, low_freq_factor as f32, high_freq_factor as f32, original_max_position_embeddings as f32);
            let (low_freq_wavelen, high_freq_wavelen) = (context / low, context / high);
            default
                .map(|inv| {
                    let wavelen = 2.0 * std::f32::consts::PI / inv;
                    if wavelen < high_freq_wavelen {
                        inv
                    } else if wavelen > low_freq_wavelen {
                        inv / factor
                    } else {
                        let smooth = (context / wavelen - low) / (high - low);
                        (1.0 - smooth) * inv / factor + smooth * inv
                    }
                })
                .collect()
        }
    }
}

/// Cosine and sine tables `[1, 1, seq, head_dim]` for positions `start..start + seq`, in
/// `dtype` (transformers rounds them to the model dtype before rotating).
pub fn rope_tables<B: Backend>(inverse: &[f32], start: usize, seq: usize, dtype: DType, device: &B::Device) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let head_dim = inverse.len() * 2;
    let mut angles = Vec::with_capacity(seq * head_dim);
    for position in start..start + seq {
        let row: Vec<f32> = inverse.iter().map(|f| position as f32 * f).collect();
        angles.extend_from_slice(&row);
        angles.extend_from_slice(&row);
    }
    let table = |f: fn(f32) -> f32| {
        let values: Vec<f32> = angles.iter().map(|&a| f(a)).collect();
        Tensor::<B, 2>::from_data(TensorData::new(values, [seq, head_dim]), (device, DType::F32)).cast(dtype).unsqueeze::<4>()
    };
    (table(f32::cos), table(f32::sin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama3_keeps_short_wavelengths_divides_long_ones_and_blends_between() {
        let default = RopeConfig { theta: 10000.0, scaling: RopeScaling::Default };
        let llama3 = RopeConfig {
            theta: 10000.0,
            scaling: RopeScaling::Llama3 { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 32.0 },
        };
        let (plain, scaled) = (inverse_frequencies(&default, 16), inverse_frequencies(&llama3, 16));
        // Wavelengths 2π/inv: 6.3 (below 32/4: kept), 19.9 (between 8 and 32: blended), 62.8 and up (divided).
        assert_eq!(scaled[0], plain[0]);
        assert!(scaled[1] < plain[1] && scaled[1] > plain[1] / 8.0);
        assert!((2..8).all(|j| scaled[j] == plain[j] / 8.0));
    }
}
