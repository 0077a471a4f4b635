use clap::Subcommand;
use ltlab_engine::backend::Flex;
use ltlab_engine::model::{Preset, UNet};
use ltlab_engine::weights;

#[derive(Subcommand, Debug)]
pub enum ModelCommand {
    /// Parameter count, shape and forward FLOPs per image of a preset.
    Info {
        /// paper, small, tiny or micro.
        #[arg(long)]
        preset: String,
        #[arg(long)]
        classes: usize,
        #[arg(long, default_value_t = 32)]
        image_size: usize,
        /// Image channels (3 for RGB, 1 for grey).
        #[arg(long, default_value_t = 3)]
        channels: usize,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: ModelCommand) -> anyhow::Result<()> {
    let ModelCommand::Info { preset, classes, image_size, channels, json } = cmd;
    if classes == 0 {
        anyhow::bail!("option `classes`: must be at least 1");
    }
    let cfg = Preset::parse(&preset)?.config(channels, classes, image_size)?;
    let model: UNet<Flex> = cfg.init(&Default::default());
    let total = weights::count(&model);
    let class_emb = classes * cfg.time_dim();
    // The sinusoidal time table is computed, not stored: it is not a parameter.
    let table = 1000 * cfg.base_channels;
    let flops = model.forward_flops(image_size);
    if json {
        let v = serde_json::json!({
            "preset": preset, "classes": classes, "image_size": image_size, "channels": channels,
            "parameters": total, "class_embedding": class_emb, "parameters_without_class_embedding": total - class_emb,
            "sinusoidal_table_not_counted": table,
            "forward_flops_per_image": flops.total(), "forward_flops_trunk": flops.trunk, "forward_flops_up_path": flops.up_path,
            "config": cfg,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "preset {preset}: base channels {}, multipliers {:?}, {} ResBlocks down / {} up per level, attention at levels {:?}, dropout {}",
            cfg.base_channels,
            cfg.channel_mults,
            cfg.res_blocks,
            cfg.res_blocks + 1,
            cfg.attn_levels,
            cfg.dropout
        );
        println!("parameters: {} (incl. class embedding {classes}×{} = {class_emb})", fmt_int(total), cfg.time_dim());
        println!(
            "forward per {image_size}×{image_size} image: {:.3} GFLOPs (down path and middle {:.3}, up path {:.3}; 2 per multiply-add, element-wise ops not counted)",
            flops.total() / 1e9,
            flops.trunk / 1e9,
            flops.up_path / 1e9
        );
        println!("not counted: the fixed sinusoidal time table (1000×{} = {table} values, computed, not learned)", cfg.base_channels);
    }
    Ok(())
}

pub fn fmt_int(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}
