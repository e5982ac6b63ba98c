//! The project's benchmark program: runs the workloads of `BENCHMARKS.md` against
//! real server processes and prints one line per figure on stdout:
//!
//! ```text
//! RESULT <implementation> <metric> <value>
//! ```
//!
//! ```text
//! cargo run --release -p examples --bin bench -- [--transport uds|tcp|both]
//!     [--runtime current|multi|both] [--workloads W1,W2,W3,W4,W4b,W5,W6,W7,W8,W9] [--quick]
//!     [--no-baseline] [--runs N]
//! cargo run --release -p examples --bin bench -- --soak [--soak-calls N] [--soak-minutes M]
//! ```
//!
//! `--soak` measures resident memory over a million calls and a long stream instead (module
//! `soak`).
//!
//! Implementations:
//! - `actor-uds`, `actor-tcp`: an actor serving `demo` (what the `daemon` example runs) on
//!   tokio's current-thread runtime; `actor-uds-mt`, `actor-tcp-mt` on the multi-thread one.
//! - `baseline-uds`, `baseline-tcp`: the minimal runtime the targets compare against (module
//!   `baseline`), its server on a current-thread runtime.
//!
//! Each workload runs on every implementation back to back (the baseline, then the actor's
//! flavours) before the next workload starts, so that what the machine does meanwhile weighs
//! on the figures being compared alike.
//!
//! Every server is this executable re-launched (`--serve actor|baseline`), a separate process
//! per server; the bench's client side always runs on a current-thread runtime. W1 for the
//! actor starts children through a nursery (this program as the root); for the baseline it
//! starts server processes. W6 and W9 are the actor's only (the baseline cannot cancel, and has
//! no thread runner). W7 starts 8
//! server processes. Every workload checks what it received. The figures and each actor
//! figure's ratio to the baseline on the same transport go to stderr as tables.

mod baseline;
mod low_latency;
mod server;
mod soak;
mod workloads;
mod yardstick;

use std::{
    error::Error,
    process::ExitCode,
    time::{Duration, Instant},
};

use actor::Portal;
use clap::Parser;
use server::{Server, ServerKind};
use workloads::{Measured, Target};

/// The bench's errors: text for a person, and `Send`, so a workload can run in a task of its
/// own (`--caller task`).
type BoxError = Box<dyn Error + Send + Sync>;
/// See [`BoxError`].
type BoxResult<T> = Result<T, BoxError>;

/// How long one workload may take before the bench calls it a hang.
const WORKLOAD_TIMEOUT: Duration = Duration::from_secs(90);

#[derive(Parser)]
#[command(about = "Benchmarks the actor runtime against a minimal baseline (see BENCHMARKS.md)")]
struct Cli {
    /// Transports to measure.
    #[arg(long, value_enum, default_value_t = Choice::Both)]
    transport: Choice,
    /// Runtime flavours of the actor servers to measure (the baseline's is current-thread).
    #[arg(long, value_enum, default_value_t = FlavorChoice::Both)]
    runtime: FlavorChoice,
    /// Workloads to run, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        ignore_case = true,
        default_values = ["W1", "W2", "W3", "W4", "W4b", "W5", "W6", "W7", "W8", "W9"]
    )]
    workloads: Vec<Workload>,
    /// Smaller counts, for smoke tests.
    #[arg(long)]
    quick: bool,
    /// Runs of every workload; the figures reported are the medians.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    runs: u64,
    /// Measure the actor runtime only (no baseline, so no ratios): for profiling.
    #[arg(long)]
    no_baseline: bool,
    /// Instead of the workloads: resident memory over a million calls and a long stream.
    #[arg(long)]
    soak: bool,
    /// How many echo calls the soak makes.
    #[arg(long, default_value_t = 1_000_000, requires = "soak")]
    soak_calls: u64,
    /// How long the soak's stream runs, in minutes.
    #[arg(long, default_value_t = 10.0, requires = "soak")]
    soak_minutes: f64,
    /// The minimal runtime's Cargo project (not part of this repository): measure it in the
    /// same invocation, each run interleaved with ours, pinned and unpinned, and print ours as
    /// ratios of it.
    #[arg(long, value_name = "DIR")]
    yardstick: Option<std::path::PathBuf>,
    /// With --yardstick: where the processes run (pinned: all on CPU 0).
    #[arg(long, value_enum, default_value_t = PlacementChoice::Both)]
    placement: PlacementChoice,
    /// Where the actor runtime's calls are made from (W2, W3, W5, W6, W9): the future the bench's
    /// runtime blocks on, as the baseline's and the yardstick's are, or a task spawned on it,
    /// as an actor's own tasks are. tokio polls a woken `block_on` future only after one more
    /// poll of its I/O driver: a syscall per answer that a task does not pay. With
    /// --yardstick, `task` flatters our ratios by that syscall: it is for the low-latency
    /// goal, whose calls the mode's documentation says to make from a task.
    #[arg(long, value_enum, default_value_t = Caller::BlockOn)]
    caller: Caller,
    /// Internal: serve as a server process of this kind (started by the bench itself).
    #[arg(long, value_enum, hide = true, requires = "listen")]
    serve: Option<ServerKind>,
    /// Internal: the address a `--serve` process listens on.
    #[arg(long, hide = true)]
    listen: Option<String>,
}

