//! `[mqtt]` configuration, its validation and the secrets it points to.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

/// When a frame is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PublishMode {
    /// Every frame that has a category.
    #[default]
    EveryFrame,
    /// Only when the top category or the set of matched items changes.
    OnChange,
}

/// Configuration of MQTT publishing (`[mqtt]` in the device config).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// Broker as `host:port` (port 1883 plain, usually 8883 with TLS).
    pub broker: String,
    /// Topic the results are published to.
    pub topic: String,
    /// Quality of service: 0 (at most once), 1 (at least once) or 2
    /// (exactly once).
    pub qos: u8,
    /// `every_frame` or `on_change`.
    pub mode: PublishMode,
    /// MQTT client id (unique per device on a broker).
    pub client_id: String,
    /// User name, if the broker requires one.
    pub username: Option<String>,
    /// File holding the password (first line). Must be readable by its
    /// owner only (mode 0600 or 0400); the password is never logged.
    pub password_file: Option<PathBuf>,
    /// Connect with TLS (rustls).
    pub tls: bool,
    /// PEM file of the CA certificates to trust with TLS; default: the
    /// Mozilla root set (webpki-roots).
    pub ca_file: Option<PathBuf>,
    /// Keep-alive interval, seconds.
    pub keep_alive_s: u16,
    /// Frames waiting to be sent at most; more are dropped.
    pub queue: usize,
    /// Longest wait between reconnection attempts, seconds (the wait
    /// doubles from 0.5 s up to this).
    pub max_backoff_s: f32,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            broker: "127.0.0.1:1883".into(),
            topic: "fashion/frames".into(),
            qos: 0,
            mode: PublishMode::EveryFrame,
            client_id: "fashion-runtime".into(),
            username: None,
            password_file: None,
            tls: false,
            ca_file: None,
            keep_alive_s: 30,
            queue: 64,
            max_backoff_s: 30.0,
        }
    }
}

/// Errors of the MQTT publisher's configuration.
#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    /// A field is invalid.
    #[error("[mqtt] {field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The password file is readable by group or others.
    #[error(
        "[mqtt] password_file {path} is readable by group or others (mode {mode:o}); \
         run `chmod 600 {path}` and make it owned by the service user"
    )]
    PasswordFilePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A file could not be read.
    #[error("[mqtt] cannot read {what} {path}: {source}")]
    Read {
        /// Which file (`password_file`, `ca_file`).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// TLS set-up failed (bad CA file).
    #[error("[mqtt] TLS: {0}")]
    Tls(String),
    /// The publisher thread could not be started.
    #[error("cannot start the MQTT publisher thread: {0}")]
    Thread(io::Error),
}

/// A secret that never shows in `Debug` output or logs.
#[derive(Clone)]
pub(crate) struct Secret(pub(crate) Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Validated settings the publisher thread runs with.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub host: String,
    pub port: u16,
    pub topic: String,
    pub qos: u8,
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub keep_alive: Duration,
    pub max_backoff: Duration,
}

impl MqttConfig {
    /// Check every field (without touching the network).
    pub fn validate(&self) -> Result<(), MqttError> {
        let invalid = |field, reason: &str| {
            Err(MqttError::Invalid {
                field,
                reason: reason.to_string(),
            })
        };
        split_host_port(&self.broker)?;
        if self.topic.is_empty() || self.topic.len() > 1024 {
            return invalid("topic", "must be 1 to 1024 bytes");
        }
        if self.topic.contains(['+', '#', '\0']) {
            return invalid("topic", "a publish topic may not contain `+`, `#` or NUL");
        }
        if self.qos > 2 {
            return invalid("qos", "must be 0, 1 or 2");
        }
        if self.client_id.is_empty() || self.client_id.len() > 256 {
            return invalid("client_id", "must be 1 to 256 bytes");
        }
        if self
            .username
            .as_ref()
            .is_some_and(|u| u.is_empty() || u.len() > 1024)
        {
            return invalid("username", "must be 1 to 1024 bytes");
        }
        if self.password_file.is_some() && self.username.is_none() {
            return invalid(
                "password_file",
                "needs `username` (MQTT 3.1.1 sends a password only with a user name)",
            );
        }
        if self.ca_file.is_some() && !self.tls {
            return invalid("ca_file", "is set but `tls` is false");
        }
        if self.keep_alive_s < 5 {
            return invalid("keep_alive_s", "must be at least 5");
        }
        if !(1..=10_000).contains(&self.queue) {
            return invalid("queue", "must be in 1..=10000");
        }
        if !(self.max_backoff_s >= 0.5 && self.max_backoff_s <= 3600.0) {
            return invalid("max_backoff_s", "must be in [0.5, 3600]");
        }
        Ok(())
    }

