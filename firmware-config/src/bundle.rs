//! The bundle: one `.tar.gz` with everything a board needs, and a
//! `manifest.json` with the SHA-256 of every file so that an install can
//! refuse a damaged bundle before it touches the board.
//!
//! Layout (paths inside the archive):
//!
//! ```text
//! VERSION                          release version, one line
//! manifest.json                    board, target, version, every file's SHA-256, size, mode
//! SHA256SUMS                       the same hashes in `sha256sum -c` form (checked again on the board)
//! bin/fashion-runtime              the runtime, built for the board's triple and glibc
//! model/<name>.onnx                the model(s)
//! table/<name>                     the shop table (optional)
//! config.toml                      the device config (validated for the board)
//! systemd/fashion-runtime.service  the unit
//! systemd/fashion-runtime.conf     sysusers.d: the dedicated user, in group `video`
//! udev/99-fashion-camera.rules     stable camera path (USB cameras only)
//! ```

use crate::board::CameraKind;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

/// Bundle format version written into every manifest.
pub const FORMAT: u32 = 1;
/// The manifest's path inside the bundle.
pub const MANIFEST: &str = "manifest.json";
/// The `sha256sum -c` file's path inside the bundle.
pub const SUMS: &str = "SHA256SUMS";
/// The version file's path inside the bundle.
pub const VERSION_FILE: &str = "VERSION";
/// The runtime binary's path inside the bundle.
pub const RUNTIME_BIN: &str = "bin/fashion-runtime";
/// The device config's path inside the bundle.
pub const CONFIG: &str = "config.toml";

/// Errors raised while writing or verifying a bundle.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Reading or writing failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The bundle is damaged or was tampered with.
    #[error("bundle {path} is not intact: {reason}")]
    Corrupt {
        /// The bundle file.
        path: String,
        /// What does not match.
        reason: String,
    },
}

/// One file in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    /// Path inside the bundle (`bin/fashion-runtime`).
    pub path: String,
    /// Lower-case hex SHA-256 of the contents.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Unix permission bits (`0o755` for the binary, `0o644` otherwise).
    pub mode: u32,
}

/// `manifest.json`: what the bundle is for and the hash of every other file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Bundle format version ([`FORMAT`]).
    pub format: u32,
    /// Release version (also in `VERSION`).
    pub version: String,
    /// Board profile name.
    pub board: String,
    /// Rust target triple of the binary.
    pub target: String,
    /// Oldest glibc the board profile supports.
    pub board_glibc: String,
    /// Highest `GLIBC_` version the binary requires (`None`: static).
    pub runtime_max_glibc: Option<String>,
    /// The camera kind the config and unit are set up for.
    pub camera: CameraKind,
    /// The tool that wrote it.
    pub created_by: String,
    /// Every file except `manifest.json` itself, sorted by path.
    pub files: Vec<ManifestFile>,
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A file to put into a bundle.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Path inside the bundle.
    pub path: String,
    /// Contents.
    pub data: Vec<u8>,
    /// Unix permission bits.
    pub mode: u32,
}

/// Everything but the file list of a manifest.
#[derive(Debug, Clone)]
pub struct BundleMeta {
    /// Release version.
    pub version: String,
    /// Board profile name.
    pub board: String,
    /// Rust target triple.
    pub target: String,
    /// The board's oldest glibc.
    pub board_glibc: String,
    /// The binary's highest required glibc.
    pub runtime_max_glibc: Option<String>,
    /// The camera kind.
    pub camera: CameraKind,
}

