//! Where an install goes: a board over SSH (the system `ssh` binary, batch
//! mode, host keys checked) or a mounted root filesystem on this machine.
//! Both run the same POSIX shell scripts; only the paths differ.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Errors raised while running a step on the target.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The local program (`ssh`, `sh`) could not be started.
    #[error("could not start `{program}`: {source} (is openssh-client installed?)")]
    Spawn {
        /// The program.
        program: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// `ssh` itself failed (connection, authentication, host key).
    #[error("ssh to {dest} failed during `{step}`: {stderr}{hint}")]
    Ssh {
        /// `user@host` and port.
        dest: String,
        /// The step.
        step: String,
        /// ssh's own message.
        stderr: String,
        /// What to try.
        hint: String,
    },
    /// The step ran and failed.
    #[error("step `{step}` failed on {dest} (exit {code}): {stderr}")]
    Step {
        /// Where.
        dest: String,
        /// The step.
        step: String,
        /// Its exit code.
        code: i32,
        /// Its standard error.
        stderr: String,
    },
}

/// How to reach a board over SSH.
#[derive(Debug, Clone)]
pub struct SshTarget {
    /// `user@host`.
    pub dest: String,
    /// Port (22 when `None`).
    pub port: Option<u16>,
    /// Private key file (`-i`).
    pub identity: Option<PathBuf>,
    /// Known-hosts file to check the host key against (ssh's default files when `None`).
    pub known_hosts: Option<PathBuf>,
    /// Accept and remember an unknown host key (`StrictHostKeyChecking=accept-new`)
    /// instead of refusing it.
    pub accept_new_host_key: bool,
}

impl SshTarget {
    /// The `ssh` command with every option set, up to (not including) the
    /// remote command.
    pub fn command(&self) -> Command {
        let mut c = Command::new("ssh");
        c.args([
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=15",
            "-o",
            "LogLevel=ERROR",
        ]);
        let strict = if self.accept_new_host_key {
            "accept-new"
        } else {
            "yes"
        };
        c.arg("-o").arg(format!("StrictHostKeyChecking={strict}"));
        if let Some(kh) = &self.known_hosts {
            c.arg("-o")
                .arg(format!("UserKnownHostsFile={}", kh.display()));
            c.arg("-o").arg("GlobalKnownHostsFile=/dev/null");
        }
        if let Some(port) = self.port {
            c.arg("-p").arg(port.to_string());
        }
        if let Some(key) = &self.identity {
            c.arg("-i").arg(key).args(["-o", "IdentitiesOnly=yes"]);
        }
        c.arg("--").arg(&self.dest);
        c
    }

    fn shown(&self) -> String {
        match self.port {
            Some(p) => format!("{} (port {p})", self.dest),
            None => self.dest.clone(),
        }
    }
}

/// The place an install writes to.
#[derive(Debug, Clone)]
pub enum Target {
    /// A board reached over SSH.
    Ssh(SshTarget),
    /// A root filesystem mounted at this directory (an SD card, an image).
    Root(PathBuf),
}

/// Quote a string for a POSIX shell.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

impl Target {
    /// A short description for messages.
    pub fn describe(&self) -> String {
        match self {
            Target::Ssh(s) => s.shown(),
            Target::Root(dir) => format!("root filesystem {}", dir.display()),
        }
    }

    /// The path as the install scripts see it for a path on the board
    /// (`/opt/...` over SSH, `<root>/opt/...` for a mounted root).
    pub fn host_path(&self, board_path: &str) -> String {
        match self {
            Target::Ssh(_) => board_path.to_string(),
            Target::Root(dir) => format!(
                "{}/{}",
                dir.display().to_string().trim_end_matches('/'),
                board_path.trim_start_matches('/')
            ),
        }
    }

    /// Run a `sh` script (with `set -eu`) on the target, feeding `stdin_file`
    /// to it; returns its standard output. The script's standard error is
    /// passed through as progress, and included in the error when it fails.
    pub fn run(
        &self,
        step: &str,
        script: &str,
        stdin_file: Option<&Path>,
    ) -> Result<String, TargetError> {
        let full = format!("set -eu\n{script}");
        let mut cmd = match self {
            Target::Ssh(s) => {
                let mut c = s.command();
                c.arg(format!("sh -c {}", sh_quote(&full)));
                c
            }
            Target::Root(_) => {
                let mut c = Command::new("sh");
                c.arg("-c").arg(&full);
                c
            }
        };
        tracing::debug!(step, "running on {}", self.describe());
        cmd.stdin(if stdin_file.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let program = format!("{:?}", cmd.get_program());
        let mut child = cmd
            .spawn()
            .map_err(|source| TargetError::Spawn { program, source })?;
        let writer = match (stdin_file, child.stdin.take()) {
            (Some(path), Some(mut stdin)) => {
                let path = path.to_path_buf();
                Some(std::thread::spawn(move || -> std::io::Result<()> {
                    let mut f = std::fs::File::open(path)?;
                    std::io::copy(&mut f, &mut stdin)?;
                    stdin.flush()
                }))
            }
            _ => None,
        };
        let out = child
            .wait_with_output()
            .map_err(|source| TargetError::Spawn {
                program: "ssh/sh".into(),
                source,
            })?;
        if let Some(w) = writer {
            // A broken pipe here means the script stopped reading early; its
            // own exit status says why.
            let _ = w.join();
        }
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        for line in stderr.lines() {
            eprintln!("  [{}] {line}", self.describe());
        }
        let code = out.status.code().unwrap_or(-1);
        if let Target::Ssh(s) = self {
            if code == 255 {
                let hint = if stderr.contains("Host key verification failed") {
                    "\nhint: the board's host key is not in the known-hosts file; add it (ssh-keyscan) and pass --known-hosts, or pass --accept-new-host-key once"
                } else if stderr.contains("Permission denied") {
                    "\nhint: key-based login failed; pass --identity KEY and check the board's authorized_keys"
                } else {
                    ""
                };
                return Err(TargetError::Ssh {
                    dest: s.shown(),
                    step: step.into(),
                    stderr,
                    hint: hint.into(),
                });
            }
        }
        if !out.status.success() {
            return Err(TargetError::Step {
                dest: self.describe(),
                step: step.into(),
                code,
                stderr,
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_the_shell() {
        let dir = tempfile::tempdir().unwrap();
        let t = Target::Root(dir.path().to_path_buf());
        let tricky = "it's a \"test\" $HOME `x` \\";
        let out = t
            .run("echo", &format!("printf '%s' {}", sh_quote(tricky)), None)
            .unwrap();
        assert_eq!(out, tricky);
        assert_eq!(
            t.host_path("/opt/x"),
            format!("{}/opt/x", dir.path().display())
        );
    }

    #[test]
    fn failures_name_the_step() {
        let t = Target::Root(PathBuf::from("/"));
        let e = t
            .run("probe", "echo oops >&2; exit 7", None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`probe`") && e.contains("exit 7") && e.contains("oops"),
            "{e}"
        );
    }
}
