//! `export` command line (filled by its issue).

fn main() -> anyhow::Result<()> {
    anyhow::bail!("`export` is not implemented yet")
}
