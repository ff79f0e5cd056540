//! Install onto a real SSH server on loopback: an `sshd` started here on a
//! random port with a throwaway host key and user key, install root under a
//! temporary directory (`--prefix`). Covers install, a second install that
//! keeps the first, rollback, a damaged bundle refused with nothing changed,
//! an unknown host key refused, and `--root` mode.

mod common;
use common::{bundle, config_text, have, loopback_board, run, skip_or_fail};
use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SSHD: &str = "/usr/sbin/sshd";

/// An sshd on loopback, killed on drop.
struct Sshd {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    user: String,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keygen(path: &Path) {
    let ok = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "firmware-config-test",
            "-f",
        ])
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "ssh-keygen failed");
}

impl Sshd {
    fn start(test: &str) -> Option<Sshd> {
        if !have(SSHD) || !have("ssh") || !have("ssh-keygen") {
            skip_or_fail(test, "openssh-server/openssh-client are not installed (apt-get install openssh-server openssh-client)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        keygen(&dir.path().join("host_key"));
        keygen(&dir.path().join("user_key"));
        std::fs::copy(
            dir.path().join("user_key.pub"),
            dir.path().join("authorized_keys"),
        )
        .unwrap();
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string();
        // sshd refuses to start without its privilege separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = dir.path().display();
        let config = dir.path().join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\nAuthorizedKeysFile {d}/authorized_keys\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\n\
                 StrictModes no\nUsePAM no\nLogLevel ERROR\nAllowUsers {user}\n"
            ),
        )
        .unwrap();
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut sshd = Sshd {
            child,
            port,
            dir,
            user,
        };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = sshd.child.try_wait() {
                break;
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                let host_pub =
                    std::fs::read_to_string(sshd.dir.path().join("host_key.pub")).unwrap();
                let mut it = host_pub.split_whitespace();
                let line = format!(
                    "[127.0.0.1]:{port} {} {}\n",
                    it.next().unwrap(),
                    it.next().unwrap()
                );
                std::fs::write(sshd.dir.path().join("known_hosts"), line).unwrap();
                return Some(sshd);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        drop(sshd);
        panic!("sshd did not start on port {port} (see its messages above)");
    }

    fn args(&self, prefix: &Path) -> Vec<String> {
        let d = self.dir.path();
        vec![
            "--ssh".into(),
            format!("{}@127.0.0.1", self.user),
            "--port".into(),
            self.port.to_string(),
            "--identity".into(),
            d.join("user_key").display().to_string(),
            "--known-hosts".into(),
            d.join("known_hosts").display().to_string(),
            "--prefix".into(),
            prefix.display().to_string(),
        ]
    }
}

/// Every path under `dir` with its symlink target or file hash.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let p = e.unwrap().path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let v = if meta.file_type().is_symlink() {
                format!("-> {}", std::fs::read_link(&p).unwrap().display())
            } else if meta.is_dir() {
                stack.push(p.clone());
                "dir".into()
            } else {
                firmware_config::bundle::sha256_hex(&std::fs::read(&p).unwrap())
            };
            out.insert(p.strip_prefix(dir).unwrap().to_path_buf(), v);
        }
    }
    out
}

fn link(prefix: &Path, name: &str) -> Option<String> {
    std::fs::read_link(prefix.join(name))
        .ok()
        .map(|p| p.display().to_string())
}

fn cli_with(cmd: &[&str], extra: &[String]) -> (bool, String) {
    let mut args: Vec<&str> = cmd.to_vec();
    args.extend(extra.iter().map(String::as_str));
    let (ok, stdout, stderr) = run(&args);
    (ok, format!("{stdout}{stderr}"))
}

