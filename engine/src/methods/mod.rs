//! The long-tail methods of SPEC §4, one file each behind [`Method`].
//!
//! A method is an optional target transform (OC), an optional batch sampler and named loss
//! terms added to the base ε-MSE. What a step hands the methods is in [`batch`]; the passes
//! they ask for run in one batched forward ([`forwards`]).
//!
//! Adding a method: one file here that implements [`Method`] and [`MethodKind`], and one line
//! in the [`registry!`] invocation below (`docs/adding-a-method.md` walks through one). The
//! config tables, the CLI's `--method`, the lab's forms and `bench methods` read the registry.

mod batch;
mod forwards;
#[cfg(test)]
pub(crate) mod test_util;

pub use batch::{Batch, HostBatch, StepContext, per_sample_mean};
pub use forwards::{Forwards, MAIN, Outputs, PassRows, Slot};

use crate::data::sampler::BatchSampler;
use crate::error::{Error, Result};
use crate::model::UNet;
use crate::ops::TrainBackend;
use burn::prelude::*;
use ltlab_types::StepRecord;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Declares the method modules, [`MethodsConfig`] (one optional table each), [`REGISTRY`] and
/// the iterators over a stack's present tables, in the order the methods act and appear in
/// labels. Everything else about a stack is plain code below.
macro_rules! registry {
    ($(mod $key:ident => $config:ident),* $(,)?) => {
        $(pub mod $key;)*

        /// The method stack of a run: each present table switches a method on (`[methods.cbdm]` …).
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct MethodsConfig {
            $(
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $key: Option<$key::$config>,
            )*
        }

        /// Every method ltlab knows, in stack order.
        pub const REGISTRY: &[MethodEntry] = &[$(MethodEntry {
            key: stringify!($key),
            names: <$key::$config as MethodKind>::NAMES,
            summary: <$key::$config as MethodKind>::SUMMARY,
            terms: <$key::$config as MethodKind>::TERMS,
            cost_target: <$key::$config as MethodKind>::COST_TARGET,
            switch_on: |stack, name| stack.$key = Some(<$key::$config as MethodKind>::config_for(name)),
        }),*];

        impl MethodsConfig {
            /// The tables present, in stack order, with their keys.
            pub fn present(&self) -> impl Iterator<Item = (&'static str, &dyn StackMember)> {
                [$(self.$key.as_ref().map(|c| (stringify!($key), c as &dyn StackMember))),*].into_iter().flatten()
            }

            /// The tables present, in stack order, as builders of their methods on `B`.
            fn present_on<B: TrainBackend>(&self) -> impl Iterator<Item = &dyn BuildsOn<B>> {
                [$(self.$key.as_ref().map(|c| c as &dyn BuildsOn<B>)),*].into_iter().flatten()
            }
        }
    };
}

registry! {
    mod cbdm => CbdmConfig,
    mod oc => OcConfig,
    mod diffrop => DiffRopConfig,
    mod ccua => CcuaConfig,
    mod coral => CoralConfig,
    mod cm => CmConfig,
    mod cb_loss => CbLossConfig,
}

/// What a method needs from the network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModelNeeds {
    /// CM's low-rank experts on the up path.
    pub experts: bool,
    /// Width of a projection head on the pooled bottleneck (CORAL); 0 = none.
    pub projection_dim: usize,
}

impl ModelNeeds {
    fn and(self, o: Self) -> Self {
        Self { experts: self.experts || o.experts, projection_dim: self.projection_dim.max(o.projection_dim) }
    }
}

/// A method as the registry knows it, implemented on its config table (defaults for every
/// key; unknown keys are errors): its names, its checks, what it needs from the network and
/// how it builds.
pub trait MethodKind: Clone + Default + PartialEq + std::fmt::Debug + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The `--method` names that switch it on (OC has three: t2h, h2t, full).
    const NAMES: &'static [&'static str];
    /// One line for help texts.
    const SUMMARY: &'static str;
    /// The loss terms it logs (beside `mse` and `total`).
    const TERMS: &'static [&'static str];
    /// The per-step cost relative to DDPM that `bench methods` holds it to, if any.
    const COST_TARGET: Option<f64> = None;

    /// The config `--method NAME` switches on.
    fn config_for(_name: &str) -> Self {
        Self::default()
    }

    /// Its part of a run's label (`cbdm+coral`).
    fn run_label(&self) -> String {
        Self::NAMES[0].to_string()
    }

    /// Checks the options; `stack` is the whole method stack, for methods that combine.
    fn validate(&self, stack: &MethodsConfig) -> Result<()>;

    /// Adds the methods this one brings along to the stack a run uses (CM: T2H).
    fn bring_along(&self, _stack: &mut MethodsConfig) {}

    fn model_needs(&self) -> ModelNeeds {
        ModelNeeds::default()
    }

    /// The batch sampler it asks for, and the option (in its table) that asks.
    fn sampler_request(&self) -> Option<(&'static str, BatchSampler)> {
        None
    }

    fn build<B: TrainBackend>(&self) -> Box<dyn Method<B>>;
}

