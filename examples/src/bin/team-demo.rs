//! A team of worker processes counting primes over ranges, with a live progress bar fed by the
//! team's event stream.
//!
//! ```text
//! cargo run --release -p examples --bin team-demo -- --workers W --tasks N [--fail-every K] [--hold]
//! ```
//!
//! Task `i` counts the primes in `[i * span, (i + 1) * span)` on a worker (`--span`, default
//! 100000). `--fail-every K` makes every K-th task fail recoverably on its first attempt only,
//! so the team retries it on another worker. Each worker's command line holds `team-demo` and
//! its name (`worker-1`, ...); kill one with SIGKILL while it runs and the team replaces it and
//! retries its task.
//!
//! Prints, on stdout: `recruited W workers` once the team is up, `primes below X: C` at the
//! end, then exactly one line `SUMMARY tasks=N succeeded=S failed=F retried=R replaced=P`
//! (R: attempts beyond each task's first; P: workers replaced). Exits 0 when S + F == N.

use std::{process::ExitCode, time::Duration};

use actor::team::{MemberState, TaskState, TeamEvent};
use clap::Parser;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Parser)]
#[command(about = "Counts primes on a team of worker processes")]
struct Cli {
    /// Worker processes in the team.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Tasks (ranges of numbers) to count.
    #[arg(long, default_value_t = 100)]
    tasks: u64,
    /// Numbers per task.
    #[arg(long, default_value_t = 100_000)]
    span: u64,
    /// Every K-th task fails (recoverably) on its first attempt.
    #[arg(long)]
    fail_every: Option<u64>,
    /// Once every task has run, print `HOLDING` and wait for a line on stdin before dismissing
    /// the team (to look at it with `actor tree`).
    #[arg(long)]
    hold: bool,
}

/// Counts the primes in `[from, to)`. With `fail_marker`, fails recoverably if this is the
/// first attempt (the marker file does not exist yet; this attempt creates it).
#[actor::remote(ns = "primes")]
async fn count_primes(from: u64, to: u64, fail_marker: Option<String>) -> actor::Result<u64> {
    if let Some(marker) = fail_marker {
        let first = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&marker)
            .is_ok();
        if first {
            return Err(actor::Error::recoverable(format!(
                "[{from}, {to}): failing the first attempt on purpose"
            )));
        }
    }
    // CPU work off the event loop: the worker stays responsive (cancellation, the team).
    tokio::task::spawn_blocking(move || (from..to).filter(|n| is_prime(*n)).count() as u64)
        .await
        .map_err(|e| actor::Error::raise("RuntimeError", format!("counting failed: {e}")))
}

fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    if n % 2 == 0 {
        return n == 2;
    }
    let mut d = 3;
    while d * d <= n {
        if n % d == 0 {
            return false;
        }
        d += 2;
    }
    true
}

#[actor::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("team-demo: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the demo; `Ok(true)` when every task ended with an outcome.
async fn run(cli: &Cli) -> actor::Result<bool> {
    let started = std::time::Instant::now();
    // Where first attempts leave their mark (for --fail-every).
    let markers = std::env::temp_dir().join(format!("team-demo-{}", std::process::id()));
    std::fs::create_dir_all(&markers)?;
    let nursery = actor::open_nursery().await?;
    let team = nursery
        .team("worker")
        .enable("primes")
        .members(cli.workers)
        .max_attempts(5)
        .max_in_flight(cli.workers * 2)
        .recruit()
        .await?;
    println!("recruited {} workers", cli.workers);

    let progress = ProgressBar::new(cli.tasks);
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} tasks  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut events = Box::pin(team.events());
    let bar = progress.clone();
    let follower = tokio::spawn(async move {
        let (mut retries, mut replaced) = (0, 0);
        while let Some(event) = events.next().await {
            match event {
                TeamEvent::Task {
                    state: TaskState::Succeeded | TaskState::Failed,
                    ..
                } => bar.inc(1),
                TeamEvent::Task {
                    state: TaskState::Retrying { .. },
                    ..
                } => retries += 1,
                TeamEvent::Member {
                    state: MemberState::Replaced { .. },
                    ..
                } => replaced += 1,
                _ => continue,
            }
            bar.set_message(format!("{retries} retried, {replaced} workers replaced"));
        }
    });

    let span = cli.span;
    let fail_every = cli.fail_every.filter(|k| *k > 0);
    let tasks = (0..cli.tasks).map(|i| count_primes {
        from: i * span,
        to: (i + 1) * span,
        fail_marker: fail_every
            .filter(|k| (i + 1) % k == 0)
            .map(|_| markers.join(format!("task-{i}")).display().to_string()),
    });
    let (mut succeeded, mut failed, mut primes) = (0_u64, 0_u64, 0_u64);
    let mut outcomes = team.map(tasks.collect::<Vec<_>>());
    while let Some(outcome) = outcomes.next().await {
        match outcome.result {
            Ok(count) => {
                succeeded += 1;
                primes += count;
            }
            Err(e) => {
                failed += 1;
                progress.suspend(|| eprintln!("task {} failed: {e}", outcome.task));
            }
        }
    }
    if cli.hold {
        progress.finish_and_clear();
        examples::hold("the team's workers, idle").await?;
    }
    let status = team.dismiss(Duration::from_secs(5)).await;
    nursery.close().await?;
    let _ = std::fs::remove_dir_all(&markers);
    follower.abort();
    progress.finish_and_clear();
    eprintln!(
        "{} tasks on {} workers in {:.2} s",
        cli.tasks,
        cli.workers,
        started.elapsed().as_secs_f64()
    );
    if failed == 0 {
        println!("primes below {}: {primes}", cli.tasks * span);
    }
    println!(
        "SUMMARY tasks={} succeeded={succeeded} failed={failed} retried={} replaced={}",
        cli.tasks, status.retries, status.replaced
    );
    Ok(succeeded + failed == cli.tasks)
}
