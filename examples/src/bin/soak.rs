//! A soak run: a real actor tree kept busy for a long time, to see that nothing leaks or wears
//! out.
//!
//! ```text
//! cargo run --release -p examples --bin soak -- --duration 20m [--progress] [--children N]
//! ```
//!
//! The root starts `--children` child actor processes (default 2; each in a nursery of its own,
//! so one can be closed and replaced while the others serve). For the whole `--duration`
//! (`90s`, `20m`, `1h`, `500ms`; a bare number is seconds) it keeps calling each child, from
//! concurrent tasks: request/response calls (`add`), streams (`count`, read to their end),
//! contexts (`echo_ctx`, items echoed both ways, then the result), and every
//! `--cancel-every` (default 250ms) a long call it cancels (in turn: a call that never
//! returns, an endless stream after a few items, a context waiting for its cancellation),
//! checking each cancel is acknowledged. Every `--restart-every` (default 2s) it closes one
//! child (in turn) and starts a new one in its place. Every answer is checked; a wrong answer,
//! a failed call, a failed cancel, a failed restart or a call hanging past 30 s is an error.
//!
//! At the end (and every minute with `--progress`, then with the current RSS as the end
//! figures, after an `elapsed_s: N` line) it prints one line per figure, for scripts:
//!
//! ```text
//! calls: N                     calls of the three kinds that completed, cancelled ones included
//! errors: N                    unexpected errors (cancellations asked for are not errors)
//! cancellations: N             long calls cancelled and acknowledged
//! restarts: N                  children closed and started anew
//! rss_start_kib: N             the root's VmRSS after the warm-up
//! rss_end_kib: N               the root's VmRSS at the end
//! children_rss_start_kib: N    the children's VmRSS summed, after the warm-up
//! children_rss_end_kib: N      the same at the end
//! ```
//!
//! The warm-up is 10 s, or half the duration if that is shorter. Unexpected errors are also
//! described on stderr as they happen (the first 50). Exits 0 only if `errors` is 0.
//!
//! Children are this program re-launched: for a long run, soak a copy of the binary
//! (`cp target/release/soak /tmp/`) if a build may replace it meanwhile.

use std::{
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use actor::{Context, Nursery, Portal};
use clap::Parser;
use futures::{Stream, StreamExt, TryStreamExt};
use tokio::{sync::RwLock, task::JoinSet, time::Instant};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(about = "Keeps an actor tree busy with calls, cancellations and restarts")]
struct Cli {
    /// How long to run: 90s, 20m, 1h, 500ms (a bare number is seconds).
    #[arg(long, value_parser = parse_duration, default_value = "20m")]
    duration: Duration,
    /// Print the figures every minute too.
    #[arg(long)]
    progress: bool,
    /// Child actor processes (at least 2).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(2..=16))]
    children: u64,
    /// How often a long call is started and cancelled.
    #[arg(long, value_parser = parse_duration, default_value = "250ms")]
    cancel_every: Duration,
    /// How often a child is closed and replaced.
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    restart_every: Duration,
}

/// `90s`, `20m`, `1h`, `500ms`, or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a number with a unit, e.g. 90s or 20m"))?;
    let duration = match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (expected ms, s, m or h)"
            ));
        }
    };
    if duration.is_zero() {
        return Err(format!("{text:?}: must be more than zero"));
    }
    Ok(duration)
}

/// The longest warm-up before the start figures are taken.
const WARMUP: Duration = Duration::from_secs(10);
/// How often `--progress` prints.
const PROGRESS_EVERY: Duration = Duration::from_secs(60);
/// A call (or a cancel, or a restart) taking longer than this is an error: something hangs.
const CALL_BOUND: Duration = Duration::from_secs(30);
/// How many errors are described on stderr.
const ERRORS_SHOWN: u64 = 50;
/// Items per `count` stream, and per context.
const STREAM_ITEMS: u64 = 100;
const CONTEXT_ITEMS: u64 = 10;

