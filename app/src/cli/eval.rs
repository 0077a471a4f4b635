//! `ltlab eval`: SPEC §5's metrics for a run's samples, two image folders or two feature files;
//! `ltlab eval train-features`: the domain network.

use super::DataArgs;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use ltlab_engine::backend::{BackendKind, WithBackend, dispatch};
use ltlab_engine::data::{DataConfig, Dataset, folder};
use ltlab_engine::diffusion::SamplerKind;
use ltlab_engine::error::write_atomic;
use ltlab_engine::eval::domain::{self, DomainTrainConfig};
use ltlab_engine::eval::feature_file;
use ltlab_engine::eval::features::{self, Extractor, FeatureChoice, Images};
use ltlab_engine::eval::reference::{self, Labelled};
use ltlab_engine::eval::report::{ClassInfo, EvalReport, FakeLogits, LabelledSet, MetricOptions, evaluate};
use ltlab_engine::geometry::Features;
use ltlab_engine::ops::FastBackend;
use ltlab_engine::ops::TrainBackend;
use ltlab_engine::train::run_dir::RunDir;
use ltlab_engine::train::trainer::Weights;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct EvalArgs {
    #[command(subcommand)]
    command: Option<EvalCommand>,
    #[command(flatten)]
    score: ScoreArgs,
}

#[derive(Subcommand, Debug)]
enum EvalCommand {
    /// Train ltlab's domain network (features, per-class accuracy and borrowing without
    /// Inception weights) on the balanced real data; saved beside the data or in the cache.
    TrainFeatures(TrainFeaturesArgs),
}

#[derive(Args, Debug)]
struct ScoreArgs {
    /// A run directory: sample its model and score the samples against the balanced real data.
    #[arg(long, conflicts_with_all = ["real", "fake", "real_features", "fake_features"])]
    run: Option<PathBuf>,
    /// Checkpoint step (default: the newest).
    #[arg(long, requires = "run")]
    step: Option<u64>,
    /// Evaluate every checkpoint of the run in turn (metrics over training).
    #[arg(long, requires = "run", conflicts_with = "step")]
    all_checkpoints: bool,
    /// Generated images, spread evenly over the classes.
    #[arg(long, default_value_t = 1000)]
    samples: usize,
    /// Per-class FID/KID (and accuracy), Many/Medium/Few and tail splits.
    #[arg(long)]
    per_class: bool,
    /// ddpm[:clip] or ddim:K[:ref][:clip] (default: the run's [eval] sampler, its paper's; else its grids').
    #[arg(long)]
    sampler: Option<String>,
    /// Guidance ω: ε̂ = (1+ω)·ε(x, y) − ω·ε(x, ∅) (default: the run's [eval] ω, its paper's; else its grids').
    #[arg(long)]
    omega: Option<f64>,
    /// ema, raw or ema-base (CM without its experts).
    #[arg(long, default_value = "ema", value_parser = ["ema", "raw", "ema-base"])]
    weights: String,
    /// inception[:PATH], domain[:PATH] or auto (Inception if its weights file is found at the
    /// default place, else the domain network).
    #[arg(long, default_value = "auto")]
    features: String,
    /// Real reference images per class at most (default: all of the balanced data).
    #[arg(long)]
    real_per_class: Option<usize>,
    /// A folder of real images (one sub-folder per class, or flat).
    #[arg(long, requires = "fake")]
    real: Option<PathBuf>,
    /// A folder of generated images (class sub-folders named as the real ones, or flat).
    #[arg(long, requires = "real")]
    fake: Option<PathBuf>,
    /// Side length the folders' images are read at (default: the first image's width).
    #[arg(long)]
    image_size: Option<usize>,
    /// Real features as a .npy N×D float array (then --fake-features too).
    #[arg(long, requires = "fake_features", conflicts_with_all = ["real", "fake"])]
    real_features: Option<PathBuf>,
    #[arg(long, requires = "real_features")]
    fake_features: Option<PathBuf>,
    /// Class labels of the feature files (.npy int arrays), for per-class metrics.
    #[arg(long, requires = "real_features")]
    real_labels: Option<PathBuf>,
    #[arg(long, requires = "fake_features")]
    fake_labels: Option<PathBuf>,
    /// KID: number of subsets (SPEC: 100).
    #[arg(long, default_value_t = 100)]
    kid_subsets: usize,
    /// KID subset size (default min(1000, n/2) as SPEC; n = whole sets, deterministic).
    #[arg(long)]
    kid_subset_size: Option<usize>,
    /// PRD: clusterings averaged (SPEC: 10).
    #[arg(long, default_value_t = 10)]
    prd_runs: usize,
    /// PRD: k-means starts per clustering, the best kept (Sajjadi et al.'s n_init: 10).
    #[arg(long, default_value_t = 10)]
    prd_inits: usize,
    /// IS: splits of the seeded shuffle (SPEC: 10); 1 is the same number for every shuffle.
    #[arg(long, default_value_t = 10)]
    is_splits: usize,
    /// Also write the features as .npy files (real.npy, fake.npy and their labels) here.
    #[arg(long)]
    dump_features: Option<PathBuf>,
    /// Images per network call.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Backend (default: the run's; flex otherwise).
    #[arg(long)]
    backend: Option<String>,
    /// Seed of the metrics' random subsets and clusterings.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct TrainFeaturesArgs {
    /// Use this run's dataset and image size.
    #[arg(long)]
    run: Option<PathBuf>,
    #[command(flatten)]
    data: DataArgs,
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    #[arg(long, default_value_t = 128)]
    batch: usize,
    #[arg(long, default_value_t = 2e-3)]
    lr: f64,
    /// Channels of the first stage (features have 4×).
    #[arg(long, default_value_t = 32)]
    width: usize,
    /// Where to write the network (default: beside the data, else the cache).
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long, default_value = "flex")]
    backend: String,
}

