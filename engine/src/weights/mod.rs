//! A module's parameters by path ("down.3.Res.conv1.weight"): the common key of checkpoints,
//! Adam state and the EMA, independent of Burn's random parameter ids; and the files they are
//! stored in ([`file`]).

pub mod file;

use crate::error::{Error, Result};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use std::collections::HashMap;

/// A parameter flattened to 1-D, with its shape.
pub struct NamedParam<B: Backend> {
    pub path: String,
    pub shape: Vec<usize>,
    pub value: Tensor<B, 1>,
}

#[derive(Default)]
struct PathStack(Vec<String>);

impl PathStack {
    fn push(&mut self, name: &str) {
        self.0.push(name.to_string());
    }
    fn pop(&mut self) {
        self.0.pop();
    }
    fn leaf(&self) -> String {
        self.0.join(".")
    }
}

struct Collect<B: Backend> {
    path: PathStack,
    out: Vec<NamedParam<B>>,
}

impl<B: Backend> ModuleVisitor<B> for Collect<B> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name);
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let v = param.val();
        let shape = v.dims().to_vec();
        let n: usize = shape.iter().product();
        self.out.push(NamedParam { path: self.path.leaf(), shape, value: v.reshape([n]) });
    }
}

/// Every float parameter of `module` in visiting order.
pub fn collect<B: Backend, M: Module<B>>(module: &M) -> Vec<NamedParam<B>> {
    let mut c = Collect { path: PathStack::default(), out: Vec::new() };
    module.visit(&mut c);
    c.out
}

/// Number of scalar parameters.
pub fn count<B: Backend, M: Module<B>>(module: &M) -> usize {
    collect(module).iter().map(|p| p.shape.iter().product::<usize>()).sum()
}

struct Replace<'a, B: Backend> {
    path: PathStack,
    values: &'a mut HashMap<String, NamedParam<B>>,
    error: Option<Error>,
}

impl<B: Backend> ModuleMapper<B> for Replace<'_, B> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name);
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        // Shapes read lazily: a fresh module's parameters are not drawn only to be replaced.
        let path = self.path.leaf();
        let dims: [usize; D] = param.lazy_shape().dims();
        match self.values.remove(&path) {
            Some(p) if p.shape == dims => {
                let id = param.id;
                param.transform_for_load(p.value.reshape(dims), id)
            }
            Some(p) => {
                self.error.get_or_insert(Error::Other(format!("parameter `{path}`: shape {:?} in the file, {dims:?} in the model", p.shape)));
                param
            }
            None => {
                self.error.get_or_insert(Error::Other(format!("parameter `{path}` is missing from the file")));
                param
            }
        }
    }
}

/// Replaces every float parameter of `module` by the value at its path; every parameter must
/// be present with the same shape.
pub fn load<B: Backend, M: Module<B>>(module: M, mut values: HashMap<String, NamedParam<B>>) -> Result<M> {
    let mut r = Replace { path: PathStack::default(), values: &mut values, error: None };
    let module = module.map(&mut r);
    if let Some(e) = r.error {
        return Err(e);
    }
    if let Some(extra) = values.keys().next() {
        return Err(Error::Other(format!("the file has parameter `{extra}` that the model lacks (another preset?)")));
    }
    Ok(module)
}
