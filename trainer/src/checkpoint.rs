//! Checkpoints: safetensors files holding every model tensor under its
//! contract name, with the config, labels and training state in the
//! `__metadata__` (keys from [`deepfashion::contract::metadata_keys`]).
//!
//! Files are written atomically (temporary file in the same folder, fsync,
//! rename, fsync of the folder), so a crash or SIGINT never leaves a torn
//! file under a checkpoint name. The optimizer state (Adam moments, SGD
//! momentum) is NOT stored: a resumed run restarts the optimizer's moments
//! from zero at the saved step (the learning-rate schedule continues).

use anyhow::{bail, Context, Result};
use deepfashion::contract::{metadata_keys, Labels, ModelConfig, CONTRACT_VERSION};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use tch::{nn, Kind, Tensor};

/// Where training stands; stored in every checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingState {
    /// Completed optimizer steps.
    pub step: u64,
    /// Total steps the run was planned for.
    pub total_steps: u64,
    /// Epoch (passes over the Category & Attribute training split), fractional.
    pub epoch: f64,
    /// Stage (1 or 2) of the last step.
    pub stage: u8,
    /// Seed of the run.
    pub seed: u64,
    /// Latest smoothed metrics (loss terms, learning rate).
    pub metrics: BTreeMap<String, f64>,
    /// Always false: optimizer moments are not saved (see module docs).
    pub optimizer_state_saved: bool,
}

/// A checkpoint read back from disk.
#[derive(Debug)]
pub struct Checkpoint {
    /// The model config.
    pub config: ModelConfig,
    /// The label sets.
    pub labels: Labels,
    /// The training state.
    pub state: TrainingState,
    /// Tensors by name (CPU, f32).
    pub tensors: Vec<(String, Tensor)>,
}

/// Build a CPU f32 tensor from a safetensors view (F32, F16 or BF16 data).
pub fn tensor_from_view(view: &safetensors::tensor::TensorView<'_>) -> Result<Tensor> {
    let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
    let kind = match view.dtype() {
        safetensors::Dtype::F32 => Kind::Float,
        safetensors::Dtype::F16 => Kind::Half,
        safetensors::Dtype::BF16 => Kind::BFloat16,
        other => bail!("unsupported dtype {other:?} (expected F32, F16 or BF16)"),
    };
    let t = Tensor::f_from_data_size(view.data(), &shape, kind)?;
    Ok(t.to_kind(Kind::Float))
}

/// Write named tensors (converted to f32, contiguous) with metadata into a
/// safetensors file, atomically.
pub fn write_safetensors_atomic(
    path: &Path,
    tensors: &[(String, Tensor)],
    metadata: HashMap<String, String>,
) -> Result<()> {
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let t = t
            .to_device(tch::Device::Cpu)
            .to_kind(Kind::Float)
            .contiguous();
        let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
        let numel = t.numel();
        let mut data = vec![0f32; numel];
        t.f_copy_data(&mut data, numel)
            .with_context(|| format!("copying tensor `{name}`"))?;
        let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        owned.push((name.clone(), shape, bytes));
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = owned
        .iter()
        .map(|(n, s, b)| {
            let v = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                .expect("shape matches data");
            (n.clone(), v)
        })
        .collect();
    let meta = (!metadata.is_empty()).then_some(metadata);
    let bytes = safetensors::serialize(views, &meta).context("serializing safetensors")?;
    write_atomic(path, &bytes)
}

