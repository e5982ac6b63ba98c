//! The benchmark runs end to end: every workload, ours and the baseline's, in real processes
//! over Unix sockets, each checking its own results (a lost message fails the run). Its
//! figures are not judged here: speed is measured with the benchmark itself, never asserted in
//! a test (BENCHMARKS.md).

// Test code: a failed unwrap or panic is a failed test, with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tokio::process::Command;

const BENCH: &str = env!("CARGO_BIN_EXE_bench");

/// Runs the bench with `args`; what it printed, once it succeeded.
async fn bench(args: &[&str]) -> String {
    bench_with(args, &[]).await.0
}

/// Runs the bench with `args` and the environment variables `env`; what it printed on stdout
/// and stderr, once it succeeded.
async fn bench_with(args: &[&str], env: &[(&str, &str)]) -> (String, String) {
    let mut command = Command::new(BENCH);
    command
        .args(args)
        .envs(env.iter().copied())
        .kill_on_drop(true);
    // Longer than the common wait: eleven workloads, twice, in a debug build.
    let out = tokio::time::timeout(std::time::Duration::from_secs(180), command.output())
        .await
        .expect("the quick benchmark did not finish within 180 s")
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "bench {args:?} failed ({}): {printed}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    (printed, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `RESULT actor-uds <metric> <value>`: a positive number for each of `metrics`.
fn assert_figures(printed: &str, metrics: &[&str]) {
    for metric in metrics {
        let value = figure(printed, metric);
        assert!(value > 0.0, "{metric} = {value}");
    }
}

/// The value of `RESULT actor-uds <metric> <value>`.
fn figure(printed: &str, metric: &str) -> f64 {
    printed
        .lines()
        .find_map(|line| {
            let mut fields = line.split_whitespace();
            (fields.next() == Some("RESULT")
                && fields.next() == Some("actor-uds")
                && fields.next() == Some(metric))
            .then(|| fields.next()?.parse().ok())
            .flatten()
        })
        .unwrap_or_else(|| panic!("no figure for {metric}:\n{printed}"))
}

#[tokio::test]
async fn every_workload_runs_and_reports_a_figure() {
    let printed = bench(&["--quick", "--runtime", "current", "--transport", "uds"]).await;
    assert_figures(
        &printed,
        &[
            "W1.spawn_median_ms",
            "W2.p50_us",
            "W2.calls_per_s",
            "W3.calls_per_s",
            "W4.items_per_s",
            "W4b.GB_per_s",
            "W5.rt_per_s",
            "W6.cancel_p50_us",
            "W7.fanin_items_per_s",
            "W8.rss_idle_child_kib",
            "W9.busy_p50_us",
        ],
    );
}

/// A quick run of the actor runtime alone over Unix sockets, its calls made from a task.
fn from_a_task(workloads: &str) -> [&str; 10] {
    [
        "--quick",
        "--caller",
        "task",
        "--no-baseline",
        "--runtime",
        "current",
        "--transport",
        "uds",
        "--workloads",
        workloads,
    ]
}

#[tokio::test]
async fn the_calls_can_be_made_from_a_task() {
    let printed = bench(&from_a_task("W2,W3,W4,W5,W6,W9")).await;
    assert_figures(
        &printed,
        &[
            "W2.p50_us",
            "W3.calls_per_s",
            "W4.items_per_s",
            "W5.rt_per_s",
            "W6.cancel_p50_us",
            "W9.busy_p50_us",
        ],
    );
}

#[tokio::test]
async fn the_low_latency_mode_is_measured_against_its_goal() {
    let (printed, told) =
        bench_with(&from_a_task("W2,W5"), &[(actor::LOW_LATENCY_ENV, "50")]).await;
    assert_figures(&printed, &["W2.p50_us", "W5.rt_per_s"]);
    // Its idle cost: a share of one CPU, over a second in which the connection is open.
    let idle = figure(&printed, "W2.idle_cpu_pct");
    assert!((0.0..=200.0).contains(&idle), "idle CPU {idle}%");
    assert!(
        told.contains("low-latency mode (ACTOR_LOW_LATENCY_SPIN_US=50), calls made from a task")
            && told
                .lines()
                .any(|l| l.starts_with("actor-uds ") && l.contains("W2 p50")),
        "no low-latency goal printed:\n{told}"
    );
}