/// What a stack asks of each present table, whatever its type ([`MethodKind`] without the
/// parts that need the type: its constants and its builder).
pub trait StackMember {
    fn run_label(&self) -> String;
    fn validate(&self, stack: &MethodsConfig) -> Result<()>;
    fn bring_along(&self, stack: &mut MethodsConfig);
    fn model_needs(&self) -> ModelNeeds;
    fn sampler_request(&self) -> Option<(&'static str, BatchSampler)>;
}

impl<K: MethodKind> StackMember for K {
    fn run_label(&self) -> String {
        MethodKind::run_label(self)
    }
    fn validate(&self, stack: &MethodsConfig) -> Result<()> {
        MethodKind::validate(self, stack)
    }
    fn bring_along(&self, stack: &mut MethodsConfig) {
        MethodKind::bring_along(self, stack)
    }
    fn model_needs(&self) -> ModelNeeds {
        MethodKind::model_needs(self)
    }
    fn sampler_request(&self) -> Option<(&'static str, BatchSampler)> {
        MethodKind::sampler_request(self)
    }
}

/// A present table as the builder of its method on backend `B`.
trait BuildsOn<B: TrainBackend> {
    fn build(&self) -> Box<dyn Method<B>>;
}

impl<B: TrainBackend, K: MethodKind> BuildsOn<B> for K {
    fn build(&self) -> Box<dyn Method<B>> {
        MethodKind::build::<B>(self)
    }
}

/// One registered method, as front ends list it.
#[derive(Debug, Clone, Copy)]
pub struct MethodEntry {
    /// Its `[methods.KEY]` table.
    pub key: &'static str,
    pub names: &'static [&'static str],
    pub summary: &'static str,
    pub terms: &'static [&'static str],
    pub cost_target: Option<f64>,
    /// Puts the table `--method NAME` asks for, with its defaults, into a stack.
    pub switch_on: fn(&mut MethodsConfig, &str),
}

impl MethodsConfig {
    /// Switches on the method `--method NAME` names, with its defaults; `ddpm` clears the stack.
    pub fn add(&mut self, name: &str) -> Result<()> {
        if name == "ddpm" {
            *self = Self::default();
            return Ok(());
        }
        let entry = REGISTRY.iter().find(|e| e.names.contains(&name));
        let entry = entry.ok_or_else(|| Error::option("--method", format!("`{name}`: expected {}", method_names().join(", "))))?;
        (entry.switch_on)(self, name);
        Ok(())
    }

    /// The stack a run uses: the tables given plus what their methods bring along.
    pub fn effective(&self) -> Self {
        let mut out = self.clone();
        for (_, c) in self.present() {
            c.bring_along(&mut out);
        }
        out
    }

    /// The stack as written in run names and tables, e.g. `cbdm+coral`; `ddpm` when empty.
    pub fn label(&self) -> String {
        let parts: Vec<String> = self.effective().present().map(|(_, c)| c.run_label()).collect();
        if parts.is_empty() { "ddpm".into() } else { parts.join("+") }
    }

    /// The tables present, in stack order.
    pub fn keys(&self) -> Vec<&'static str> {
        self.present().map(|(key, _)| key).collect()
    }

    /// Checks every option and returns the batch sampler the run uses: the run's own
    /// `batch_sampler`, or the one a method asks for (OC's re-sampling, CCUA's brs).
    pub fn check(&self, run_sampler: Option<BatchSampler>) -> Result<BatchSampler> {
        for (_, c) in self.present() {
            c.validate(self)?;
        }
        let stack = self.effective();
        let own = run_sampler.map(|s| ("batch_sampler".to_string(), s));
        let asked = stack.present().filter_map(|(key, c)| c.sampler_request().map(|(option, s)| (format!("methods.{key}.{option}"), s)));
        one_sampler(own.into_iter().chain(asked).collect())
    }

    /// What the stack needs from the network.
    pub fn needs(&self) -> ModelNeeds {
        self.effective().present().fold(ModelNeeds::default(), |needs, (_, c)| needs.and(c.model_needs()))
    }

    /// The method objects of the stack, in the order they act.
    pub fn build<B: TrainBackend>(&self) -> Vec<Box<dyn Method<B>>> {
        self.effective().present_on::<B>().map(|c| c.build()).collect()
    }
}

/// Every `--method` name, in registry order.
pub fn method_names() -> Vec<&'static str> {
    std::iter::once("ddpm").chain(REGISTRY.iter().flat_map(|e| e.names.iter().copied())).collect()
}

