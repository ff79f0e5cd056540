//! `firmware-config`: everything between a trained model and a board that
//! runs it (DESIGN.md section 10).
//!
//! - [`board`]: the built-in board profiles (Raspberry Pi 4, 5, Zero 2 W in
//!   64- and 32-bit, Jetson Nano, Jetson Orin) and profiles loaded from TOML.
//! - [`check`]: the device config (`fashion_runtime::config::DeviceConfig`,
//!   the runtime's own schema) checked against a board.
//! - [`cross`] and [`elf`]: the cross-built runtime binary and the check
//!   that a binary fits a board (ELF machine, highest `GLIBC_` version).
//! - [`systemd`] and [`bundle`]: the unit, user and udev rule, and the
//!   `.tar.gz` bundle with its SHA-256 manifest.
//! - [`target`] and [`install`]: install onto a board over SSH or into a
//!   mounted root filesystem, with rollback.
//!
//! This crate runs on the workstation. It uses the runtime as a library only
//! for its config schema and model metadata reader; it never links libtorch.

pub mod board;
pub mod bundle;
pub mod check;
pub mod cross;
pub mod elf;
pub mod install;
pub mod pack;
pub mod systemd;
pub mod target;
