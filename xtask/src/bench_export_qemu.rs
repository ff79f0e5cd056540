//! `cargo xtask bench export-qemu`: the export benchmark's tract runs as
//! aarch64 binaries under qemu-aarch64, as a correctness check only (qemu
//! timings mean nothing). `export-bench` is built for aarch64 (zig, glibc
//! 2.17, the `qemu` profile) and run on the same `edge` fp32 and int8 files
//! and the same input as the x86 build; every output is compared with the
//! x86 tract run and with onnxruntime, and the shop-table search's top-20
//! lists must be identical on both architectures (tract's and the table's
//! ARM kernels against their x86 ones). The result replaces the
//! `export-qemu` section of `BENCHMARKS.md`; the command fails when a
//! difference is over its tolerance.

use crate::cross::CrossTarget;
use crate::env;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Arguments of `cargo xtask bench export-qemu`.
#[derive(clap::Args)]
pub struct Args {
    /// Items in the search check.
    #[arg(long, default_value_t = 20_000)]
    pub items: usize,
    /// Queries in the search check.
    #[arg(long, default_value_t = 100)]
    pub queries: usize,
    /// Do not write BENCHMARKS.md (print only).
    #[arg(long)]
    pub no_write: bool,
}

/// fp32: tract on ARM against tract on x86 and against onnxruntime, max
/// abs diff on every output (probabilities, coordinates, embedding): the
/// export issue's fp32 parity bound.
const FP32_TOL: f64 = 1e-4;
/// int8, tract on ARM against tract on x86: the same integer arithmetic on
/// two instruction sets, so only the float parts (dequantization, the heads'
/// sigmoid/softmax) may differ by rounding. onnxruntime's int8 is not held
/// to a bound: it rounds requantization its own way, and its difference to
/// tract's int8 is reported next to each one's difference to fp32.
const INT8_TOL: f64 = 1e-4;

type Outputs = BTreeMap<String, Vec<f64>>;

fn read_outputs(path: &Path) -> Result<Outputs> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Mean absolute difference over every value of every output.
fn mean_diff(a: &Outputs, b: &Outputs) -> Result<f64> {
    let (mut sum, mut n) = (0.0, 0usize);
    for (name, x) in a {
        let y = b
            .get(name)
            .with_context(|| format!("output `{name}` missing on one side"))?;
        for (p, q) in x.iter().zip(y) {
            sum += (p - q).abs();
            n += 1;
        }
    }
    Ok(sum / n.max(1) as f64)
}

/// Largest absolute difference over every output, with the output's name.
fn max_diff(a: &Outputs, b: &Outputs) -> Result<(f64, String)> {
    let mut worst = (0.0f64, String::new());
    for (name, x) in a {
        let y = b
            .get(name)
            .with_context(|| format!("output `{name}` missing on one side"))?;
        if x.len() != y.len() {
            bail!("output `{name}`: {} vs {} values", x.len(), y.len());
        }
        for (p, q) in x.iter().zip(y) {
            let d = (p - q).abs();
            if d.is_nan() || d > worst.0 {
                worst = (if d.is_nan() { f64::INFINITY } else { d }, name.clone());
            }
        }
    }
    Ok(worst)
}

/// One check's line in the report.
struct Check {
    what: String,
    diff: f64,
    tol: f64,
    detail: String,
}

impl Check {
    /// Within tolerance (a NaN difference is not).
    fn passed(&self) -> bool {
        self.diff <= self.tol
    }
}

/// `op: count` pairs of an optimized tract plan.
type OpCensus = Vec<(String, u64)>;