/// Write a bundle atomically (temporary file in the same directory, fsync,
/// rename). Adds `VERSION`, `SHA256SUMS` and `manifest.json`. Returns the
/// manifest.
pub fn write(out: &Path, meta: &BundleMeta, entries: Vec<Entry>) -> Result<Manifest, BundleError> {
    let mut entries = entries;
    entries.push(Entry {
        path: VERSION_FILE.into(),
        data: format!("{}\n", meta.version).into_bytes(),
        mode: 0o644,
    });
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let files: Vec<ManifestFile> = entries
        .iter()
        .map(|e| ManifestFile {
            path: e.path.clone(),
            sha256: sha256_hex(&e.data),
            size: e.data.len() as u64,
            mode: e.mode,
        })
        .collect();
    let manifest = Manifest {
        format: FORMAT,
        version: meta.version.clone(),
        board: meta.board.clone(),
        target: meta.target.clone(),
        board_glibc: meta.board_glibc.clone(),
        runtime_max_glibc: meta.runtime_max_glibc.clone(),
        camera: meta.camera,
        created_by: concat!("firmware-config ", env!("CARGO_PKG_VERSION")).into(),
        files,
    };
    let sums: String = manifest
        .files
        .iter()
        .map(|f| format!("{}  {}\n", f.sha256, f.path))
        .collect();
    let manifest_json = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
    entries.push(Entry {
        path: SUMS.into(),
        data: sums.into_bytes(),
        mode: 0o644,
    });
    entries.push(Entry {
        path: MANIFEST.into(),
        data: manifest_json,
        mode: 0o644,
    });

    let io = |what, source| BundleError::Io {
        what,
        path: out.display().to_string(),
        source,
    };
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".bundle-")
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(|e| io("creating a temporary file next to", e))?;
    {
        let gz = flate2::write::GzEncoder::new(tmp.as_file(), flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        for e in &entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(e.data.len() as u64);
            h.set_mode(e.mode);
            h.set_mtime(0);
            h.set_uid(0);
            h.set_gid(0);
            h.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut h, &e.path, e.data.as_slice())
                .map_err(|e| io("writing", e))?;
        }
        let gz = tar.into_inner().map_err(|e| io("writing", e))?;
        gz.finish()
            .map_err(|e| io("writing", e))?
            .flush()
            .map_err(|e| io("writing", e))?;
    }
    tmp.as_file().sync_all().map_err(|e| io("syncing", e))?;
    tmp.persist(out)
        .map_err(|e| io("renaming the temporary file to", e.error))?;
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(manifest)
}

/// A bundle whose every file matched its manifest, unpacked in memory.
#[derive(Debug, Clone)]
pub struct VerifiedBundle {
    /// The manifest.
    pub manifest: Manifest,
    /// The exact bytes of `manifest.json` (the release id hashes them).
    pub manifest_bytes: Vec<u8>,
    /// Every file by path (including `manifest.json`, `SHA256SUMS`).
    pub files: BTreeMap<String, Vec<u8>>,
}

impl VerifiedBundle {
    /// The release directory name: `<version>-<first 12 hex of SHA-256(manifest.json)>`.
    pub fn release_id(&self) -> String {
        format!(
            "{}-{}",
            self.manifest.version,
            &sha256_hex(&self.manifest_bytes)[..12]
        )
    }
}

fn safe_path(p: &Path) -> bool {
    !p.as_os_str().is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)))
}