// ---- What the children serve ------------------------------------------------------------

/// Request/response: `a + b`.
#[actor::remote(ns = "soak")]
async fn add(a: i64, b: i64) -> i64 {
    a.wrapping_add(b)
}

/// Stream: `0..n`.
#[actor::remote(ns = "soak")]
fn count(n: u64) -> impl Stream<Item = u64> {
    futures::stream::iter(0..n)
}

/// An endless stream (flow control paces it), for cancelling.
#[actor::remote(ns = "soak")]
fn endless() -> impl Stream<Item = u64> {
    futures::stream::iter(0_u64..)
}

/// Context: `started(start)`, echoes its stream, returns `"done"` once the caller ends it.
#[actor::remote(ns = "soak", started = i64)]
async fn echo_ctx(ctx: Context, start: i64) -> actor::Result<String> {
    ctx.started(start).await?;
    let mut stream = ctx.open_stream::<u64>().await?;
    while let Some(item) = stream.next().await {
        stream.send(item?).await?;
    }
    Ok("done".into())
}

/// Never returns: runs until cancelled.
#[actor::remote(ns = "soak")]
async fn sleep_forever() {
    std::future::pending::<()>().await
}

/// Context: `started(true)`, then waits for its cancellation.
#[actor::remote(ns = "soak", started = bool)]
async fn wait_ctx(ctx: Context) -> actor::Result<()> {
    ctx.started(true).await?;
    ctx.cancelled().await;
    Ok(())
}

/// This actor's VmRSS in KiB.
#[actor::remote(ns = "soak")]
async fn rss_kib() -> actor::Result<u64> {
    vm_rss_kib().map_err(|e| actor::Error::raise("OSError", e))
}

/// This process's VmRSS in KiB, from `/proc/self/status`.
fn vm_rss_kib() -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("/proc/self/status: {e}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "/proc/self/status has no VmRSS line".to_owned())
}

// ---- The root ---------------------------------------------------------------------------

#[actor::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli).await {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soak: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The running figures.
#[derive(Default)]
struct Stats {
    calls: AtomicU64,
    errors: AtomicU64,
    cancellations: AtomicU64,
    restarts: AtomicU64,
}

