//! BENCHMARKS.md sections owned by `cargo xtask bench <target>`: each bench
//! rewrites only the text between its own markers, atomically.

use crate::env;
use anyhow::{Context, Result};
use std::io::Write;

/// Replace (or append) the section `name` of BENCHMARKS.md with `body`,
/// written atomically (temporary file, fsync, rename).
pub fn write_section(name: &str, body: &str) -> Result<()> {
    let path = env::root().join("BENCHMARKS.md");
    let begin = format!("<!-- bench:{name}:begin -->");
    let end = format!("<!-- bench:{name}:end -->");
    let old = std::fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n".to_string());
    let section = format!("{begin}\n{body}{end}\n");
    let new = match (old.find(&begin), old.find(&end)) {
        (Some(a), Some(b)) if b > a => format!(
            "{}{}{}",
            &old[..a],
            section,
            old[b + end.len()..].trim_start_matches('\n')
        ),
        _ => format!("{}\n\n{}", old.trim_end_matches('\n'), section),
    };
    let tmp = path.with_extension(format!("md.{name}.tmp"));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(new.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write().with_context(|| format!("writing {}", path.display()))
}