/// Read a bundle and check every file against the manifest: each listed
/// file present with its size and hash, nothing unlisted, `SHA256SUMS` and
/// `VERSION` consistent, only plain files with relative paths.
pub fn verify(path: &Path) -> Result<VerifiedBundle, BundleError> {
    let corrupt = |reason: String| BundleError::Corrupt {
        path: path.display().to_string(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|source| BundleError::Io {
        what: "opening",
        path: path.display().to_string(),
        source,
    })?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut files = BTreeMap::new();
    let entries = archive
        .entries()
        .map_err(|e| corrupt(format!("cannot read the archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| corrupt(format!("cannot read the archive: {e}")))?;
        let name = entry
            .path()
            .map_err(|e| corrupt(format!("bad entry name: {e}")))?
            .into_owned();
        let shown = name.display().to_string();
        match entry.header().entry_type() {
            tar::EntryType::Regular => {}
            tar::EntryType::Directory => continue,
            other => {
                return Err(corrupt(format!(
                    "`{shown}` is a {other:?} entry; only plain files are allowed"
                )))
            }
        }
        if !safe_path(&name) {
            return Err(corrupt(format!("`{shown}` is not a plain relative path")));
        }
        let mut data = Vec::new();
        entry
            .read_to_end(&mut data)
            .map_err(|e| corrupt(format!("reading `{shown}`: {e}")))?;
        let key = name.to_string_lossy().into_owned();
        if files.insert(key, data).is_some() {
            return Err(corrupt(format!("`{shown}` appears twice")));
        }
    }
    let manifest_bytes = files
        .get(MANIFEST)
        .cloned()
        .ok_or_else(|| corrupt(format!("no {MANIFEST}")))?;
    let manifest: Manifest =
        serde_json::from_slice(&manifest_bytes).map_err(|e| corrupt(format!("{MANIFEST}: {e}")))?;
    if manifest.format != FORMAT {
        return Err(corrupt(format!(
            "{MANIFEST}: format {} (this tool reads {FORMAT})",
            manifest.format
        )));
    }
    let mut expected_sums = String::new();
    for f in &manifest.files {
        let data = files.get(&f.path).ok_or_else(|| {
            corrupt(format!(
                "`{}` is listed in the manifest but missing",
                f.path
            ))
        })?;
        if data.len() as u64 != f.size {
            return Err(corrupt(format!(
                "`{}` has {} bytes, the manifest says {}",
                f.path,
                data.len(),
                f.size
            )));
        }
        let got = sha256_hex(data);
        if got != f.sha256 {
            return Err(corrupt(format!(
                "`{}` has SHA-256 {got}, the manifest says {}",
                f.path, f.sha256
            )));
        }
        expected_sums.push_str(&format!("{}  {}\n", f.sha256, f.path));
    }
    for name in files.keys() {
        if name != MANIFEST && name != SUMS && !manifest.files.iter().any(|f| &f.path == name) {
            return Err(corrupt(format!("`{name}` is not listed in the manifest")));
        }
    }
    if files.get(SUMS).map(Vec::as_slice) != Some(expected_sums.as_bytes()) {
        return Err(corrupt(format!("{SUMS} does not match {MANIFEST}")));
    }
    let version = files
        .get(VERSION_FILE)
        .map(|v| String::from_utf8_lossy(v).trim().to_string());
    if version.as_deref() != Some(manifest.version.as_str()) {
        return Err(corrupt(format!(
            "{VERSION_FILE} does not say {}",
            manifest.version
        )));
    }
    if !manifest.files.iter().any(|f| f.path == RUNTIME_BIN) {
        return Err(corrupt(format!("no {RUNTIME_BIN}")));
    }
    Ok(VerifiedBundle {
        manifest,
        manifest_bytes,
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> BundleMeta {
        BundleMeta {
            version: "1.2.3".into(),
            board: "rpi4".into(),
            target: "aarch64-unknown-linux-gnu".into(),
            board_glibc: "2.31".into(),
            runtime_max_glibc: Some("2.17".into()),
            camera: CameraKind::PiCsi,
        }
    }

    fn entries() -> Vec<Entry> {
        vec![
            Entry {
                path: RUNTIME_BIN.into(),
                data: b"\x7fELF binary".to_vec(),
                mode: 0o755,
            },
            Entry {
                path: CONFIG.into(),
                data: b"threads = 4\n".to_vec(),
                mode: 0o644,
            },
        ]
    }

    #[test]
    fn round_trip_and_every_flipped_byte_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("b.tar.gz");
        let m = write(&out, &meta(), entries()).unwrap();
        assert_eq!(m.files.len(), 3);
        let v = verify(&out).unwrap();
        assert_eq!(v.manifest, m);
        assert!(v.release_id().starts_with("1.2.3-") && v.release_id().len() == 6 + 12);
        let sums = String::from_utf8(v.files[SUMS].clone()).unwrap();
        assert!(
            sums.contains(&format!("{}  VERSION\n", sha256_hex(b"1.2.3\n"))),
            "{sums}"
        );
        // Deterministic: same inputs, same bytes.
        let out2 = dir.path().join("c.tar.gz");
        write(&out2, &meta(), entries()).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&out2).unwrap());
        // Tamper with the uncompressed tar at a few places: always refused.
        let mut tar_bytes = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&out).unwrap())
            .read_to_end(&mut tar_bytes)
            .unwrap();
        let data_offsets: Vec<usize> = (0..tar_bytes.len())
            .step_by(512)
            .map(|o| o + 3)
            .filter(|&o| o < tar_bytes.len())
            .collect();
        let mut refused = 0;
        for &o in &data_offsets {
            let mut t = tar_bytes.clone();
            t[o] ^= 0x01;
            let bad = dir.path().join("bad.tar.gz");
            let mut gz = flate2::write::GzEncoder::new(
                std::fs::File::create(&bad).unwrap(),
                flate2::Compression::fast(),
            );
            gz.write_all(&t).unwrap();
            gz.finish().unwrap();
            if verify(&bad).is_err() {
                refused += 1;
            }
        }
        // Every header block and every data block carries a checked byte at
        // offset 3, except the zero padding at the end of the archive.
        assert!(
            refused >= 2 * 5,
            "only {refused} of {} flips refused",
            data_offsets.len()
        );
    }

    #[test]
    fn unlisted_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("b.tar.gz");
        write(&out, &meta(), entries()).unwrap();
        let mut v = verify(&out).unwrap();
        v.files.insert("extra".into(), b"x".to_vec());
        let bad = dir.path().join("bad.tar.gz");
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&bad).unwrap(),
            flate2::Compression::fast(),
        );
        let mut tar = tar::Builder::new(gz);
        for (p, d) in &v.files {
            let mut h = tar::Header::new_gnu();
            h.set_size(d.len() as u64);
            h.set_mode(0o644);
            tar.append_data(&mut h, p, d.as_slice()).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap();
        let e = verify(&bad).unwrap_err().to_string();
        assert!(e.contains("`extra` is not listed"), "{e}");
    }
}
