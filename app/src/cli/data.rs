use super::DataArgs;
use clap::{Args, Subcommand};
use ltlab_engine::grid;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Class names, counts, total, q(y) and the fingerprint of the long-tailed set.
    Summary {
        #[command(flatten)]
        data: DataArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// A PNG of real images per class (head at the top).
    Grid(GridArgs),
}

#[derive(Args, Debug)]
pub struct GridArgs {
    #[command(flatten)]
    data: DataArgs,
    #[arg(long, default_value_t = 8)]
    per_class: usize,
    #[arg(long)]
    out: PathBuf,
}

pub fn run(cmd: DataCommand) -> anyhow::Result<()> {
    match cmd {
        DataCommand::Summary { data, json } => {
            let ds = data.config()?.load()?;
            let s = ds.summary();
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
                return Ok(());
            }
            println!("dataset {} ({}×{}×{}), ρ = {}", s.name, s.channels, s.image_size, s.image_size, data.imbalance);
            println!("{:>5}  {:<28} {:>7}  {:>8}", "class", "name", "count", "q(y)");
            for (i, name) in s.class_names.iter().enumerate() {
                println!("{i:>5}  {name:<28} {:>7}  {:>8.5}", s.counts[i], s.q[i]);
            }
            println!("total {}", s.total);
            println!("fingerprint {}", s.fingerprint);
            for r in &s.resembles {
                println!("class {} resembles head class {} (shares {})", r.class, r.head_class, r.shared.join(" and "));
            }
            Ok(())
        }
        DataCommand::Grid(a) => {
            let ds = a.data.config()?.load()?;
            let counts = ds.counts();
            let by_class = ds.indices_by_class();
            let order = grid::head_first(&counts);
            let mut images = Vec::new();
            let mut rows = Vec::new();
            for &c in &order {
                let mut row = Vec::new();
                for &i in by_class[c].iter().take(a.per_class) {
                    row.push(images.len() / ds.image_len());
                    ds.image_f32(i, false, &mut images);
                }
                rows.push(row);
            }
            let row_counts: Vec<usize> = order.iter().map(|&c| counts[c]).collect();
            grid::write_png(&a.out, &images, ds.channels, ds.size, &rows, &row_counts)?;
            println!("wrote {}", a.out.display());
            Ok(())
        }
    }
}