/// Two bundles (versions 1.0.0 and 2.0.0) for the loopback board carrying
/// the `firmware-config` binary itself as the "runtime" (an x86-64 ELF).
fn two_bundles(work: &Path) -> (PathBuf, PathBuf) {
    let board = loopback_board(work);
    let config = work.join("device.toml");
    std::fs::write(&config, config_text("v4l:/dev/fashion-camera", 2)).unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_firmware-config"));
    let (b1, b2) = (work.join("v1.tar.gz"), work.join("v2.tar.gz"));
    let d1 = work.join("in1");
    let d2 = work.join("in2");
    std::fs::create_dir_all(&d1).unwrap();
    std::fs::create_dir_all(&d2).unwrap();
    bundle(board.to_str().unwrap(), bin, &d1, &config, "1.0.0", &b1);
    bundle(board.to_str().unwrap(), bin, &d2, &config, "2.0.0", &b2);
    (b1, b2)
}

#[test]
fn install_upgrade_rollback_and_refusals_over_ssh() {
    let Some(sshd) = Sshd::start("install_upgrade_rollback_and_refusals_over_ssh") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let (b1, b2) = two_bundles(work.path());
    let prefix = work.path().join("board/opt/fashion-runtime");
    let target = sshd.args(&prefix);

    // First install.
    let (ok, out) = cli_with(&["install", b1.to_str().unwrap(), "--no-bench"], &target);
    assert!(ok, "{out}");
    let cur1 = link(&prefix, "current").expect("current link");
    assert!(cur1.starts_with("releases/1.0.0-"), "{cur1}");
    assert_eq!(link(&prefix, "previous"), None);
    let installed = prefix.join("current/bin/fashion-runtime");
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        std::fs::read(env!("CARGO_BIN_EXE_firmware-config")).unwrap()
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&installed).unwrap().permissions().mode() & 0o777,
        0o755
    );
    // The config was pointed at the bundled model under the test prefix.
    let cfg = std::fs::read_to_string(prefix.join("current/config.toml")).unwrap();
    assert!(
        cfg.contains(&format!("{}/current/model/edge.onnx", prefix.display())),
        "{cfg}"
    );
    assert!(
        out.contains("systemd is not running") || out.contains("service restarted"),
        "{out}"
    );

    // Second install keeps the first for rollback.
    let (ok, out) = cli_with(&["install", b2.to_str().unwrap(), "--no-bench"], &target);
    assert!(ok, "{out}");
    let cur2 = link(&prefix, "current").unwrap();
    assert!(cur2.starts_with("releases/2.0.0-"), "{cur2}");
    assert_eq!(link(&prefix, "previous").as_deref(), Some(cur1.as_str()));
    assert!(prefix.join(&cur1).join("VERSION").exists());
    let (ok, out) = cli_with(&["status"], &target);
    assert!(
        ok && out.contains(&cur2["releases/".len()..]) && out.contains(&cur1["releases/".len()..]),
        "{out}"
    );

    // A bundle with one flipped byte (inside a file, recompressed so only
    // the manifest can tell) is refused and nothing changes on the target.
    let before = snapshot(&prefix);
    let bad = work.path().join("bad.tar.gz");
    flip_one_content_byte(&b1, &bad);
    let (ok, out) = cli_with(&["install", bad.to_str().unwrap(), "--no-bench"], &target);
    assert!(!ok, "damaged bundle installed:\n{out}");
    assert!(
        out.contains("not intact")
            && out.contains("SHA-256")
            && out.contains("nothing was changed"),
        "{out}"
    );
    // And one flipped byte of the compressed file itself.
    let mut raw = std::fs::read(&b2).unwrap();
    let mid = raw.len() / 2;
    raw[mid] ^= 0x20;
    std::fs::write(&bad, raw).unwrap();
    let (ok, out) = cli_with(&["install", bad.to_str().unwrap(), "--no-bench"], &target);
    assert!(!ok && out.contains("not intact"), "{out}");
    assert_eq!(
        snapshot(&prefix),
        before,
        "the target changed after a refused install"
    );

    // Rollback switches back, twice toggles.
    let (ok, out) = cli_with(&["rollback"], &target);
    assert!(ok, "{out}");
    assert_eq!(link(&prefix, "current").as_deref(), Some(cur1.as_str()));
    assert_eq!(link(&prefix, "previous").as_deref(), Some(cur2.as_str()));
    let (ok, out) = cli_with(&["rollback"], &target);
    assert!(ok, "{out}");
    assert_eq!(link(&prefix, "current").as_deref(), Some(cur2.as_str()));

    // An unknown host key is refused with a hint.
    std::fs::write(sshd.dir.path().join("known_hosts"), "").unwrap();
    let (ok, out) = cli_with(&["status"], &target);
    assert!(
        !ok && out.contains("Host key verification failed") && out.contains("--known-hosts"),
        "{out}"
    );
}

