//! The project's benchmark program: runs workloads of `/work/shared/bench/SPEC.md` against real
//! `daemon` child processes and prints one line per figure on stdout:
//!
//! ```text
//! RESULT <implementation> <metric> <value>
//! ```
//!
//! ```text
//! cargo build --release -p examples
//! target/release/bench [--transport uds|tcp|both] [--runtime current|multi|both]
//!                      [--workloads W2,W4,W4b] [--quick]
//! ```
//!
//! Implementations are `actor-uds` and `actor-tcp` (daemon on tokio's current-thread runtime)
//! and `actor-uds-mt`, `actor-tcp-mt` (multi-thread runtime). The client always runs on a
//! current-thread runtime. Every workload checks its results; a readable table goes to stderr.
//!
//! Covered so far: W2 (sequential echo latency), W4 (u64 stream), W4b (1 MiB blob stream).

use std::{
    error::Error,
    path::PathBuf,
    process::{ExitCode, Stdio},
    time::{Duration, Instant},
};

use actor::{Addr, Portal};
use clap::Parser;
use examples::demo::{blob, count, echo};
use futures::StreamExt;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

type BoxResult<T> = Result<T, Box<dyn Error>>;

/// How long one workload may take before the bench calls it a hang.
const WORKLOAD_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the daemon may take to start listening, or to exit once cancelled.
const DAEMON_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Parser)]
#[command(about = "Benchmarks the actor runtime against real daemon processes (see SPEC.md)")]
struct Cli {
    /// Transports to measure.
    #[arg(long, value_enum, default_value_t = Choice::Both)]
    transport: Choice,
    /// Runtime flavours of the daemon to measure.
    #[arg(long, value_enum, default_value_t = FlavorChoice::Both)]
    runtime: FlavorChoice,
    /// Workloads to run, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        ignore_case = true,
        default_values = ["W1", "W2", "W4", "W4b"]
    )]
    workloads: Vec<Workload>,
    /// Smaller counts, for smoke tests.
    #[arg(long)]
    quick: bool,
}

/// `--transport` values.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Choice {
    Uds,
    Tcp,
    Both,
}

/// `--runtime` values.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FlavorChoice {
    Current,
    Multi,
    Both,
}

/// `--workloads` values.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Workload {
    /// Spawning children through a nursery (run in this process as an actor root).
    #[value(name = "W1")]
    W1,
    #[value(name = "W2")]
    W2,
    #[value(name = "W4")]
    W4,
    #[value(name = "W4b")]
    W4b,
}

#[derive(Clone, Copy)]
enum Transport {
    Uds,
    Tcp,
}

#[derive(Clone, Copy)]
enum Flavor {
    Current,
    Multi,
}

impl Flavor {
    fn arg(self) -> &'static str {
        match self {
            Self::Current => "current",
            Self::Multi => "multi",
        }
    }
}

/// Counts per workload.
struct Sizes {
    w2_warmup: u64,
    w2_calls: u64,
    w4_items: u64,
    w4b_blobs: u64,
    w4b_size: u64,
}

impl Sizes {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                w2_warmup: 100,
                w2_calls: 2_000,
                w4_items: 100_000,
                w4b_blobs: 64,
                w4b_size: 1 << 20,
            }
        } else {
            Self {
                w2_warmup: 1_000,
                w2_calls: 20_000,
                w4_items: 1_000_000,
                w4b_blobs: 1_024,
                w4b_size: 1 << 20,
            }
        }
    }
}

