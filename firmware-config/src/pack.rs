//! Assembling a bundle for a board from its parts: the checked config, the
//! runtime binary (checked against the board), the model(s), the table and
//! the generated system files.

use crate::board::{BoardProfile, CameraKind};
use crate::bundle::{self, BundleMeta, Entry, Manifest};
use crate::check;
use crate::cross;
use crate::elf;
use crate::systemd::{self, DEFAULT_PREFIX, SYSUSERS_FILE, UDEV_FILE, UNIT_FILE};
use std::path::{Path, PathBuf};

/// What goes into a bundle.
#[derive(Debug, Clone)]
pub struct PackInputs {
    /// The board.
    pub board: BoardProfile,
    /// The runtime binary for the board.
    pub runtime_bin: PathBuf,
    /// Models; the first is the config's `model` (later ones are
    /// alternatives that `bench --choose` may pick, e.g. fp32 and int8).
    pub models: Vec<PathBuf>,
    /// The shop table (optional).
    pub table: Option<PathBuf>,
    /// The device config TOML.
    pub config: PathBuf,
    /// Release version.
    pub version: String,
    /// Skip reading the models' metadata (input size check); for tests
    /// with placeholder model files.
    pub skip_model_check: bool,
}

fn file_name(p: &Path) -> anyhow::Result<String> {
    let name = p
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| anyhow::anyhow!("{}: no usable file name", p.display()))?;
    Ok(name.to_string())
}

fn read(p: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(p).map_err(|e| anyhow::anyhow!("reading the {what} {}: {e}", p.display()))
}

/// Check everything and write the bundle to `out` atomically.
pub fn pack(inputs: &PackInputs, out: &Path) -> anyhow::Result<Manifest> {
    let board = &inputs.board;
    anyhow::ensure!(!inputs.models.is_empty(), "at least one --model is needed");
    anyhow::ensure!(
        !inputs.version.is_empty() && inputs.version.chars().all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c)),
        "version `{}` may contain only ASCII letters, digits and `._+-` (it names a directory on the board)",
        inputs.version
    );
    let info = cross::check_binary(&inputs.runtime_bin, board)?;
    if !inputs.skip_model_check {
        for m in &inputs.models {
            check::check_model(m, board)?;
        }
    }
    let installed = |dir: &str, name: &str| format!("{DEFAULT_PREFIX}/current/{dir}/{name}");
    let model_names: Vec<String> = inputs
        .models
        .iter()
        .map(|m| file_name(m))
        .collect::<anyhow::Result<_>>()?;
    let table_name = inputs.table.as_deref().map(file_name).transpose()?;
    let config_text = std::fs::read_to_string(&inputs.config)
        .map_err(|e| anyhow::anyhow!("reading the config {}: {e}", inputs.config.display()))?;
    // Point the config at the bundled files, then check the result.
    let config_text = check::rewrite_paths(
        &config_text,
        &installed("model", &model_names[0]),
        table_name
            .as_deref()
            .map(|t| installed("table", t))
            .as_deref(),
    )?;
    let checked = check::check_text(&config_text, &inputs.config, board)?;

    let mut entries = vec![
        Entry {
            path: bundle::RUNTIME_BIN.into(),
            data: read(&inputs.runtime_bin, "runtime binary")?,
            mode: 0o755,
        },
        Entry {
            path: bundle::CONFIG.into(),
            data: config_text.into_bytes(),
            mode: 0o644,
        },
        Entry {
            path: format!("systemd/{UNIT_FILE}"),
            data: systemd::unit(
                board,
                checked.camera,
                checked.config.camera.width,
                checked.config.camera.height,
                DEFAULT_PREFIX,
            )
            .into_bytes(),
            mode: 0o644,
        },
        Entry {
            path: format!("systemd/{SYSUSERS_FILE}"),
            data: systemd::sysusers().into_bytes(),
            mode: 0o644,
        },
    ];
    for (m, name) in inputs.models.iter().zip(&model_names) {
        entries.push(Entry {
            path: format!("model/{name}"),
            data: read(m, "model")?,
            mode: 0o644,
        });
    }
    if let (Some(t), Some(name)) = (&inputs.table, &table_name) {
        entries.push(Entry {
            path: format!("table/{name}"),
            data: read(t, "table")?,
            mode: 0o644,
        });
    }
    if checked.camera == CameraKind::UsbV4l2 {
        entries.push(Entry {
            path: format!("udev/{UDEV_FILE}"),
            data: systemd::udev_rule().into_bytes(),
            mode: 0o644,
        });
    }
    let mut seen = std::collections::BTreeSet::new();
    for e in &entries {
        anyhow::ensure!(
            seen.insert(e.path.clone()),
            "two inputs would both be `{}` in the bundle; rename one",
            e.path
        );
    }
    let meta = BundleMeta {
        version: inputs.version.clone(),
        board: board.name.clone(),
        target: board.target.clone(),
        board_glibc: board.glibc.clone(),
        runtime_max_glibc: info.max_glibc().map(elf::format_version),
        camera: checked.camera,
    };
    Ok(bundle::write(out, &meta, entries)?)
}
