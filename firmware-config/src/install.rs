//! Install a bundle onto a board and roll back.
//!
//! On the board (prefix `/opt/fashion-runtime` by default):
//!
//! ```text
//! releases/<version>-<hash>/   one directory per installed bundle (never modified after the switch)
//! current  -> releases/...     what the service runs (switched atomically: ln -s tmp + mv -T)
//! previous -> releases/...     what `rollback` switches back to
//! ```
//!
//! Order of an install, each step stopping the install when it fails: verify
//! the bundle here (nothing touched yet); unpack into a staging directory on
//! the board and check `SHA256SUMS` there; move it to `releases/`; run
//! `fashion-runtime bench --choose` once on the board; switch `current`;
//! install the unit, user and udev rule and restart the service (when
//! systemd runs there), switching back if it does not come up; prune
//! releases other than `current` and `previous`.

use crate::bundle::{self, BundleError, VerifiedBundle};
use crate::systemd::{DEFAULT_PREFIX, SERVICE, SYSUSERS_FILE, UDEV_FILE, UNIT_FILE};
use crate::target::{sh_quote, Target, TargetError};
use std::path::Path;

/// Errors raised by install and rollback.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The bundle is damaged: nothing was changed on the target.
    #[error("{0}\nnothing was changed on the target")]
    Bundle(#[from] BundleError),
    /// A step on the target failed.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// The bench run failed; the new release was removed and `current` left as it was.
    #[error("`fashion-runtime bench --choose` failed on the target, the running version is untouched: {0}")]
    Bench(TargetError),
    /// The service did not come up with the new release; switched back.
    #[error(
        "the service did not start with release {release}; switched back to {restored}: {source}"
    )]
    ServiceFailed {
        /// The release that failed.
        release: String,
        /// What `current` points at again.
        restored: String,
        /// Why (boxed: keeps the error small).
        source: Box<TargetError>,
    },
    /// `rollback` found nothing to go back to.
    #[error("no previous release to roll back to under {0}")]
    NoPrevious(String),
}

/// Options of an install.
#[derive(Debug, Clone)]
pub struct InstallOptions {
    /// Install prefix on the board (`/opt/fashion-runtime`).
    pub prefix: String,
    /// Run `fashion-runtime bench --choose` on the board before switching.
    pub bench: bool,
}

impl Default for InstallOptions {
    fn default() -> Self {
        Self {
            prefix: DEFAULT_PREFIX.into(),
            bench: true,
        }
    }
}

/// What an install did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallReport {
    /// The release directory name now in `current`.
    pub release: String,
    /// What `current` pointed at before (now `previous`), if anything.
    pub previous: Option<String>,
    /// Whether the service was (re)started; `false` with a notice when systemd is absent.
    pub service_restarted: bool,
}

/// What `current` and `previous` point at, and the releases present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseState {
    /// `current`'s release name.
    pub current: Option<String>,
    /// `previous`'s release name.
    pub previous: Option<String>,
    /// Every release directory.
    pub releases: Vec<String>,
}

