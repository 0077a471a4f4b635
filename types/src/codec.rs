//! The view settings as text: the CLI command that computes the same result headless, and the
//! label under a result. (The names of the files a view-time grid is written to are the engine's
//! `RunDir`'s.)

use crate::settings::{LatentSettings, SampleSettings};

impl SampleSettings {
    /// The same grid as an `ltlab sample` command; like the lab's, it lands in the run's
    /// `analysis/`, where the lab finds it.
    pub fn cli(&self, run_dir: &str, step: u64) -> String {
        format!("ltlab sample --run {run_dir} --step {step} --per-class {} --sampler {} --omega {}", self.per_class, self.sampler.label(), self.omega)
    }

    /// The label under a grid.
    pub fn label(&self) -> String {
        format!("{} · ω {} · {} per class", self.sampler.label(), self.omega, self.per_class)
    }
}

impl LatentSettings {
    /// The same map as an `ltlab analyze latents` command.
    pub fn cli(&self, run_dir: &str, step: u64) -> String {
        let uncond = if self.conditional { "" } else { " --uncond" };
        format!(
            "ltlab analyze latents --run {run_dir} --step {step} --method {} --t {} --per-class {} --k {}{uncond}",
            self.method.name(),
            self.t,
            self.per_class,
            self.k
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SamplerKind;

    #[test]
    fn settings_as_cli_commands() {
        let s = SampleSettings { sampler: SamplerKind::Ddim { steps: 20, final_x0: true, clip_x0: true }, omega: 1.5, per_class: 4 };
        assert_eq!(s.cli("runs/a/", 500), "ltlab sample --run runs/a/ --step 500 --per-class 4 --sampler ddim:20:clip --omega 1.5");
        assert_eq!(s.label(), "ddim:20:clip · ω 1.5 · 4 per class");
        let d = SampleSettings { sampler: SamplerKind::Ddpm { clip_x0: false }, ..Default::default() };
        assert_eq!(d.cli("runs/a", 7), "ltlab sample --run runs/a --step 7 --per-class 8 --sampler ddpm --omega 0");
        let l = LatentSettings { conditional: false, ..Default::default() };
        assert_eq!(l.cli("runs/a", 250), "ltlab analyze latents --run runs/a --step 250 --method umap --t 100 --per-class 100 --k 10 --uncond");
    }
}