impl Stats {
    fn call(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an unexpected error and describes it on stderr (the first [`ERRORS_SHOWN`]).
    fn error(&self, what: &str, detail: impl std::fmt::Display) {
        let n = self.errors.fetch_add(1, Ordering::Relaxed) + 1;
        if n <= ERRORS_SHOWN {
            eprintln!("soak: error {n}: {what}: {detail}");
        } else if n == ERRORS_SHOWN + 1 {
            eprintln!("soak: more errors; only counting them from now on");
        }
    }
}

/// One child in its own nursery, so it can be closed and replaced alone.
struct Child {
    nursery: Nursery,
    portal: Portal,
}

/// A place in the tree for one child; `None` while a restart failed.
struct Slot {
    name: String,
    child: RwLock<Option<Child>>,
}

impl Slot {
    /// A portal to the child, held with the slot's read lock (a restart waits for it).
    async fn portal(&self) -> Option<(tokio::sync::RwLockReadGuard<'_, Option<Child>>, Portal)> {
        let guard = self.child.read().await;
        let portal = guard.as_ref()?.portal.clone();
        Some((guard, portal))
    }
}

async fn start_child(name: &str) -> actor::Result<Child> {
    let nursery = actor::open_nursery().await?;
    let portal = nursery.start_actor(name).enable("soak").await?;
    Ok(Child { nursery, portal })
}

/// Runs the soak; returns the number of errors.
async fn run(cli: &Cli) -> actor::Result<u64> {
    let started = Instant::now();
    let deadline = started + cli.duration;
    let stats = Arc::new(Stats::default());
    let mut slots = Vec::new();
    for i in 1..=cli.children {
        let name = format!("child-{i}");
        let child = start_child(&name).await?;
        slots.push(Arc::new(Slot {
            name,
            child: RwLock::new(Some(child)),
        }));
    }

    let stop = CancellationToken::new();
    let mut workers = JoinSet::new();
    for slot in &slots {
        workers.spawn(work(slot.clone(), stats.clone(), stop.clone(), requests));
        workers.spawn(work(slot.clone(), stats.clone(), stop.clone(), streams));
        workers.spawn(work(slot.clone(), stats.clone(), stop.clone(), contexts));
    }
    workers.spawn(cancellations(
        slots.clone(),
        stats.clone(),
        stop.clone(),
        cli.cancel_every,
    ));
    workers.spawn(restarts(
        slots.clone(),
        stats.clone(),
        stop.clone(),
        cli.restart_every,
    ));

    tokio::time::sleep_until(started + WARMUP.min(cli.duration / 2)).await;
    let rss_start = root_rss(&stats);
    let children_rss_start = children_rss(&slots, &stats).await;
    if cli.progress {
        let mut next = started + PROGRESS_EVERY;
        while next < deadline {
            tokio::time::sleep_until(next).await;
            let figures = Figures {
                rss_start,
                rss_end: root_rss(&stats),
                children_rss_start,
                children_rss_end: children_rss(&slots, &stats).await,
            };
            println!("elapsed_s: {}", started.elapsed().as_secs());
            figures.print(&stats);
            next += PROGRESS_EVERY;
        }
    }
    tokio::time::sleep_until(deadline).await;

    // Stop the callers (each finishes its call in hand), measure, then close the tree.
    stop.cancel();
    let joined = async { while workers.join_next().await.is_some() {} };
    if tokio::time::timeout(CALL_BOUND, joined).await.is_err() {
        stats.error("stopping", "callers still busy after the call bound");
        workers.abort_all();
    }
    let figures = Figures {
        rss_start,
        rss_end: root_rss(&stats),
        children_rss_start,
        children_rss_end: children_rss(&slots, &stats).await,
    };
    for slot in &slots {
        if let Some(child) = slot.child.write().await.take() {
            drop(child.portal);
            if let Err(e) = child.nursery.close().await {
                stats.error(&format!("closing {}", slot.name), e);
            }
        }
    }
    println!("elapsed_s: {}", started.elapsed().as_secs());
    figures.print(&stats);
    Ok(stats.errors.load(Ordering::Relaxed))
}

/// Memory figures of one report.
struct Figures {
    rss_start: u64,
    rss_end: u64,
    children_rss_start: u64,
    children_rss_end: u64,
}

impl Figures {
    fn print(&self, stats: &Stats) {
        println!("calls: {}", stats.calls.load(Ordering::Relaxed));
        println!("errors: {}", stats.errors.load(Ordering::Relaxed));
        println!(
            "cancellations: {}",
            stats.cancellations.load(Ordering::Relaxed)
        );
        println!("restarts: {}", stats.restarts.load(Ordering::Relaxed));
        println!("rss_start_kib: {}", self.rss_start);
        println!("rss_end_kib: {}", self.rss_end);
        println!("children_rss_start_kib: {}", self.children_rss_start);
        println!("children_rss_end_kib: {}", self.children_rss_end);
    }
}

fn root_rss(stats: &Stats) -> u64 {
    vm_rss_kib().unwrap_or_else(|e| {
        stats.error("reading the root's RSS", e);
        0
    })
}

/// The children's VmRSS, summed (a slot without a child counts 0).
async fn children_rss(slots: &[Arc<Slot>], stats: &Stats) -> u64 {
    let mut sum = 0;
    for slot in slots {
        let Some((_guard, portal)) = slot.portal().await else {
            continue;
        };
        match bounded(portal.run(rss_kib {})).await {
            Ok(kib) => sum += kib,
            Err(e) => stats.error(&format!("reading {}'s RSS", slot.name), e),
        }
    }
    sum
}

/// Awaits `fut` for at most [`CALL_BOUND`].
async fn bounded<T>(fut: impl Future<Output = actor::Result<T>>) -> Result<T, String> {
    match tokio::time::timeout(CALL_BOUND, fut).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {CALL_BOUND:?}")),
    }
}