/// `--transport` values.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Choice {
    Uds,
    Tcp,
    Both,
}

/// `--caller` values.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Caller {
    BlockOn,
    Task,
}

impl Caller {
    /// Where the calls are made from, for a person.
    fn describe(self) -> &'static str {
        match self {
            Self::BlockOn => "the block_on future",
            Self::Task => "a task",
        }
    }
}

/// `--placement` values.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PlacementChoice {
    Pinned,
    Unpinned,
    Both,
}

/// `--runtime` values.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FlavorChoice {
    Current,
    Multi,
    Both,
}

/// `--workloads` values (see BENCHMARKS.md).
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
enum Workload {
    #[value(name = "W1")]
    W1,
    #[value(name = "W2")]
    W2,
    #[value(name = "W3")]
    W3,
    #[value(name = "W4")]
    W4,
    #[value(name = "W4b")]
    W4b,
    #[value(name = "W5")]
    W5,
    #[value(name = "W6")]
    W6,
    #[value(name = "W9")]
    W9,
    #[value(name = "W7")]
    W7,
    #[value(name = "W8")]
    W8,
}

impl Workload {
    /// The workload's name, as in its metric keys.
    fn key(self) -> &'static str {
        match self {
            Self::W1 => "W1",
            Self::W2 => "W2",
            Self::W3 => "W3",
            Self::W4 => "W4",
            Self::W4b => "W4b",
            Self::W5 => "W5",
            Self::W6 => "W6",
            Self::W9 => "W9",
            Self::W7 => "W7",
            Self::W8 => "W8",
        }
    }
}

/// A transport between the bench and its servers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Transport {
    Uds,
    Tcp,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Self::Uds => "uds",
            Self::Tcp => "tcp",
        }
    }
}

/// A server's tokio runtime flavour.
#[derive(Clone, Copy, PartialEq, Eq)]
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
#[derive(Clone)]
struct Sizes {
    w1_sequential: u64,
    w1_concurrent: u64,
    w2_warmup: u64,
    w2_calls: u64,
    w3_callers: u64,
    w3_calls: u64,
    w4_items: u64,
    w4b_blobs: u64,
    w4b_size: u64,
    w5_rounds: u64,
    w6_cancels: u64,
    w7_children: u64,
    w7_items: u64,
}

