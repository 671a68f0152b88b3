use std::time::Instant;
use tch::{nn, Device, Kind, Tensor};
use hssl::model::{Backbone, BackboneKind};
use hssl::interpret::{optimize_masks, frozen_encoder, MaskSettings};

fn main() {
    tch::set_num_threads(2);
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let backbone = Backbone::new(BackboneKind::Conv4, &vs.root());
    let x = Tensor::randn([512, 3, 32, 32], (Kind::Float, Device::Cpu));
    let mut best_f = f64::MAX; let mut best_fb = f64::MAX;
    for _ in 0..8 {
        let t = Instant::now();
        let _ = tch::no_grad(|| backbone.forward_t(&x, false));
        best_f = best_f.min(t.elapsed().as_secs_f64());
        let xi = x.detach().set_requires_grad(true);
        let t = Instant::now();
        let y = backbone.forward_t(&xi, false).square().sum(Kind::Float);
        let _g = Tensor::run_backward(&[&y], &[&xi], false, false);
        best_fb = best_fb.min(t.elapsed().as_secs_f64());
    }
    println!("forward 512: {best_f:.3} s, forward+backward to input: {best_fb:.3} s");
    let images = Tensor::randn([64, 3, 32, 32], (Kind::Float, Device::Cpu));
    let marginal = Tensor::randn([2048, 3, 32, 32], (Kind::Float, Device::Cpu));
    let enc = frozen_encoder(&backbone);
    for _ in 0..3 {
        let settings = MaskSettings { steps: 10, ..MaskSettings::default() };
        let mut last = Instant::now();
        let mut times = vec![];
        optimize_masks(&enc, &images, &marginal, &settings, Device::Cpu, &mut |_, _| { times.push(last.elapsed().as_secs_f64()); last = Instant::now(); }).unwrap();
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!("step times min {:.3} median {:.3}", times[0], times[times.len()/2]);
    }
}