pub fn run(a: EvalArgs) -> anyhow::Result<()> {
    match a.command {
        Some(EvalCommand::TrainFeatures(t)) => {
            let backend = BackendKind::parse(&t.backend)?;
            dispatch(backend, TrainFeaturesJob(t))?
        }
        None => {
            let s = a.score;
            if s.run.is_none() && s.real.is_none() && s.real_features.is_none() {
                bail!("say what to evaluate: --run DIR, --real DIR --fake DIR, or --real-features A.npy --fake-features B.npy");
            }
            if s.samples < 2 {
                bail!("option `samples`: need at least 2");
            }
            if let Some(k) = &s.sampler {
                SamplerKind::parse(k)?;
            }
            FeatureChoice::parse(&s.features)?;
            let backend = match (&s.backend, &s.run) {
                (Some(b), _) => BackendKind::parse(b)?,
                (None, Some(r)) => RunDir::open(r)?.read_config()?.backend,
                (None, None) => BackendKind::Flex,
            };
            dispatch(backend, ScoreJob(s))?
        }
    }
}

struct TrainFeaturesJob(TrainFeaturesArgs);

impl WithBackend for TrainFeaturesJob {
    type Output = anyhow::Result<()>;
    fn run<B: TrainBackend>(self, device: B::Device, device_name: String) -> anyhow::Result<()> {
        let a = self.0;
        let data_cfg = match &a.run {
            Some(r) => RunDir::open(r)?.read_config()?.data,
            None => a.data.config()?,
        };
        let data = data_cfg.load_balanced()?;
        let cfg = DomainTrainConfig { epochs: a.epochs, batch: a.batch, lr: a.lr, width: a.width, ..Default::default() };
        println!(
            "training the domain network on {} ({} balanced images, {} classes, {}px) on {device_name}",
            data.name,
            data.len(),
            data.num_classes(),
            data.size
        );
        let pb = super::progress_bar(1, "train-features");
        let clock = Instant::now();
        let d = domain::train::<B>(&data, &cfg, &device, &mut |step, steps, loss| {
            pb.set_length(steps as u64);
            pb.set_position(step as u64);
            pb.set_message(format!("loss {loss:.3}"));
            true
        })?
        .expect("never cancelled");
        pb.finish_and_clear();
        let path = match a.out {
            Some(p) => p,
            None => features::writable_dir(&features::dataset_dirs(data_cfg.effective_root().as_deref(), &data))?.join(domain::FILE_NAME),
        };
        d.save(&path)?;
        println!("wrote {} in {:.0} s", path.display(), clock.elapsed().as_secs_f64());
        println!("held-out accuracy {:.4}", d.info.val_accuracy);
        for (name, acc) in d.info.class_names.iter().zip(&d.info.val_accuracy_per_class) {
            println!("  {name:<28} {acc:.3}");
        }
        Ok(())
    }
}