impl Sizes {
    fn new(quick: bool) -> Self {
        let full = Self {
            w1_sequential: 20,
            w1_concurrent: 16,
            w2_warmup: 1_000,
            w2_calls: 20_000,
            w3_callers: 64,
            w3_calls: 2_000,
            w4_items: 1_000_000,
            w4b_blobs: 1_024,
            w4b_size: 1 << 20,
            w5_rounds: 100_000,
            w6_cancels: 1_000,
            w7_children: 8,
            w7_items: 250_000,
        };
        if quick {
            Self {
                w1_sequential: 5,
                w1_concurrent: 4,
                w2_warmup: 100,
                w2_calls: 2_000,
                w3_calls: 200,
                w4_items: 100_000,
                w4b_blobs: 64,
                w5_rounds: 10_000,
                w6_cancels: 100,
                w7_items: 25_000,
                ..full
            }
        } else {
            full
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
    if std::env::var_os("ACTOR_CHILD_NAME").is_some() {
        // Started by W1 as a child actor: serve `demo` as the parent asks, then exit (the
        // bench's own command line is not this process's business).
        let _ = actor::run_root(actor::RootOptions::new("bench"), || async {});
        return ExitCode::FAILURE;
    }
    let cli = Cli::parse();
    examples::init_logging();
    if let (Some(kind), Some(listen)) = (cli.serve, &cli.listen) {
        let flavor = match cli.runtime {
            FlavorChoice::Multi => Flavor::Multi,
            FlavorChoice::Current | FlavorChoice::Both => Flavor::Current,
        };
        return match server::serve(kind, listen, flavor) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bench --serve: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let began = Instant::now();
    let sizes = Sizes::new(cli.quick);
    let transports: &[Transport] = match cli.transport {
        Choice::Uds => &[Transport::Uds],
        Choice::Tcp => &[Transport::Tcp],
        Choice::Both => &[Transport::Uds, Transport::Tcp],
    };
    if cli.soak {
        return soak_all(&cli, transports);
    }
    if let Some(dir) = cli.yardstick.clone() {
        return against_yardstick(&cli, &dir, transports, &sizes, began);
    }
    let mut runs = Vec::new();
    for run in 1..=cli.runs {
        if cli.runs > 1 {
            eprintln!("\n#### run {run} of {}", cli.runs);
        }
        let (figures, outcome) = measure(&cli, &cli.workloads, transports, &sizes);
        if let Err(e) = outcome {
            print_table(&figures, 1);
            eprintln!("bench: {e}");
            return ExitCode::FAILURE;
        }
        runs.push(figures);
    }
    let figures = medians(&runs);
    for f in &figures {
        println!(
            "RESULT {} {} {}",
            f.implementation,
            f.metric,
            format_value(f.value)
        );
    }
    print_table(&figures, runs.len());
    print_ratios(&figures);
    if let Some(spin) = low_latency::spin_us() {
        low_latency::print_goal(&figures, spin, cli.caller.describe());
    }
    eprintln!("\nwall time: {:.1} s", began.elapsed().as_secs_f64());
    ExitCode::SUCCESS
}

/// `--yardstick`: per placement, `--runs` rounds, each workload on the yardstick and ours back
/// to back; medians, then
/// ours as ratios of the yardstick.
fn against_yardstick(
    cli: &Cli,
    dir: &std::path::Path,
    transports: &[Transport],
    sizes: &Sizes,
    began: Instant,
) -> ExitCode {
    use yardstick::{Placement, Yardstick};
    let yard = match Yardstick::build(dir) {
        Ok(yard) => yard,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let placements: &[Placement] = match cli.placement {
        PlacementChoice::Pinned => &[Placement::Pinned],
        PlacementChoice::Unpinned => &[Placement::Unpinned],
        PlacementChoice::Both => &[Placement::Pinned, Placement::Unpinned],
    };
    let mut all = Vec::new();
    for &placement in placements {
        if let Err(e) = placement.apply() {
            eprintln!("bench: cannot place the processes ({placement:?}): {e}");
            return ExitCode::FAILURE;
        }
        let mut runs = Vec::new();
        for run in 1..=cli.runs {
            eprintln!("\n#### {} run {run} of {}", placement.suffix(), cli.runs);
            let mut figures = Vec::new();
            for &transport in transports {
                // Workload by workload, the yardstick's and ours back to back, the first
                // alternating from run to run: this VM drifts within seconds (the busy-poll
                // floor moved from 3.3 to 6.9 µs in an hour), and a pair measured ten seconds
                // apart compared two machines.
                for unit in pairing_units(&cli.workloads) {
                    let ours_first = run % 2 == 0;
                    for ours in [ours_first, !ours_first] {
                        let measured = if ours {
                            let (measured, outcome) = measure(cli, &unit, &[transport], sizes);
                            outcome.map(|()| measured)
                        } else {
                            yard.measure(transport, &unit)
                        };
                        match measured {
                            Ok(measured) => figures.extend(measured),
                            Err(e) => {
                                eprintln!("bench: {e}");
                                return ExitCode::FAILURE;
                            }
                        }
                    }
                }
                // The low-latency goal is set against the busy-poll floor: measured beside.
                if placement == Placement::Unpinned
                    && low_latency::spin_us().is_some()
                    && cli.workloads.contains(&Workload::W2)
                {
                    match yard.measure_floor(transport) {
                        Ok(floor) => figures.push(floor),
                        Err(e) => {
                            eprintln!("bench: {e}");
                            return ExitCode::FAILURE;
                        }
                    }
                }
            }
            runs.push(figures);
        }
        for mut figure in medians(&runs) {
            figure.implementation = format!("{}-{}", figure.implementation, placement.suffix());
            all.push(figure);
        }
    }
    for f in &all {
        println!(
            "RESULT {} {} {}",
            f.implementation,
            f.metric,
            format_value(f.value)
        );
    }
    print_table(&all, cli.runs as usize);
    print_yardstick_ratios(&all, placements, cli.caller);
    if let Some(spin) = low_latency::spin_us() {
        low_latency::print_goal(&all, spin, cli.caller.describe());
    }
    eprintln!("\nwall time: {:.1} s", began.elapsed().as_secs_f64());
    ExitCode::SUCCESS
}

/// Ours as ratios of the yardstick, per placement and transport.
fn print_yardstick_ratios(figures: &[Figure], placements: &[yardstick::Placement], caller: Caller) {
    print_ratio_table(figures, "actor vs minimal", 24, |name| {
        let placement = placements
            .iter()
            .find(|p| name.ends_with(&format!("-{}", p.suffix())))
            .map_or("", |p| p.suffix());
        let transport = if name.contains("-uds") { "uds" } else { "tcp" };
        format!("minimal-{transport}-{placement}")
    });
    eprintln!(
        "(ratio = actor / minimal runtime, same transport and placement, measured in this run)"
    );
    if caller == Caller::Task {
        eprintln!(
            "(our calls made from a task, the minimal runtime's from the block_on future: one \
             syscall per answer in our favour)"
        );
    }
}

/// One run of every chosen workload: the figures measured, and whether all went well.
/// The chosen workloads in the groups the yardstick measures together (its `w4` gives W4 and
/// W4b), in the order chosen.
fn pairing_units(chosen: &[Workload]) -> Vec<Vec<Workload>> {
    let mut units: Vec<Vec<Workload>> = Vec::new();
    for &workload in chosen {
        let streams = |w: Workload| matches!(w, Workload::W4 | Workload::W4b);
        match units
            .iter_mut()
            .find(|unit| streams(workload) && unit.iter().copied().any(streams))
        {
            Some(unit) => unit.push(workload),
            None => units.push(vec![workload]),
        }
    }
    units
}

/// One run of `workloads` on `transports`: the figures measured, and whether all went well.
fn measure(
    cli: &Cli,
    workloads: &[Workload],
    transports: &[Transport],
    sizes: &Sizes,
) -> (Vec<Figure>, BoxResult<()>) {
    let mut figures = Vec::new();
    // The actor's W1 first: this program becomes an actor root, which runs its own runtime.
    if workloads.contains(&Workload::W1) {
        for &transport in transports {
            let name = actor_name(transport, Flavor::Current);
            if let Err(e) = record(
                &mut figures,
                &name,
                Workload::W1,
                w1_nursery(transport, sizes),
            ) {
                return (figures, Err(e));
            }
        }
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return (figures, Err(format!("cannot start a runtime: {e}").into())),
    };
    let outcome = runtime.block_on(run(cli, workloads, transports, sizes, &mut figures));
    (figures, outcome)
}

/// Per implementation and metric, the median over the runs (the upper one of an even count),
/// in the order first measured.
fn medians(runs: &[Vec<Figure>]) -> Vec<Figure> {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    first
        .iter()
        .map(|f| {
            let mut values: Vec<f64> = runs
                .iter()
                .filter_map(|run| find(run, &f.implementation, f.metric))
                .collect();
            values.sort_by(f64::total_cmp);
            Figure {
                implementation: f.implementation.clone(),
                metric: f.metric,
                value: values.get(values.len() / 2).copied().unwrap_or(f.value),
            }
        })
        .collect()
}

/// `--soak` on each chosen transport.
fn soak_all(cli: &Cli, transports: &[Transport]) -> ExitCode {
    let began = Instant::now();
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
    for &transport in transports {
        if let Err(e) = runtime.block_on(soak::run(transport, cli.soak_calls, cli.soak_minutes)) {
            eprintln!("bench --soak on {}: {e}", transport.name());
            return ExitCode::FAILURE;
        }
    }
    eprintln!("\nwall time: {:.1} s", began.elapsed().as_secs_f64());
    ExitCode::SUCCESS
}

/// Per transport, workload by workload: the baseline, then the actor runtime in each chosen
/// flavour, one right after the other, so that what this machine does meanwhile (another
/// tenant, a CPU migration) weighs on the figures being compared alike.
async fn run(
    cli: &Cli,
    workloads: &[Workload],
    transports: &[Transport],
    sizes: &Sizes,
    figures: &mut Vec<Figure>,
) -> BoxResult<()> {
    use Workload::*;
    let flavors: &[Flavor] = match cli.runtime {
        FlavorChoice::Current => &[Flavor::Current],
        FlavorChoice::Multi => &[Flavor::Multi],
        FlavorChoice::Both => &[Flavor::Current, Flavor::Multi],
    };
    let chosen = |w: Workload| workloads.contains(&w);
    for &transport in transports {
        let baseline = format!("baseline-{}", transport.name());
        let baseline = (!cli.no_baseline).then_some(baseline);
        let actors: Vec<(String, Flavor)> = flavors
            .iter()
            .map(|&flavor| (actor_name(transport, flavor), flavor))
            .collect();
        eprintln!("== {}", transport.name());
        if chosen(W1)
            && let Some(name) = &baseline
        {
            let measured = workloads::w1_processes::<baseline::Client>(transport, sizes);
            record(figures, name, W1, timed(measured).await)?;
        }
        let connected: Vec<Workload> = [W2, W3, W4, W4b, W5, W6, W9]
            .into_iter()
            .filter(|&w| chosen(w))
            .collect();
        if !connected.is_empty() {
            connected_workloads(
                &connected,
                transport,
                baseline.as_deref(),
                &actors,
                (sizes, cli.caller),
                figures,
            )
            .await?;
        }
        if chosen(W7) {
            if let Some(name) = &baseline {
                let measured = workloads::w7::<baseline::Client>(transport, Flavor::Current, sizes);
                record(figures, name, W7, timed(measured).await)?;
            }
            for (name, flavor) in &actors {
                let measured = workloads::w7::<Portal>(transport, *flavor, sizes);
                record(figures, name, W7, timed(measured).await)?;
            }
        }
        if chosen(W8) {
            if let Some(name) = &baseline {
                let measured = workloads::w8::<baseline::Client>(transport, Flavor::Current);
                record(figures, name, W8, timed(measured).await)?;
            }
            for (name, flavor) in &actors {
                let measured = workloads::w8::<Portal>(transport, *flavor);
                record(figures, name, W8, timed(measured).await)?;
            }
        }
    }
    Ok(())
}

/// The workloads over one connection to one server: a server per implementation, all started
/// first, then each workload on each implementation in turn.
async fn connected_workloads(
    connected: &[Workload],
    transport: Transport,
    baseline: Option<&str>,
    actors: &[(String, Flavor)],
    (sizes, caller): (&Sizes, Caller),
    figures: &mut Vec<Figure>,
) -> BoxResult<()> {
    let mut servers = Vec::new();
    let started = async {
        let base = match baseline {
            Some(name) => {
                let server = Server::start(ServerKind::Baseline, transport, Flavor::Current)
                    .await
                    .map_err(|e| format!("{name}: {e}"))?;
                let client = baseline::Client::connect(&server.addr).await?;
                servers.push(server);
                Some((name, client))
            }
            None => None,
        };
        let mut portals = Vec::new();
        for (name, flavor) in actors {
            let server = Server::start(ServerKind::Actor, transport, *flavor)
                .await
                .map_err(|e| format!("{name}: {e}"))?;
            let portal = <Portal as Target>::connect(&server.addr).await?;
            portals.push((name.as_str(), portal, server.pid));
            servers.push(server);
        }
        Ok::<_, BoxError>((base, portals))
    }
    .await;
    let outcome = match started {
        Ok((base, portals)) => {
            let measured = async {
                for &workload in connected {
                    if let Some((name, client)) = &base
                        && let Some(measured) = connected_workload(workload, client, sizes).await
                    {
                        record(figures, name, workload, measured)?;
                    }
                    for (name, portal, _) in &portals {
                        let measured = match caller {
                            Caller::BlockOn => connected_workload(workload, portal, sizes).await,
                            Caller::Task => in_task(workload, portal, sizes).await,
                        };
                        if let Some(measured) = measured {
                            record(figures, name, workload, measured)?;
                        }
                    }
                }
                // The low-latency mode's idle cost: the connections stay open, idle.
                if low_latency::spin_us().is_some() && connected.contains(&Workload::W2) {
                    for (name, _, pid) in &portals {
                        let idle = low_latency::idle_cpu_pct(&[*pid, std::process::id()]).await;
                        let measured = idle.map(|pct| vec![(low_latency::IDLE_METRIC, pct)]);
                        record(figures, name, Workload::W2, measured)?;
                    }
                }
                Ok::<_, BoxError>(())
            }
            .await;
            if let Some((_, client)) = base {
                client.close().await;
            }
            for (_, portal, _) in portals {
                Target::close(portal).await;
            }
            measured
        }
        Err(e) => Err(e),
    };
    let mut stopped = Ok(());
    for server in servers {
        let result = server.stop().await;
        if stopped.is_ok() {
            stopped = result;
        }
    }
    outcome?;
    stopped
}

/// One workload over an open connection; `None` for W6 on the baseline (it cannot cancel).
async fn connected_workload<T: Target>(
    workload: Workload,
    target: &T,
    sizes: &Sizes,
) -> Option<BoxResult<Measured>> {
    use Workload::*;
    Some(match (workload, target.portal()) {
        (W2, _) => timed(workloads::w2(target, sizes)).await,
        (W3, _) => timed(workloads::w3(target, sizes)).await,
        (W4, _) => timed(workloads::w4(target, sizes)).await,
        (W4b, _) => timed(workloads::w4b(target, sizes)).await,
        (W5, _) => timed(workloads::w5(target, sizes)).await,
        (W6, Some(portal)) => timed(workloads::w6(portal, sizes)).await,
        (W9, Some(portal)) => timed(workloads::w9(portal, sizes)).await,
        _ => return None,
    })
}

/// [`connected_workload`] on the actor runtime, its calls made from a task of their own
/// (`--caller task`); W4 and W4b stay on the `block_on` future (one-way streams, whose
/// throughput the caller's place barely moves).
async fn in_task(
    workload: Workload,
    portal: &Portal,
    sizes: &Sizes,
) -> Option<BoxResult<Measured>> {
    use Workload::*;
    let (portal, sizes) = (portal.clone(), sizes.clone());
    let spawned = match workload {
        W2 => tokio::spawn(async move { timed(workloads::w2(&portal, &sizes)).await }),
        W3 => tokio::spawn(async move { timed(workloads::w3(&portal, &sizes)).await }),
        W5 => tokio::spawn(async move { timed(workloads::w5(&portal, &sizes)).await }),
        W6 => tokio::spawn(async move { timed(workloads::w6(&portal, &sizes)).await }),
        W9 => tokio::spawn(async move { timed(workloads::w9(&portal, &sizes)).await }),
        // One-way streams: throughput, which the caller's place barely moves.
        W4 | W4b => return connected_workload(workload, &portal, &sizes).await,
        W1 | W7 | W8 => return None,
    };
    Some(match spawned.await {
        Ok(measured) => measured,
        Err(e) => Err(format!("the workload's task failed: {e}").into()),
    })
}

/// Keeps a workload's figures (printed as `RESULT` lines and tables once all runs are done),
/// or fails with an error saying which workload on which implementation failed.
fn record(
    figures: &mut Vec<Figure>,
    implementation: &str,
    workload: Workload,
    measured: BoxResult<Measured>,
) -> BoxResult<()> {
    let measured = measured.map_err(|e| format!("{} on {implementation}: {e}", workload.key()))?;
    for (metric, value) in measured {
        figures.push(Figure {
            implementation: implementation.to_owned(),
            metric,
            value,
        });
    }
    Ok(())
}

/// Runs a workload with [`WORKLOAD_TIMEOUT`], so a hang becomes an error.
///
/// The deadline is kept by a thread of its own, not by a tokio timer: a pending timer makes
/// every park of the runtime being measured dearer (tokio consults its timer wheel each
/// time: about 600 instructions per W5 round trip on this side), and the minimal runtime
/// measured beside ours runs without one.
async fn timed(workload: impl Future<Output = BoxResult<Measured>>) -> BoxResult<Measured> {
    let (expired, on_expiry) = tokio::sync::oneshot::channel::<()>();
    let (finished, on_finish) = std::sync::mpsc::channel::<()>();
    // Not joined: it ends on its own as soon as `finished` is dropped, and joining would
    // block this runtime's thread.
    std::thread::Builder::new()
        .name("bench-deadline".into())
        .spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                on_finish.recv_timeout(WORKLOAD_TIMEOUT)
            {
                let _ = expired.send(());
            }
        })
        .map_err(|e| format!("cannot start the deadline thread: {e}"))?;
    let result = tokio::select! {
        biased;
        result = workload => result,
        Ok(()) = on_expiry => {
            Err(format!("timed out after {} s (hang?)", WORKLOAD_TIMEOUT.as_secs()).into())
        }
    };
    drop(finished);
    result
}

fn actor_name(transport: Transport, flavor: Flavor) -> String {
    let suffix = match flavor {
        Flavor::Current => "",
        Flavor::Multi => "-mt",
    };
    format!("actor-{}{suffix}", transport.name())
}

/// The actor's W1: children started through a nursery, this program being the root: the
/// median of sequential starts (each until one call returned), and several started at once.
/// Also reports (on stderr) how long closing the nursery of concurrent children takes.
fn w1_nursery(transport: Transport, sizes: &Sizes) -> BoxResult<Measured> {
    eprintln!(
        "== {} (W1: this program as the root)",
        actor_name(transport, Flavor::Current)
    );
    let listen = match transport {
        Transport::Uds => actor::Addr::unix(
            std::env::temp_dir().join(format!("actor-bench-root-{}.sock", std::process::id())),
        ),
        Transport::Tcp => actor::Addr::tcp("127.0.0.1", 0),
    };
    let options = actor::RootOptions::new("bench")
        .own_registrar()
        .listen(listen);
    let (sequential, concurrent) = (sizes.w1_sequential, sizes.w1_concurrent);
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
        let median = samples
            .get(samples.len() / 2)
            .copied()
            .unwrap_or(Duration::ZERO);
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
        for (i, echoed) in (0..).zip(futures::future::join_all(starts).await) {
            if echoed? != i {
                return Err(actor::Error::Usage(
                    "a concurrent child echoed wrongly".into(),
                ));
            }
        }
        let wall = started.elapsed();
        let closing = Instant::now();
        nursery.close().await?;
        eprintln!(
            "   teardown of {concurrent} children (nursery close): {:.1} ms",
            closing.elapsed().as_secs_f64() * 1e3
        );
        Ok::<_, actor::Error>((median, wall))
    })??;
    let (median, wall) = measured;
    Ok(vec![
        ("W1.spawn_median_ms", median.as_secs_f64() * 1e3),
        ("W1.spawn16_wall_ms", wall.as_secs_f64() * 1e3),
    ])
}

