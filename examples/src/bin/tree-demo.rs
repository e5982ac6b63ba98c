//! The main demo: a small actor tree in real processes.
//!
//! ```text
//! root
//! └── aggregator
//!     ├── worker-1
//!     └── worker-2
//! ```
//!
//! The root starts an aggregator; the aggregator starts two workers and merges their streams
//! into one that the root receives; then the root sees a remote error arrive with its remote
//! trace, cancels a stream mid-way, and closes the tree. Every actor is its own process
//! (this same binary, re-launched in child mode by `#[actor::main]`).
//!
//! `--hold`: once the workers stream, prints `HOLDING` and waits for a line on stdin (the
//! aggregator waits too, mid-call), so `actor tree` can look at the whole tree at work. The run is one `tree-demo` span: built
//! with `--features otel` (or `otlp`), `ACTOR_TRACE_DIR` (or `OTEL_EXPORTER_OTLP_ENDPOINT`)
//! shows it as one trace across the four processes.

use std::time::{Duration, Instant};

use actor::Context;
use futures::{Stream, StreamExt};

/// One line of the story, with the time since the start.
fn say(started: Instant, text: impl std::fmt::Display) {
    println!("[{:>6.1} ms] {text}", started.elapsed().as_secs_f64() * 1e3);
}

/// Worker: the numbers `from..to`.
#[actor::remote(ns = "tree")]
fn numbers(from: u64, to: u64) -> impl Stream<Item = u64> {
    futures::stream::iter(from..to)
}

/// Worker: a tick every 10 ms, forever.
#[actor::remote(ns = "tree")]
fn ticks() -> impl Stream<Item = u64> {
    futures::stream::unfold(0u64, |n| async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        Some((n, n + 1))
    })
}

/// `x * x`.
#[actor::remote(ns = "tree")]
async fn square(x: i64) -> i64 {
    x * x
}

/// Parses `key=number`; anything else is a `ValueError`.
#[actor::remote(ns = "tree")]
async fn parse_setting(text: String) -> actor::Result<i64> {
    let (_, value) = text
        .split_once('=')
        .ok_or_else(|| actor::Error::raise("ValueError", format!("{text:?} has no '='")))?;
    value.trim().parse().map_err(|e| {
        actor::Error::raise(
            "ValueError",
            format!("{text:?}: the value is not a number ({e})"),
        )
    })
}

/// How many `tree` calls run in this actor, not counting this one.
#[actor::remote(ns = "tree")]
async fn running() -> u64 {
    actor::Actor::current()
        .map(|me| me.running_calls("tree").saturating_sub(1))
        .unwrap_or(0)
}

/// The aggregator: starts two workers, reports them in `started`, then streams the merge of
/// their two overlapping ranges, each number once and in order; returns how many it sent.
/// With `hold`, waits for one item from the root before it merges.
#[actor::remote(ns = "tree", started = (u32, (u32, u32)))]
async fn aggregate(ctx: Context, n: u64, hold: bool) -> actor::Result<u64> {
    let nursery = actor::open_nursery().await?;
    let one = nursery.start_actor("worker-1").enable("tree").await?;
    let two = nursery.start_actor("worker-2").enable("tree").await?;
    let pids = (one.run(pid {}).await?, two.run(pid {}).await?);
    ctx.started((std::process::id(), pids)).await?;
    // worker-1 has 0..2n/3, worker-2 has n/3..n: the middle third arrives twice.
    let mut low = one
        .open_stream_from(numbers {
            from: 0,
            to: 2 * n / 3,
        })
        .await?
        .peekable();
    let mut high = two
        .open_stream_from(numbers { from: n / 3, to: n })
        .await?
        .peekable();
    let mut out = ctx.open_stream::<u64>().await?;
    if hold {
        // The root holds the tree here, at work, until it sends one item: go.
        let _ = out.next().await;
    }
    let (mut last, mut sent) = (None, 0);
    loop {
        let next = match (
            std::pin::Pin::new(&mut low).peek().await,
            std::pin::Pin::new(&mut high).peek().await,
        ) {
            (Some(Ok(a)), Some(Ok(b))) if a <= b => low.next().await,
            (Some(_), None) => low.next().await,
            (_, Some(_)) => high.next().await,
            (None, None) => break,
        };
        let Some(item) = next else { break };
        let item = item?;
        if last != Some(item) {
            out.send(item).await?;
            last = Some(item);
            sent += 1;
        }
    }
    drop(out);
    nursery.close().await?;
    Ok(sent)
}

