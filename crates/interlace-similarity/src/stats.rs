//! f64 accumulators: running mean/standard deviation, and numpy's `mean`.

use serde::Serialize;

/// Running mean and population standard deviation (Welford), in f64.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RunningStats {
    count: u64,
    mean: f64,
    m2: f64,
}

/// Mean, population standard deviation (numpy's default `ddof=0`) and count of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// Mean over samples.
    pub mean: f64,
    /// Population standard deviation over samples.
    pub std: f64,
    /// Number of samples.
    pub count: u64,
}

impl RunningStats {
    /// Adds one value.
    pub fn push(&mut self, value: f64) {
        self.count += 1;
        let delta = value - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (value - self.mean);
    }

    /// The summary so far (`NaN` mean and std when empty).
    pub fn summary(&self) -> Summary {
        if self.count == 0 {
            return Summary { mean: f64::NAN, std: f64::NAN, count: 0 };
        }
        Summary { mean: self.mean, std: (self.m2 / self.count as f64).sqrt(), count: self.count }
    }
}

/// `numpy.mean` of a float64 array, bit for bit: numpy's pairwise summation (eight partial sums
/// per block of up to 128 values, halves above that) divided by the length.
///
/// The official selection ranks layers by `np.mean` of the per-sample lists
/// (`load_similarity_scores` in `src/train/train_interlace.py`); summing in the same order keeps
/// near-ties ranked exactly as there. `NaN` for an empty slice.
pub fn numpy_mean(values: &[f64]) -> f64 {
    pairwise_sum(values) / values.len() as f64
}

fn pairwise_sum(a: &[f64]) -> f64 {
    const BLOCK: usize = 128;
    let n = a.len();
    if n < 8 {
        return a.iter().fold(0.0, |acc, &x| acc + x);
    }
    if n <= BLOCK {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&a[..8]);
        let whole = n - n % 8;
        let mut i = 8;
        while i < whole {
            for (j, rj) in r.iter_mut().enumerate() {
                *rj += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &x in &a[whole..] {
            res += x;
        }
        return res;
    }
    let mut half = n / 2;
    half -= half % 8;
    pairwise_sum(&a[..half]) + pairwise_sum(&a[half..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welford_matches_two_pass() {
        let values = [0.5, 0.75, 0.25, 1.0];
        let mut stats = RunningStats::default();
        values.iter().for_each(|&v| stats.push(v));
        let s = stats.summary();
        assert!((s.mean - 0.625).abs() < 1e-15);
        let var = values.iter().map(|v| (v - 0.625f64).powi(2)).sum::<f64>() / 4.0;
        assert!((s.std - var.sqrt()).abs() < 1e-15);
        assert_eq!(s.count, 4);
    }

    #[test]
    fn numpy_mean_uses_eight_partial_sums() {
        // numpy sums 8..=128 values in 8 interleaved partial sums, then adds the remainder.
        let v: Vec<f64> = (0..9).map(|i| 0.1 * i as f64).collect();
        let expected = ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7])) + v[8];
        assert_eq!(numpy_mean(&v), expected / 9.0);
    }
}
