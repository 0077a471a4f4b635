//! What a page's Start may ask for: a built-in config, a run folder inside the runs folder, and
//! data from the dataset roots the server was given (and Debian's dataset packages). Anything
//! else is refused naming the option, so a page cannot make the server read an arbitrary
//! folder as a dataset (a probe of the file system) or write outside the runs folder.

use ltlab_engine::data::FASHION_MNIST_ROOT;
use ltlab_engine::train::config::BUILTIN_PRESETS;
use std::path::{Component, Path, PathBuf};

/// Where Debian's `dataset-*` packages install.
const DEBIAN_DATASETS: &str = "/usr/share/datasets";

/// The dataset folders a page may train from: `--data-root` folders (canonical) and Debian's.
#[derive(Debug, Clone)]
pub struct DataRoots(Vec<PathBuf>);

impl DataRoots {
    pub fn new(given: &[PathBuf]) -> anyhow::Result<Self> {
        let mut roots = Vec::new();
        for r in given {
            roots.push(r.canonicalize().map_err(|e| anyhow::anyhow!("option `--data-root`: {}: {e}", r.display()))?);
        }
        for debian in [DEBIAN_DATASETS, FASHION_MNIST_ROOT] {
            roots.push(Path::new(debian).canonicalize().unwrap_or_else(|_| PathBuf::from(debian)));
        }
        Ok(Self(roots))
    }

    fn holds(&self, dir: &Path) -> bool {
        // A folder that does not exist is refused like one outside: the answer says nothing
        // about what is on the disk.
        dir.canonicalize().is_ok_and(|d| self.0.iter().any(|r| d.starts_with(r)))
    }
}

/// Every value of `--opt VALUE` or `--opt=VALUE` in `args` (clap keeps the last; all are
/// checked).
fn values<'a>(args: &'a [String], opt: &'a str) -> impl Iterator<Item = &'a str> {
    args.iter().enumerate().filter_map(move |(i, a)| {
        if a == opt { Some(args.get(i + 1).map_or("", String::as_str)) } else { a.strip_prefix(opt).and_then(|rest| rest.strip_prefix('=')) }
    })
}

/// Why a page may not make this Start (a 403), or `None`. A config that does not parse is left
/// to the host, which reports it where the user started it.
pub fn refusal(args: &[String], roots: &DataRoots) -> Option<String> {
    if let Some(c) = values(args, "--config").find(|c| !BUILTIN_PRESETS.iter().any(|(n, _)| n == c)) {
        return Some(format!("option `--config`: `{c}` is not a built-in config; a page starts built-in configs only"));
    }
    for opt in ["--resume", "--out"] {
        if values(args, opt).next().is_some() {
            return Some(format!("option `{opt}`: a page's runs go in the server's runs folder"));
        }
    }
    let Ok(config) = crate::host::launch::train_config(args) else { return None };
    let mut parts = Path::new(&config.name).components();
    if !matches!((parts.next(), parts.next()), (Some(Component::Normal(_)), None)) {
        return Some(format!("option `name`: `{}` is not a plain folder name inside the runs folder", config.name));
    }
    if let Some(root) = config.data.effective_root()
        && !roots.holds(&root)
    {
        let given: Vec<String> = roots.0.iter().map(|r| r.display().to_string()).collect();
        return Some(format!(
            "option `--root`: `{}` is not inside a dataset root of this server ({}); start `ltlab serve` with `--data-root DIR` to allow a folder",
            root.display(),
            given.join(", ")
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Vec<String> {
        ["ltlab", "train", "--config", "demo-synthetic"].iter().chain(extra).map(|s| s.to_string()).collect()
    }

    #[test]
    fn only_builtin_configs_runs_inside_and_data_from_the_roots() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        std::fs::create_dir_all(data.join("flowers")).unwrap();
        let roots = DataRoots::new(std::slice::from_ref(&data)).unwrap();
        assert_eq!(refusal(&args(&[]), &roots), None, "the synthetic set needs no root");
        let inside = data.join("flowers").display().to_string();
        assert_eq!(refusal(&args(&["--dataset", "folder", "--root", &inside]), &roots), None);
        let cases: [(&[&str], &str); 8] = [
            (&["--dataset", "folder", "--root", "/etc"], "--root"),
            (&["--dataset", "folder", "--root", "/no/such/folder"], "--root"),
            (&["--set", "data.root=\"/etc\"", "--dataset", "folder"], "--root"),
            (&["--config=/etc/passwd"], "--config"),
            (&["--config", "/etc/passwd"], "--config"),
            (&["--out", "/tmp/x"], "--out"),
            (&["--resume", "/tmp/x"], "--resume"),
            (&["--set", "name=\"../escape\""], "name"),
        ];
        for (extra, option) in cases {
            let why = refusal(&args(extra), &roots).unwrap_or_else(|| panic!("{extra:?} was allowed"));
            assert!(why.contains(option), "{extra:?}: {why}");
        }
        // `..` out of a root is out.
        let out = format!("{}/../..", data.display());
        assert!(refusal(&args(&["--dataset", "folder", "--root", &out]), &roots).is_some());
        assert!(DataRoots::new(&[tmp.path().join("missing")]).unwrap_err().to_string().contains("--data-root"));
    }
}
