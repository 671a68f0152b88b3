//! Checkpoints: the network, the optimizer's moments and the run's position in one file,
//! written to a temporary file, flushed, then renamed, so a checkpoint on disk is always
//! whole.
//!
//! The file is libtorch's named-tensor archive with three kinds of entries:
//! `model.<variable>` for every variable of the `VarStore` (BatchNorm statistics
//! included), `adam.<m|v>.<variable>` for the optimizer, and `meta`, a byte tensor holding
//! [`CheckpointMeta`] as JSON. Every random choice of a run is derived from its seed and
//! the step number, so the step is the whole random state.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::{nn::VarStore, Kind, Tensor};

use crate::optim::Adam;
use crate::train::error::TrainError;

/// Version of the checkpoint layout; a file of another version is refused.
pub const FORMAT_VERSION: u32 = 1;

/// Where a run stands when its checkpoint is written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// Layout version ([`FORMAT_VERSION`]).
    pub format: u32,
    /// Optimizer steps completed.
    pub step: u64,
    /// Epochs completed (an epoch in progress counts as not completed).
    pub epoch: u64,
    /// The seed from which every random choice of the run is derived.
    pub seed: u64,
    /// What produced it: `pretrain`, `supervised` or `random`.
    pub origin: String,
}

/// Writes a checkpoint atomically to `path`.
pub fn save(
    path: &Path,
    vs: &VarStore,
    adam: Option<&Adam>,
    meta: &CheckpointMeta,
) -> Result<(), TrainError> {
    let mut named: Vec<(String, Tensor)> = Vec::new();
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, t) in vars {
        named.push((
            format!("model.{name}"),
            t.detach().to_device(tch::Device::Cpu),
        ));
    }
    if let Some(adam) = adam {
        for (name, t) in adam.state() {
            named.push((format!("adam.{name}"), t.to_device(tch::Device::Cpu)));
        }
    }
    let json = serde_json::to_vec(meta).map_err(|e| TrainError::BadCheckpoint {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    named.push(("meta".to_string(), Tensor::from_slice(&json)));

    // Serialize in memory, then write with plain file I/O: a failed write (a full disk)
    // is then an ordinary error, and the previous checkpoint is only replaced by a rename
    // once the new one is whole on disk.
    let mut bytes = Vec::new();
    Tensor::save_multi_to_stream(&named, &mut bytes).map_err(|e| TrainError::BadCheckpoint {
        path: path.to_path_buf(),
        reason: format!("cannot be serialized: {e}"),
    })?;
    crate::files::write_atomically(path, |out| out.write_all(&bytes)).map_err(|source| {
        TrainError::Io {
            path: path.to_path_buf(),
            source,
        }
    })?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// A checkpoint read back from disk.
pub struct Checkpoint {
    /// The file it came from.
    pub path: PathBuf,
    /// Its position record.
    pub meta: CheckpointMeta,
    tensors: HashMap<String, Tensor>,
}

impl Checkpoint {
    /// Reads a checkpoint file.
    pub fn load(path: &Path) -> Result<Self, TrainError> {
        if !path.is_file() {
            return Err(TrainError::BadCheckpoint {
                path: path.to_path_buf(),
                reason: "no such file".into(),
            });
        }
        let bad = |reason: String| TrainError::BadCheckpoint {
            path: path.to_path_buf(),
            reason,
        };
        let tensors: HashMap<String, Tensor> = Tensor::load_multi(path)
            .map_err(|e| bad(format!("cannot be read as a tensor archive ({e})")))?
            .into_iter()
            .collect();
        let meta = tensors
            .get("meta")
            .ok_or_else(|| bad("no `meta` entry".into()))?;
        if meta.kind() != Kind::Uint8 {
            return Err(bad("`meta` entry is not bytes".into()));
        }
        let bytes: Vec<u8> = Vec::try_from(meta).map_err(|e: tch::TchError| bad(e.to_string()))?;
        let meta: CheckpointMeta =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("`meta` entry: {e}")))?;
        if meta.format != FORMAT_VERSION {
            return Err(bad(format!(
                "layout version {}, this build reads version {FORMAT_VERSION}",
                meta.format
            )));
        }
        Ok(Self {
            path: path.to_path_buf(),
            meta,
            tensors,
        })
    }

    /// Copies the saved variables into `vs`. With `prefix` (e.g. `encoder.`), only the
    /// variables whose names start with it are required; others in `vs` must all be there.
    pub fn restore(&self, vs: &mut VarStore, prefix: &str) -> Result<(), TrainError> {
        let bad = |reason: String| TrainError::BadCheckpoint {
            path: self.path.clone(),
            reason,
        };
        let variables = vs.variables();
        let mut restored = 0;
        for (name, mut var) in variables {
            if !name.starts_with(prefix) {
                continue;
            }
            let saved = self.tensors.get(&format!("model.{name}")).ok_or_else(|| {
                bad(format!(
                    "variable `{name}` missing: the checkpoint was made for another network"
                ))
            })?;
            if saved.size() != var.size() {
                return Err(bad(format!(
                    "variable `{name}` has shape {:?}, expected {:?}: the checkpoint was made \
                     for another network",
                    saved.size(),
                    var.size()
                )));
            }
            tch::no_grad(|| var.copy_(saved));
            restored += 1;
        }
        if restored == 0 {
            return Err(bad(format!("no variables under `{prefix}`")));
        }
        Ok(())
    }

    /// Restores the optimizer's moments.
    pub fn restore_optimizer(&self, adam: &mut Adam) -> Result<(), TrainError> {
        adam.load_state(&|key| {
            self.tensors
                .get(&format!("adam.{key}"))
                .map(|t| t.shallow_clone())
        })
        .map_err(|reason| TrainError::BadCheckpoint {
            path: self.path.clone(),
            reason,
        })?;
        adam.steps = self.meta.step;
        Ok(())
    }
}

