//! `deepfashion inspect` (to be filled by its issue).

/// Arguments of `deepfashion inspect`.
#[derive(clap::Args)]
pub struct Args {}

/// Run `deepfashion inspect`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`deepfashion inspect` is not implemented yet")
}