/// Write `bytes` to `path` atomically: temporary file in the same folder,
/// fsync, rename, fsync of the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = path
        .file_name()
        .with_context(|| format!("{}: no file name", path.display()))?
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let res = (|| -> Result<()> {
        let mut f =
            std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(bytes)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.sync_all()
            .with_context(|| format!("fsync {}", tmp.display()))?;
        drop(f);
        std::fs::rename(&tmp, path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

pub use deepfashion::contract::run_layout::{checkpoint_dir, checkpoint_name};

/// Save the model variables of `vs` with config, labels and state into
/// `path` (atomically).
pub fn save(
    path: &Path,
    vs: &nn::VarStore,
    config: &ModelConfig,
    labels: &Labels,
    state: &TrainingState,
) -> Result<()> {
    let vars = vs.variables();
    let mut tensors = Vec::new();
    for (name, _) in config.parameters() {
        let t = vars
            .get(&name)
            .with_context(|| format!("model has no variable `{name}`"))?;
        tensors.push((name, t.detach()));
    }
    let mut meta = HashMap::new();
    meta.insert(metadata_keys::CONFIG.to_string(), config.to_json());
    meta.insert(
        metadata_keys::LABELS.to_string(),
        serde_json::to_string(labels)?,
    );
    meta.insert(
        metadata_keys::TRAINING_STATE.to_string(),
        serde_json::to_string(state)?,
    );
    meta.insert(
        metadata_keys::CONTRACT_VERSION.to_string(),
        CONTRACT_VERSION.to_string(),
    );
    write_safetensors_atomic(path, &tensors, meta)
}

/// Read a checkpoint (all tensors to CPU f32) and check it against the
/// contract (names and shapes of [`ModelConfig::parameters`]).
pub fn load(path: &Path) -> Result<Checkpoint> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .with_context(|| format!("{}: not a safetensors file", path.display()))?;
    let meta = header.metadata().clone().unwrap_or_default();
    let get = |k: &str| {
        meta.get(k)
            .with_context(|| format!("{}: metadata key `{k}` missing", path.display()))
    };
    let config = ModelConfig::from_json(get(metadata_keys::CONFIG)?)
        .with_context(|| format!("{}: `{}`", path.display(), metadata_keys::CONFIG))?;
    let labels: Labels = serde_json::from_str(get(metadata_keys::LABELS)?)
        .with_context(|| format!("{}: `{}`", path.display(), metadata_keys::LABELS))?;
    let state: TrainingState = serde_json::from_str(get(metadata_keys::TRAINING_STATE)?)
        .with_context(|| format!("{}: `{}`", path.display(), metadata_keys::TRAINING_STATE))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .with_context(|| format!("{}: not a safetensors file", path.display()))?;
    let mut tensors = Vec::new();
    for (name, shape) in config.parameters() {
        let view = st
            .tensor(&name)
            .with_context(|| format!("{}: tensor `{name}` missing", path.display()))?;
        if view.shape() != shape.as_slice() {
            bail!(
                "{}: tensor `{name}` has shape {:?}, the config says {:?}",
                path.display(),
                view.shape(),
                shape
            );
        }
        tensors.push((name, tensor_from_view(&view)?));
    }
    Ok(Checkpoint {
        config,
        labels,
        state,
        tensors,
    })
}

/// Copy checkpoint tensors into the variables of `vs`.
pub fn restore(vs: &nn::VarStore, ckpt: &Checkpoint) -> Result<()> {
    let vars = vs.variables();
    for (name, t) in &ckpt.tensors {
        let var = vars
            .get(name)
            .with_context(|| format!("model has no variable `{name}`"))?;
        let mut var = var.shallow_clone();
        tch::no_grad(|| var.copy_(&t.to_device(var.device())));
    }
    Ok(())
}

/// The newest checkpoint (highest step) in a run folder, if any. Temporary
/// files (dot-prefixed) are ignored.
pub fn newest(run: &Path) -> Result<Option<PathBuf>> {
    deepfashion::contract::run_layout::newest_checkpoint(run)
        .with_context(|| format!("listing {}", checkpoint_dir(run).display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use deepfashion::contract::{AttributeLabel, CategoryLabel};

    #[test]
    fn save_load_roundtrip_and_newest() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = ModelConfig::tiny();
        cfg.num_categories = 2;
        cfg.num_attributes = 1;
        let labels = Labels {
            categories: vec![
                CategoryLabel {
                    name: "a".into(),
                    garment_type: 1,
                },
                CategoryLabel {
                    name: "b".into(),
                    garment_type: 2,
                },
            ],
            attributes: vec![AttributeLabel {
                name: "x".into(),
                group: "texture".into(),
            }],
        };
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let _m = crate::model::FashionNet::new(&vs.root(), &cfg);
        let state = TrainingState {
            step: 7,
            total_steps: 10,
            stage: 1,
            ..Default::default()
        };
        let p1 = checkpoint_dir(dir.path()).join(checkpoint_name(7));
        save(&p1, &vs, &cfg, &labels, &state).unwrap();
        let p2 = checkpoint_dir(dir.path()).join(checkpoint_name(12));
        save(
            &p2,
            &vs,
            &cfg,
            &labels,
            &TrainingState {
                step: 12,
                ..state.clone()
            },
        )
        .unwrap();
        assert_eq!(newest(dir.path()).unwrap().unwrap(), p2);
        let ck = load(&p1).unwrap();
        assert_eq!(ck.config, cfg);
        assert_eq!(ck.labels, labels);
        assert_eq!(ck.state, state);
        let vs2 = nn::VarStore::new(tch::Device::Cpu);
        let _m2 = crate::model::FashionNet::new(&vs2.root(), &cfg);
        restore(&vs2, &ck).unwrap();
        let a = vs.variables();
        let b = vs2.variables();
        for (k, v) in &a {
            assert!(v.allclose(&b[k], 0.0, 0.0, false), "{k}");
        }
        // No temporary files left behind.
        let names: Vec<_> = std::fs::read_dir(checkpoint_dir(dir.path()))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
        // A truncated file is refused with its name.
        let bytes = std::fs::read(&p1).unwrap();
        let bad = dir.path().join("bad.safetensors");
        std::fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap();
        let e = format!("{:#}", load(&bad).unwrap_err());
        assert!(e.contains("bad.safetensors"), "{e}");
    }
}