/// One kind of call, made once: `Ok` when its answer was right.
type CallFn = fn(Portal, u64) -> futures::future::BoxFuture<'static, Result<(), String>>;

/// Makes calls of one kind to one slot's child until stopped.
async fn work(slot: Arc<Slot>, stats: Arc<Stats>, stop: CancellationToken, kind: CallFn) {
    let mut i = 0_u64;
    while !stop.is_cancelled() {
        i += 1;
        let Some((_guard, portal)) = slot.portal().await else {
            // A restart failed: the restarter tries again; wait for it.
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
                () = stop.cancelled() => {}
            }
            continue;
        };
        match tokio::time::timeout(CALL_BOUND, kind(portal, i)).await {
            Ok(Ok(())) => stats.call(),
            Ok(Err(e)) => stats.error(&slot.name, e),
            Err(_) => stats.error(&slot.name, format!("a call hung past {CALL_BOUND:?}")),
        }
        // Let the slot's restarter in between calls, and the other tasks run.
        tokio::task::yield_now().await;
    }
}

/// `add(i, 1)` must be `i + 1`.
fn requests(portal: Portal, i: u64) -> futures::future::BoxFuture<'static, Result<(), String>> {
    Box::pin(async move {
        let a = i64::try_from(i).unwrap_or(0);
        let sum = portal
            .run(add { a, b: 1 })
            .await
            .map_err(|e| format!("add: {e}"))?;
        if sum != a + 1 {
            return Err(format!("add({a}, 1) returned {sum}"));
        }
        Ok(())
    })
}

/// `count(n)` must stream `0..n`.
fn streams(portal: Portal, _: u64) -> futures::future::BoxFuture<'static, Result<(), String>> {
    Box::pin(async move {
        let items: Vec<u64> = portal
            .open_stream_from(count { n: STREAM_ITEMS })
            .await
            .map_err(|e| format!("count: {e}"))?
            .try_collect()
            .await
            .map_err(|e| format!("count's stream: {e}"))?;
        if items.iter().copied().ne(0..STREAM_ITEMS) {
            return Err(format!(
                "count({STREAM_ITEMS}) streamed {} items, not 0..{STREAM_ITEMS}",
                items.len()
            ));
        }
        Ok(())
    })
}

/// `echo_ctx(i)` must start with `i`, echo every item, and return `"done"`.
fn contexts(portal: Portal, i: u64) -> futures::future::BoxFuture<'static, Result<(), String>> {
    Box::pin(async move {
        let start = i64::try_from(i).unwrap_or(0);
        let (ctx, first) = portal
            .open_context(echo_ctx { start })
            .await
            .map_err(|e| format!("echo_ctx: {e}"))?;
        if first != start {
            return Err(format!("echo_ctx({start}) started with {first}"));
        }
        let mut stream = ctx
            .open_stream::<u64>()
            .await
            .map_err(|e| format!("echo_ctx's stream: {e}"))?;
        for item in 0..CONTEXT_ITEMS {
            stream
                .send(item)
                .await
                .map_err(|e| format!("echo_ctx send: {e}"))?;
            match stream.next().await {
                Some(Ok(back)) if back == item => {}
                Some(Ok(back)) => return Err(format!("echo_ctx echoed {back} for {item}")),
                Some(Err(e)) => return Err(format!("echo_ctx receive: {e}")),
                None => return Err(format!("echo_ctx's stream ended before item {item}")),
            }
        }
        let done: String = ctx
            .result()
            .await
            .map_err(|e| format!("echo_ctx result: {e}"))?;
        if done != "done" {
            return Err(format!("echo_ctx returned {done:?}"));
        }
        Ok(())
    })
}

