//! A process-wide table of kernels, one per backend type: what [`crate::linear_kernel`] and
//! [`crate::attention_kernel`] keep their replacements in.
//!
//! Why a table keyed by the backend type and not a trait bound: model code is generic over
//! `B: Backend`, Rust has no specialisation, and threading a kernel type parameter through every
//! model struct would make each one name a CPU detail it does not care about.

use std::any::{Any, TypeId};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;

/// Kernels of one kind (a function-pointer type per backend), keyed by the backend's `TypeId`.
pub(crate) struct KernelRegistry {
    kernels: RwLock<Vec<(TypeId, Box<dyn Any + Send + Sync>)>>,
    /// Whether any kernel was ever registered: the common case (none) then skips the lock.
    any: AtomicBool,
}

impl KernelRegistry {
    /// An empty table.
    pub(crate) const fn new() -> Self {
        Self { kernels: RwLock::new(Vec::new()), any: AtomicBool::new(false) }
    }

    /// Sets `backend`'s kernel, replacing the one registered before.
    pub(crate) fn register<K: Any + Send + Sync>(&self, backend: TypeId, kernel: K) {
        let mut kernels = self.kernels.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        kernels.retain(|(registered, _)| *registered != backend);
        kernels.push((backend, Box::new(kernel)));
        self.any.store(true, Ordering::Release);
    }

    /// Removes `backend`'s kernel; returns whether one was registered.
    pub(crate) fn unregister(&self, backend: TypeId) -> bool {
        let mut kernels = self.kernels.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let before = kernels.len();
        kernels.retain(|(registered, _)| *registered != backend);
        kernels.len() != before
    }

    /// `backend`'s kernel, if one of type `K` is registered.
    pub(crate) fn get<K: Any + Copy>(&self, backend: TypeId) -> Option<K> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        let kernels = self.kernels.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        kernels.iter().find(|(registered, _)| *registered == backend).and_then(|(_, kernel)| kernel.downcast_ref::<K>().copied())
    }
}
