//! A bundle for every built-in profile, with the cross-built runtime: the
//! binary's highest `GLIBC_` version is at most the board's, the aarch64
//! binary runs `fashion-runtime info` on the demo model and table under
//! qemu-aarch64, and `systemd-analyze verify` accepts
//! every generated unit.
//!
//! The runtime binaries come from `FIRMWARE_RUNTIME_AARCH64` and
//! `FIRMWARE_RUNTIME_ARMV7`, set by `cargo xtask test`, which builds both
//! with `cargo zigbuild` against glibc 2.17 as bundles are (the aarch64 one
//! is the build its qemu tests use; in quicker profiles than a bundle's
//! release build). Without them the test cross-builds release runtimes
//! itself into `target/firmware-cross` when `FIRMWARE_BUILD_RUNTIME=1` is
//! set (about 10 min each on two cores), and otherwise skips, or fails when
//! `FASHION_REQUIRE_SERVICES=1` says every check must run.

mod common;
use common::{config_text, have, run, skip_or_fail};
use firmware_config::board::{builtin, BoardProfile, CameraKind};
use firmware_config::{bundle, cross, elf};
use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The runtime binary for a board's triple: from the environment, or built
/// once into the cache.
fn runtime_binary(board: &BoardProfile) -> Result<PathBuf, String> {
    let var = if board.target.starts_with("aarch64") {
        "FIRMWARE_RUNTIME_AARCH64"
    } else {
        "FIRMWARE_RUNTIME_ARMV7"
    };
    if let Some(p) = std::env::var_os(var) {
        return Ok(PathBuf::from(p));
    }
    if !std::env::var("FIRMWARE_BUILD_RUNTIME").is_ok_and(|v| v == "1") {
        return Err(format!("{var} is not set (cargo xtask test sets it; or set FIRMWARE_BUILD_RUNTIME=1 to cross-build here)"));
    }
    let started = std::time::Instant::now();
    let out = common::cli()
        .args(["build-runtime", "--board", &board.name, "--cache"])
        .arg(workspace().join("target/firmware-cross"))
        .env("FASHION_WORKSPACE", workspace())
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "build-runtime for {} failed:\n{}",
            board.name,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    eprintln!(
        "runtime for {} ready in {:.0} s",
        board.target,
        started.elapsed().as_secs_f64()
    );
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// The highest GLIBC version `objdump -T` lists (None when objdump is absent
/// or cannot read the file).
fn objdump_max_glibc(bin: &Path) -> Option<(u32, u32, u32)> {
    let out = Command::new("objdump").arg("-T").arg(bin).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter_map(|w| w.strip_prefix("GLIBC_"))
        .filter_map(|v| {
            let mut it = v.split('.').map(|n| n.parse::<u32>().ok());
            Some((it.next()??, it.next()??, it.next().flatten().unwrap_or(0)))
        })
        .max()
}

fn source_for(b: &BoardProfile) -> &'static str {
    if b.camera == CameraKind::UsbV4l2 {
        "v4l:/dev/fashion-camera"
    } else {
        "mjpeg:-"
    }
}

