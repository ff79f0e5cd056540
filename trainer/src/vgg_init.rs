//! Initialization from an ImageNet VGG-16: a torchvision `vgg16` state dict
//! saved as safetensors (`features.0.weight` ... `features.28.bias`) is
//! mapped onto conv1_1 .. conv4_3 and onto both conv5 branches
//! (`conv5_i_pose` and `conv5_i_global` both get VGG's `conv5_i`).
//!
//! Conversion (see `trainer/README.md`):
//! `python -c "import torchvision,safetensors.torch as s; s.save_file({k:v for k,v in torchvision.models.vgg16(weights='DEFAULT').state_dict().items() if k.startswith('features')},'vgg16.safetensors')"`

use anyhow::{bail, Context, Result};
use std::path::Path;
use tch::{nn, Tensor};

/// torchvision `features.{i}` index of each VGG-16 conv, in order.
pub const VGG16_CONV_INDICES: [usize; 13] = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28];

/// The (torchvision name, FashionNet name) pairs of the mapping.
pub fn vgg16_mapping() -> Vec<(String, String)> {
    let ours = [
        "conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3", "conv4_1",
        "conv4_2", "conv4_3",
    ];
    let mut out = Vec::new();
    for (k, &idx) in VGG16_CONV_INDICES.iter().enumerate() {
        let targets: Vec<String> = if k < ours.len() {
            vec![ours[k].to_string()]
        } else {
            let i = k - ours.len() + 1;
            vec![format!("conv5_{i}_pose"), format!("conv5_{i}_global")]
        };
        for t in targets {
            for p in ["weight", "bias"] {
                out.push((format!("features.{idx}.{p}"), format!("{t}.{p}")));
            }
        }
    }
    out
}

/// Copy the VGG-16 weights from `path` into the model variables of `vs`.
/// Fails, naming the tensor, when a name is missing or a shape differs
/// (e.g. a config whose widths are not VGG-16's). Returns how many model
/// tensors were set.
pub fn load_vgg16(vs: &nn::VarStore, path: &Path) -> Result<usize> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .with_context(|| format!("{}: not a safetensors file", path.display()))?;
    let vars = vs.variables();
    let mut n = 0;
    for (src, dst) in vgg16_mapping() {
        let view = st
            .tensor(&src)
            .with_context(|| format!("{}: missing tensor `{src}`", path.display()))?;
        let t = crate::checkpoint::tensor_from_view(&view)
            .with_context(|| format!("{}: tensor `{src}`", path.display()))?;
        let Some(var) = vars.get(&dst) else {
            bail!("model has no variable `{dst}`");
        };
        if var.size() != t.size() {
            bail!(
                "{}: `{src}` has shape {:?} but `{dst}` needs {:?} (VGG-16 init needs the paper widths)",
                path.display(),
                t.size(),
                var.size()
            );
        }
        let mut var = var.shallow_clone();
        tch::no_grad(|| var.copy_(&t.to_device(var.device())));
        n += 1;
    }
    Ok(n)
}

/// Write a fake torchvision-style VGG state dict for the given conv
/// widths (tests, documentation); values are `index + position * 1e-3`.
pub fn write_fake_vgg16(path: &Path, widths: [usize; 5]) -> Result<()> {
    let mut tensors: Vec<(String, Tensor)> = Vec::new();
    let per_block = [2usize, 2, 3, 3, 3];
    let mut cin = 3;
    let mut k = 0;
    for (b, &count) in per_block.iter().enumerate() {
        for _ in 0..count {
            let idx = VGG16_CONV_INDICES[k];
            let cout = widths[b];
            let numel = (cout * cin * 9) as i64;
            let w = (Tensor::arange(numel, (tch::Kind::Float, tch::Device::Cpu)) * 1e-3
                + idx as f64)
                .view([cout as i64, cin as i64, 3, 3]);
            let bias = Tensor::full(
                [cout as i64],
                -(idx as f64),
                (tch::Kind::Float, tch::Device::Cpu),
            );
            tensors.push((format!("features.{idx}.weight"), w));
            tensors.push((format!("features.{idx}.bias"), bias));
            cin = cout;
            k += 1;
        }
    }
    crate::checkpoint::write_safetensors_atomic(path, &tensors, Default::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use deepfashion::contract::ModelConfig;

    #[test]
    fn fake_state_dict_maps_onto_backbone_and_both_branches() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vgg.safetensors");
        let mut cfg = ModelConfig::tiny();
        cfg.num_categories = 3;
        cfg.num_attributes = 4;
        write_fake_vgg16(&path, cfg.widths).unwrap();
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let _m = crate::model::FashionNet::new(&vs.root(), &cfg);
        let n = load_vgg16(&vs, &path).unwrap();
        assert_eq!(n, 2 * 16);
        let vars = vs.variables();
        let first = |name: &str| vars[name].view([-1]).double_value(&[0]);
        assert_eq!(first("conv1_1.weight"), 0.0);
        assert_eq!(first("conv1_2.bias"), -2.0);
        assert_eq!(first("conv4_3.weight"), 21.0);
        assert_eq!(first("conv5_1_pose.weight"), 24.0);
        assert_eq!(first("conv5_1_global.weight"), 24.0);
        assert_eq!(first("conv5_3_global.bias"), -28.0);
        // A mismatched config is refused with the tensor named.
        let mut other = cfg.clone();
        other.widths[0] = 4;
        let vs2 = nn::VarStore::new(tch::Device::Cpu);
        let _m2 = crate::model::FashionNet::new(&vs2.root(), &other);
        let e = load_vgg16(&vs2, &path).unwrap_err().to_string();
        assert!(e.contains("features.0.weight"), "{e}");
    }
}