/// The hyper-parameters `--method NAME` offers: (config key, default as TOML), without the
/// keys the name itself sets (OC's mode is t2h, h2t or full).
pub fn offered_params(name: &str) -> Result<Vec<(String, String)>> {
    let defaults = |n: &str| -> Result<toml::Table> {
        let mut m = MethodsConfig::default();
        m.add(n)?;
        Ok(toml::Table::try_from(&m).expect("method configs serialise"))
    };
    let table = defaults(name)?;
    let siblings: Vec<toml::Table> = REGISTRY.iter().find(|e| e.names.contains(&name)).map_or(Ok(vec![]), |e| e.names.iter().map(|n| defaults(n)).collect())?;
    let mut out = Vec::new();
    for (key, values) in &table {
        let Some(values) = values.as_table() else { continue };
        for (option, value) in values {
            let fixed_by_name = siblings.iter().any(|s| s.get(key).and_then(|t| t.get(option)) != Some(value));
            if !fixed_by_name {
                out.push((format!("methods.{key}.{option}"), value.to_string()));
            }
        }
    }
    Ok(out)
}

/// The one sampler every asker agrees on (uniform when none asks).
fn one_sampler(wanted: Vec<(String, BatchSampler)>) -> Result<BatchSampler> {
    let Some((first_name, first)) = wanted.first().cloned() else { return Ok(BatchSampler::Uniform) };
    for (name, s) in &wanted[1..] {
        if *s != first {
            return Err(Error::option(
                name,
                format!("asks for the `{}` batch sampler but `{first_name}` asks for `{}`: keep one of the two", s.label(), first.label()),
            ));
        }
    }
    Ok(first)
}

/// A named loss term as it enters the total.
pub type Term<B> = (&'static str, Tensor<B, 1>);

/// One long-tail method. Every hook has a default that does nothing.
pub trait Method<B: TrainBackend>: Send {
    /// Replaces the regression target on the host, without gradients (OC).
    fn transform(&mut self, _batch: &mut HostBatch, _ctx: &StepContext) {}

    /// Asks for extra passes in the step's batched forward.
    fn request(&mut self, _batch: &Batch<B>, _ctx: &StepContext, _fw: &mut Forwards<B>) {}

    /// The method's loss terms (scalars, weights applied).
    fn losses(&mut self, batch: &Batch<B>, ctx: &StepContext, out: &Outputs<B>, model: &UNet<B>) -> Vec<Term<B>>;

    /// Adds what the method did in this step to the step's log (OC: the swaps it made).
    fn record(&mut self, _record: &mut StepRecord) {}
}

pub(crate) fn positive(name: &str, v: f64) -> Result<()> {
    if v.is_finite() && v > 0.0 { Ok(()) } else { Err(Error::option(name, format!("{v}: expected a positive number"))) }
}

pub(crate) fn non_negative(name: &str, v: f64) -> Result<()> {
    if v.is_finite() && v >= 0.0 { Ok(()) } else { Err(Error::option(name, format!("{v}: expected a number ≥ 0"))) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The registry is the one list: names are unique, each switches its own table on, the
    /// label and the offered parameters follow from it.
    #[test]
    fn registry_names_tables_and_params() {
        let names = method_names();
        let unique: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        for entry in REGISTRY {
            for name in entry.names {
                let mut m = MethodsConfig::default();
                m.add(name).unwrap();
                assert_eq!(m.keys(), vec![entry.key], "{name}");
                assert!(m.check(None).is_ok());
                let params = offered_params(name).unwrap();
                assert!(params.iter().all(|(k, _)| k.starts_with(&format!("methods.{}.", entry.key))), "{name}: {params:?}");
            }
        }
        // OC's mode is its name, not a parameter; its other options are.
        let oc = offered_params("h2t").unwrap();
        assert!(oc.iter().any(|(k, v)| k == "methods.oc.resample" && v == "false"), "{oc:?}");
        assert!(!oc.iter().any(|(k, _)| k == "methods.oc.mode"));
        let mut m = MethodsConfig::default();
        m.add("cbdm").unwrap();
        m.add("cm").unwrap();
        assert_eq!(m.label(), "cbdm+t2h+cm", "CM brings T2H along");
        assert!(m.needs().experts);
        let e = m.add("dpo").unwrap_err().to_string();
        assert!(e.contains("dpo") && e.contains("cb-loss") && e.contains("t2h"), "{e}");
        m.add("ddpm").unwrap();
        assert_eq!(m.label(), "ddpm");
    }

    /// The worked example of docs/adding-a-method.md reaches the config through its one line.
    #[test]
    fn the_example_method_is_registered_by_its_one_line() {
        let entry = REGISTRY.iter().find(|e| e.names == ["cb-loss"]).expect("cb-loss registered");
        assert_eq!(entry.key, "cb_loss");
        let toml = "[cb_loss]\nbeta = 0.99\n";
        let m: MethodsConfig = toml::from_str(toml).unwrap();
        assert_eq!(m.cb_loss.as_ref().map(|c| c.beta), Some(0.99));
        assert_eq!(m.label(), "cb-loss");
        assert_eq!(offered_params("cb-loss").unwrap(), vec![("methods.cb_loss.beta".to_string(), "0.999".to_string())]);
    }
}
