//! The analysis is generic over any decoder stack and runs exactly one forward pass per sample,
//! whatever packs are requested; its results equal a brute-force computation over all hidden
//! states.

use std::cell::Cell;

use burn::backend::Flex;
use burn::prelude::{Backend, Tensor, TensorData};
use interlace_core::{CollectHiddenStates, CoreError, DecoderStack, HiddenStateObserver, LayerSet, ObservedForward, TapPoint};
use interlace_similarity::{CalibrationConfig, Calibrator, PackObserver};

type B = Flex<f32>;

/// A toy 7-layer stack: layer l maps h to sin((l+1)·h) + h·0.5 (no Qwen anywhere). Counts passes.
struct Toy {
    layers: usize,
    passes: Cell<usize>,
}

impl DecoderStack for Toy {
    fn num_layers(&self) -> usize {
        self.layers
    }
    fn layer_param_count(&self, _index: usize) -> Result<usize, CoreError> {
        Ok(0)
    }
    fn param_count(&self) -> usize {
        0
    }
    fn remove_layers(self, drop: &LayerSet) -> Result<Self, CoreError> {
        Ok(Self { layers: self.layers - drop.len(), passes: self.passes })
    }
    fn set_trainable_layers(self, _trainable: &LayerSet) -> Result<Self, CoreError> {
        Ok(self)
    }
}

impl ObservedForward<B> for Toy {
    type Input = Vec<f32>;
    type Error = CoreError;

    fn forward_observed(&self, input: &Vec<f32>, _tap: TapPoint, observer: &mut dyn HiddenStateObserver<B>) -> Result<Tensor<B, 3>, CoreError> {
        self.passes.set(self.passes.get() + 1);
        let width = 4;
        let mut h = Tensor::<B, 3>::from_data(TensorData::new(input.clone(), [1, input.len() / width, width]), &Default::default());
        observer.observe(0, h.clone())?;
        for l in 0..self.layers {
            h = (h.clone() * (l as f32 + 1.0)).sin() + h * 0.5;
            observer.observe(l + 1, h.clone())?;
        }
        Ok(h)
    }
}

fn samples() -> Vec<Vec<f32>> {
    (0..5).map(|s| (0..4 * (3 + s)).map(|j| ((j * 7 + s * 3) % 11) as f32 / 5.0 - 1.0).collect()).collect()
}

fn brute_force_cos<Bk: Backend>(states: &[Tensor<Bk, 3>], i: usize, k: usize) -> f64 {
    let a = states[i].to_data().into_vec::<f32>().unwrap();
    let b = states[i + k].to_data().into_vec::<f32>().unwrap();
    let rows: Vec<f64> = a
        .chunks(4)
        .zip(b.chunks(4))
        .map(|(x, y)| {
            let dot: f64 = x.iter().zip(y).map(|(p, q)| *p as f64 * *q as f64).sum();
            let nx: f64 = x.iter().map(|p| (*p as f64).powi(2)).sum::<f64>().sqrt();
            let ny: f64 = y.iter().map(|p| (*p as f64).powi(2)).sum::<f64>().sqrt();
            dot / (nx * ny)
        })
        .collect();
    rows.iter().sum::<f64>() / rows.len() as f64
}

#[test]
fn one_forward_pass_per_sample_for_any_number_of_packs() {
    for packs in [vec![1], vec![1, 2, 3], vec![1, 2, 3, 4, 7]] {
        let toy = Toy { layers: 7, passes: Cell::new(0) };
        let mut calibrator = Calibrator::new(CalibrationConfig { packs: packs.clone(), tap: TapPoint::Transformers }, 7).unwrap();
        for s in samples() {
            calibrator.run_sample(&toy, &s).unwrap();
        }
        assert_eq!(toy.passes.get(), 5, "packs {packs:?}: one pass per sample");
        let result = calibrator.finish();
        assert_eq!(result.packs.iter().map(|p| p.k).collect::<Vec<_>>(), packs);
        for pack in &result.packs {
            assert_eq!(pack.per_sample.len(), 7 - pack.k + 1, "every i with i + k <= L");
            assert!(pack.per_sample.iter().all(|v| v.len() == 5));
        }
    }
}

#[test]
fn streaming_observer_equals_brute_force_over_all_hidden_states() {
    let toy = Toy { layers: 7, passes: Cell::new(0) };
    let mut calibrator = Calibrator::new(CalibrationConfig::default(), 7).unwrap();
    let all = samples();
    for s in &all {
        calibrator.run_sample(&toy, s).unwrap();
    }
    let result = calibrator.finish();
    for (n, s) in all.iter().enumerate() {
        let mut collect = CollectHiddenStates::<B>::default();
        toy.forward_observed(s, TapPoint::Transformers, &mut collect).unwrap();
        for pack in &result.packs {
            for i in 0..=7 - pack.k {
                let expected = brute_force_cos(&collect.states, i, pack.k);
                assert!((pack.per_sample[i][n] - expected).abs() < 1e-6, "sample {n} pack {} layer {i}", pack.k);
            }
        }
    }
    // Summaries: cosine mean equals the mean of the per-sample values; influence = 1 - cosine.
    let pack1 = &result.packs[0];
    let mean0 = pack1.per_sample[0].iter().sum::<f64>() / 5.0;
    assert!((pack1.summaries[0].1[0].mean - mean0).abs() < 1e-12);
    assert!((pack1.summaries[2].1[0].mean - (1.0 - mean0)).abs() < 1e-12);
    assert_eq!(pack1.summaries[0].1[0].count, 5);
}

#[test]
fn observer_refuses_out_of_order_states_and_batches() {
    let mut observer = PackObserver::<B>::new(&[1], 2);
    let h = Tensor::<B, 3>::zeros([1, 2, 4], &Default::default());
    assert!(observer.observe(1, h.clone()).is_err(), "index 0 must come first");
    let batch = Tensor::<B, 3>::zeros([2, 2, 4], &Default::default());
    assert!(observer.observe(0, batch).is_err(), "batch > 1 is refused");
}

#[test]
fn bad_pack_lists_are_refused() {
    for packs in [vec![], vec![0], vec![8], vec![1, 1]] {
        assert!(Calibrator::new(CalibrationConfig { packs: packs.clone(), tap: TapPoint::Transformers }, 7).is_err(), "{packs:?}");
    }
}