#[test]
fn failed_bench_leaves_the_running_version() {
    let Some(sshd) = Sshd::start("failed_bench_leaves_the_running_version") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let (b1, b2) = two_bundles(work.path());
    let prefix = work.path().join("board/opt/fashion-runtime");
    let target = sshd.args(&prefix);
    let (ok, out) = cli_with(&["install", b1.to_str().unwrap(), "--no-bench"], &target);
    assert!(ok, "{out}");
    let before = snapshot(&prefix);
    // The bundled "runtime" is firmware-config, which has no `bench`
    // subcommand: the bench step fails on the target.
    let (ok, out) = cli_with(&["install", b2.to_str().unwrap()], &target);
    assert!(!ok, "{out}");
    assert!(
        out.contains("bench") && out.contains("running version is untouched"),
        "{out}"
    );
    assert_eq!(
        snapshot(&prefix),
        before,
        "a failed install changed the target"
    );
}

#[test]
fn install_into_a_mounted_root() {
    let work = tempfile::tempdir().unwrap();
    let (b1, b2) = two_bundles(work.path());
    let root = work.path().join("rootfs");
    std::fs::create_dir_all(&root).unwrap();
    for b in [&b1, &b2] {
        let (ok, stdout, stderr) = run(&[
            "install",
            b.to_str().unwrap(),
            "--root",
            root.to_str().unwrap(),
        ]);
        assert!(ok, "{stdout}{stderr}");
        assert!(
            stderr.contains("systemctl is not run in --root mode"),
            "{stderr}"
        );
    }
    let prefix = root.join("opt/fashion-runtime");
    assert!(link(&prefix, "current")
        .unwrap()
        .starts_with("releases/2.0.0-"));
    assert!(link(&prefix, "previous")
        .unwrap()
        .starts_with("releases/1.0.0-"));
    let unit =
        std::fs::read_to_string(root.join("etc/systemd/system/fashion-runtime.service")).unwrap();
    assert!(unit.contains("ExecStart=/opt/fashion-runtime/current/bin/fashion-runtime tag --config /opt/fashion-runtime/current/config.toml"), "{unit}");
    assert_eq!(
        std::fs::read_link(
            root.join("etc/systemd/system/multi-user.target.wants/fashion-runtime.service")
        )
        .unwrap(),
        Path::new("../fashion-runtime.service")
    );
    assert!(root.join("etc/sysusers.d/fashion-runtime.conf").exists());
    assert!(root
        .join("etc/udev/rules.d/99-fashion-camera.rules")
        .exists());
    let (ok, stdout, stderr) = run(&["rollback", "--root", root.to_str().unwrap()]);
    assert!(ok, "{stdout}{stderr}");
    assert!(link(&prefix, "current")
        .unwrap()
        .starts_with("releases/1.0.0-"));
}

/// Rewrite a bundle's tar with one byte of `config.toml` flipped, keeping
/// the manifest: only the SHA-256 check can catch it.
fn flip_one_content_byte(src: &Path, dst: &Path) {
    use std::io::{Read, Write};
    let mut tar_bytes = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(src).unwrap())
        .read_to_end(&mut tar_bytes)
        .unwrap();
    let needle = b"[camera]";
    let at = tar_bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("config.toml in the tar");
    tar_bytes[at + 1] ^= 0x01;
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(dst).unwrap(),
        flate2::Compression::default(),
    );
    gz.write_all(&tar_bytes).unwrap();
    gz.finish().unwrap();
}
