//! `trainer` command line (filled by its issue).

fn main() -> anyhow::Result<()> {
    anyhow::bail!("`trainer` is not implemented yet")
}