/// Writes text to `path` through a temporary file and a rename.
pub fn write_atomically(path: &Path, text: &str) -> Result<(), TrainError> {
    crate::files::write_atomically(path, |out| out.write_all(text.as_bytes())).map_err(|source| {
        TrainError::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn, Device};

    fn store(seed: i64) -> VarStore {
        tch::manual_seed(seed);
        let vs = VarStore::new(Device::Cpu);
        let _ = nn::linear(vs.root() / "encoder" / "l", 4, 3, Default::default());
        let _ = nn::batch_norm1d(vs.root() / "head", 3, Default::default());
        vs
    }

    fn meta(step: u64) -> CheckpointMeta {
        CheckpointMeta {
            format: FORMAT_VERSION,
            step,
            epoch: 1,
            seed: 5,
            origin: "pretrain".into(),
        }
    }

    #[test]
    fn round_trip_restores_every_variable_and_the_moments() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint.ot");
        let vs = store(1);
        let mut adam = Adam::new(&vs, 0.1);
        let x = Tensor::ones([2, 4], (Kind::Float, Device::Cpu));
        (vs.variables()["encoder.l.weight"].matmul(&x.tr()))
            .sum(Kind::Float)
            .backward();
        adam.step();
        save(&path, &vs, Some(&adam), &meta(7)).unwrap();
        assert!(!dir.path().join("checkpoint.ot.tmp").exists());

        let mut other = store(2);
        let mut other_adam = Adam::new(&other, 0.1);
        let ck = Checkpoint::load(&path).unwrap();
        assert_eq!(ck.meta, meta(7));
        ck.restore(&mut other, "").unwrap();
        ck.restore_optimizer(&mut other_adam).unwrap();
        let (a, b) = (vs.variables(), other.variables());
        for (k, t) in &a {
            assert!(t.equal(&b[k]), "{k}");
        }
        assert_eq!(other_adam.steps, 7);
    }

    #[test]
    fn another_network_or_a_damaged_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint.ot");
        save(&path, &store(1), None, &meta(1)).unwrap();
        let vs = VarStore::new(Device::Cpu);
        let _ = nn::linear(vs.root() / "encoder" / "l", 5, 3, Default::default());
        let mut vs = vs;
        let err = Checkpoint::load(&path)
            .unwrap()
            .restore(&mut vs, "")
            .unwrap_err();
        assert!(err.to_string().contains("encoder.l.weight"), "{err}");

        std::fs::write(&path, b"not a checkpoint").unwrap();
        let err = Checkpoint::load(&path).err().unwrap().to_string();
        assert!(
            err.contains("checkpoint.ot") && err.contains("not a usable checkpoint"),
            "{err}"
        );
    }
}

/// A trained network read back from a run folder: the checkpoint, and the configuration
/// saved beside it (`config.toml`), which says which network to build.
pub struct LoadedRun {
    /// The variables, restored.
    pub vs: VarStore,
    /// The network over those variables.
    pub network: crate::model::Network,
    /// The run's configuration.
    pub config: crate::train::config::PretrainConfig,
    /// The checkpoint's position record.
    pub meta: CheckpointMeta,
}

/// Loads the network saved in `checkpoint` (a file inside a run folder) onto `device`.
pub fn load_run(checkpoint: &Path, device: tch::Device) -> Result<LoadedRun, TrainError> {
    let config_path = checkpoint.with_file_name(crate::train::pretrain::files::CONFIG);
    if !config_path.is_file() {
        return Err(TrainError::BadCheckpoint {
            path: checkpoint.to_path_buf(),
            reason: format!(
                "no {} beside it says which network it holds",
                config_path.display()
            ),
        });
    }
    let config = crate::train::config::PretrainConfig::from_file(&config_path)?;
    let ck = Checkpoint::load(checkpoint)?;
    let (mut vs, network) = crate::train::pretrain::build_network(&config, device);
    ck.restore(&mut vs, "")?;
    Ok(LoadedRun {
        vs,
        network,
        config,
        meta: ck.meta,
    })
}
