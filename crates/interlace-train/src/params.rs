//! Parameters by checkpoint name: what a checkpoint saves and restores.
//!
//! Module paths in interlace models equal Hugging Face tensor names
//! (`model.language_model.layers.3.mlp.up_proj.weight`), so a visitor that tracks the path gives
//! each parameter its checkpoint name.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::{Backend, Tensor};
use burn::tensor::TensorData;

struct Collect {
    path: Vec<String>,
    only_trainable: bool,
    tensors: Vec<(String, TensorData)>,
}

impl<B: Backend> ModuleVisitor<B> for Collect {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let value = param.val();
        if !self.only_trainable || value.is_require_grad() {
            self.tensors.push((self.path.join("."), value.into_data()));
        }
    }
}

/// Every float parameter of `module` that requires gradients, by checkpoint name.
pub fn trainable_tensors<B: Backend, M: Module<B>>(module: &M) -> Vec<(String, TensorData)> {
    let mut visitor = Collect { path: Vec::new(), only_trainable: true, tensors: Vec::new() };
    module.visit(&mut visitor);
    visitor.tensors
}

/// Every float parameter of `module`, by checkpoint name.
pub fn all_tensors<B: Backend, M: Module<B>>(module: &M) -> Vec<(String, TensorData)> {
    let mut visitor = Collect { path: Vec::new(), only_trainable: false, tensors: Vec::new() };
    module.visit(&mut visitor);
    visitor.tensors
}

struct Replace {
    path: Vec<String>,
    values: HashMap<String, TensorData>,
    replaced: usize,
}

impl<B: Backend> ModuleMapper<B> for Replace {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let Some(data) = self.values.remove(&self.path.join(".")) else { return param };
        self.replaced += 1;
        let (id, tensor, mapper) = param.consume();
        let require_grad = tensor.is_require_grad();
        let dtype = tensor.dtype();
        let replacement = Tensor::<B, D>::from_data(data, (&tensor.device(), dtype)).set_require_grad(require_grad);
        Param::from_mapped_value(id, replacement, mapper)
    }
}

/// Replaces parameters of `module` by name (ids and trainability kept). Returns the module and
/// the names that matched no parameter.
pub fn replace_tensors<B: Backend, M: Module<B>>(module: M, values: HashMap<String, TensorData>) -> (M, Vec<String>) {
    let mut mapper = Replace { path: Vec::new(), values, replaced: 0 };
    let module = module.map(&mut mapper);
    let mut unmatched: Vec<String> = mapper.values.into_keys().collect();
    unmatched.sort();
    (module, unmatched)
}