struct ScoreJob(ScoreArgs);

/// The extractor the user asked for; `data` (with its folder) locates the domain network.
fn choose_extractor<B: FastBackend>(choice: &FeatureChoice, data: Option<(&Dataset, Option<&Path>)>, device: &B::Device) -> anyhow::Result<Extractor<B>> {
    let find_domain = || -> anyhow::Result<PathBuf> {
        let Some((ds, root)) = data else {
            bail!("option `features`: name the domain network file with --features domain:PATH");
        };
        let dirs = features::dataset_dirs(root, ds);
        dirs.iter().map(|d| d.join(domain::FILE_NAME)).find(|p| p.is_file()).with_context(|| {
            format!(
                "option `features`: no domain network for {} at {}px (fingerprint {}) in {}; make one with `ltlab eval train-features` (--run DIR, or the same dataset options)",
                ds.name,
                ds.size,
                ds.fingerprint(),
                dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(" or ")
            )
        })
    };
    Ok(match choice {
        FeatureChoice::Inception(p) => Extractor::inception(&p.clone().unwrap_or_else(features::default_inception_path), device)?,
        FeatureChoice::Domain(Some(p)) => Extractor::domain(p, device)?,
        FeatureChoice::Domain(None) => Extractor::domain(&find_domain()?, device)?,
        FeatureChoice::Auto => {
            let p = features::default_inception_path();
            if p.is_file() {
                Extractor::inception(&p, device)?
            } else {
                eprintln!(
                    "note: no Inception weights at {} (put pytorch-fid's {} there, set LTLAB_INCEPTION, or pass --features inception:PATH); using the domain network",
                    p.display(),
                    features::INCEPTION_FILE
                );
                Extractor::domain(&find_domain()?, device)?
            }
        }
    })
}

fn extract_all<B: FastBackend>(ex: &Extractor<B>, images: &Images, batch: usize, device: &B::Device, what: &str) -> anyhow::Result<features::Extracted> {
    let pb = super::progress_bar(images.n as u64, what);
    let out = ex.extract(images, batch, device, &mut |done, _| pb.set_position(done as u64))?;
    pb.finish_and_clear();
    Ok(out)
}

/// At most `k` rows of each class (the first ones: the reference order is fixed).
fn cap_per_class(r: Labelled, k: Option<usize>) -> Labelled {
    let Some(k) = k else { return r };
    let mut seen = std::collections::HashMap::new();
    let keep: Vec<usize> = (0..r.labels.len())
        .filter(|&i| {
            let c = seen.entry(r.labels[i]).or_insert(0usize);
            *c += 1;
            *c <= k
        })
        .collect();
    let data = keep.iter().flat_map(|&i| r.features.row(i).to_vec()).collect();
    Labelled { features: Features { n: keep.len(), d: r.features.d, data }, labels: keep.iter().map(|&i| r.labels[i]).collect() }
}

impl ScoreJob {
    fn options(&self) -> MetricOptions {
        let s = &self.0;
        MetricOptions {
            kid_subsets: s.kid_subsets,
            kid_subset_size: s.kid_subset_size,
            prd_runs: s.prd_runs,
            prd_inits: s.prd_inits,
            is_splits: s.is_splits,
            seed: s.seed,
            ..Default::default()
        }
    }

    fn dump(&self, real: &Features, real_labels: Option<&[usize]>, fake: &Features, fake_labels: Option<&[usize]>) -> anyhow::Result<()> {
        let Some(dir) = &self.0.dump_features else { return Ok(()) };
        std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
        feature_file::write_features(&dir.join("real.npy"), real)?;
        feature_file::write_features(&dir.join("fake.npy"), fake)?;
        if let Some(l) = real_labels {
            feature_file::write_labels(&dir.join("real_labels.npy"), l)?;
        }
        if let Some(l) = fake_labels {
            feature_file::write_labels(&dir.join("fake_labels.npy"), l)?;
        }
        Ok(())
    }

