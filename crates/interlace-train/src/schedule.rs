//! Learning-rate schedule: linear warmup, then cosine decay to zero.

/// Cosine schedule with linear warmup, as transformers' `get_cosine_schedule_with_warmup`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CosineWithWarmup {
    /// Peak learning rate.
    pub peak_lr: f64,
    /// Optimizer steps of linear warmup.
    pub warmup_steps: usize,
    /// Total optimizer steps.
    pub total_steps: usize,
}

impl CosineWithWarmup {
    /// Warmup over `ceil(total_steps · warmup_ratio)` steps, as transformers' `warmup_ratio`.
    pub fn with_ratio(peak_lr: f64, total_steps: usize, warmup_ratio: f64) -> Self {
        let warmup_steps = (total_steps as f64 * warmup_ratio).ceil() as usize;
        Self { peak_lr, warmup_steps, total_steps }
    }

    /// Learning rate used by optimizer step `step` (0-based).
    pub fn lr(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.peak_lr * step as f64 / self.warmup_steps.max(1) as f64;
        }
        let decay_steps = self.total_steps.saturating_sub(self.warmup_steps).max(1);
        let progress = (step - self.warmup_steps) as f64 / decay_steps as f64;
        self.peak_lr * (0.5 * (1.0 + (std::f64::consts::PI * progress).cos())).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_transformers_shape() {
        let s = CosineWithWarmup::with_ratio(1e-5, 100, 0.03);
        assert_eq!(s.warmup_steps, 3);
        assert_eq!(s.lr(0), 0.0);
        assert!((s.lr(1) - 1e-5 / 3.0).abs() < 1e-18);
        assert_eq!(s.lr(3), 1e-5);
        let mid = 3 + 97 / 2;
        assert!((s.lr(mid) - 0.5e-5).abs() < 1e-7);
        assert!(s.lr(99) < 1e-8);
    }
}
