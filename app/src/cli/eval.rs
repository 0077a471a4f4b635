//! `ltlab eval`: SPEC §5's metrics for a run's samples, two image folders or two feature files;
//! `ltlab eval train-features`: the domain network.

use super::DataArgs;
use anyhow::bail;
use clap::{Args, Subcommand};
use ltlab_engine::backend::{BackendKind, WithBackend, dispatch};
use ltlab_engine::diffusion::SamplerKind;
use ltlab_engine::eval::domain::{self, DomainTrainConfig};
use ltlab_engine::eval::features::{self, FeatureChoice};
use ltlab_engine::eval::modes::{self, Progress, RunSampling, Scoring};
use ltlab_engine::eval::report::{EvalReport, MetricOptions};
use ltlab_engine::ops::TrainBackend;
use ltlab_engine::train::run_dir::RunDir;
use ltlab_engine::train::trainer::Weights;
use std::fmt::Write as _;
use std::path::PathBuf;
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

/// Progress bars on the terminal, one per stage; notes on stderr.
#[derive(Default)]
struct Bars {
    bar: Option<(String, indicatif::ProgressBar)>,
}

impl Progress for Bars {
    fn stage(&mut self, what: &str, done: usize, total: usize) {
        if self.bar.as_ref().is_none_or(|(w, _)| w != what) {
            self.finish();
            self.bar = Some((what.to_string(), super::progress_bar(total as u64, what)));
        }
        let (_, pb) = self.bar.as_ref().expect("set above");
        pb.set_length(total as u64);
        pb.set_position(done as u64);
    }

    fn note(&mut self, text: &str) {
        eprintln!("note: {text}");
    }
}

impl Bars {
    fn finish(&mut self) {
        if let Some((_, pb)) = self.bar.take() {
            pb.finish_and_clear();
        }
    }
}

impl ScoreJob {
    fn scoring(&self) -> anyhow::Result<Scoring> {
        let s = &self.0;
        let metrics = MetricOptions {
            kid_subsets: s.kid_subsets,
            kid_subset_size: s.kid_subset_size,
            prd_runs: s.prd_runs,
            prd_inits: s.prd_inits,
            is_splits: s.is_splits,
            seed: s.seed,
            ..Default::default()
        };
        Ok(Scoring { features: FeatureChoice::parse(&s.features)?, per_class: s.per_class, metrics, batch: s.batch, dump_features: s.dump_features.clone() })
    }

    fn sampling(&self) -> anyhow::Result<RunSampling> {
        let s = &self.0;
        let weights = match s.weights.as_str() {
            "raw" => Weights::Raw,
            "ema-base" => Weights::EmaBase,
            _ => Weights::Ema,
        };
        let sampler = s.sampler.as_deref().map(SamplerKind::parse).transpose()?;
        Ok(RunSampling { samples: s.samples, sampler, omega: s.omega, weights, real_per_class: s.real_per_class })
    }
}

impl WithBackend for ScoreJob {
    type Output = anyhow::Result<()>;
    fn run<B: TrainBackend>(self, device: B::Device, _: String) -> anyhow::Result<()> {
        let s = &self.0;
        let clock = Instant::now();
        let scoring = self.scoring()?;
        let mut bars = Bars::default();
        if let (Some(run), true) = (&s.run, s.all_checkpoints) {
            let steps: Vec<u64> = RunDir::open(run)?.checkpoints().iter().map(|c| c.0).collect();
            if steps.is_empty() {
                bail!("{}: no checkpoints yet", run.display());
            }
            let mut rows = Vec::new();
            for step in steps {
                let (report, written) = modes::score_run::<B>(run, Some(step), &scoring, &self.sampling()?, device.clone(), &mut bars)?;
                bars.finish();
                eprintln!("step {step}: FID {:.3}, KID×10³ {:.3} ({})", report.overall.fid, report.overall.kid * 1e3, written.display());
                rows.push((step, report));
            }
            if s.json {
                let rows: Vec<_> = rows.iter().map(|(step, report)| serde_json::json!({ "step": step, "report": report })).collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!("{:>8} {:>9} {:>9} {:>7} {:>7} {:>7}", "step", "FID", "KID×10³", "prec", "recall", "acc");
                for (step, rep) in &rows {
                    let (fid, kid, acc) = (rep.overall.fid, rep.overall.kid * 1e3, opt(rep.accuracy, 3));
                    println!("{step:>8} {fid:>9.3} {kid:>9.3} {:>7.3} {:>7.3} {acc:>7}", rep.precision, rep.recall);
                }
            }
            return Ok(());
        }
        let (mut report, written) = match (&s.run, &s.real, &s.fake, &s.real_features, &s.fake_features) {
            (Some(run), ..) => {
                let (report, path) = modes::score_run::<B>(run, s.step, &scoring, &self.sampling()?, device, &mut bars)?;
                (report, Some(path))
            }
            (_, Some(r), Some(f), ..) => (modes::score_folders::<B::InnerBackend>(r, f, s.image_size, &scoring, device, &mut bars)?, None),
            (.., Some(r), Some(f)) => (modes::score_feature_files(r, f, s.real_labels.as_deref(), s.fake_labels.as_deref(), &scoring)?, None),
            _ => bail!("say what to evaluate: --run DIR, --real DIR --fake DIR, or --real-features A.npy --fake-features B.npy"),
        };
        bars.finish();
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
