//! `firmware-config` command line (filled by its issue).

fn main() -> anyhow::Result<()> {
    anyhow::bail!("`firmware-config` is not implemented yet")
}