fn format_value(value: f64) -> String {
    if value >= 1000.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.3}")
    }
}

fn find(figures: &[Figure], implementation: &str, metric: &str) -> Option<f64> {
    figures
        .iter()
        .find(|f| f.implementation == implementation && f.metric == metric)
        .map(|f| f.value)
}

/// Implementations measured: per transport, the baseline, then the actor's flavours.
fn implementations(figures: &[Figure]) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for f in figures {
        if !names.contains(&f.implementation.as_str()) {
            names.push(&f.implementation);
        }
    }
    names.sort_by_key(|name| {
        (
            !name.contains("-uds"),
            !name.starts_with("baseline-"),
            name.ends_with("-mt"),
        )
    });
    names
}

/// Metrics as rows, implementations as columns, in the order measured.
fn print_table(figures: &[Figure], runs: usize) {
    let names = implementations(figures);
    let metrics = TARGETS.iter().map(|&(metric, _)| metric);
    if runs > 1 {
        eprintln!("\nmedians of {runs} runs:");
    }
    let mut header = format!("{:<22}", "metric");
    for name in &names {
        header.push_str(&format!(" {name:>13}"));
    }
    eprintln!("\n{header}");
    for metric in metrics {
        if !figures.iter().any(|f| f.metric == metric) {
            continue;
        }
        let mut line = format!("{metric:<22}");
        for name in &names {
            let cell = find(figures, name, metric).map_or_else(|| "-".into(), human);
            line.push_str(&format!(" {cell:>13}"));
        }
        eprintln!("{line}");
    }
}

