//! Timing helper run by `cargo xtask bench export` (no criterion): prints
//! one JSON object per invocation.
//!
//! - `export-bench search --items N --dim D --queries Q --k K [--dump DIR]`:
//!   exact top-k over a random int8 shop table, one query at a time, one
//!   thread; with `--dump` writes the float vectors and queries as raw f32
//!   for the FAISS peer.
//! - `export-bench model --model M.onnx --threads T --runs R [--save DIR]`:
//!   tract latency of an exported graph, batch 1; with `--save` also writes
//!   the input (`input.f32`, raw f32) and tract's outputs (`outputs.json`),
//!   for comparing builds (aarch64 under qemu against x86) and onnxruntime.
//!
//! `--results FILE` on `search` writes every query's top-k item indices.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use deepfashion::shop_table::{search_float, Encoding, Match, ShopTable, TableItem, TableWriter};
use export::infer::TractModel;
use rand::{Rng, SeedableRng};
use std::path::PathBuf;
use std::time::Instant;

/// Timing helper of `cargo xtask bench export`.
#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Shop-table search latency.
    Search {
        /// Items in the table.
        #[arg(long, default_value_t = 100_000)]
        items: usize,
        /// Embedding dimension.
        #[arg(long, default_value_t = 128)]
        dim: usize,
        /// Timed queries.
        #[arg(long, default_value_t = 200)]
        queries: usize,
        /// Top-k.
        #[arg(long, default_value_t = 20)]
        k: usize,
        /// Write vectors.f32 and queries.f32 here.
        #[arg(long)]
        dump: Option<PathBuf>,
        /// Write every query's top-k item indices here (JSON).
        #[arg(long)]
        results: Option<PathBuf>,
        /// Table encoding: `auto` (the writer's choice), `item-affine` or
        /// `principal` (principal axes, 12 refined).
        #[arg(long, default_value = "auto")]
        encoding: String,
    },
    /// tract latency of a model.
    Model {
        /// The ONNX file.
        #[arg(long)]
        model: PathBuf,
        /// Threads (tract multithread executor when > 1).
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Timed runs.
        #[arg(long, default_value_t = 20)]
        runs: usize,
        /// Write the input (input.f32) and the outputs (outputs.json) here.
        #[arg(long)]
        save: Option<PathBuf>,
    },
}

fn unit(rng: &mut rand_chacha::ChaCha8Rng, dim: usize) -> Vec<f32> {
    let v: Vec<f32> = (0..dim)
        .map(|_| (0..4).map(|_| rng.gen::<f32>() - 0.5).sum())
        .collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.into_iter().map(|x| x / n).collect()
}

fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Search {
            items,
            dim,
            queries,
            k,
            dump,
            results,
            encoding,
        } => {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
            let mut w = TableWriter::new("bench", dim)?;
            match encoding.as_str() {
                "auto" => {}
                "item-affine" => w.force_encoding(Encoding::ItemAffine)?,
                "principal" => w.force_encoding(Encoding::Principal {
                    refined: 12.min(dim),
                })?,
                other => {
                    anyhow::bail!("--encoding {other}: expected auto, item-affine or principal")
                }
            }
            let mut flat = Vec::with_capacity(items * dim);
            for i in 0..items {
                let e = unit(&mut rng, dim);
                flat.extend_from_slice(&e);
                w.push(&TableItem {
                    id: format!("item_{i}"),
                    name: None,
                    price: None,
                    url: None,
                    embedding: e,
                })?;
            }
            let t0 = Instant::now();
            let bytes = w.to_bytes();
            let build_ms = t0.elapsed().as_secs_f64() * 1e3;
            let t0 = Instant::now();
            let table = ShopTable::from_bytes(bytes)?;
            let load_ms = t0.elapsed().as_secs_f64() * 1e3;
            // Queries near catalogue items (as a camera view of a shop item).
            let qs: Vec<Vec<f32>> = (0..queries)
                .map(|i| {
                    let base = &flat[(i * 7919 % items) * dim..][..dim];
                    let noise = unit(&mut rng, dim);
                    base.iter().zip(&noise).map(|(a, b)| a + 0.7 * b).collect()
                })
                .collect();
            let mut out = vec![Match::default(); k];
            for q in qs.iter().take(5) {
                table.search_into(q, &mut out);
            }
            let mut times = Vec::new();
            let mut same = 0;
            let mut hits = Vec::with_capacity(qs.len());
            for q in &qs {
                let t = Instant::now();
                let n = table.search_into(q, &mut out);
                times.push(t.elapsed().as_secs_f64() * 1e3);
                hits.push(out[..n].iter().map(|m| m.index).collect::<Vec<u32>>());
                let mut a: Vec<u32> = out[..n].iter().map(|m| m.index).collect();
                let mut b: Vec<u32> = search_float(&flat, dim, q, k)
                    .iter()
                    .map(|m| m.index)
                    .collect();
                a.sort_unstable();
                b.sort_unstable();
                same += usize::from(a == b);
            }
            if let Some(d) = dump {
                std::fs::create_dir_all(&d)?;
                let raw = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
                std::fs::write(d.join("vectors.f32"), raw(&flat))?;
                std::fs::write(d.join("queries.f32"), raw(&qs.concat()))?;
            }
            if let Some(r) = results {
                std::fs::write(&r, serde_json::to_vec(&hits)?)
                    .with_context(|| format!("writing {}", r.display()))?;
            }
            println!(
                "{}",
                serde_json::json!({
                    "items": items, "dim": dim, "k": k, "queries": queries,
                    "median_ms": median(times.clone()),
                    "mean_ms": times.iter().sum::<f64>() / times.len() as f64,
                    "build_ms": build_ms,
                    "open_ms": load_ms,
                    "encoding": format!("{:?}", table.encoding()),
                    "table_bytes": table.byte_len(),
                    "top_k_equal_float": same as f64 / queries as f64,
                    "avx2": has_avx2(),
                })
            );
        }
        Cmd::Model {
            model,
            threads,
            runs,
            save,
        } => {
            if threads > 1 {
                tract_linalg::multithread::set_default_executor(
                    tract_linalg::multithread::Executor::multithread(threads),
                );
            }
            let m = TractModel::load(&model, 1)
                .with_context(|| format!("loading {}", model.display()))?;
            let s = m.info.config.input_size;
            let x = export::evaluate::random_inputs(s, 1, 0).remove(0);
            let outputs = m.run(&x)?;
            if let Some(d) = save {
                std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
                let raw: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
                std::fs::write(d.join("input.f32"), raw)?;
                let map: serde_json::Map<String, serde_json::Value> = outputs
                    .iter()
                    .map(|o| (o.name.clone(), serde_json::json!(o.data)))
                    .collect();
                std::fs::write(d.join("outputs.json"), serde_json::to_vec(&map)?)?;
            }
            for _ in 0..2 {
                m.run(&x)?;
            }
            let mut times = Vec::new();
            for _ in 0..runs {
                let t = Instant::now();
                m.run(&x)?;
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
            println!(
                "{}",
                serde_json::json!({
                    "model": model.display().to_string(), "threads": threads, "runs": runs,
                    "median_ms": median(times.clone()),
                    "min_ms": times.iter().cloned().fold(f64::INFINITY, f64::min),
                    "precision": m.info.precision,
                    "ops": m.op_census(),
                })
            );
        }
    }
    Ok(())
}