/// Read the state of the install under `prefix` on `target`.
pub fn state(target: &Target, prefix: &str) -> Result<ReleaseState, TargetError> {
    let p = sh_quote(&target.host_path(prefix));
    let out = target.run(
        "read state",
        &format!(
            "P={p}
printf 'current=%s\\n' \"$(readlink \"$P/current\" 2>/dev/null || true)\"
printf 'previous=%s\\n' \"$(readlink \"$P/previous\" 2>/dev/null || true)\"
if [ -d \"$P/releases\" ]; then for d in \"$P\"/releases/*; do [ -d \"$d\" ] && printf 'release=%s\\n' \"${{d##*/}}\"; done; fi
true"
        ),
        None,
    )?;
    let mut s = ReleaseState {
        current: None,
        previous: None,
        releases: Vec::new(),
    };
    let name = |v: &str| (!v.is_empty()).then(|| v.trim_start_matches("releases/").to_string());
    for line in out.lines() {
        if let Some(v) = line.strip_prefix("current=") {
            s.current = name(v);
        } else if let Some(v) = line.strip_prefix("previous=") {
            s.previous = name(v);
        } else if let Some(v) = line.strip_prefix("release=") {
            s.releases.push(v.to_string());
        }
    }
    s.releases.sort();
    Ok(s)
}

/// Shell: switch `current` to `releases/$NEW`, moving the old one to `previous`.
const SWITCH: &str = r#"cd "$P"
OLD=$(readlink current 2>/dev/null || true)
if [ -n "$OLD" ] && [ "$OLD" != "releases/$NEW" ]; then
  ln -sfn "$OLD" .previous.tmp && mv -T .previous.tmp previous
fi
ln -sfn "releases/$NEW" .current.tmp && mv -T .current.tmp current
"#;

/// Install a bundle (see the module documentation for the order of steps).
pub fn install(
    bundle_path: &Path,
    target: &Target,
    opts: &InstallOptions,
) -> Result<InstallReport, InstallError> {
    let verified = bundle::verify(bundle_path)?;
    let release = verified.release_id();
    eprintln!(
        "firmware-config: bundle verified ({} files, board {}, release {release}); installing onto {}",
        verified.manifest.files.len(),
        verified.manifest.board,
        target.describe()
    );
    let p = sh_quote(&target.host_path(&opts.prefix));
    let r = sh_quote(&release);
    target.run(
        "unpack and check on the target",
        &format!(
            r#"P={p}; R={r}
mkdir -p "$P/releases"
if [ -d "$P/releases/$R" ]; then
  echo "release $R is already present; reusing it" >&2
  cat >/dev/null
  exit 0
fi
STAGE="$P/releases/.staging-$R-$$"
rm -rf "$STAGE"; mkdir -p "$STAGE"
trap 'rm -rf "$STAGE"' EXIT
tar -xzf - -C "$STAGE" --no-same-owner
(cd "$STAGE" && sha256sum -c --quiet {sums}) || {{ echo "checksums do not match after the transfer" >&2; exit 3; }}
{relocate}mv -T "$STAGE" "$P/releases/$R"
trap - EXIT"#,
            sums = bundle::SUMS,
            relocate = relocate("$STAGE", &opts.prefix),
        ),
        Some(bundle_path),
    )?;
    let before = state(target, &opts.prefix)?;

    if opts.bench && matches!(target, Target::Root(_)) {
        eprintln!("firmware-config: notice: `fashion-runtime bench --choose` runs on the board; skipped in --root mode (run it there once, or install over SSH)");
    } else if opts.bench {
        if let Err(e) = target.run(
            "bench",
            &bench_script(target, opts, &verified, &release),
            None,
        ) {
            if before.current.as_deref() != Some(release.as_str())
                && before.previous.as_deref() != Some(release.as_str())
            {
                let _ = target.run(
                    "remove the failed release",
                    &format!("rm -rf {p}/releases/{r}"),
                    None,
                );
            }
            return Err(InstallError::Bench(e));
        }
    } else {
        eprintln!(
            "firmware-config: --no-bench: skipping `fashion-runtime bench --choose` on the target"
        );
    }

    target.run("switch current", &format!("P={p}; NEW={r}\n{SWITCH}"), None)?;
    let previous = before.current.clone().filter(|c| *c != release);
    let service_restarted = match system_files(target, opts, &verified) {
        Ok(restarted) => restarted,
        Err(source) => {
            let restored = previous.clone().unwrap_or_else(|| "nothing".into());
            if let Some(prev) = &previous {
                let _ = target.run(
                    "switch back",
                    &format!("P={p}; NEW={}\n{SWITCH}", sh_quote(prev)),
                    None,
                );
                let _ = restart(target);
            }
            return Err(InstallError::ServiceFailed {
                release,
                restored,
                source: Box::new(source),
            });
        }
    };
    prune(target, &opts.prefix)?;
    Ok(InstallReport {
        release,
        previous,
        service_restarted,
    })
}

/// Shell: point the config at a non-default prefix (the bundle's config
/// names `/opt/fashion-runtime/current/...`).
fn relocate(dir: &str, prefix: &str) -> String {
    if prefix == DEFAULT_PREFIX {
        return String::new();
    }
    format!(
        "sed -i {} \"{dir}/{}\"\n",
        sh_quote(&format!(
            "s#{DEFAULT_PREFIX}/#{}/#g",
            prefix.replace('#', "\\#")
        )),
        bundle::CONFIG
    )
}

fn bench_script(
    target: &Target,
    opts: &InstallOptions,
    verified: &VerifiedBundle,
    release: &str,
) -> String {
    // The command runs on the board, so it uses the board's paths; with a
    // mounted root it would run the board's binary here, which the caller
    // avoids (bench needs the board's CPU anyway).
    let rel = target.host_path(&format!("{}/releases/{release}", opts.prefix));
    let models: Vec<String> = verified
        .manifest
        .files
        .iter()
        .filter(|f| f.path.starts_with("model/"))
        .map(|f| format!("--model {}", sh_quote(&format!("{rel}/{}", f.path))))
        .collect();
    let table = verified
        .manifest
        .files
        .iter()
        .find(|f| f.path.starts_with("table/"))
        .map(|f| format!(" --table {}", sh_quote(&format!("{rel}/{}", f.path))))
        .unwrap_or_default();
    format!(
        "{bin} bench {models}{table} --choose --config {config} >&2",
        bin = sh_quote(&format!("{rel}/{}", bundle::RUNTIME_BIN)),
        models = models.join(" "),
        config = sh_quote(&format!("{rel}/{}", bundle::CONFIG)),
    )
}

/// Install the unit, the sysusers entry and the udev rule, then restart the
/// service. Over SSH this happens only when systemd runs on the board; into
/// a mounted root the files are written and the unit enabled (the user is
/// created by `systemd-sysusers` at the next boot). Returns whether the
/// service was restarted.
fn system_files(
    target: &Target,
    opts: &InstallOptions,
    verified: &VerifiedBundle,
) -> Result<bool, TargetError> {
    let p = sh_quote(&target.host_path(&opts.prefix));
    let etc = sh_quote(&target.host_path("/etc"));
    let has_udev = verified.files.contains_key(&format!("udev/{UDEV_FILE}"));
    // The unit names the default prefix; another prefix is substituted in.
    let sed = if opts.prefix == DEFAULT_PREFIX {
        "cat".to_string()
    } else {
        format!(
            "sed 's#{DEFAULT_PREFIX}/#{}/#g'",
            opts.prefix.replace('#', "\\#")
        )
    };
    let copy = format!(
        r#"P={p}; ETC={etc}
mkdir -p "$ETC/systemd/system/multi-user.target.wants" "$ETC/sysusers.d" "$ETC/udev/rules.d"
{sed} < "$P/current/systemd/{UNIT_FILE}" > "$ETC/systemd/system/.{UNIT_FILE}.tmp"
mv -f "$ETC/systemd/system/.{UNIT_FILE}.tmp" "$ETC/systemd/system/{UNIT_FILE}"
cp "$P/current/systemd/{SYSUSERS_FILE}" "$ETC/sysusers.d/.{SYSUSERS_FILE}.tmp" && mv -f "$ETC/sysusers.d/.{SYSUSERS_FILE}.tmp" "$ETC/sysusers.d/{SYSUSERS_FILE}"
{udev}"#,
        udev = if has_udev {
            format!(
                r#"cp "$P/current/udev/{UDEV_FILE}" "$ETC/udev/rules.d/.{UDEV_FILE}.tmp" && mv -f "$ETC/udev/rules.d/.{UDEV_FILE}.tmp" "$ETC/udev/rules.d/{UDEV_FILE}""#
            )
        } else {
            format!(r#"rm -f "$ETC/udev/rules.d/{UDEV_FILE}""#)
        },
    );
    match target {
        Target::Root(_) => {
            target.run(
                "install system files into the root filesystem",
                &format!("{copy}\nln -sfn ../{UNIT_FILE} \"$ETC/systemd/system/multi-user.target.wants/{UNIT_FILE}\""),
                None,
            )?;
            eprintln!("firmware-config: notice: unit installed and enabled in the root filesystem; systemctl is not run in --root mode (the service starts at the board's next boot)");
            Ok(false)
        }
        Target::Ssh(_) => {
            let running = target.run("probe systemd", "if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then echo yes; else echo no; fi", None)?;
            if running.trim() != "yes" {
                eprintln!("firmware-config: notice: systemd is not running on {} (no /run/systemd/system or no systemctl): unit not installed, service not restarted", target.describe());
                return Ok(false);
            }
            target.run(
                "install system files",
                &format!(
                    "{copy}\nsystemd-sysusers /etc/sysusers.d/{SYSUSERS_FILE}\n{}systemctl daemon-reload\nsystemctl enable {SERVICE}.service >&2",
                    if has_udev { "udevadm control --reload && udevadm trigger --subsystem-match=video4linux || true\n" } else { "" }
                ),
                None,
            )?;
            restart(target)?;
            Ok(true)
        }
    }
}

fn restart(target: &Target) -> Result<(), TargetError> {
    if matches!(target, Target::Root(_)) {
        return Ok(());
    }
    target.run(
        "restart the service",
        &format!(
            "systemctl restart {SERVICE}.service\nsleep 3\nsystemctl is-active --quiet {SERVICE}.service || {{ systemctl status --no-pager {SERVICE}.service >&2 || true; exit 5; }}"
        ),
        None,
    )
    .map(|_| ())
}

/// Remove releases that are neither `current` nor `previous`.
fn prune(target: &Target, prefix: &str) -> Result<(), TargetError> {
    let p = sh_quote(&target.host_path(prefix));
    target
        .run(
            "prune old releases",
            &format!(
                r#"P={p}; cd "$P"
C=$(readlink current 2>/dev/null || true); V=$(readlink previous 2>/dev/null || true)
for d in releases/*; do
  [ -d "$d" ] || continue
  if [ "$d" != "$C" ] && [ "$d" != "$V" ]; then echo "removing old release ${{d#releases/}}" >&2; rm -rf "$d"; fi
done"#
            ),
            None,
        )
        .map(|_| ())
}

/// Switch `current` back to `previous` (and `previous` to what was current),
/// then restart the service when systemd runs on the target. Returns the
/// release now current.
pub fn rollback(target: &Target, prefix: &str) -> Result<String, InstallError> {
    let s = state(target, prefix)?;
    let prev = s
        .previous
        .clone()
        .filter(|p| s.releases.contains(p))
        .ok_or_else(|| InstallError::NoPrevious(target.host_path(prefix)))?;
    let p = sh_quote(&target.host_path(prefix));
    target.run(
        "switch back",
        &format!("P={p}; NEW={}\n{SWITCH}", sh_quote(&prev)),
        None,
    )?;
    if matches!(target, Target::Ssh(_)) {
        let running = target.run("probe systemd", "if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then echo yes; else echo no; fi", None)?;
        if running.trim() == "yes" {
            restart(target)?;
        } else {
            eprintln!(
                "firmware-config: notice: systemd is not running on {}: service not restarted",
                target.describe()
            );
        }
    } else {
        eprintln!("firmware-config: notice: systemctl is not run in --root mode");
    }
    Ok(prev)
}