/// Every `every`, starts a long call on the next child and cancels it: in turn a call that
/// never returns, an endless stream after a few items, and a context waiting for its
/// cancellation. Each cancel must be acknowledged (the remote task ended).
async fn cancellations(
    slots: Vec<Arc<Slot>>,
    stats: Arc<Stats>,
    stop: CancellationToken,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n = 0_usize;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let slot = &slots[n % slots.len()];
        let kind = n / slots.len() % 3;
        n += 1;
        let Some((_guard, portal)) = slot.portal().await else {
            continue;
        };
        let cancelled = async {
            match kind {
                0 => {
                    let call = portal
                        .call(sleep_forever {})
                        .await
                        .map_err(|e| format!("sleep_forever: {e}"))?;
                    // Let it start (cancelling a call not yet started is valid too).
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    call.cancel()
                        .await
                        .map_err(|e| format!("cancelling sleep_forever: {e}"))
                }
                1 => {
                    let mut stream = portal
                        .open_stream_from(endless {})
                        .await
                        .map_err(|e| format!("endless: {e}"))?;
                    for expected in 0..5 {
                        match stream.next().await {
                            Some(Ok(item)) if item == expected => {}
                            other => return Err(format!("endless item {expected}: {other:?}")),
                        }
                    }
                    stream
                        .cancel()
                        .await
                        .map_err(|e| format!("cancelling endless: {e}"))
                }
                _ => {
                    let (ctx, started) = portal
                        .open_context(wait_ctx {})
                        .await
                        .map_err(|e| format!("wait_ctx: {e}"))?;
                    if !started {
                        return Err("wait_ctx started with false".to_owned());
                    }
                    ctx.cancel()
                        .await
                        .map_err(|e| format!("cancelling wait_ctx: {e}"))
                }
            }
        };
        match tokio::time::timeout(CALL_BOUND, cancelled).await {
            Ok(Ok(())) => {
                stats.call();
                stats.cancellations.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Err(e)) => stats.error(&slot.name, e),
            Err(_) => stats.error(
                &slot.name,
                format!("a cancellation hung past {CALL_BOUND:?}"),
            ),
        }
    }
}

/// Children are this program re-launched: if a build replaced or removed its binary while it
/// runs, no child can start any more. Says so, for the error that follows.
fn binary_gone_hint() -> &'static str {
    let gone = std::fs::read_link("/proc/self/exe")
        .is_ok_and(|exe| exe.to_string_lossy().ends_with(" (deleted)"));
    if gone {
        " (this program's binary was replaced or removed while it ran; soak a copy of it)"
    } else {
        ""
    }
}

/// Every `every`, closes the next child (after the calls in hand) and starts a new one.
async fn restarts(
    slots: Vec<Arc<Slot>>,
    stats: Arc<Stats>,
    stop: CancellationToken,
    every: Duration,
) {
    let mut tick = tokio::time::interval_at(Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n = 0_usize;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let slot = &slots[n % slots.len()];
        n += 1;
        let mut guard = slot.child.write().await;
        let restart = async {
            if let Some(child) = guard.take() {
                drop(child.portal);
                child
                    .nursery
                    .close()
                    .await
                    .map_err(|e| format!("closing: {e}"))?;
            }
            let child = start_child(&slot.name)
                .await
                .map_err(|e| format!("starting: {e}{}", binary_gone_hint()))?;
            *guard = Some(child);
            Ok::<(), String>(())
        };
        match tokio::time::timeout(CALL_BOUND, restart).await {
            Ok(Ok(())) => {
                stats.restarts.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Err(e)) => stats.error(&format!("restarting {}", slot.name), e),
            Err(_) => stats.error(
                &format!("restarting {}", slot.name),
                format!("no new child within {CALL_BOUND:?}"),
            ),
        }
    }
}