/// Run the check.
pub fn run(args: &Args) -> Result<()> {
    let t = CrossTarget::by_triple("aarch64-unknown-linux-gnu")?;
    let qemu = t
        .qemu_binary()
        .context("qemu-aarch64(-static) missing: run `cargo xtask setup`")?;
    let bin = crate::benchmarks_md::release_tools()?;
    let export = bin.join("export");
    let x86 = bin.join("export-bench");
    let arm = crate::cross::export_bench_for_aarch64()?;
    let dir = env::target_dir().join("bench-export-qemu");
    std::fs::create_dir_all(&dir)?;
    let p = |n: &str| dir.join(n);
    env::run(
        "bench export-qemu: random edge checkpoint",
        Command::new(&export)
            .args(["random-checkpoint", "--config", "edge", "--out"])
            .arg(p("edge.safetensors")),
    )?;
    env::run(
        "bench export-qemu: onnx fp32 + int8",
        Command::new(&export)
            .args(["onnx", "--checkpoint"])
            .arg(p("edge.safetensors"))
            .arg("--out")
            .arg(p("edge.onnx"))
            .arg("--int8-out")
            .arg(p("edge.int8.onnx")),
    )?;
    let sysroot = format!("/usr/{}", t.gcc_prefix);
    let on_arm = |args: &[&str]| {
        let mut c = Command::new(&qemu);
        c.args(["-L", &sysroot]).arg(&arm).args(args);
        c
    };
    let py = env::venv_python();
    let have_ort = env::succeeds(Command::new(&py).args(["-c", "import onnxruntime"]));
    let mut checks = Vec::new();
    let mut census = Vec::new();
    // Outputs kept for the int8 report: `<form>-arm` (1 thread), `<form>-ort`.
    let mut runs: BTreeMap<String, Outputs> = BTreeMap::new();
    for (form, file, tol) in [
        ("fp32", "edge.onnx", FP32_TOL),
        ("int8", "edge.int8.onnx", INT8_TOL),
    ] {
        let model = p(file).display().to_string();
        let save = |who: &str| p(&format!("{form}-{who}")).display().to_string();
        let x86_out = env::stdout_of(
            "x86 export-bench model",
            Command::new(&x86).args([
                "model",
                "--model",
                &model,
                "--runs",
                "1",
                "--save",
                &save("x86"),
            ]),
        )?;
        let x86_ops = ops_of(&x86_out)?;
        let reference = read_outputs(&p(&format!("{form}-x86/outputs.json")))?;
        for threads in ["1", "2"] {
            let who = format!("arm{threads}");
            let out = env::stdout_of(
                "aarch64 export-bench model under qemu",
                &mut on_arm(&[
                    "model",
                    "--model",
                    &model,
                    "--runs",
                    "1",
                    "--threads",
                    threads,
                    "--save",
                    &save(&who),
                ]),
            )?;
            if threads == "1" {
                census.push((form, x86_ops.clone(), ops_of(&out)?));
            }
            let arm_out = read_outputs(&p(&format!("{form}-{who}/outputs.json")))?;
            let (d, name) = max_diff(&arm_out, &reference)?;
            checks.push(Check {
                what: format!("{form}: tract aarch64 ({threads} thr.) vs tract x86-64"),
                diff: d,
                tol,
                detail: name,
            });
            if have_ort && threads == "1" {
                let ort_json = p(&format!("{form}-ort.json"));
                env::stdout_of(
                    "onnxruntime outputs",
                    env::command(&py)
                        .arg(env::root().join("bench/export_ort_bench.py"))
                        .arg(&model)
                        .args(["1", "1"])
                        .arg(p(&format!("{form}-x86/input.f32")))
                        .arg(&ort_json),
                )?;
                let ort = read_outputs(&ort_json)?;
                if form == "fp32" {
                    let (d, name) = max_diff(&arm_out, &ort)?;
                    checks.push(Check {
                        what: format!("{form}: tract aarch64 vs onnxruntime x86-64"),
                        diff: d,
                        tol,
                        detail: name,
                    });
                }
                runs.insert(format!("{form}-ort"), ort);
            }
            if threads == "1" {
                runs.insert(format!("{form}-arm"), arm_out);
            }
        }
    }
    // Each census must be the same on both architectures (the same ops
    // chosen, the int8 graph's matmuls included).
    for (form, x86_ops, arm_ops) in &census {
        let differing = x86_ops
            .iter()
            .filter(|o| !arm_ops.contains(o))
            .chain(arm_ops.iter().filter(|o| !x86_ops.contains(o)))
            .count();
        checks.push(Check {
            what: format!(
                "{form}: tract plan, op kinds x counts differing between aarch64 and x86-64"
            ),
            diff: differing as f64,
            tol: 0.0,
            detail: format!("{} op kinds", arm_ops.len()),
        });
    }
    // int8 against fp32, per implementation, and tract's int8 against
    // onnxruntime's (report only, see INT8_TOL).
    let mut int8_rows = Vec::new();
    if let (Some(t8), Some(t32), Some(o8), Some(o32)) = (
        runs.get("int8-arm"),
        runs.get("fp32-arm"),
        runs.get("int8-ort"),
        runs.get("fp32-ort"),
    ) {
        for (what, a, b) in [
            ("tract int8 (aarch64) vs tract fp32 (aarch64)", t8, t32),
            ("onnxruntime int8 vs onnxruntime fp32 (x86-64)", o8, o32),
            ("tract int8 (aarch64) vs onnxruntime int8 (x86-64)", t8, o8),
        ] {
            int8_rows.push((what, max_diff(a, b)?, mean_diff(a, b)?));
        }
    }
    if !have_ort {
        eprintln!("xtask: [bench export-qemu] onnxruntime missing in .venv: compared with x86 tract only (run `cargo xtask setup`)");
    }
    // The table search: integer scan + float rescoring, same lists expected.
    let items = args.items.to_string();
    let queries = args.queries.to_string();
    let search = |who: &str, mut cmd: Command| -> Result<(Vec<Vec<u32>>, serde_json::Value)> {
        let res = p(&format!("search-{who}.json"));
        let out = env::stdout_of(
            "export-bench search",
            cmd.args([
                "search",
                "--items",
                &items,
                "--queries",
                &queries,
                "--results",
            ])
            .arg(&res),
        )?;
        let hits: Vec<Vec<u32>> = serde_json::from_slice(&std::fs::read(&res)?)
            .with_context(|| format!("parsing {}", res.display()))?;
        Ok((hits, env::last_json(&out)?))
    };
    let (x86_hits, x86_s) = search("x86", Command::new(&x86))?;
    let (arm_hits, arm_s) = search("arm", on_arm(&[]))?;
    let differing = x86_hits
        .iter()
        .zip(&arm_hits)
        .filter(|(a, b)| a != b)
        .count()
        + x86_hits.len().abs_diff(arm_hits.len());
    checks.push(Check {
        what: format!(
            "table search: {} queries over {} x 128 items, top-20 lists differing between aarch64 and x86-64",
            args.queries, args.items
        ),
        diff: differing as f64,
        tol: 0.0,
        detail: format!(
            "int8 top-20 = float top-20: x86-64 {:.1}%, aarch64 {:.1}%",
            100.0 * x86_s["top_k_equal_float"].as_f64().unwrap_or(f64::NAN),
            100.0 * arm_s["top_k_equal_float"].as_f64().unwrap_or(f64::NAN)
        ),
    });

    let md = render(&checks, &int8_rows, &census);
    println!("{md}");
    if !args.no_write {
        crate::benchmarks_md::write_section("export-qemu", &md)?;
        eprintln!("xtask: [bench export-qemu] BENCHMARKS.md updated");
    }
    let failed: Vec<&Check> = checks.iter().filter(|c| !c.passed()).collect();
    if !failed.is_empty() {
        bail!(
            "{} check(s) over tolerance: {}",
            failed.len(),
            failed
                .iter()
                .map(|c| format!("{} = {:.3e} > {:.0e}", c.what, c.diff, c.tol))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    Ok(())
}

/// `op: count` pairs of the optimized plan (`export-bench model`'s `ops`).
fn ops_of(text: &str) -> Result<OpCensus> {
    let v = env::last_json(text)?;
    let ops = v["ops"]
        .as_array()
        .context("no `ops` in export-bench output")?;
    Ok(ops
        .iter()
        .filter_map(|o| Some((o[0].as_str()?.to_string(), o[1].as_u64()?)))
        .collect())
}

/// One line of the int8 report: what, (max diff, worst output), mean diff.
type Int8Row<'a> = (&'a str, (f64, String), f64);

fn render(checks: &[Check], int8: &[Int8Row], census: &[(&str, OpCensus, OpCensus)]) -> String {
    let mut md = String::from(
        "## export: the same runs as aarch64 binaries under qemu (correctness only)\n\n",
    );
    md.push_str(&format!(
        "{}, {}. Command: `cargo xtask bench export-qemu`. `export-bench` built for \
         aarch64-unknown-linux-gnu (zig, glibc 2.17, `qemu` profile) and run under qemu-aarch64 on \
         the same `edge` files (random weights, S=192) and input as the x86-64 build; tract uses its \
         ARM kernels there. Max abs diff over all five outputs; qemu timings are not reported.\n\n",
        env::utc_now("+%Y-%m-%d %H:%M UTC"),
        env::cpu_model()
    ));
    md.push_str(
        "| check | max abs diff | tolerance | worst output / note | ok |\n|---|---|---|---|---|\n",
    );
    for c in checks {
        md.push_str(&format!(
            "| {} | {:.2e} | {:.0e} | {} | {} |\n",
            c.what,
            c.diff,
            c.tol,
            c.detail,
            if c.passed() { "yes" } else { "**no**" }
        ));
    }
    if !int8.is_empty() {
        md.push_str(
            "\nint8 against fp32 and between the two int8 implementations (same input; reported, \
             no bound: onnxruntime rounds requantization its own way):\n\n\
             | pair | max abs diff | worst output | mean abs diff |\n|---|---|---|---|\n",
        );
        for (what, (max, name), mean) in int8 {
            md.push_str(&format!("| {what} | {max:.2e} | {name} | {mean:.2e} |\n"));
        }
    }
    for (form, x86, arm) in census {
        let fmt = |v: &OpCensus| {
            v.iter()
                .map(|(o, n)| format!("{o} x{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if x86 == arm {
            md.push_str(&format!(
                "\n{form} plan ops (the same on both): {}\n",
                fmt(arm)
            ));
        } else {
            md.push_str(&format!(
                "\n{form} plan ops, x86-64: {}  \n{form} plan ops, aarch64: {}\n",
                fmt(x86),
                fmt(arm)
            ));
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_diff_names_the_worst_output_and_refuses_mismatches() {
        let a: Outputs = [("x".into(), vec![0.0, 1.0]), ("y".into(), vec![2.0])].into();
        let b: Outputs = [("x".into(), vec![0.0, 1.5]), ("y".into(), vec![2.1])].into();
        let (d, n) = max_diff(&a, &b).unwrap();
        assert_eq!((d, n.as_str()), (0.5, "x"));
        let nan: Outputs = [("x".into(), vec![f64::NAN, 1.0]), ("y".into(), vec![2.0])].into();
        assert_eq!(max_diff(&nan, &a).unwrap().0, f64::INFINITY);
        let short: Outputs = [("x".into(), vec![0.0]), ("y".into(), vec![2.0])].into();
        assert!(max_diff(&short, &a).is_err());
        let missing: Outputs = [("z".into(), vec![0.0])].into();
        assert!(max_diff(&missing, &a).is_err());
    }
}
