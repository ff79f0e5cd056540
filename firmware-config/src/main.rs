//! `firmware-config` command line: board profiles, config check, bundle,
//! install, rollback. The work is in the `firmware_config` library.

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use firmware_config::{board, check, cross, install, pack, systemd, target};
use std::path::{Path, PathBuf};

/// Board profiles, device config check, bundles and install onto a board.
#[derive(Parser)]
#[command(name = "firmware-config", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List the built-in board profiles.
    Boards {
        /// Print them as JSON (the same fields a profile TOML file has).
        #[arg(long)]
        json: bool,
    },
    /// Check a device config (TOML) for a board.
    Check {
        /// The config file.
        file: PathBuf,
        /// Board name (see `boards`) or a profile TOML file.
        #[arg(long)]
        board: String,
        /// Also check that this model's input size fits the board.
        #[arg(long)]
        model: Option<PathBuf>,
    },
    /// Cross-build the runtime for a board (cached per triple and glibc) and print its path.
    BuildRuntime {
        /// Board name or profile TOML file.
        #[arg(long)]
        board: String,
        /// Cache directory (one cargo target directory per triple+glibc).
        #[arg(
            long,
            env = "FIRMWARE_CONFIG_CACHE",
            default_value = "target/firmware-cross"
        )]
        cache: PathBuf,
    },
    /// Build a bundle for a board.
    Bundle(BundleArgs),
    /// Install a bundle onto a board (over SSH) or into a mounted root filesystem.
    Install {
        /// The bundle (.tar.gz).
        bundle: PathBuf,
        #[command(flatten)]
        target: TargetArgs,
        /// Do not run `fashion-runtime bench --choose` on the board.
        #[arg(long)]
        no_bench: bool,
    },
    /// Switch back to the previous release.
    Rollback {
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Show the installed releases.
    Status {
        #[command(flatten)]
        target: TargetArgs,
    },
}

#[derive(Args)]
struct BundleArgs {
    /// Board name or profile TOML file.
    #[arg(long)]
    board: String,
    /// The ONNX model; repeat for alternatives (fp32 and int8) that
    /// `bench --choose` picks from on the board. The first is the default.
    #[arg(long, required = true)]
    model: Vec<PathBuf>,
    /// The shop table.
    #[arg(long)]
    table: Option<PathBuf>,
    /// The device config (TOML); `model` and `table` are set to the bundled files.
    #[arg(long)]
    config: PathBuf,
    /// Output file (.tar.gz), written atomically.
    #[arg(long)]
    out: PathBuf,
    /// A prebuilt runtime binary (checked: ELF machine and glibc) instead of cross-building.
    #[arg(long)]
    runtime_bin: Option<PathBuf>,
    /// Release version (default: this tool's version).
    #[arg(long, default_value = env!("CARGO_PKG_VERSION"))]
    version: String,
    /// Cache directory for the cross build.
    #[arg(
        long,
        env = "FIRMWARE_CONFIG_CACHE",
        default_value = "target/firmware-cross"
    )]
    cache: PathBuf,
    /// Do not read the models' metadata (input size check).
    #[arg(long)]
    skip_model_check: bool,
}

#[derive(Args)]
struct TargetArgs {
    /// `user@host` of the board.
    #[arg(long, conflicts_with = "root", required_unless_present = "root")]
    ssh: Option<String>,
    /// SSH port.
    #[arg(long, requires = "ssh")]
    port: Option<u16>,
    /// SSH private key.
    #[arg(long, requires = "ssh")]
    identity: Option<PathBuf>,
    /// Known-hosts file the board's host key is checked against (default: ssh's own).
    #[arg(long, requires = "ssh")]
    known_hosts: Option<PathBuf>,
    /// Accept and remember an unknown host key (first contact only).
    #[arg(long, requires = "ssh")]
    accept_new_host_key: bool,
    /// A mounted root filesystem of the board (SD card, image).
    #[arg(long)]
    root: Option<PathBuf>,
    /// Install prefix on the board.
    #[arg(long, default_value = systemd::DEFAULT_PREFIX)]
    prefix: String,
}

