use burn::prelude::*;
use ltlab_engine::model::ClassCond;
use ltlab_engine::train::checkpoint::Checkpoint;
use ltlab_engine::train::run_dir::RunDir;
use ltlab_engine::train::Trainer;
type B = burn::backend::Autodiff<burn::backend::Flex>;
type I = burn::backend::Flex;
fn main() {
    let dir = RunDir::open(std::path::Path::new("/tmp/runs/syn3k")).unwrap();
    let cfg = dir.read_config().unwrap();
    let data = cfg.data.load().unwrap();
    let p = dir.checkpoint_path(500);
    let t = Trainer::<B>::restore(cfg, data, Default::default(), &Checkpoint::read(&p).unwrap()).unwrap();
    let dev = Default::default();
    let n = 2 * 3 * 16 * 16;
    let x: Vec<f32> = (0..n).map(|i| (0.1 * i as f32).sin()).collect();
    let x = Tensor::<I, 4>::from_data(TensorData::new(x, [2, 3, 16, 16]), &dev);
    let lab = Tensor::<I, 1, Int>::from_ints([1, 7], &dev);
    let e = t.ema.forward(x.clone(), &[500, 10], &ClassCond::Labels(lab), false).eps;
    let v: Vec<f32> = e.clone().into_data().to_vec().unwrap();
    println!("ema cond sum {} first {:?}", v.iter().sum::<f32>(), &v[..4]);
    let e = t.ema.forward(x, &[500, 10], &ClassCond::Uncond, false).eps;
    let v: Vec<f32> = e.into_data().to_vec().unwrap();
    println!("ema uncond sum {} first {:?}", v.iter().sum::<f32>(), &v[..4]);
}
