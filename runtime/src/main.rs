//! `fashion-runtime` command line (filled by its issue).

fn main() -> anyhow::Result<()> {
    anyhow::bail!("`fashion-runtime` is not implemented yet")
}