    fn run_mode<B: TrainBackend>(&self, run: &Path, step: Option<u64>, device: B::Device) -> anyhow::Result<(EvalReport, Option<PathBuf>)> {
        let s = &self.0;
        let (trainer, step) = RunDir::open(run)?.trainer::<B>(step, device.clone())?;
        let data_cfg: &DataConfig = &trainer.cfg.data;
        let real = data_cfg.load_balanced()?;
        let root = data_cfg.effective_root();
        let ex = choose_extractor::<B::InnerBackend>(&FeatureChoice::parse(&s.features)?, Some((&real, root.as_deref())), &device)?;
        if let Some(info) = ex.domain_info() {
            if info.class_names.len() != real.num_classes() {
                bail!("option `features`: {} classifies {} classes; the run has {}", ex.file().display(), info.class_names.len(), real.num_classes());
            }
            if info.fingerprint != real.fingerprint() {
                eprintln!("note: {} was trained on other data (fingerprint {} vs {})", ex.file().display(), info.fingerprint, real.fingerprint());
            }
        }
        let mut seconds = std::collections::BTreeMap::new();
        let clock = Instant::now();
        let pb = super::progress_bar(real.len() as u64, "reference features");
        let (reference, cache, cached) =
            reference::reference_features(&ex, &real, &features::dataset_dirs(root.as_deref(), &real), s.batch, &device, &mut |d, _| {
                pb.set_position(d as u64)
            })?;
        pb.finish_and_clear();
        seconds.insert("reference_features".to_string(), clock.elapsed().as_secs_f64());
        let reference = cap_per_class(reference, s.real_per_class);

        let classes: Vec<usize> = (0..real.num_classes()).collect();
        let per_class = s.samples.div_ceil(classes.len());
        // The command line, else the run's [eval] setting (its paper's), else its grids'.
        let ev = &trainer.cfg.eval;
        let from_eval = ev.source.as_deref().map_or("the run's [eval] setting".to_string(), |s| format!("the run's [eval] setting ({s})"));
        let (sampler, sampler_from) = match (&s.sampler, ev.sampler) {
            (Some(k), _) => (SamplerKind::parse(k)?, "--sampler".to_string()),
            (None, Some(k)) => (k, from_eval.clone()),
            (None, None) => (trainer.cfg.log.grid_sampler, "the run's grids".to_string()),
        };
        let (omega, omega_from) = match (s.omega, ev.omega) {
            (Some(w), _) => (w, "--omega".to_string()),
            (None, Some(w)) => (w, from_eval),
            (None, None) => (trainer.cfg.log.grid_omega, "the run's grids".to_string()),
        };
        let weights = match s.weights.as_str() {
            "raw" => Weights::Raw,
            "ema-base" => Weights::EmaBase,
            _ => Weights::Ema,
        };
        let clock = Instant::now();
        let pb = super::progress_bar(1, "sample");
        let samples = trainer
            .sample_classes(&classes, per_class, sampler, omega, weights, &mut |done, all| {
                pb.set_length(all as u64);
                pb.set_position(done as u64);
                true
            })?
            .expect("never cancelled");
        pb.finish_and_clear();
        seconds.insert("sampling".to_string(), clock.elapsed().as_secs_f64());
        let fake_labels: Vec<usize> = classes.iter().flat_map(|&c| std::iter::repeat_n(c, per_class)).collect();
        let images = Images::from_samples(&samples, real.channels, real.size)?;
        let clock = Instant::now();
        let fake = extract_all(&ex, &images, s.batch, &device, "sample features")?;
        seconds.insert("sample_features".to_string(), clock.elapsed().as_secs_f64());
        self.dump(&reference.features, Some(&reference.labels), &fake.features, Some(&fake_labels))?;

        let info = ClassInfo { names: real.class_names.clone(), train_counts: Some(trainer.data.counts()), resembles: real.resembles.clone() };
        let clock = Instant::now();
        let mut report = evaluate(
            &LabelledSet { features: &reference.features, labels: Some(&reference.labels) },
            &LabelledSet { features: &fake.features, labels: Some(&fake_labels) },
            &FakeLogits { values: &fake.logits, classes: fake.classes, of_dataset_classes: ex.domain_info().is_some() },
            &info,
            s.per_class,
            &ex.label(),
            &self.options(),
        )?;
        seconds.insert("metrics".to_string(), clock.elapsed().as_secs_f64());
        report.seconds.extend(seconds);
        let ctx = &mut report.context;
        ctx.insert("run".into(), run.display().to_string());
        ctx.insert("step".into(), step.to_string());
        ctx.insert("methods".into(), trainer.cfg.methods.label());
        ctx.insert("sampler".into(), sampler.label());
        ctx.insert("omega".into(), omega.to_string());
        ctx.insert("sampler_from".into(), sampler_from);
        ctx.insert("omega_from".into(), omega_from);
        ctx.insert("weights".into(), s.weights.clone());
        ctx.insert("samples".into(), format!("{} ({per_class} per class)", fake_labels.len()));
        ctx.insert("real".into(), format!("{} balanced images of {} (fingerprint {})", reference.labels.len(), real.name, real.fingerprint()));
        ctx.insert("reference_cache".into(), format!("{}{}", cache.display(), if cached { " (read)" } else { " (written)" }));

        // Written into the run so that the lab shows metrics over training.
        let rd = RunDir::open(run)?;
        let path = |ext: &str| rd.eval_path(step, ex.key(), &sampler, omega, fake_labels.len(), ext);
        let json = serde_json::to_string_pretty(&report)?;
        write_atomic(&path("json"), json.as_bytes())?;
        let cols = per_class.min(8);
        let rows: Vec<Vec<usize>> =
            ltlab_engine::grid::head_first(&trainer.data.counts()).iter().map(|&c| (0..cols).map(|k| c * per_class + k).collect()).collect();
        ltlab_engine::grid::write_png(&path("png"), &samples, real.channels, real.size, &rows, &trainer.data.counts())?;
        Ok((report, Some(path("json"))))
    }

