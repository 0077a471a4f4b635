//! The view settings as text: the CLI command that computes the same result headless, and the
//! file names that carry a view-time grid's settings (the host reads them back from `analysis/`).

use super::settings::{LatentSettings, SampleSettings};

impl SampleSettings {
    /// The sampler as the CLI writes it (`ddpm`, `ddim:50`, `ddim:50:clip`).
    pub fn sampler_spec(&self) -> String {
        let base = if self.sampler == "ddpm" { "ddpm".to_string() } else { format!("ddim:{}", self.ddim_steps.max(1)) };
        if self.clip { format!("{base}:clip") } else { base }
    }

    /// A file name that carries the settings (read back by [`SampleSettings::from_file_name`]).
    pub fn file_name(&self, step: u64) -> String {
        format!("grid-step{step}-{}-w{}-n{}.png", self.sampler_spec().replace(':', "_"), self.omega, self.per_class)
    }

    /// (step, settings) of a name written by [`SampleSettings::file_name`].
    pub fn from_file_name(name: &str) -> Option<(u64, Self)> {
        let rest = name.strip_prefix("grid-step")?.strip_suffix(".png")?;
        let mut parts = rest.split('-');
        let step = parts.next()?.parse().ok()?;
        let spec: Vec<&str> = parts.next()?.split('_').collect();
        let omega = parts.next()?.strip_prefix('w')?.parse().ok()?;
        let per_class = parts.next()?.strip_prefix('n')?.parse().ok()?;
        let clip = spec.last() == Some(&"clip");
        let (sampler, ddim_steps) = match spec.as_slice() {
            ["ddpm", ..] => ("ddpm", SampleSettings::default().ddim_steps),
            ["ddim", k, ..] => ("ddim", k.parse().ok()?),
            _ => return None,
        };
        Some((step, Self { sampler: sampler.into(), ddim_steps, clip, omega, per_class }))
    }

    /// The same grid as an `ltlab sample` command.
    pub fn cli(&self, run_dir: &str, step: u64) -> String {
        let out = format!("{}/analysis/{}", run_dir.trim_end_matches('/'), self.file_name(step));
        format!(
            "ltlab sample --run {run_dir} --step {step} --per-class {} --sampler {} --omega {} --out {out}",
            self.per_class,
            self.sampler_spec(),
            self.omega
        )
    }

    /// The label under a grid.
    pub fn label(&self) -> String {
        format!("{} · ω {} · {} per class", self.sampler_spec(), self.omega, self.per_class)
    }
}

impl LatentSettings {
    /// The same map as an `ltlab analyze latents` command.
    pub fn cli(&self, run_dir: &str, step: u64) -> String {
        let uncond = if self.conditional { "" } else { " --uncond" };
        format!(
            "ltlab analyze latents --run {run_dir} --step {step} --method {} --t {} --per-class {} --k {}{uncond}",
            self.method, self.t, self.per_class, self.k
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_settings_name_their_file_and_read_it_back() {
        let s = SampleSettings { sampler: "ddim".into(), ddim_steps: 20, clip: true, omega: 1.5, per_class: 4 };
        assert_eq!(s.sampler_spec(), "ddim:20:clip");
        assert_eq!(s.file_name(500), "grid-step500-ddim_20_clip-w1.5-n4.png");
        assert_eq!(SampleSettings::from_file_name(&s.file_name(500)), Some((500, s)));
        let d = SampleSettings { sampler: "ddpm".into(), clip: false, ..Default::default() };
        assert_eq!(d.sampler_spec(), "ddpm");
        assert_eq!(SampleSettings::from_file_name(&d.file_name(7)), Some((7, d)));
        assert_eq!(SampleSettings::from_file_name("step-500.png"), None);
        assert_eq!(
            SampleSettings { sampler: "ddim".into(), ddim_steps: 20, clip: true, omega: 1.5, per_class: 4 }.cli("runs/a/", 500),
            "ltlab sample --run runs/a/ --step 500 --per-class 4 --sampler ddim:20:clip --omega 1.5 --out runs/a/analysis/grid-step500-ddim_20_clip-w1.5-n4.png"
        );
        let l = LatentSettings { conditional: false, ..Default::default() };
        assert_eq!(l.cli("runs/a", 250), "ltlab analyze latents --run runs/a --step 250 --method umap --t 100 --per-class 100 --k 10 --uncond");
        assert_eq!(SampleSettings::from_file_name("grid-step5-euler_3-w0-n4.png"), None);
    }
}
