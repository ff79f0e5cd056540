//! `deepfashion synth` (to be filled by its issue).

/// Arguments of `deepfashion synth`.
#[derive(clap::Args)]
pub struct Args {}

/// Run `deepfashion synth`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`deepfashion synth` is not implemented yet")
}
