//! Time one int8 model prepared with `tract_requant::into_optimized`, batch
//! 1, on `THREADS` threads: `cargo run --release -p tract-requant --example
//! frame_time -- MODEL.onnx [THREADS] [RUNS]`. A quick check while working on
//! the passes; the side-by-side figures come from `cargo xtask bench runtime`.

use std::time::Instant;
use tract_core::internal::TractErrorContext;
use tract_core::plan::{SimplePlan, SimpleState};
use tract_core::runtime::RunOptions;
use tract_core::tract_linalg::multithread::Executor;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;
use tract_requant::pool::run_in_pool;

fn main() -> TractResult<()> {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .get(1)
        .context("usage: frame_time MODEL.onnx [THREADS] [RUNS]")?;
    let threads: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(1);
    let runs: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(30);
    let mut model = tract_onnx::onnx().model_for_path(path)?;
    // Batch 1: a symbolic batch dimension becomes 1.
    let fact = model.input_fact(0)?.clone().without_value();
    let shape: TVec<usize> = fact
        .shape
        .dims()
        .map(|d| {
            d.concretize()
                .and_then(|t| t.to_i64().ok())
                .map_or(1, |v| v as usize)
        })
        .collect();
    model.set_input_fact(0, f32::fact(&shape).into())?;
    let model = model.into_typed()?;
    let model = tract_requant::into_optimized(model)?;
    if std::env::var_os("FRAME_TIME_DUMP").is_some() {
        eprintln!("{model}");
    }
    let executor = if threads > 1 {
        Executor::multithread(threads)
    } else {
        Executor::SingleThread
    };
    let options = RunOptions {
        executor: Some(executor.clone()),
        ..Default::default()
    };
    let plan = SimplePlan::new_with_options(model, &options)?;
    let mut state = SimpleState::new(&plan)?;
    let x = Tensor::zero::<f32>(&shape)?;
    state.run(tvec!(x.clone().into()))?;
    let start = Instant::now();
    for _ in 0..runs {
        run_in_pool(&executor, || state.run(tvec!(x.clone().into())))?;
    }
    let ms = start.elapsed().as_secs_f64() * 1e3 / runs as f64;
    println!("{path}: {ms:.3} ms per frame ({threads} thread(s), mean of {runs})");
    if std::env::var_os("FRAME_TIME_PROFILE").is_some() {
        // Per node, summed over the runs: the slowest 25 and the total per op.
        let mut totals = vec![0f64; plan.model().nodes().len()];
        for _ in 0..runs {
            run_in_pool(&executor, || {
                state.run_plan_with_eval(tvec!(x.clone().into()), |ctx, st, node, inputs| {
                    let start = Instant::now();
                    let r = tract_core::plan::eval(ctx, st, node, inputs);
                    totals[node.id] += start.elapsed().as_secs_f64() * 1e3 / runs as f64;
                    r
                })
            })?;
        }
        let nodes = plan.model().nodes();
        let mut order: Vec<usize> = (0..nodes.len()).collect();
        order.sort_by(|a, b| totals[*b].total_cmp(&totals[*a]));
        for &i in order.iter().take(25) {
            println!(
                "{:8.3} ms  {:<14} {}",
                totals[i],
                nodes[i].op.name(),
                nodes[i].name
            );
        }
        let mut per_op = std::collections::BTreeMap::<String, f64>::new();
        for (i, node) in nodes.iter().enumerate() {
            *per_op.entry(node.op.name().to_string()).or_default() += totals[i];
        }
        let mut per_op: Vec<_> = per_op.into_iter().collect();
        per_op.sort_by(|a, b| b.1.total_cmp(&a.1));
        for (op, t) in per_op.iter().take(12) {
            println!("{t:8.3} ms  {op} (all nodes)");
        }
    }
    Ok(())
}
