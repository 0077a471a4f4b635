//! What `ltlab eval` scores, as engine operations: a run's checkpoint (sampled now, against its
//! balanced real data, the report written into the run), two image folders, or two feature
//! files. Each ends in [`scored`]: the metrics, timed, with the times of what came before.

use super::domain;
use super::feature_file;
use super::features::{self, Extracted, Extractor, FeatureChoice, Images};
use super::reference::{self, Labelled};
use super::report::{ClassInfo, EvalReport, FakeLogits, LabelledSet, MetricOptions, evaluate};
use crate::data::{Dataset, folder};
use crate::diffusion::SamplerKind;
use crate::error::{Error, Result, write_atomic};
use crate::geometry::Features;
use crate::ops::{FastBackend, TrainBackend};
use crate::train::run_dir::RunDir;
use crate::train::trainer::Weights;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How every mode scores.
#[derive(Debug, Clone)]
pub struct Scoring {
    pub features: FeatureChoice,
    /// Per-class FID/KID (and accuracy), Many/Medium/Few and tail splits.
    pub per_class: bool,
    pub metrics: MetricOptions,
    /// Images per network call.
    pub batch: usize,
    /// Also write the features as .npy files (real.npy, fake.npy and their labels) here.
    pub dump_features: Option<PathBuf>,
}

/// How a run's checkpoint is sampled; `None`: the run's `[eval]` setting (its paper's), else
/// its grids'.
#[derive(Debug, Clone)]
pub struct RunSampling {
    /// Generated images, spread evenly over the classes.
    pub samples: usize,
    pub sampler: Option<SamplerKind>,
    pub omega: Option<f64>,
    pub weights: Weights,
    /// Real reference images per class at most (default: all of the balanced data).
    pub real_per_class: Option<usize>,
}

/// What a long mode tells its caller while it works.
pub trait Progress {
    /// `done` of `total` of the stage `what` (a stage starts at 0).
    fn stage(&mut self, what: &str, done: usize, total: usize);
    /// Something the user should know (a fallback taken, a network trained on other data).
    fn note(&mut self, text: &str);
}

/// Seconds per stage, in the order the report lists them.
type Seconds = BTreeMap<String, f64>;

fn timed<T>(seconds: &mut Seconds, stage: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let clock = Instant::now();
    let out = f()?;
    seconds.insert(stage.to_string(), clock.elapsed().as_secs_f64());
    Ok(out)
}

/// The metrics of `real` against `fake`, timed; `seconds` (the stages before) go with them.
fn scored(real: LabelledSet, fake: LabelledSet, logits: &FakeLogits, info: &ClassInfo, s: &Scoring, label: &str, mut seconds: Seconds) -> Result<EvalReport> {
    let mut report = timed(&mut seconds, "metrics", || evaluate(&real, &fake, logits, info, s.per_class, label, &s.metrics))?;
    report.seconds.extend(seconds);
    Ok(report)
}

/// The extractor asked for; `data` (with its folder) locates the domain network.
pub fn choose_extractor<B: FastBackend>(
    choice: &FeatureChoice,
    data: Option<(&Dataset, Option<&Path>)>,
    device: &B::Device,
    progress: &mut dyn Progress,
) -> Result<Extractor<B>> {
    let find_domain = || -> Result<PathBuf> {
        let Some((ds, root)) = data else {
            return Err(Error::option("features", "name the domain network file with --features domain:PATH"));
        };
        let dirs = features::dataset_dirs(root, ds);
        dirs.iter().map(|d| d.join(domain::FILE_NAME)).find(|p| p.is_file()).ok_or_else(|| {
            let looked = dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(" or ");
            Error::option(
                "features",
                format!(
                    "no domain network for {} at {}px (fingerprint {}) in {looked}; make one with `ltlab eval train-features` (--run DIR, or the same dataset options)",
                    ds.name,
                    ds.size,
                    ds.fingerprint()
                ),
            )
        })
    };
    match choice {
        FeatureChoice::Inception(p) => Extractor::inception(&p.clone().unwrap_or_else(features::default_inception_path), device),
        FeatureChoice::Domain(Some(p)) => Extractor::domain(p, device),
        FeatureChoice::Domain(None) => Extractor::domain(&find_domain()?, device),
        FeatureChoice::Auto => {
            let p = features::default_inception_path();
            if p.is_file() {
                return Extractor::inception(&p, device);
            }
            progress.note(&format!(
                "no Inception weights at {} (put pytorch-fid's {} there, set LTLAB_INCEPTION, or pass --features inception:PATH); using the domain network",
                p.display(),
                features::INCEPTION_FILE
            ));
            Extractor::domain(&find_domain()?, device)
        }
    }
}

