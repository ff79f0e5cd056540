//! `cargo xtask fuzz --seconds N`: build the libFuzzer targets of `fuzz/`
//! with coverage instrumentation (the flags `cargo fuzz` uses, minus the
//! sanitizer, so stable Rust does) and run each for N seconds on its corpus
//! in `fuzz/corpus/<target>`. A crash fails the command and leaves the input
//! in `fuzz/artifacts/<target>/`. With `--record`, the runs go into the
//! `fuzz` section of BENCHMARKS.md.

use anyhow::{bail, Context, Result};
use std::process::Command;

use crate::{benchmarks_md, env};

/// The targets in `fuzz/Cargo.toml`, with what each feeds its code.
pub const TARGETS: &[(&str, &str)] = &[
    (
        "annotation_lines",
        "every DeepFashion annotation line parser",
    ),
    (
        "shop_table",
        "damaged shop tables (checksum repaired for half)",
    ),
    ("mjpeg_split", "MJPEG streams in random read sizes"),
    ("device_config", "device config TOML"),
];

/// Options of `cargo xtask fuzz`.
#[derive(clap::Args)]
pub struct Args {
    /// Seconds per target.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Only these targets (comma separated; default: all).
    #[arg(long, value_delimiter = ',')]
    pub targets: Vec<String>,
    /// Write the results into BENCHMARKS.md (section `fuzz`).
    #[arg(long)]
    pub record: bool,
}

/// Coverage flags of `cargo fuzz build --sanitizer none`.
const RUSTFLAGS: &str = "-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
     -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
     -Cllvm-args=-sanitizer-coverage-pc-table \
     -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing";

/// The host's target triple (`rustc -vV`).
fn host_triple() -> Result<String> {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .context("running rustc -vV")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(|h| h.trim().to_string())
        .context("rustc -vV printed no host line")
}

/// One target's run.
struct Outcome {
    target: &'static str,
    what: &'static str,
    runs: u64,
    corpus: usize,
}

/// Build and run the targets.
pub fn run(a: &Args) -> Result<()> {
    let fuzz = env::root().join("fuzz");
    let targets: Vec<(&'static str, &'static str)> = if a.targets.is_empty() {
        TARGETS.to_vec()
    } else {
        a.targets
            .iter()
            .map(|t| {
                TARGETS
                    .iter()
                    .copied()
                    .find(|(name, _)| name == t)
                    .with_context(|| {
                        let names: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
                        format!("unknown fuzz target `{t}` (targets: {})", names.join(", "))
                    })
            })
            .collect::<Result<_>>()?
    };
    // An explicit --target (as cargo fuzz passes) keeps RUSTFLAGS off build
    // scripts and proc macros, which must not be instrumented.
    let host = host_triple()?;
    env::run(
        "fuzz: build the instrumented targets",
        env::cargo()
            .args([
                "build",
                "--release",
                "--bins",
                "--target",
                &host,
                "--manifest-path",
            ])
            .arg(fuzz.join("Cargo.toml"))
            // Its own target dir: instrumented objects must not mix with the
            // workspace's.
            .env("CARGO_TARGET_DIR", fuzz.join("target"))
            .env("RUSTFLAGS", RUSTFLAGS),
    )?;
    let mut outcomes = Vec::new();
    for &(t, what) in &targets {
        let corpus = fuzz.join("corpus").join(t);
        let artifacts = fuzz.join("artifacts").join(t);
        std::fs::create_dir_all(&corpus)
            .with_context(|| format!("creating {}", corpus.display()))?;
        std::fs::create_dir_all(&artifacts)?;
        let bin = fuzz.join("target").join(&host).join("release").join(t);
        eprintln!("xtask: [fuzz {t}] {} s", a.seconds);
        let out = Command::new(&bin)
            .arg(format!("-max_total_time={}", a.seconds))
            .arg("-rss_limit_mb=2048")
            .arg("-timeout=10")
            .arg("-print_final_stats=1")
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .arg(&corpus)
            .output()
            .with_context(|| format!("starting {}", bin.display()))?;
        let log = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!(
                "fuzz target `{t}` failed ({}); the input is in {}:\n{}",
                out.status,
                artifacts.display(),
                tail.join("\n")
            );
        }
        // libFuzzer's final stats: `stat::number_of_executed_units: N`.
        let runs = log
            .lines()
            .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let corpus_len = std::fs::read_dir(&corpus).map(|d| d.count()).unwrap_or(0);
        eprintln!("xtask: [fuzz {t}] {runs} runs, no crash, corpus {corpus_len} inputs");
        outcomes.push(Outcome {
            target: t,
            what,
            runs,
            corpus: corpus_len,
        });
    }
    let date = env::utc_now("+%Y-%m-%d");
    let mut body = format!(
        "## fuzz: how long each target ran without a crash\n\n`cargo xtask fuzz --seconds {}` on this host, {date} (libFuzzer, coverage-guided, no sanitizer; debug assertions and overflow checks on).\n\n| target | what it feeds | seconds | executions | corpus after | crashes |\n|---|---|---|---|---|---|\n",
        a.seconds
    );
    for o in &outcomes {
        body.push_str(&format!(
            "| {} | {} | {} | {} | {} | 0 |\n",
            o.target, o.what, a.seconds, o.runs, o.corpus
        ));
    }
    println!("{body}");
    if a.record {
        benchmarks_md::write_section("fuzz", &body)?;
    }
    Ok(())
}
