//! `ltlab import`: checkpoints of the reference PyTorch code as an ordinary ltlab run.

use super::DataArgs;
use clap::Args;
use ltlab_engine::model::reference::RefFormat;
use ltlab_engine::train::import::{ImportOptions, import};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// A checkpoint of pytorch-ddpm, CBDM-pytorch, OC_LT, coral-lt-diffusion or CCUA, or a
    /// folder of them (`ckpt_{step}.pt`: one run, one checkpoint per step).
    source: PathBuf,
    /// The run directory to write.
    #[arg(long)]
    out: PathBuf,
    /// The reference run's flagfile.txt (default: the one beside the checkpoint, if any).
    #[arg(long)]
    flags: Option<PathBuf>,
    /// pytorch-ddpm, long-tail or coral (default: read from the checkpoint's keys).
    #[arg(long)]
    format: Option<String>,
    /// The data the model was trained on: its class count and channels must match the model's.
    #[command(flatten)]
    data: DataArgs,
}

pub fn run(a: ImportArgs) -> anyhow::Result<()> {
    let format = a.format.as_deref().map(RefFormat::parse).transpose()?;
    let o = ImportOptions { source: a.source, out: a.out, format, flags: a.flags, data: a.data.config()? };
    let (cfg, steps) = import(&o)?;
    let imported = cfg.imported.as_ref().expect("an import records its source");
    let arch = cfg.model.architecture.as_ref().expect("an import records its architecture");
    println!(
        "imported {} checkpoint(s) ({} format, steps {}) into {}",
        steps.len(),
        imported.format,
        steps.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
        o.out.display()
    );
    println!(
        "U-Net: {} base channels, multipliers {:?}, {} ResBlocks per level, attention at levels {:?}, {}",
        arch.base_channels,
        arch.channel_mults,
        arch.res_blocks,
        arch.attn_levels,
        if cfg.model.conditional { "class-conditional" } else { "unconditional (no classes)" }
    );
    for e in &imported.extras {
        println!("not imported: {e}");
    }
    Ok(())
}