fn extract_all<B: FastBackend>(
    ex: &Extractor<B>,
    images: &Images,
    batch: usize,
    device: &B::Device,
    what: &str,
    progress: &mut dyn Progress,
) -> Result<Extracted> {
    ex.extract(images, batch, device, &mut |done, total| progress.stage(what, done, total))
}

/// At most `k` rows of each class (the first ones: the reference order is fixed).
fn cap_per_class(r: Labelled, k: Option<usize>) -> Labelled {
    let Some(k) = k else { return r };
    let mut seen = HashMap::new();
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

fn dump(dir: Option<&Path>, real: &Features, real_labels: Option<&[usize]>, fake: &Features, fake_labels: Option<&[usize]>) -> Result<()> {
    let Some(dir) = dir else { return Ok(()) };
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
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

/// A run's checkpoint at `step` (default: the newest) sampled now and scored against the run's
/// balanced real data; the report (JSON) and a grid of the samples (PNG) are written into the
/// run's `evals/`, where the lab finds them. Returns the report and the JSON's path.
pub fn score_run<B: TrainBackend>(
    run: &Path,
    step: Option<u64>,
    s: &Scoring,
    r: &RunSampling,
    device: B::Device,
    progress: &mut dyn Progress,
) -> Result<(EvalReport, PathBuf)> {
    let rd = RunDir::open(run)?;
    let (trainer, step) = rd.trainer::<B>(step, device.clone())?;
    let real = trainer.cfg.data.load_balanced()?;
    let root = trainer.cfg.data.effective_root();
    let ex = choose_extractor::<B::InnerBackend>(&s.features, Some((&real, root.as_deref())), &device, progress)?;
    if let Some(info) = ex.domain_info() {
        if info.class_names.len() != real.num_classes() {
            let message = format!("{} classifies {} classes; the run has {}", ex.file().display(), info.class_names.len(), real.num_classes());
            return Err(Error::option("features", message));
        }
        if info.fingerprint != real.fingerprint() {
            progress.note(&format!("{} was trained on other data (fingerprint {} vs {})", ex.file().display(), info.fingerprint, real.fingerprint()));
        }
    }
    let mut seconds = Seconds::new();
    let dirs = features::dataset_dirs(root.as_deref(), &real);
    let (reference, cache, cached) = timed(&mut seconds, "reference_features", || {
        reference::reference_features(&ex, &real, &dirs, s.batch, &device, &mut |d, n| progress.stage("reference features", d, n))
    })?;
    let reference = cap_per_class(reference, r.real_per_class);

    let classes: Vec<usize> = (0..real.num_classes()).collect();
    let per_class = r.samples.div_ceil(classes.len());
    let ev = &trainer.cfg.eval;
    let from_eval = ev.source.as_deref().map_or("the run's [eval] setting".to_string(), |s| format!("the run's [eval] setting ({s})"));
    let (sampler, sampler_from) = match (r.sampler, ev.sampler) {
        (Some(k), _) => (k, "--sampler".to_string()),
        (None, Some(k)) => (k, from_eval.clone()),
        (None, None) => (trainer.cfg.log.grid_sampler, "the run's grids".to_string()),
    };
    let (omega, omega_from) = match (r.omega, ev.omega) {
        (Some(w), _) => (w, "--omega".to_string()),
        (None, Some(w)) => (w, from_eval),
        (None, None) => (trainer.cfg.log.grid_omega, "the run's grids".to_string()),
    };
    let samples = timed(&mut seconds, "sampling", || {
        let done = trainer.sample_classes(&classes, per_class, sampler, omega, r.weights, &mut |d, n| {
            progress.stage("sample", d, n);
            true
        })?;
        Ok(done.expect("never cancelled"))
    })?;
    let fake_labels: Vec<usize> = classes.iter().flat_map(|&c| std::iter::repeat_n(c, per_class)).collect();
    let images = Images::from_samples(&samples, real.channels, real.size)?;
    let fake = timed(&mut seconds, "sample_features", || extract_all(&ex, &images, s.batch, &device, "sample features", progress))?;
    dump(s.dump_features.as_deref(), &reference.features, Some(&reference.labels), &fake.features, Some(&fake_labels))?;

    let counts = trainer.data.counts();
    let info = ClassInfo { names: real.class_names.clone(), train_counts: Some(counts.clone()), resembles: real.resembles.clone() };
    let mut report = scored(
        LabelledSet { features: &reference.features, labels: Some(&reference.labels) },
        LabelledSet { features: &fake.features, labels: Some(&fake_labels) },
        &FakeLogits { values: &fake.logits, classes: fake.classes, of_dataset_classes: ex.domain_info().is_some() },
        &info,
        s,
        &ex.label(),
        seconds,
    )?;
    let weights = match r.weights {
        Weights::Ema => "ema",
        Weights::Raw => "raw",
        Weights::EmaBase => "ema-base",
    };
    let ctx = &mut report.context;
    ctx.insert("run".into(), run.display().to_string());
    ctx.insert("step".into(), step.to_string());
    ctx.insert("methods".into(), trainer.cfg.methods.label());
    ctx.insert("sampler".into(), sampler.label());
    ctx.insert("omega".into(), omega.to_string());
    ctx.insert("sampler_from".into(), sampler_from);
    ctx.insert("omega_from".into(), omega_from);
    ctx.insert("weights".into(), weights.into());
    ctx.insert("samples".into(), format!("{} ({per_class} per class)", fake_labels.len()));
    ctx.insert("real".into(), format!("{} balanced images of {} (fingerprint {})", reference.labels.len(), real.name, real.fingerprint()));
    ctx.insert("reference_cache".into(), format!("{}{}", cache.display(), if cached { " (read)" } else { " (written)" }));

    // Written into the run so that the lab shows metrics over training.
    let path = |ext: &str| rd.eval_path(step, ex.key(), &sampler, omega, fake_labels.len(), ext);
    let json = serde_json::to_string_pretty(&report).map_err(|e| Error::Other(format!("the eval report does not serialise: {e}")))?;
    write_atomic(&path("json"), json.as_bytes())?;
    let cols = per_class.min(8);
    let rows: Vec<Vec<usize>> = crate::grid::head_first(&counts).iter().map(|&c| (0..cols).map(|k| c * per_class + k).collect()).collect();
    crate::grid::write_png(&path("png"), &samples, real.channels, real.size, &rows, &counts)?;
    Ok((report, path("json")))
}

/// Two image folders (one sub-folder per class, or flat), read at `image_size` (default: the
/// first real image's width).
pub fn score_folders<B: FastBackend>(
    real_dir: &Path,
    fake_dir: &Path,
    image_size: Option<usize>,
    s: &Scoring,
    device: B::Device,
    progress: &mut dyn Progress,
) -> Result<EvalReport> {
    let (real, real_labelled) = folder::load_for_eval(real_dir, image_size)?;
    let (fake, fake_labelled) = folder::load_for_eval(fake_dir, Some(real.size))?;
    let labelled = real_labelled && fake_labelled;
    if labelled && real.class_names != fake.class_names {
        let message = format!("has other class sub-folders than {} ({} vs {})", real_dir.display(), fake.class_names.join(","), real.class_names.join(","));
        return Err(Error::data(fake_dir, message));
    }
    if s.per_class && !labelled {
        return Err(Error::option("per-class", "both folders need one sub-folder per class"));
    }
    let ex = choose_extractor::<B>(&s.features, None, &device, progress)?;
    let mut seconds = Seconds::new();
    let all = |d: &Dataset| Images::from_dataset(d, &(0..d.len()).collect::<Vec<_>>());
    let (rf, ff) = timed(&mut seconds, "features", || {
        let rf = extract_all(&ex, &all(&real), s.batch, &device, "real features", progress)?;
        Ok((rf, extract_all(&ex, &all(&fake), s.batch, &device, "fake features", progress)?))
    })?;
    let (rl, fl) = (labelled.then_some(real.labels.as_slice()), labelled.then_some(fake.labels.as_slice()));
    dump(s.dump_features.as_deref(), &rf.features, rl, &ff.features, fl)?;
    // The domain classifier's classes are the folders' only if they have the same names.
    let classifies = ex.domain_info().is_some_and(|i| labelled && i.class_names == real.class_names);
    let info = ClassInfo { names: real.class_names.clone(), train_counts: None, resembles: Vec::new() };
    let logits = FakeLogits { values: &ff.logits, classes: ff.classes, of_dataset_classes: classifies };
    let mut report = scored(
        LabelledSet { features: &rf.features, labels: rl },
        LabelledSet { features: &ff.features, labels: fl },
        &logits,
        &info,
        s,
        &ex.label(),
        seconds,
    )?;
    report.context.insert("real".into(), format!("{} ({} images at {}px)", real_dir.display(), real.len(), real.size));
    report.context.insert("fake".into(), format!("{} ({} images)", fake_dir.display(), fake.len()));
    Ok(report)
}

/// Two feature files (.npy N×D floats), with optional class labels (.npy ints).
pub fn score_feature_files(real_path: &Path, fake_path: &Path, real_labels: Option<&Path>, fake_labels: Option<&Path>, s: &Scoring) -> Result<EvalReport> {
    let real = feature_file::read_features(real_path)?;
    let fake = feature_file::read_features(fake_path)?;
    if real.d != fake.d {
        return Err(Error::data(fake_path, format!("has {}-dimensional features, {} has {}", fake.d, real_path.display(), real.d)));
    }
    let labels = |p: Option<&Path>, n: usize| -> Result<Option<Vec<usize>>> {
        let Some(p) = p else { return Ok(None) };
        let l = feature_file::read_labels(p)?;
        if l.len() != n {
            return Err(Error::data(p, format!("{} labels for {n} feature vectors", l.len())));
        }
        Ok(Some(l))
    };
    let (rl, fl) = (labels(real_labels, real.n)?, labels(fake_labels, fake.n)?);
    if s.per_class && (rl.is_none() || fl.is_none()) {
        return Err(Error::option("per-class", "give --real-labels and --fake-labels"));
    }
    let classes = rl.iter().chain(&fl).flatten().max().map_or(1, |m| m + 1);
    let info = ClassInfo { names: (0..classes).map(|c| format!("class {c}")).collect(), train_counts: None, resembles: Vec::new() };
    let label = format!("given ({}-dimensional, from {})", real.d, real_path.display());
    let (rs, fs) = (LabelledSet { features: &real, labels: rl.as_deref() }, LabelledSet { features: &fake, labels: fl.as_deref() });
    let mut report = scored(rs, fs, &FakeLogits::NONE, &info, s, &label, Seconds::new())?;
    report.context.insert("real".into(), real_path.display().to_string());
    report.context.insert("fake".into(), fake_path.display().to_string());
    Ok(report)
}