#[test]
fn bundle_for_every_profile() {
    let test = "bundle_for_every_profile";
    let boards = builtin();
    let mut binaries = std::collections::BTreeMap::new();
    for b in &boards {
        if binaries.contains_key(&b.target) {
            continue;
        }
        match runtime_binary(b) {
            Ok(p) => {
                binaries.insert(b.target.clone(), p);
            }
            Err(why) => {
                if std::env::var_os("FIRMWARE_NO_ARM_RUNTIMES").is_some() {
                    eprintln!(
                        "{test}: skipped (cargo xtask test --no-qemu builds no ARM runtimes)"
                    );
                } else {
                    skip_or_fail(test, &why);
                }
                return;
            }
        }
    }
    let work = tempfile::tempdir().unwrap();
    for b in &boards {
        let bin = &binaries[&b.target];
        let info = cross::check_binary(bin, b).unwrap_or_else(|e| panic!("{e}"));
        let max = info.max_glibc();
        if let Some(objdump) = objdump_max_glibc(bin) {
            assert_eq!(
                Some(objdump),
                max,
                "{}: objdump -T and the ELF reader disagree",
                b.name
            );
        }
        let board_glibc = firmware_config::board::parse_glibc(&b.glibc).unwrap();
        if let Some(m) = max {
            assert!(
                (m.0, m.1) <= board_glibc,
                "{}: binary needs GLIBC_{} > {}",
                b.name,
                elf::format_version(m),
                b.glibc
            );
        }
        let dir = work.path().join(&b.name);
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("device.toml");
        std::fs::write(&config, config_text(source_for(b), b.threads)).unwrap();
        let out = dir.join(format!("{}.tar.gz", b.name));
        common::bundle(&b.name, bin, &dir, &config, "0.1.0", &out);
        let v = bundle::verify(&out).unwrap();
        assert_eq!(v.manifest.board, b.name);
        assert_eq!(v.manifest.runtime_max_glibc, max.map(elf::format_version));
        assert_eq!(v.files[bundle::RUNTIME_BIN], std::fs::read(bin).unwrap());
        for f in [
            "VERSION",
            "config.toml",
            "systemd/fashion-runtime.service",
            "systemd/fashion-runtime.conf",
            "model/edge.onnx",
            "table/shop.table",
            "SHA256SUMS",
        ] {
            assert!(v.files.contains_key(f), "{}: {f} missing", b.name);
        }
        assert_eq!(
            v.files.contains_key("udev/99-fashion-camera.rules"),
            b.camera == CameraKind::UsbV4l2
        );
        eprintln!(
            "{}: bundle ok, runtime needs GLIBC {} (board {})",
            b.name,
            max.map(elf::format_version).unwrap_or("none".into()),
            b.glibc
        );
        verify_unit(
            test,
            &String::from_utf8(v.files["systemd/fashion-runtime.service"].clone()).unwrap(),
            &dir,
        );
    }
    // The wrong architecture is refused.
    let rpi4 = boards.iter().find(|b| b.name == "rpi4").unwrap();
    let armv7 = &binaries["armv7-unknown-linux-gnueabihf"];
    let e = cross::check_binary(armv7, rpi4).unwrap_err().to_string();
    assert!(e.contains("Arm") && e.contains("Aarch64"), "{e}");

    // The aarch64 binary runs.
    let aarch64 = &binaries["aarch64-unknown-linux-gnu"];
    let qemu = ["qemu-aarch64-static", "qemu-aarch64"]
        .into_iter()
        .find(|q| have(q));
    match qemu {
        None => {
            skip_or_fail(
                test,
                "qemu-aarch64 is not installed (apt-get install qemu-user-static)",
            );
        }
        Some(q) => {
            // `info` loads the shipped demo model and table: the binary
            // starts, parses the ONNX file and maps the table on aarch64.
            let demo = workspace().join("assets/demo");
            let out = Command::new(q)
                .args(["-L", "/usr/aarch64-linux-gnu"])
                .arg(aarch64)
                .arg("info")
                .arg("--model")
                .arg(demo.join("fashionnet-tiny.int8.onnx"))
                .arg("--table")
                .arg(demo.join("shop.table"))
                .output()
                .unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                out.status.success() && text.contains("(matches the model)"),
                "{q} {} info:\n{text}",
                aarch64.display()
            );
            eprintln!("fashion-runtime info under {q}:\n{}", text.trim());
        }
    }
}

/// `systemd-analyze verify` on the unit, relocated to a temporary prefix that
/// holds an executable at the runtime's path (verify checks ExecStart).
fn verify_unit(test: &str, unit: &str, dir: &Path) {
    if !have("systemd-analyze") {
        skip_or_fail(
            test,
            "systemd-analyze is not installed (apt-get install systemd)",
        );
        return;
    }
    let prefix = dir.join("opt/fashion-runtime");
    let bin = prefix.join("current/bin/fashion-runtime");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::copy("/bin/true", &bin).unwrap();
    let relocated = unit.replace("/opt/fashion-runtime/", &format!("{}/", prefix.display()));
    let unit_dir = dir.join("units");
    std::fs::create_dir_all(&unit_dir).unwrap();
    let path = unit_dir.join("fashion-runtime.service");
    std::fs::write(&path, relocated).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && !text.contains("fashion-runtime.service:"),
        "systemd-analyze verify refused the unit:\n{text}\n{unit}"
    );
}

#[test]
fn bundle_refuses_a_binary_for_the_wrong_board() {
    // This machine's x86-64 binary is not an aarch64 one.
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("device.toml");
    std::fs::write(&config, config_text("mjpeg:-", 4)).unwrap();
    let (model, _) = common::placeholder_inputs(work.path(), "x");
    let out = work.path().join("b.tar.gz");
    let (ok, _, stderr) = run(&[
        "bundle",
        "--board",
        "rpi4",
        "--model",
        model.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--runtime-bin",
        env!("CARGO_BIN_EXE_firmware-config"),
        "--skip-model-check",
    ]);
    assert!(
        !ok && stderr.contains("does not fit board `rpi4`") && stderr.contains("X86_64"),
        "{stderr}"
    );
    assert!(!out.exists(), "a refused bundle must not be written");
}
