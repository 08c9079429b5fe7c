//! One model replica of a (possibly data-parallel) run, and how replicas agree on each step.
//!
//! Data parallelism is burn's own: every replica registers with `burn::collective` and the
//! gradients are summed with its all-reduce (`GradientsParams::all_reduce`). Every replica then
//! clips and steps its own optimizer with the same summed gradients, so the replicas stay equal
//! without ever broadcasting weights.

use burn::collective::{self, CollectiveConfig, PeerId, ReduceOperation};
use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::{Backend, Tensor, TensorData};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, TensorPrimitive};

use crate::TrainError;

/// Where this replica stands among its peers.
#[derive(Debug, Clone)]
pub(crate) struct Replica<D> {
    /// Peer index, 0 for the replica that logs and writes checkpoints.
    pub rank: usize,
    /// Number of replicas.
    pub world: usize,
    /// The device this replica runs on.
    pub device: D,
}

impl<D: Clone> Replica<D> {
    /// The only replica of a single-device run.
    pub fn alone(device: D) -> Self {
        Self { rank: 0, world: 1, device }
    }

    /// True for the replica that writes the log and checkpoints.
    pub fn is_leader(&self) -> bool {
        self.rank == 0
    }

    fn peer(&self) -> PeerId {
        PeerId::from(self.rank as u32)
    }

    /// Joins the collective (blocks until every replica has).
    pub fn register<B: Backend<Device = D>>(&self) -> Result<(), TrainError> {
        if self.world == 1 {
            return Ok(());
        }
        let config = CollectiveConfig::default().with_num_devices(self.world);
        collective::register::<B>(self.peer(), self.device.clone(), config).map_err(collective_error)
    }

    /// Leaves the collective.
    pub fn finish<B: Backend<Device = D>>(&self) -> Result<(), TrainError> {
        if self.world == 1 {
            return Ok(());
        }
        collective::finish_collective::<B>(self.peer()).map_err(collective_error)
    }

    /// Sums a few numbers over the replicas (exact for counts below 2^24; losses in f32).
    pub fn sum_values<B: Backend<Device = D>>(&self, values: &[f64]) -> Result<Vec<f64>, TrainError> {
        if self.world == 1 {
            return Ok(values.to_vec());
        }
        let local = TensorData::new(values.iter().map(|&v| v as f32).collect::<Vec<f32>>(), [values.len()]);
        let tensor = Tensor::<B, 1>::from_data(local, &self.device).into_primitive().tensor();
        let summed = collective::all_reduce::<B>(self.peer(), tensor, ReduceOperation::Sum).map_err(collective_error)?;
        let summed = Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(summed));
        Ok(summed.into_data().iter::<f32>().map(|v| v.elem::<f64>()).collect())
    }

    /// Sums the gradients of `model`'s trainable parameters over the replicas.
    ///
    /// The all-reduce needs the same tensors from every peer, but a replica may hold no gradient
    /// for a parameter another one has (a text-only example never reaches a trainable vision
    /// tower). The replicas first agree on which parameters got a gradient anywhere; those a
    /// replica lacks enter as zeros, and parameters no replica reached stay without gradient, as
    /// in a single-device run (AdamW then leaves them untouched).
    pub fn sum_gradients<B, M>(&self, model: &M, grads: GradientsParams) -> Result<GradientsParams, TrainError>
    where
        B: AutodiffBackend<Device = D>,
        M: AutodiffModule<B>,
    {
        if self.world == 1 {
            return Ok(grads);
        }
        let mut presence = Presence::<B> { grads: &grads, present: Vec::new(), _backend: Default::default() };
        model.visit(&mut presence);
        let present = presence.present;
        let anywhere = self.sum_values::<B::InnerBackend>(&present.iter().map(|&p| if p { 1.0 } else { 0.0 }).collect::<Vec<_>>())?;
        let mut fill = FillMissing::<B> { grads, anywhere: anywhere.into_iter().map(|n| n > 0.0).collect(), index: 0, _backend: Default::default() };
        model.visit(&mut fill);
        fill.grads.all_reduce::<B::InnerBackend>(self.peer(), ReduceOperation::Sum).map_err(collective_error)
    }
}

fn collective_error(error: collective::CollectiveError) -> TrainError {
    TrainError::Collective(format!("{error:?}"))
}

/// Records, in module order, whether each trainable parameter has a gradient.
struct Presence<'a, B: AutodiffBackend> {
    grads: &'a GradientsParams,
    present: Vec<bool>,
    _backend: std::marker::PhantomData<B>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Presence<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if param.is_require_grad() {
            self.present.push(self.grads.get::<B::InnerBackend, D>(param.id).is_some());
        }
    }
}

/// Adds zero gradients for trainable parameters that another replica has a gradient for.
struct FillMissing<B: AutodiffBackend> {
    grads: GradientsParams,
    anywhere: Vec<bool>,
    index: usize,
    _backend: std::marker::PhantomData<B>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for FillMissing<B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if !param.is_require_grad() {
            return;
        }
        let needed = self.anywhere[self.index];
        self.index += 1;
        if needed && self.grads.get::<B::InnerBackend, D>(param.id).is_none() {
            let value = param.val().inner();
            let zeros = value.zeros_like();
            self.grads.register::<B::InnerBackend, D>(param.id, zeros);
        }
    }
}
