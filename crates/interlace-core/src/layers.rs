use crate::CoreError;

/// A sorted set of distinct layer indices, validated against the number of layers of a stack.
///
/// Building one checks every index once, so code that receives a `LayerSet` never has to
/// re-check ranges or duplicates.
///
/// ```
/// use interlace_core::LayerSet;
/// let set = LayerSet::new([9, 3, 15], 36).unwrap();
/// assert_eq!(set.as_slice(), &[3, 9, 15]);
/// assert!(LayerSet::new([3, 3], 36).is_err());
/// assert!(LayerSet::new([36], 36).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct LayerSet {
    indices: Vec<usize>,
    num_layers: usize,
}

impl LayerSet {
    /// Validates `indices` (any order) against a stack of `num_layers` layers.
    pub fn new(indices: impl IntoIterator<Item = usize>, num_layers: usize) -> Result<Self, CoreError> {
        let mut sorted: Vec<usize> = indices.into_iter().collect();
        sorted.sort_unstable();
        for pair in sorted.windows(2) {
            if pair[0] == pair[1] {
                return Err(CoreError::DuplicateLayer { index: pair[0] });
            }
        }
        if let Some(&index) = sorted.iter().find(|&&i| i >= num_layers) {
            return Err(CoreError::LayerOutOfRange { index, num_layers });
        }
        Ok(Self { indices: sorted, num_layers })
    }

    /// Like [`LayerSet::new`], and also refuses a set that contains every layer, which a
    /// removal must never do.
    pub fn for_removal(indices: impl IntoIterator<Item = usize>, num_layers: usize) -> Result<Self, CoreError> {
        let set = Self::new(indices, num_layers)?;
        if set.len() == num_layers {
            return Err(CoreError::RemovesEveryLayer { num_layers });
        }
        Ok(set)
    }

    /// The indices in ascending order.
    pub fn as_slice(&self) -> &[usize] {
        &self.indices
    }

    /// Number of layers of the stack the set was validated against.
    pub fn num_layers(&self) -> usize {
        self.num_layers
    }

    /// Number of indices in the set.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// True when the set holds no index.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// True when `index` is in the set.
    pub fn contains(&self, index: usize) -> bool {
        self.indices.binary_search(&index).is_ok()
    }

    /// The indices that are *not* in the set, ascending: the layers that survive a removal.
    pub fn complement(&self) -> Vec<usize> {
        (0..self.num_layers).filter(|i| !self.contains(*i)).collect()
    }

    /// Where each old layer index ends up after removing this set (`None` for removed layers).
    pub fn renumbering(&self) -> Vec<Option<usize>> {
        let mut next = 0;
        (0..self.num_layers)
            .map(|i| {
                if self.contains(i) {
                    None
                } else {
                    next += 1;
                    Some(next - 1)
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renumbering_skips_removed_layers() {
        let set = LayerSet::new([1, 3], 5).unwrap();
        assert_eq!(set.renumbering(), vec![Some(0), None, Some(1), None, Some(2)]);
        assert_eq!(set.complement(), vec![0, 2, 4]);
    }

    #[test]
    fn removal_of_every_layer_is_refused() {
        assert_eq!(LayerSet::for_removal([0, 1], 2), Err(CoreError::RemovesEveryLayer { num_layers: 2 }));
        assert!(LayerSet::for_removal([0], 2).is_ok());
    }

    #[test]
    fn out_of_range_and_duplicates_are_named() {
        assert_eq!(LayerSet::new([4], 4), Err(CoreError::LayerOutOfRange { index: 4, num_layers: 4 }));
        assert_eq!(LayerSet::new([2, 2], 4), Err(CoreError::DuplicateLayer { index: 2 }));
    }
}