/// This actor's process id.
#[actor::remote(ns = "tree")]
async fn pid() -> u32 {
    std::process::id()
}

#[actor::main]
async fn main() -> actor::Result<()> {
    use tracing::Instrument;
    let hold = std::env::args().skip(1).any(|arg| arg == "--hold");
    demo(hold)
        .instrument(tracing::info_span!("tree-demo"))
        .await
}

async fn demo(hold: bool) -> actor::Result<()> {
    let t = Instant::now();
    say(
        t,
        format!("root (pid {}) starts the aggregator", std::process::id()),
    );
    let nursery = actor::open_nursery().await?;
    let aggregator = nursery.start_actor("aggregator").enable("tree").await?;

    say(t, "call: aggregator.square(x=12)");
    let squared = aggregator.run(square { x: 12 }).await?;
    say(t, format!("  -> {squared}"));

    say(
        t,
        "context: aggregator.aggregate(n=1000) starts two workers and merges their streams",
    );
    let (ctx, (aggregator_pid, (one, two))): (_, (u32, (u32, u32))) =
        aggregator.open_context(aggregate { n: 1000, hold }).await?;
    println!();
    println!("    root        pid {}", std::process::id());
    println!("    └── aggregator  pid {aggregator_pid}");
    println!("        ├── worker-1  pid {one}   streams 0..666");
    println!("        └── worker-2  pid {two}   streams 333..1000");
    println!();
    let received: Vec<u64> = {
        let mut stream = ctx.open_stream::<u64>().await?;
        if hold {
            examples::hold("the aggregator, mid-call, and its two workers").await?;
            stream.send(0).await?;
        }
        let mut received = Vec::new();
        while let Some(item) = stream.next().await {
            received.push(item?);
        }
        received
    };
    let sent = ctx.result::<u64>().await?;
    let exact = received == (0..1000).collect::<Vec<_>>();
    say(
        t,
        format!(
            "  -> received {} numbers, 0..999 each exactly once: {exact}; the aggregator sent {sent} and closed its workers",
            received.len()
        ),
    );

    say(
        t,
        "call: aggregator.parse_setting(text=\"retries=many\") (this one fails remotely)",
    );
    match aggregator
        .run(parse_setting {
            text: "retries=many".into(),
        })
        .await
    {
        Err(actor::Error::Remote(e)) => {
            let from = e.src_uid.as_ref().map_or("?", |uid| uid.name.as_str());
            say(
                t,
                format!(
                    "  -> remote {} raised in actor {from}, with its remote trace:",
                    e.type_str
                ),
            );
            for line in e.tb_str.lines() {
                println!("         | {line}");
            }
        }
        other => say(t, format!("  -> unexpected: {other:?}")),
    }

    say(
        t,
        "stream: aggregator.ticks() every 10 ms; the root stops after 5 and drops it",
    );
    let ticks: Vec<u64> = aggregator
        .open_stream_from(ticks {})
        .await?
        .take(5)
        .map(|tick| tick.unwrap_or(u64::MAX))
        .collect()
        .await;
    say(
        t,
        format!("  -> got {ticks:?}; dropping the stream sent _cancel_task"),
    );
    let mut still_running = aggregator.run(running {}).await?;
    while still_running != 0 {
        tokio::task::yield_now().await;
        still_running = aggregator.run(running {}).await?;
    }
    say(t, "  -> the aggregator confirms: 0 tasks still running");

    say(
        t,
        "closing the nursery: cancel the aggregator, reap every process",
    );
    nursery.close().await?;
    say(t, "done: the whole tree has exited");
    Ok(())
}