    fn folder_mode<B: FastBackend>(&self, real_dir: &Path, fake_dir: &Path, device: B::Device) -> anyhow::Result<EvalReport> {
        let s = &self.0;
        let (real, real_labelled) = folder::load_for_eval(real_dir, s.image_size)?;
        let (fake, fake_labelled) = folder::load_for_eval(fake_dir, Some(real.size))?;
        let labelled = real_labelled && fake_labelled;
        if labelled && real.class_names != fake.class_names {
            bail!(
                "{} and {} have different class sub-folders ({} vs {})",
                real_dir.display(),
                fake_dir.display(),
                real.class_names.join(","),
                fake.class_names.join(",")
            );
        }
        if s.per_class && !labelled {
            bail!("option `per-class`: both folders need one sub-folder per class");
        }
        let ex = choose_extractor::<B>(&FeatureChoice::parse(&s.features)?, None, &device)?;
        let mut seconds = std::collections::BTreeMap::new();
        let clock = Instant::now();
        let rf = extract_all(&ex, &Images::from_dataset(&real, &(0..real.len()).collect::<Vec<_>>()), s.batch, &device, "real features")?;
        let ff = extract_all(&ex, &Images::from_dataset(&fake, &(0..fake.len()).collect::<Vec<_>>()), s.batch, &device, "fake features")?;
        seconds.insert("features".to_string(), clock.elapsed().as_secs_f64());
        let (rl, fl) = (labelled.then_some(real.labels.as_slice()), labelled.then_some(fake.labels.as_slice()));
        self.dump(&rf.features, rl, &ff.features, fl)?;
        // The domain classifier's classes are the folders' only if they have the same names.
        let classifies = ex.domain_info().is_some_and(|i| labelled && i.class_names == real.class_names);
        let info = ClassInfo { names: real.class_names.clone(), train_counts: None, resembles: Vec::new() };
        let clock = Instant::now();
        let mut report = evaluate(
            &LabelledSet { features: &rf.features, labels: rl },
            &LabelledSet { features: &ff.features, labels: fl },
            &FakeLogits { values: &ff.logits, classes: ff.classes, of_dataset_classes: classifies },
            &info,
            s.per_class,
            &ex.label(),
            &self.options(),
        )?;
        seconds.insert("metrics".to_string(), clock.elapsed().as_secs_f64());
        report.seconds.extend(seconds);
        report.context.insert("real".into(), format!("{} ({} images at {}px)", real_dir.display(), real.len(), real.size));
        report.context.insert("fake".into(), format!("{} ({} images)", fake_dir.display(), fake.len()));
        Ok(report)
    }