/// A metric's target (BENCHMARKS.md, "Targets").
#[derive(Clone, Copy)]
enum Goal {
    /// Ratio to the baseline at most this.
    AtMost(f64),
    /// Ratio to the baseline at least this.
    AtLeast(f64),
    /// No target: the ratio is shown for information.
    Info,
    /// W6: at most this many round trips (the implementation's own W2 p50).
    RoundTrips(f64),
    /// W8: at most this many KiB.
    Kib(f64),
    /// The low-latency mode's idle cost: under this many % of one CPU.
    Percent(f64),
}

impl Goal {
    /// The target as a table shows it.
    fn describe(self) -> String {
        match self {
            Self::AtMost(x) => format!("<={x}x"),
            Self::AtLeast(x) => format!(">={x}x"),
            Self::Info => String::new(),
            Self::RoundTrips(x) => format!("<={x} RTT"),
            Self::Kib(x) => format!("<={} MiB", x / 1024.0),
            Self::Percent(x) => format!("<{x}%"),
        }
    }
}

const TARGETS: &[(&str, Goal)] = &[
    ("W1.spawn_median_ms", Goal::AtMost(2.0)),
    ("W1.spawn16_wall_ms", Goal::AtMost(2.0)),
    ("W2.p50_us", Goal::AtMost(1.1)),
    ("W2.p99_us", Goal::AtMost(1.5)),
    ("W2.calls_per_s", Goal::AtLeast(0.9)),
    ("W3.calls_per_s", Goal::AtLeast(0.8)),
    ("W4.items_per_s", Goal::AtLeast(0.8)),
    ("W4b.GB_per_s", Goal::AtLeast(0.9)),
    ("W5.rt_per_s", Goal::AtLeast(0.9)),
    ("W6.cancel_p50_us", Goal::RoundTrips(3.0)),
    ("W9.busy_p50_us", Goal::RoundTrips(1.5)),
    ("W9.busy_p99_us", Goal::Info),
    ("W7.fanin_items_per_s", Goal::Info),
    ("W8.rss_idle_child_kib", Goal::Kib(8192.0)),
    (
        low_latency::IDLE_METRIC,
        Goal::Percent(low_latency::IDLE_CPU_PCT),
    ),
];