impl TargetArgs {
    fn target(&self) -> Result<target::Target> {
        anyhow::ensure!(
            self.prefix.starts_with('/') && !self.prefix.contains(".."),
            "--prefix `{}` must be an absolute path without `..`",
            self.prefix
        );
        Ok(match (&self.ssh, &self.root) {
            (Some(dest), _) => target::Target::Ssh(target::SshTarget {
                dest: dest.clone(),
                port: self.port,
                identity: self.identity.clone(),
                known_hosts: self.known_hosts.clone(),
                accept_new_host_key: self.accept_new_host_key,
            }),
            (None, Some(root)) => {
                anyhow::ensure!(root.is_dir(), "--root {}: not a directory", root.display());
                target::Target::Root(
                    root.canonicalize()
                        .with_context(|| format!("--root {}", root.display()))?,
                )
            }
            (None, None) => anyhow::bail!("pass --ssh user@host or --root DIR"),
        })
    }
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn workspace_root() -> PathBuf {
    // The cross build needs the workspace; the binary is run from it (or
    // FASHION_WORKSPACE says where it is).
    std::env::var_os("FASHION_WORKSPACE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn runtime_for(
    board: &board::BoardProfile,
    prebuilt: Option<&Path>,
    cache: &Path,
) -> Result<PathBuf> {
    if let Some(p) = prebuilt {
        return Ok(p.to_path_buf());
    }
    let ws = workspace_root();
    let venv_bin = ws.join(".venv/bin");
    Ok(cross::build_runtime(
        board,
        &ws,
        cache,
        venv_bin.is_dir().then_some(venv_bin.as_path()),
    )?)
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Cmd::Boards { json } => {
            let all = board::builtin();
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                println!(
                    "{:<14} {:<32} {:<6} {:>5} {:>7} {:<11} {:>3}  default source",
                    "board", "target", "glibc", "cores", "threads", "camera", "S"
                );
                for b in &all {
                    println!(
                        "{:<14} {:<32} {:<6} {:>5} {:>7} {:<11} {:>3}  {}",
                        b.name,
                        b.target,
                        b.glibc,
                        b.cores,
                        b.threads,
                        b.camera.name(),
                        b.input_size,
                        b.default_source_line()
                    );
                }
            }
        }
        Cmd::Check { file, board, model } => {
            let b = board::find(&board)?;
            let checked = check::check_file(&file, &b)?;
            if let Some(m) = model {
                let info = check::check_model(&m, &b)?;
                println!(
                    "model {}: input size {} fits {}",
                    m.display(),
                    info.config.input_size,
                    b.name
                );
            }
            println!(
                "{}: valid for {} ({} camera)",
                file.display(),
                b.name,
                checked.camera
            );
        }
        Cmd::BuildRuntime { board, cache } => {
            let b = board::find(&board)?;
            let bin = runtime_for(&b, None, &cache)?;
            let info = cross::check_binary(&bin, &b)?;
            eprintln!(
                "highest GLIBC required: {}",
                info.max_glibc()
                    .map(firmware_config::elf::format_version)
                    .unwrap_or_else(|| "none (static)".into())
            );
            println!("{}", bin.display());
        }
        Cmd::Bundle(a) => {
            let b = board::find(&a.board)?;
            let runtime_bin = runtime_for(&b, a.runtime_bin.as_deref(), &a.cache)?;
            let inputs = pack::PackInputs {
                board: b,
                runtime_bin,
                models: a.model,
                table: a.table,
                config: a.config,
                version: a.version,
                skip_model_check: a.skip_model_check,
            };
            let m = pack::pack(&inputs, &a.out)?;
            println!(
                "{}: board {}, version {}, {} files, runtime needs glibc {}",
                a.out.display(),
                m.board,
                m.version,
                m.files.len(),
                m.runtime_max_glibc.as_deref().unwrap_or("none (static)")
            );
        }
        Cmd::Install {
            bundle,
            target,
            no_bench,
        } => {
            let t = target.target()?;
            let opts = install::InstallOptions {
                prefix: target.prefix.clone(),
                bench: !no_bench,
            };
            let r = install::install(&bundle, &t, &opts)?;
            println!(
                "installed release {} on {}{}{}",
                r.release,
                t.describe(),
                r.previous
                    .map(|p| format!("; previous release {p} kept for rollback"))
                    .unwrap_or_default(),
                if r.service_restarted {
                    "; service restarted"
                } else {
                    ""
                }
            );
        }
        Cmd::Rollback { target } => {
            let t = target.target()?;
            let now = install::rollback(&t, &target.prefix)?;
            println!("rolled back {}: current release is {now}", t.describe());
        }
        Cmd::Status { target } => {
            let t = target.target()?;
            let s = install::state(&t, &target.prefix)?;
            println!("current:  {}", s.current.as_deref().unwrap_or("(none)"));
            println!("previous: {}", s.previous.as_deref().unwrap_or("(none)"));
            for r in &s.releases {
                println!("release:  {r}");
            }
        }
    }
    Ok(())
}
