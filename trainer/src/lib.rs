//! `trainer`: FashionNet (DESIGN.md section 3) in tch, trained and evaluated
//! on DeepFashion (the released folders or the synthetic set).
//!
//! - [`model`]: the network, named exactly as
//!   [`deepfashion::contract::ModelConfig::parameters`], with the contract's
//!   landmark pooling; [`vgg_init`] maps an ImageNet VGG-16 onto it.
//! - [`losses`], [`config`]: the losses and the two-stage schedule of
//!   DESIGN.md section 4.
//! - [`data`], [`loader`]: samples, augmentation, deterministic batch plans
//!   and the prefetch pipeline.
//! - [`train`]: the training loop (checkpoints, resume, SIGINT).
//! - [`checkpoint`]: atomic safetensors checkpoints with contract metadata.
//! - [`evaluate`]: predictions, metrics and the trivial baselines.
//! - [`plot`], [`device`]: training curves and libtorch device facts.
//! - [`bench`]: the training-step benchmark (`cargo xtask bench trainer`).
//!
//! This crate is the only one that links libtorch; the runtime and the
//! exporter must not depend on it.

pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod device;
pub mod evaluate;
pub mod loader;
pub mod losses;
pub mod model;
pub mod plot;
pub mod train;
pub mod vgg_init;