/// Each actor figure against its target: a ratio to the baseline on the same transport
/// (W6 in round trips of the same implementation's W2 p50; W8 in MiB).
fn print_ratios(figures: &[Figure]) {
    print_ratio_table(figures, "actor vs baseline", 15, |name| {
        let base = name.replacen("actor-", "baseline-", 1);
        base.trim_end_matches("-mt").to_owned()
    });
    eprintln!(
        "(ratio = actor / baseline on the same transport; the baseline server runs on a \
         current-thread runtime, also for the -mt columns)"
    );
}

/// A table of every actor implementation's figures as ratios of the one `base_of` names,
/// checked against the targets.
fn print_ratio_table(
    figures: &[Figure],
    title: &str,
    width: usize,
    base_of: impl Fn(&str) -> String,
) {
    let actors: Vec<&str> = implementations(figures)
        .into_iter()
        .filter(|n| n.starts_with("actor-"))
        .collect();
    if actors.is_empty() {
        return;
    }
    let mut header = format!("{title:<22} {:>8}", "target");
    for name in &actors {
        header.push_str(&format!(" {name:>width$}"));
    }
    eprintln!("\n{header}");
    for &(metric, target) in TARGETS {
        if !actors.iter().any(|a| find(figures, a, metric).is_some()) {
            continue;
        }
        let mut line = format!("{metric:<22} {:>8}", target.describe());
        for &name in &actors {
            let cell = ratio_cell(figures, name, &base_of(name), metric, target);
            line.push_str(&format!(" {cell:>width$}"));
        }
        eprintln!("{line}");
    }
}