/// One measured figure.
struct Figure {
    implementation: String,
    metric: &'static str,
    value: f64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if std::env::var_os("ACTOR_CHILD_NAME").is_some() {
        // Started by W1 as a child actor: serve `demo` as the parent asks, then exit.
        let _ = actor::run_root(actor::RootOptions::new("bench"), || async {});
        return ExitCode::FAILURE;
    }
    examples::init_logging();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("bench: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // W1 first: this program becomes an actor root, which needs its own runtime.
    let mut w1_figures = Vec::new();
    if cli.workloads.contains(&Workload::W1) {
        let transports: &[Transport] = match cli.transport {
            Choice::Uds => &[Transport::Uds],
            Choice::Tcp => &[Transport::Tcp],
            Choice::Both => &[Transport::Uds, Transport::Tcp],
        };
        for &transport in transports {
            match w1(transport, cli.quick) {
                Ok(figures) => w1_figures.extend(figures),
                Err(e) => {
                    eprintln!("bench: W1: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    match runtime.block_on(run(cli, w1_figures)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, w1_figures: Vec<Figure>) -> BoxResult<()> {
    let daemon = std::env::current_exe()?.with_file_name("daemon");
    if !daemon.is_file() {
        return Err(format!(
            "no daemon binary at {} (build it with `cargo build --release -p examples`)",
            daemon.display()
        )
        .into());
    }
    let flavors: &[Flavor] = match cli.runtime {
        FlavorChoice::Current => &[Flavor::Current],
        FlavorChoice::Multi => &[Flavor::Multi],
        FlavorChoice::Both => &[Flavor::Current, Flavor::Multi],
    };
    let transports: &[Transport] = match cli.transport {
        Choice::Uds => &[Transport::Uds],
        Choice::Tcp => &[Transport::Tcp],
        Choice::Both => &[Transport::Uds, Transport::Tcp],
    };
    let sizes = Sizes::new(cli.quick);
    let mut figures = Vec::new();
    figures.extend(w1_figures);
    let daemon_workloads = cli.workloads.iter().any(|w| *w != Workload::W1);
    for &flavor in flavors.iter().filter(|_| daemon_workloads) {
        for &transport in transports {
            let name = implementation_name(transport, flavor);
            eprintln!("== {name}");
            let mut child = DaemonChild::spawn(&daemon, transport, flavor).await?;
            let portal = match actor::connect(&child.addr).await {
                Ok(portal) => portal,
                Err(e) => {
                    let connect = format!("{name}: cannot connect to the daemon at {}", child.addr);
                    let _ = child.stop(None).await;
                    return Err(format!("{connect}: {e}").into());
                }
            };
            let outcome = run_workloads(&portal, &name, &cli.workloads, &sizes).await;
            let stopped = child.stop(Some(&portal)).await;
            figures.extend(outcome?);
            stopped.map_err(|e| format!("{name}: {e}"))?;
        }
    }
    print_table(&figures);
    Ok(())
}

/// W1: children started through a nursery, this program being the root: the median of 20
/// sequential starts (each until one call returned), and 16 started at once. Also reports (on
/// stderr) how long closing a nursery of 16 daemons takes.
fn w1(transport: Transport, quick: bool) -> BoxResult<Vec<Figure>> {
    let name = implementation_name(transport, Flavor::Current);
    eprintln!("== {name} (W1: this program as the root)");
    let listen = match transport {
        Transport::Uds => actor::Addr::unix(
            std::env::temp_dir().join(format!("actor-bench-root-{}.sock", std::process::id())),
        ),
        Transport::Tcp => actor::Addr::tcp("127.0.0.1", 0),
    };
    let options = actor::RootOptions::new("bench")
        .own_registrar()
        .listen(listen);
    let (sequential, concurrent) = if quick { (5, 4) } else { (20, 16) };
    let measured = actor::run_root(options, move || async move {
        let mut samples = Vec::new();
        for i in 0..sequential {
            let nursery = actor::open_nursery().await?;
            let started = Instant::now();
            let child = nursery
                .start_actor(format!("w1-{i}"))
                .enable("demo")
                .await?;
            let echoed = child.run(examples::demo::echo { x: i }).await?;
            samples.push(started.elapsed());
            if echoed != i {
                return Err(actor::Error::Usage(format!(
                    "echo {i} came back as {echoed}"
                )));
            }
            nursery.close().await?;
        }
        samples.sort();
        let median = samples[samples.len() / 2];
        let nursery = actor::open_nursery().await?;
        let started = Instant::now();
        let starts = (0..concurrent).map(|i| {
            let nursery = &nursery;
            async move {
                let child = nursery
                    .start_actor(format!("w1c-{i}"))
                    .enable("demo")
                    .await?;
                child.run(examples::demo::echo { x: i }).await
            }
        });
        for (i, echoed) in futures::future::join_all(starts)
            .await
            .into_iter()
            .enumerate()
        {
            if echoed? != i as u64 {
                return Err(actor::Error::Usage(
                    "a concurrent child echoed wrongly".into(),
                ));
            }
        }
        let wall = started.elapsed();
        let closing = Instant::now();
        nursery.close().await?;
        eprintln!(
            "   teardown of {concurrent} daemons (nursery close): {:.1} ms",
            closing.elapsed().as_secs_f64() * 1e3
        );
        Ok::<_, actor::Error>((median, wall))
    })??;
    let (median, wall) = measured;
    let figures = [
        ("W1.spawn_median_ms", median.as_secs_f64() * 1e3),
        ("W1.spawn16_wall_ms", wall.as_secs_f64() * 1e3),
    ];
    Ok(figures
        .into_iter()
        .map(|(metric, value)| {
            println!("RESULT {name} {metric} {}", format_value(value));
            Figure {
                implementation: name.clone(),
                metric,
                value,
            }
        })
        .collect())
}

fn implementation_name(transport: Transport, flavor: Flavor) -> String {
    let transport = match transport {
        Transport::Uds => "uds",
        Transport::Tcp => "tcp",
    };
    let suffix = match flavor {
        Flavor::Current => "",
        Flavor::Multi => "-mt",
    };
    format!("actor-{transport}{suffix}")
}

async fn run_workloads(
    portal: &Portal,
    name: &str,
    workloads: &[Workload],
    sizes: &Sizes,
) -> BoxResult<Vec<Figure>> {
    let mut figures = Vec::new();
    for &workload in workloads {
        let (label, measured) = match workload {
            // Measured separately, with this program as the root of a tree.
            Workload::W1 => continue,
            Workload::W2 => ("W2", timed(w2(portal, sizes)).await),
            Workload::W4 => ("W4", timed(w4(portal, sizes)).await),
            Workload::W4b => ("W4b", timed(w4b(portal, sizes)).await),
        };
        let measured = measured.map_err(|e| format!("{label} on {name}: {e}"))?;
        for (metric, value) in measured {
            println!("RESULT {name} {metric} {}", format_value(value));
            figures.push(Figure {
                implementation: name.to_owned(),
                metric,
                value,
            });
        }
    }
    Ok(figures)
}

/// Runs a workload with [`WORKLOAD_TIMEOUT`], so a hang becomes an error.
async fn timed(
    workload: impl Future<Output = BoxResult<Vec<(&'static str, f64)>>>,
) -> BoxResult<Vec<(&'static str, f64)>> {
    match tokio::time::timeout(WORKLOAD_TIMEOUT, workload).await {
        Ok(result) => result,
        Err(_) => Err(format!("timed out after {} s (hang?)", WORKLOAD_TIMEOUT.as_secs()).into()),
    }
}

/// W2: sequential echo calls, after a warm-up; every answer checked.
async fn w2(portal: &Portal, sizes: &Sizes) -> BoxResult<Vec<(&'static str, f64)>> {
    for x in 0..sizes.w2_warmup {
        check_echo(x, portal.run(echo { x }).await?)?;
    }
    let mut latencies = Vec::with_capacity(usize::try_from(sizes.w2_calls)?);
    let start = Instant::now();
    for x in 0..sizes.w2_calls {
        let call = Instant::now();
        let got = portal.run(echo { x }).await?;
        latencies.push(call.elapsed());
        check_echo(x, got)?;
    }
    let total = start.elapsed();
    latencies.sort_unstable();
    Ok(vec![
        ("W2.p50_us", micros(percentile(&latencies, 0.50))),
        ("W2.p99_us", micros(percentile(&latencies, 0.99))),
        ("W2.calls_per_s", per_second(sizes.w2_calls, total)),
    ])
}

fn check_echo(sent: u64, got: u64) -> BoxResult<()> {
    if sent == got {
        Ok(())
    } else {
        Err(format!("echo({sent}) answered {got}").into())
    }
}

/// W4: a stream of u64 items, one message per item; count, order and sum checked.
async fn w4(portal: &Portal, sizes: &Sizes) -> BoxResult<Vec<(&'static str, f64)>> {
    let n = sizes.w4_items;
    let start = Instant::now();
    let mut stream = portal.open_stream_from(count { n }).await?;
    let (mut items, mut sum) = (0_u64, 0_u64);
    while let Some(item) = stream.next().await {
        let item = item.map_err(|e| format!("after {items} items: {e}"))?;
        if item != items {
            return Err(format!("item #{items} was {item}").into());
        }
        items += 1;
        sum = sum.wrapping_add(item);
    }
    let elapsed = start.elapsed();
    let want_sum = n.wrapping_mul(n.wrapping_sub(1)) / 2;
    if items != n || sum != want_sum {
        return Err(
            format!("got {items} items summing to {sum}, want {n} summing to {want_sum}").into(),
        );
    }
    Ok(vec![("W4.items_per_s", per_second(n, elapsed))])
}

/// W4b: a stream of byte blobs (msgpack bin); sizes, contents' ends and total checked.
async fn w4b(portal: &Portal, sizes: &Sizes) -> BoxResult<Vec<(&'static str, f64)>> {
    let (n, size) = (sizes.w4b_blobs, sizes.w4b_size);
    let start = Instant::now();
    let mut stream = portal.open_stream_from(blob { n, size }).await?;
    let (mut blobs, mut bytes) = (0_u64, 0_u64);
    while let Some(item) = stream.next().await {
        let item: bytes::Bytes = item.map_err(|e| format!("after {blobs} blobs: {e}"))?;
        let len = u64::try_from(item.len())?;
        if len != size || item.first() != Some(&0xab) || item.last() != Some(&0xab) {
            return Err(format!("blob #{blobs} has {len} bytes or wrong contents").into());
        }
        blobs += 1;
        bytes += len;
    }
    let elapsed = start.elapsed();
    if blobs != n || bytes != n * size {
        return Err(format!(
            "got {blobs} blobs, {bytes} bytes; want {n} blobs, {} bytes",
            n * size
        )
        .into());
    }
    Ok(vec![(
        "W4b.GB_per_s",
        bytes as f64 / 1e9 / elapsed.as_secs_f64(),
    )])
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn per_second(n: u64, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64()
}

fn format_value(value: f64) -> String {
    if value >= 1000.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.3}")
    }
}

/// Metrics as rows, implementations as columns, in the order measured.
fn print_table(figures: &[Figure]) {
    let mut implementations: Vec<&str> = Vec::new();
    let mut metrics: Vec<&str> = Vec::new();
    for f in figures {
        if !implementations.contains(&f.implementation.as_str()) {
            implementations.push(&f.implementation);
        }
        if !metrics.contains(&f.metric) {
            metrics.push(f.metric);
        }
    }
    let mut header = format!("{:<16}", "metric");
    for name in &implementations {
        header.push_str(&format!(" {name:>14}"));
    }
    eprintln!();
    eprintln!("{header}");
    for metric in metrics {
        let mut line = format!("{metric:<16}");
        for name in &implementations {
            let cell = figures
                .iter()
                .find(|f| f.metric == metric && f.implementation == *name)
                .map(|f| human(f.value))
                .unwrap_or_else(|| "-".into());
            line.push_str(&format!(" {cell:>14}"));
        }
        eprintln!("{line}");
    }
}

fn human(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.2} M", value / 1e6)
    } else if value >= 1e3 {
        format!("{:.1} k", value / 1e3)
    } else {
        format!("{value:.2}")
    }
}

/// A running `daemon` child process. Killed if dropped before [`DaemonChild::stop`].
struct DaemonChild {
    child: Child,
    addr: Addr,
    socket: Option<PathBuf>,
}

impl DaemonChild {
    async fn spawn(
        daemon: &std::path::Path,
        transport: Transport,
        flavor: Flavor,
    ) -> BoxResult<Self> {
        let (listen, socket) = match transport {
            Transport::Tcp => ("tcp://127.0.0.1:0".to_owned(), None),
            Transport::Uds => {
                let path = std::env::temp_dir().join(format!(
                    "actor-bench-{}-{}.sock",
                    std::process::id(),
                    flavor.arg()
                ));
                // A stale file from a killed run would make the bind fail.
                let _ = std::fs::remove_file(&path);
                (format!("unix://{}", path.display()), Some(path))
            }
        };
        let mut child = Command::new(daemon)
            .args(["--name", "bench-daemon", "--listen", &listen])
            .args(["--runtime", flavor.arg()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", daemon.display()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or("the daemon's stdout was not captured")?;
        let mut lines = BufReader::new(stdout).lines();
        let announced = tokio::time::timeout(DAEMON_TIMEOUT, async {
            while let Some(line) = lines.next_line().await? {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    return Ok::<_, std::io::Error>(Some(addr.trim().to_owned()));
                }
            }
            Ok(None)
        })
        .await;
        let addr = match announced {
            Ok(Ok(Some(addr))) => addr,
            Ok(Ok(None)) => {
                return Err(format!(
                    "the daemon exited before listening on {listen} (status {:?})",
                    child.wait().await.ok()
                )
                .into());
            }
            Ok(Err(e)) => return Err(format!("reading the daemon's stdout: {e}").into()),
            Err(_) => {
                return Err(format!(
                    "the daemon did not print `listening on` within {} s",
                    DAEMON_TIMEOUT.as_secs()
                )
                .into());
            }
        };
        // Keep draining stdout so the daemon never blocks on (or dies of) a closed pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let addr: Addr = addr
            .parse()
            .map_err(|e| format!("the daemon announced a bad address {addr:?}: {e}"))?;
        Ok(Self {
            child,
            addr,
            socket,
        })
    }

    /// Cancels the daemon through `portal` (or a fresh one) and waits for it to exit; kills it
    /// if it does not.
    async fn stop(&mut self, portal: Option<&Portal>) -> BoxResult<()> {
        let result = self.cancel_and_wait(portal).await;
        if result.is_err() {
            let _ = self.child.kill().await;
        }
        if let Some(path) = &self.socket {
            let _ = std::fs::remove_file(path);
        }
        result
    }

    async fn cancel_and_wait(&mut self, portal: Option<&Portal>) -> BoxResult<()> {
        let cancel = async {
            match portal {
                Some(portal) => portal.cancel_actor().await,
                None => actor::connect(&self.addr).await?.cancel_actor().await,
            }
        };
        match tokio::time::timeout(DAEMON_TIMEOUT, cancel).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(format!("cancelling the daemon: {e}").into()),
            Err(_) => return Err("the daemon did not acknowledge `cancel` in time".into()),
        }
        match tokio::time::timeout(DAEMON_TIMEOUT, self.child.wait()).await {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => Err(format!("the daemon exited with {status}").into()),
            Ok(Err(e)) => Err(format!("waiting for the daemon: {e}").into()),
            Err(_) => Err(format!(
                "the daemon did not exit within {} s of `cancel`",
                DAEMON_TIMEOUT.as_secs()
            )
            .into()),
        }
    }
}