    fn feature_file_mode(&self, real_path: &Path, fake_path: &Path) -> anyhow::Result<EvalReport> {
        let s = &self.0;
        let real = feature_file::read_features(real_path)?;
        let fake = feature_file::read_features(fake_path)?;
        if real.d != fake.d {
            bail!("{} has {}-dimensional features, {} has {}", real_path.display(), real.d, fake_path.display(), fake.d);
        }
        let labels = |p: &Option<PathBuf>, n: usize| -> anyhow::Result<Option<Vec<usize>>> {
            let Some(p) = p else { return Ok(None) };
            let l = feature_file::read_labels(p)?;
            if l.len() != n {
                bail!("{}: {} labels for {n} feature vectors", p.display(), l.len());
            }
            Ok(Some(l))
        };
        let (rl, fl) = (labels(&s.real_labels, real.n)?, labels(&s.fake_labels, fake.n)?);
        if s.per_class && (rl.is_none() || fl.is_none()) {
            bail!("option `per-class`: give --real-labels and --fake-labels");
        }
        let classes = rl.iter().chain(&fl).flatten().max().map_or(1, |m| m + 1);
        let info = ClassInfo { names: (0..classes).map(|c| format!("class {c}")).collect(), train_counts: None, resembles: Vec::new() };
        let mut report = evaluate(
            &LabelledSet { features: &real, labels: rl.as_deref() },
            &LabelledSet { features: &fake, labels: fl.as_deref() },
            &FakeLogits::NONE,
            &info,
            s.per_class,
            &format!("given ({}-dimensional, from {})", real.d, real_path.display()),
            &self.options(),
        )?;
        report.context.insert("real".into(), real_path.display().to_string());
        report.context.insert("fake".into(), fake_path.display().to_string());
        Ok(report)
    }
}

impl WithBackend for ScoreJob {
    type Output = anyhow::Result<()>;
    fn run<B: TrainBackend>(self, device: B::Device, _: String) -> anyhow::Result<()> {
        let s = &self.0;
        let clock = Instant::now();
        if let (Some(run), true) = (&s.run, s.all_checkpoints) {
            let steps: Vec<u64> = RunDir::open(run)?.checkpoints().iter().map(|c| c.0).collect();
            if steps.is_empty() {
                bail!("{}: no checkpoints yet", run.display());
            }
            let mut rows = Vec::new();
            for step in steps {
                let (report, written) = self.run_mode::<B>(run, Some(step), device.clone())?;
                eprintln!(
                    "step {step}: FID {:.3}, KID×10³ {:.3}{}",
                    report.overall.fid,
                    report.overall.kid * 1e3,
                    written.map_or(String::new(), |p| format!(" ({})", p.display()))
                );
                rows.push(serde_json::json!({ "step": step, "report": report }));
            }
            if s.json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!("{:>8} {:>9} {:>9} {:>7} {:>7} {:>7}", "step", "FID", "KID×10³", "prec", "recall", "acc");
                for r in &rows {
                    let rep: EvalReport = serde_json::from_value(r["report"].clone())?;
                    println!(
                        "{:>8} {:>9.3} {:>9.3} {:>7.3} {:>7.3} {:>7}",
                        r["step"],
                        rep.overall.fid,
                        rep.overall.kid * 1e3,
                        rep.precision,
                        rep.recall,
                        opt(rep.accuracy, 3)
                    );
                }
            }
            return Ok(());
        }
        let (mut report, written) = match (&s.run, &s.real, &s.fake, &s.real_features, &s.fake_features) {
            (Some(run), ..) => self.run_mode::<B>(run, s.step, device)?,
            (_, Some(r), Some(f), ..) => (self.folder_mode::<B::InnerBackend>(r, f, device)?, None),
            (.., Some(r), Some(f)) => (self.feature_file_mode(r, f)?, None),
            _ => bail!("say what to evaluate: --run DIR, --real DIR --fake DIR, or --real-features A.npy --fake-features B.npy"),
        };
        report.seconds.insert("total".into(), clock.elapsed().as_secs_f64());
        if s.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", render(&report));
        }
        if let Some(p) = written {
            eprintln!("wrote {}", p.display());
        }
        Ok(())
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("—".into(), |x| format!("{x:.digits$}"))
}