fn ratio_cell(figures: &[Figure], name: &str, base: &str, metric: &str, target: Goal) -> String {
    let Some(value) = find(figures, name, metric) else {
        return "-".into();
    };
    let verdict = |ok: bool| if ok { "ok" } else { "MISS" };
    match target {
        Goal::RoundTrips(max) => match find(figures, name, "W2.p50_us") {
            Some(rtt) if rtt > 0.0 => {
                let rtts = value / rtt;
                format!("{rtts:.2} RTT {}", verdict(rtts <= max))
            }
            _ => "-".into(),
        },
        Goal::Kib(max) => format!("{:.1} MiB {}", value / 1024.0, verdict(value <= max)),
        Goal::Percent(max) => format!("{value:.2}% {}", verdict(value < max)),
        _ => match find(figures, base, metric) {
            Some(base) if base > 0.0 => {
                let ratio = value / base;
                match target {
                    Goal::AtMost(max) => format!("{ratio:.2}x {}", verdict(ratio <= max)),
                    Goal::AtLeast(min) => format!("{ratio:.2}x {}", verdict(ratio >= min)),
                    _ => format!("{ratio:.2}x"),
                }
            }
            _ => "-".into(),
        },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_streams_pair_as_one_unit_and_the_rest_alone() {
        use Workload::*;
        assert_eq!(
            pairing_units(&[W1, W4, W2, W4b, W5]),
            vec![vec![W1], vec![W4, W4b], vec![W2], vec![W5]]
        );
        assert_eq!(pairing_units(&[W4b]), vec![vec![W4b]]);
    }
}
