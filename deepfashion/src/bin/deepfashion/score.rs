//! `deepfashion score` (to be filled by its issue).

/// Arguments of `deepfashion score`.
#[derive(clap::Args)]
pub struct Args {}

/// Run `deepfashion score`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`deepfashion score` is not implemented yet")
}
