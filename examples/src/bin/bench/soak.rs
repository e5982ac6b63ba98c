//! `--soak`: whether resident memory stays flat over long runs, against one actor server
//! process (the `daemon` example's actor) on the chosen transport:
//!
//! 1. a million `echo` calls (64 callers sharing one portal), the server's and this program's
//!    resident memory sampled every 100,000 calls;
//! 2. one stream of `u64` items consumed for `--soak-minutes` (10 by default), sampled every
//!    30 s.
//!
//! Every answer and every item is checked. The samples go to stderr as a table, then one line
//! per run with the first sample after warm-up ("start"), the last ("end") and the largest.

use crate::{BoxError, BoxResult};
use std::time::{Duration, Instant};

use actor::Portal;
use examples::demo::{count, echo};
use futures::StreamExt;

use crate::{
    Flavor, Transport,
    server::{Server, ServerKind, rss_kib},
};

/// Callers sharing the portal in the call run.
const CALLERS: u64 = 64;
/// Calls between two samples.
const CALLS_PER_SAMPLE: u64 = 100_000;
/// Time between two samples of the stream run.
const STREAM_SAMPLE: Duration = Duration::from_secs(30);
/// Items between two looks at the clock in the stream run.
const ITEMS_PER_CLOCK: u64 = 4096;

/// One sample of resident memory.
struct Sample {
    /// Calls made, or seconds streamed.
    at: f64,
    /// Items received so far (stream run).
    items: u64,
    server_kib: f64,
    bench_kib: f64,
}

/// Runs both soak runs against a fresh actor server.
pub(crate) async fn run(transport: Transport, calls: u64, minutes: f64) -> BoxResult<()> {
    let server = Server::start(ServerKind::Actor, transport, Flavor::Current).await?;
    let outcome = async {
        let portal: Portal = actor::connect(&server.addr.parse()?).await?;
        eprintln!(
            "== soak, actor-{}: {calls} echo calls, {CALLERS} callers on one portal",
            transport.name()
        );
        let samples = calls_run(&portal, &server, calls).await?;
        report("calls", "calls", &samples);
        eprintln!(
            "== soak, actor-{}: one u64 stream for {minutes} min",
            transport.name()
        );
        let samples = stream_run(&portal, &server, Duration::from_secs_f64(minutes * 60.0)).await?;
        report("stream", "seconds", &samples);
        portal.close().await;
        Ok::<_, BoxError>(())
    }
    .await;
    let stopped = server.stop().await;
    outcome?;
    stopped
}

fn sample(server: &Server, at: f64, items: u64) -> BoxResult<Sample> {
    Ok(Sample {
        at,
        items,
        server_kib: server.rss_kib()?,
        bench_kib: rss_kib("self")?,
    })
}

/// `calls` echo calls in rounds of [`CALLS_PER_SAMPLE`], a sample after each round.
async fn calls_run(portal: &Portal, server: &Server, calls: u64) -> BoxResult<Vec<Sample>> {
    let mut samples = Vec::new();
    let mut made = 0;
    let started = Instant::now();
    while made < calls {
        let round = CALLS_PER_SAMPLE.min(calls - made);
        let per_caller = round.div_ceil(CALLERS);
        let first = made;
        let callers = (0..CALLERS).map(|caller| async move {
            for k in 0..per_caller {
                let x = first + caller * per_caller + k;
                let got = portal.run(echo { x }).await?;
                if got != x {
                    return Err(format!("echo({x}) answered {got}").into());
                }
            }
            Ok::<_, BoxError>(())
        });
        futures::future::try_join_all(callers).await?;
        made += per_caller * CALLERS;
        samples.push(sample(server, made as f64, 0)?);
    }
    eprintln!(
        "   {made} calls in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(samples)
}

/// One endless stream, consumed for `duration`; items checked to count up from 0.
async fn stream_run(
    portal: &Portal,
    server: &Server,
    duration: Duration,
) -> BoxResult<Vec<Sample>> {
    let mut stream = portal.open_stream_from(count { n: u64::MAX }).await?;
    let started = Instant::now();
    let mut samples = vec![sample(server, 0.0, 0)?];
    let mut next_sample = STREAM_SAMPLE.min(duration);
    let mut expected = 0_u64;
    while let Some(item) = stream.next().await {
        let item = item?;
        if item != expected {
            return Err(format!("stream item {expected} arrived as {item}").into());
        }
        expected += 1;
        if expected % ITEMS_PER_CLOCK != 0 {
            continue;
        }
        let elapsed = started.elapsed();
        if elapsed >= next_sample {
            samples.push(sample(server, elapsed.as_secs_f64(), expected)?);
            if elapsed >= duration {
                break;
            }
            next_sample = (next_sample + STREAM_SAMPLE).min(duration);
        }
    }
    if started.elapsed() < duration {
        return Err(format!("the stream ended after {expected} items").into());
    }
    eprintln!(
        "   {expected} items in {:.0} s ({:.2} M items/s)",
        started.elapsed().as_secs_f64(),
        expected as f64 / started.elapsed().as_secs_f64() / 1e6
    );
    Ok(samples)
}

/// The samples as a table, then start (the second sample: the first is taken before the run
/// settles), end and peak for each process.
fn report(run: &str, unit: &str, samples: &[Sample]) {
    eprintln!(
        "   {unit:>10} {:>12} {:>16} {:>16}",
        "items", "server KiB", "bench KiB"
    );
    for s in samples {
        eprintln!(
            "   {:>10.0} {:>12} {:>16.0} {:>16.0}",
            s.at, s.items, s.server_kib, s.bench_kib
        );
    }
    let start = samples.get(1).or(samples.first());
    let (Some(start), Some(end)) = (start, samples.last()) else {
        return;
    };
    let peak = |f: fn(&Sample) -> f64| samples.iter().map(f).fold(0.0, f64::max);
    eprintln!(
        "   {run}: server RSS start {:.0} KiB, end {:.0} KiB, peak {:.0} KiB; \
         bench RSS start {:.0} KiB, end {:.0} KiB, peak {:.0} KiB",
        start.server_kib,
        end.server_kib,
        peak(|s| s.server_kib),
        start.bench_kib,
        end.bench_kib,
        peak(|s| s.bench_kib),
    );
}