/// The report as a table for the terminal.
fn render(r: &EvalReport) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "features: {}", r.features);
    for (k, v) in &r.context {
        let _ = writeln!(o, "{k}: {v}");
    }
    let s = &r.overall;
    let _ = writeln!(
        o,
        "\noverall  FID {:.3}  KID×10³ {:.3} ± {:.3}  IS {} ± {}  precision {:.3}  recall {:.3}  F8 {:.3}  F1/8 {:.3}{}",
        s.fid,
        s.kid * 1e3,
        s.kid_std * 1e3,
        opt(r.inception_score, 3),
        opt(r.inception_score_std, 3),
        r.precision,
        r.recall,
        r.f8,
        r.f1_8,
        r.accuracy.map_or(String::new(), |a| format!("  accuracy {a:.3}"))
    );
    if !r.per_class.is_empty() {
        let _ = writeln!(o, "\n{:<4} {:<26} {:>7} {:<6} {:>6} {:>9} {:>9} {:>6}", "#", "class", "train", "split", "n", "FID", "KID×10³", "acc");
        for c in &r.per_class {
            let _ = writeln!(
                o,
                "{:<4} {:<26} {:>7} {:<6} {:>6} {:>9} {:>9} {:>6}",
                c.class,
                c.name,
                c.train_count.map_or("—".into(), |v| v.to_string()),
                c.split.clone().unwrap_or_default(),
                c.scores.as_ref().map_or(0, |s| s.n_fake),
                opt(c.scores.as_ref().map(|s| s.fid), 3),
                opt(c.scores.as_ref().map(|s| s.kid * 1e3), 2),
                opt(c.accuracy, 3)
            );
        }
    }
    if !r.splits.is_empty() {
        let _ = writeln!(o, "\n{:<7} {:>8} {:>9} {:>14} {:>6}  classes", "split", "FID", "KID×10³", "mean class FID", "acc");
        for sp in &r.splits {
            let _ = writeln!(
                o,
                "{:<7} {:>8} {:>9} {:>14} {:>6}  {:?}",
                sp.name,
                opt(sp.scores.as_ref().map(|s| s.fid), 3),
                opt(sp.scores.as_ref().map(|s| s.kid * 1e3), 2),
                opt(sp.mean_class_fid, 3),
                opt(sp.accuracy, 3),
                sp.classes
            );
        }
    }
    if let Some(b) = &r.borrowing {
        let names: Vec<&str> = r.per_class.iter().map(|c| c.name.as_str()).collect();
        let name = |k: usize| names.get(k).copied().map_or(format!("class {k}"), str::to_string);
        let _ = writeln!(o, "\nborrowing (samples of each tail class classified as):");
        for &c in &b.tail_classes {
            let row = &b.matrix[c];
            let mut top: Vec<usize> = (0..row.len()).filter(|&j| row[j] > 0.0).collect();
            top.sort_by(|&x, &y| row[y].total_cmp(&row[x]));
            let parts: Vec<String> = top.iter().take(4).map(|&j| format!("{} {:.2}", name(j), row[j])).collect();
            let _ = writeln!(o, "  {:<26} → {}", name(c), parts.join(", "));
        }
        if !b.ground_truth.is_empty() {
            let _ = writeln!(o, "\nagainst the synthetic set's ground truth (tail class resembles head class):");
            let mut agree = 0;
            for g in &b.ground_truth {
                agree += usize::from(g.agrees);
                let _ = writeln!(
                    o,
                    "  {:<26} ~ {:<26} P(head) {:.3}  P(head | wrong) {} (chance {:.3})  most borrowed: {}{}",
                    name(g.class),
                    name(g.head_class),
                    g.p_head,
                    opt(g.p_head_given_wrong, 3),
                    g.chance_given_wrong,
                    g.most_borrowed.map_or("—".into(), name),
                    if g.agrees { "  ✓" } else { "" }
                );
            }
            let _ = writeln!(o, "  {agree} of {} tail classes borrow most from the head class they resemble", b.ground_truth.len());
        }
    }
    let times: Vec<String> = r.seconds.iter().map(|(k, v)| format!("{k} {v:.1}")).collect();
    let _ = writeln!(o, "\nseconds: {}", times.join(", "));
    o
}