    /// Validate and load the secrets and TLS trust anchors.
    pub(crate) fn prepare(&self) -> Result<Settings, MqttError> {
        self.validate()?;
        let (host, port) = split_host_port(&self.broker)?;
        let password = match &self.password_file {
            Some(p) => Some(read_password(p)?),
            None => None,
        };
        let tls = if self.tls {
            Some(tls_config(self.ca_file.as_deref())?)
        } else {
            None
        };
        Ok(Settings {
            host: host.to_string(),
            port,
            topic: self.topic.clone(),
            qos: self.qos,
            client_id: self.client_id.clone(),
            username: self.username.clone(),
            password,
            tls,
            keep_alive: Duration::from_secs(self.keep_alive_s as u64),
            max_backoff: Duration::from_secs_f32(self.max_backoff_s),
        })
    }
}

fn split_host_port(broker: &str) -> Result<(&str, u16), MqttError> {
    let bad = || MqttError::Invalid {
        field: "broker",
        reason: format!("`{broker}` is not `host:port`"),
    };
    let (host, port) = broker.rsplit_once(':').ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || port == 0 {
        return Err(bad());
    }
    Ok((host, port))
}

/// Read the first line of the password file, refusing a file that group or
/// others may read.
fn read_password(path: &Path) -> Result<Secret, MqttError> {
    let read_err = |source| MqttError::Read {
        what: "password_file",
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(MqttError::PasswordFilePermissions {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    let bytes = std::fs::read(path).map_err(read_err)?;
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() > 65_535 {
        return Err(MqttError::Invalid {
            field: "password_file",
            reason: "password longer than 65535 bytes".into(),
        });
    }
    Ok(Secret(line.to_vec()))
}

fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, MqttError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| MqttError::Tls(format!("ca_file {}: {e}", path.display())))?;
            for cert in certs {
                let cert =
                    cert.map_err(|e| MqttError::Tls(format!("ca_file {}: {e}", path.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| MqttError::Tls(format!("ca_file {}: {e}", path.display())))?;
            }
            if roots.is_empty() {
                return Err(MqttError::Tls(format!(
                    "ca_file {} holds no certificate",
                    path.display()
                )));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| MqttError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_fields() {
        let ok = MqttConfig::default();
        ok.validate().unwrap();
        for (cfg, field) in [
            (
                MqttConfig {
                    qos: 3,
                    ..ok.clone()
                },
                "qos",
            ),
            (
                MqttConfig {
                    broker: "nohost".into(),
                    ..ok.clone()
                },
                "broker",
            ),
            (
                MqttConfig {
                    broker: "h:0".into(),
                    ..ok.clone()
                },
                "broker",
            ),
            (
                MqttConfig {
                    topic: "a/#".into(),
                    ..ok.clone()
                },
                "topic",
            ),
            (
                MqttConfig {
                    password_file: Some("p".into()),
                    ..ok.clone()
                },
                "password_file",
            ),
            (
                MqttConfig {
                    queue: 0,
                    ..ok.clone()
                },
                "queue",
            ),
        ] {
            let err = cfg.validate().unwrap_err().to_string();
            assert!(err.contains(field), "{err}");
        }
        let toml_err = toml::from_str::<MqttConfig>("brokr = \"x:1\"")
            .unwrap_err()
            .to_string();
        assert!(toml_err.contains("brokr"), "{toml_err}");
        let cfg: MqttConfig =
            toml::from_str("broker = \"b:1\"\nmode = \"on_change\"\nqos = 1").unwrap();
        assert_eq!(
            (cfg.mode, cfg.qos, cfg.broker.as_str()),
            (PublishMode::OnChange, 1, "b:1")
        );
    }

    #[cfg(unix)]
    #[test]
    fn password_file_must_be_private_and_is_redacted() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "hunter2-secret\nignored\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let cfg = MqttConfig {
            username: Some("u".into()),
            password_file: Some(path.clone()),
            ..MqttConfig::default()
        };
        let err = cfg.prepare().unwrap_err().to_string();
        assert!(
            err.contains("readable by group or others") && err.contains("640"),
            "{err}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let settings = cfg.prepare().unwrap();
        assert_eq!(settings.password.as_ref().unwrap().0, b"hunter2-secret");
        let dbg = format!("{settings:?}");
        assert!(
            !dbg.contains("hunter2") && dbg.contains("<redacted>"),
            "{dbg}"
        );
    }
}
