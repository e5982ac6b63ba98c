//! The workloads, written once over [`Target`] so the actor runtime and the baseline are
//! measured by the same code, each checking every answer, item and byte it receives.

use crate::{BoxError, BoxResult};
use std::time::{Duration, Instant};

use actor::{Addr, Portal};
use bytes::Bytes;
use examples::demo::{blob, count, echo, echo_ctx, hog, running, sleep_forever};
use futures::StreamExt;

use crate::{
    Flavor, Sizes, Transport,
    baseline::Client,
    server::{Server, ServerKind},
};

/// Figures a workload measured: (metric, value).
pub(crate) type Measured = Vec<(&'static str, f64)>;

/// What the workloads need of an implementation: a connection to one of its servers.
pub(crate) trait Target: Sized {
    /// The server process kind serving this target.
    const KIND: ServerKind;

    /// Connects to a server listening on `addr`.
    async fn connect(addr: &str) -> BoxResult<Self>;

    /// `echo(x)`.
    async fn echo(&self, x: u64) -> BoxResult<u64>;

    /// Streams `0..n`, one message per item, handing each to `each`.
    async fn count(&self, n: u64, each: impl FnMut(u64) -> BoxResult<()>) -> BoxResult<()>;

    /// Streams `n` blobs of `size` bytes, handing each to `each`.
    async fn blobs(
        &self,
        n: u64,
        size: u64,
        each: impl FnMut(Bytes) -> BoxResult<()>,
    ) -> BoxResult<()>;

    /// `rounds` checked round trips over one open bidirectional stream; their time alone.
    async fn ping_pong(&self, rounds: u64) -> BoxResult<Duration>;

    /// The actor portal, for workloads only the actor runtime supports (W6).
    fn portal(&self) -> Option<&Portal>;

    /// Closes the connection before its server is stopped (so the server does not exit with
    /// unread input, which resets the connection).
    async fn close(self);
}

impl Target for Portal {
    const KIND: ServerKind = ServerKind::Actor;

    async fn connect(addr: &str) -> BoxResult<Self> {
        let addr: Addr = addr
            .parse()
            .map_err(|e| format!("bad server address {addr:?}: {e}"))?;
        Ok(actor::connect(&addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?)
    }

    async fn echo(&self, x: u64) -> BoxResult<u64> {
        Ok(self.run(echo { x }).await?)
    }

    async fn count(&self, n: u64, mut each: impl FnMut(u64) -> BoxResult<()>) -> BoxResult<()> {
        let mut stream = self.open_stream_from(count { n }).await?;
        while let Some(item) = stream.next().await {
            each(item?)?;
        }
        Ok(())
    }

    async fn blobs(
        &self,
        n: u64,
        size: u64,
        mut each: impl FnMut(Bytes) -> BoxResult<()>,
    ) -> BoxResult<()> {
        let mut stream = self.open_stream_from(blob { n, size }).await?;
        while let Some(item) = stream.next().await {
            each(item?.into_bytes())?;
        }
        Ok(())
    }

    async fn ping_pong(&self, rounds: u64) -> BoxResult<Duration> {
        const START: i64 = 7;
        let (ctx, started): (actor::Context, i64) =
            self.open_context(echo_ctx { start: START }).await?;
        if started != START {
            return Err(format!("echo_ctx started with {started}, want {START}").into());
        }
        let elapsed = {
            let mut stream = ctx.open_stream::<u64>().await?;
            let start = Instant::now();
            for x in 0..rounds {
                stream.send(x).await?;
                match stream.next().await {
                    Some(Ok(got)) if got == x => {}
                    Some(Ok(got)) => return Err(format!("round {x} echoed {got}").into()),
                    Some(Err(e)) => return Err(format!("round {x}: {e}").into()),
                    None => return Err(format!("round {x}: the stream ended").into()),
                }
            }
            let elapsed = start.elapsed();
            stream.close().await?;
            elapsed
        };
        let done: String = ctx.result().await?;
        if done != "done" {
            return Err(format!("echo_ctx returned {done:?}, want \"done\"").into());
        }
        Ok(elapsed)
    }

    fn portal(&self) -> Option<&Portal> {
        Some(self)
    }

    async fn close(self) {
        Portal::close(&self).await;
    }
}

impl Target for Client {
    const KIND: ServerKind = ServerKind::Baseline;

    async fn connect(addr: &str) -> BoxResult<Self> {
        Client::connect(addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}").into())
    }

    async fn echo(&self, x: u64) -> BoxResult<u64> {
        Client::echo(self, x).await
    }

    async fn count(&self, n: u64, each: impl FnMut(u64) -> BoxResult<()>) -> BoxResult<()> {
        Client::count(self, n, each).await
    }

    async fn blobs(
        &self,
        n: u64,
        size: u64,
        each: impl FnMut(Bytes) -> BoxResult<()>,
    ) -> BoxResult<()> {
        Client::blobs(self, n, size, each).await
    }

    async fn ping_pong(&self, rounds: u64) -> BoxResult<Duration> {
        Client::ping_pong(self, rounds).await
    }

    fn portal(&self) -> Option<&Portal> {
        None
    }

    async fn close(self) {}
}

/// Checks `0, 1, 2, …` arrive in order, and counts and sums them.
#[derive(Default)]
struct Tally {
    items: u64,
    sum: u64,
}

impl Tally {
    fn push(&mut self, item: u64) -> BoxResult<()> {
        if item != self.items {
            return Err(format!("item #{} was {item}", self.items).into());
        }
        self.items += 1;
        self.sum = self.sum.wrapping_add(item);
        Ok(())
    }

    fn check(&self, n: u64) -> BoxResult<()> {
        let want_sum = n.wrapping_mul(n.wrapping_sub(1)) / 2;
        if self.items != n || self.sum != want_sum {
            return Err(format!(
                "got {} items summing to {}, want {n} summing to {want_sum}",
                self.items, self.sum
            )
            .into());
        }
        Ok(())
    }
}

fn check_echo(sent: u64, got: u64) -> BoxResult<()> {
    if sent == got {
        Ok(())
    } else {
        Err(format!("echo({sent}) answered {got}").into())
    }
}

/// W1 for servers started as plain processes (the baseline): the median of sequential starts
/// (each until one call returned) and the wall time of starting several at once.
pub(crate) async fn w1_processes<T: Target>(
    transport: Transport,
    sizes: &Sizes,
) -> BoxResult<Measured> {
    async fn start_and_call<T: Target>(transport: Transport, x: u64) -> BoxResult<(Server, T)> {
        let server = Server::start(T::KIND, transport, Flavor::Current).await?;
        let target = T::connect(&server.addr).await?;
        check_echo(x, target.echo(x).await?)?;
        Ok((server, target))
    }
    async fn stop<T: Target>(started: BoxResult<(Server, T)>) -> BoxResult<()> {
        let (server, target) = started?;
        target.close().await;
        server.stop().await
    }
    let mut samples = Vec::new();
    for x in 0..sizes.w1_sequential {
        let started = Instant::now();
        let server = start_and_call::<T>(transport, x).await;
        samples.push(started.elapsed());
        stop(server).await?;
    }
    samples.sort_unstable();
    let started = Instant::now();
    let servers = futures::future::join_all(
        (0..sizes.w1_concurrent).map(|x| start_and_call::<T>(transport, x)),
    )
    .await;
    let wall = started.elapsed();
    let mut failure = None;
    for server in servers {
        if let Err(e) = stop(server).await {
            failure.get_or_insert(e);
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(vec![
        ("W1.spawn_median_ms", millis(percentile(&samples, 0.5))),
        ("W1.spawn16_wall_ms", millis(wall)),
    ])
}

/// W2: sequential echo calls, after a warm-up; every answer checked.
pub(crate) async fn w2<T: Target>(target: &T, sizes: &Sizes) -> BoxResult<Measured> {
    for x in 0..sizes.w2_warmup {
        check_echo(x, target.echo(x).await?)?;
    }
    let mut latencies = Vec::with_capacity(usize::try_from(sizes.w2_calls)?);
    let start = Instant::now();
    for x in 0..sizes.w2_calls {
        let call = Instant::now();
        let got = target.echo(x).await?;
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

/// W3: concurrent callers sharing one connection, each making sequential echo calls; every
/// answer checked.
pub(crate) async fn w3<T: Target>(target: &T, sizes: &Sizes) -> BoxResult<Measured> {
    let (callers, calls) = (sizes.w3_callers, sizes.w3_calls);
    let start = Instant::now();
    let all = (0..callers).map(|caller| async move {
        for k in 0..calls {
            let x = caller * calls + k;
            check_echo(x, target.echo(x).await?)?;
        }
        Ok::<_, BoxError>(())
    });
    futures::future::try_join_all(all).await?;
    let elapsed = start.elapsed();
    Ok(vec![(
        "W3.calls_per_s",
        per_second(callers * calls, elapsed),
    )])
}

/// W4: a stream of u64 items, one message per item; order, count and sum checked.
pub(crate) async fn w4<T: Target>(target: &T, sizes: &Sizes) -> BoxResult<Measured> {
    let n = sizes.w4_items;
    let mut tally = Tally::default();
    let start = Instant::now();
    target.count(n, |item| tally.push(item)).await?;
    let elapsed = start.elapsed();
    tally.check(n)?;
    Ok(vec![("W4.items_per_s", per_second(n, elapsed))])
}

/// W4b: a stream of byte blobs (msgpack bin); sizes, contents' ends and total checked.
pub(crate) async fn w4b<T: Target>(target: &T, sizes: &Sizes) -> BoxResult<Measured> {
    let (n, size) = (sizes.w4b_blobs, sizes.w4b_size);
    let (mut blobs, mut bytes) = (0_u64, 0_u64);
    let start = Instant::now();
    target
        .blobs(n, size, |item| {
            let len = u64::try_from(item.len())?;
            if len != size || item.first() != Some(&0xab) || item.last() != Some(&0xab) {
                return Err(format!("blob #{blobs} has {len} bytes or wrong contents").into());
            }
            blobs += 1;
            bytes += len;
            Ok(())
        })
        .await?;
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

/// W5: ping-pong round trips over one open bidirectional stream; every echo checked.
pub(crate) async fn w5<T: Target>(target: &T, sizes: &Sizes) -> BoxResult<Measured> {
    let elapsed = target.ping_pong(sizes.w5_rounds).await?;
    Ok(vec![("W5.rt_per_s", per_second(sizes.w5_rounds, elapsed))])
}

/// W6: cancel a running `sleep_forever` call until the cancel is acknowledged; the median.
/// Before each cancel the call is seen running (`running() == 1`); after it, ended (`0`).
pub(crate) async fn w6(portal: &Portal, sizes: &Sizes) -> BoxResult<Measured> {
    let mut samples = Vec::with_capacity(usize::try_from(sizes.w6_cancels)?);
    for round in 0..sizes.w6_cancels {
        let call = portal.call(sleep_forever {}).await?;
        let seen = Instant::now();
        loop {
            match portal.run(running {}).await? {
                0 if seen.elapsed() < Duration::from_secs(5) => tokio::task::yield_now().await,
                1 => break,
                n => {
                    return Err(format!(
                        "round {round}: {n} demo calls running, want the 1 sleep_forever"
                    )
                    .into());
                }
            }
        }
        let start = Instant::now();
        call.cancel().await?;
        samples.push(start.elapsed());
        let left = portal.run(running {}).await?;
        if left != 0 {
            return Err(format!(
                "round {round}: {left} demo calls still running after the cancel was acknowledged"
            )
            .into());
        }
    }
    samples.sort_unstable();
    Ok(vec![(
        "W6.cancel_p50_us",
        micros(percentile(&samples, 0.5)),
    )])
}

/// W9: W2's sequential echo latency while every thread-runner slot of the server runs CPU-bound
/// blocking work (`demo.hog`); every answer checked. Beside W2's idle figure it shows what the
/// blocking work costs the async calls.
pub(crate) async fn w9(portal: &Portal, sizes: &Sizes) -> BoxResult<Measured> {
    let empty = || actor::Value::Map(Vec::new());
    let status = portal
        .run_from_ns(actor::INTROSPECTION_NS, "thread_runner", empty())
        .await?;
    let number = |key: &str| -> BoxResult<u64> {
        status
            .as_map()
            .and_then(|m| m.iter().find(|(k, _)| k.as_str() == Some(key)))
            .and_then(|(_, v)| v.as_u64())
            .ok_or_else(|| format!("thread_runner status without {key}: {status}").into())
    };
    let slots = number("slots")?;
    // Long enough to outlast the measurement; cancelled (killed) right after it.
    let mut hogs = Vec::new();
    for _ in 0..slots {
        hogs.push(portal.call(hog { ms: 30_000 }).await?);
    }
    let started = Instant::now();
    loop {
        let now = portal
            .run_from_ns(actor::INTROSPECTION_NS, "thread_runner", empty())
            .await?;
        let running = now
            .as_map()
            .and_then(|m| m.iter().find(|(k, _)| k.as_str() == Some("running")))
            .and_then(|(_, v)| v.as_u64());
        if running == Some(slots) {
            break;
        }
        if started.elapsed() > Duration::from_secs(5) {
            return Err(format!("{slots} hogs never all ran: {now}").into());
        }
        tokio::task::yield_now().await;
    }
    // Its error as text: kept across the cancellations below, in a task (`--caller task`).
    let busy = w2(portal, sizes).await.map_err(|e| e.to_string());
    for hog in hogs {
        hog.cancel().await?;
    }
    let busy = busy?;
    let figure = |name: &str| busy.iter().find(|(m, _)| *m == name).map(|(_, v)| *v);
    Ok(vec![
        ("W9.busy_p50_us", figure("W2.p50_us").unwrap_or(f64::NAN)),
        ("W9.busy_p99_us", figure("W2.p99_us").unwrap_or(f64::NAN)),
        ("W9.thread_slots", slots as f64),
    ])
}

/// W7: several servers (separate processes) each stream u64 items to this process at once;
/// every stream's order, count and sum checked; total items per second.
pub(crate) async fn w7<T: Target>(
    transport: Transport,
    flavor: Flavor,
    sizes: &Sizes,
) -> BoxResult<Measured> {
    let (children, n) = (sizes.w7_children, sizes.w7_items);
    let servers =
        futures::future::join_all((0..children).map(|_| Server::start(T::KIND, transport, flavor)))
            .await
            .into_iter()
            .collect::<BoxResult<Vec<_>>>()?;
    let measured = async {
        let targets =
            futures::future::try_join_all(servers.iter().map(|s| T::connect(&s.addr))).await?;
        let start = Instant::now();
        let streams = targets.iter().enumerate().map(|(i, target)| async move {
            let mut tally = Tally::default();
            target.count(n, |item| tally.push(item)).await?;
            tally.check(n).map_err(|e| format!("child {i}: {e}"))?;
            Ok::<_, BoxError>(())
        });
        futures::future::try_join_all(streams).await?;
        let elapsed = start.elapsed();
        futures::future::join_all(targets.into_iter().map(T::close)).await;
        Ok::<_, BoxError>(vec![(
            "W7.fanin_items_per_s",
            per_second(children * n, elapsed),
        )])
    }
    .await;
    stop_all(servers).await?;
    measured
}

/// W8: resident memory of one idle server that has answered one call (connection kept open).
pub(crate) async fn w8<T: Target>(transport: Transport, flavor: Flavor) -> BoxResult<Measured> {
    let server = Server::start(T::KIND, transport, flavor).await?;
    let measured = async {
        let target = T::connect(&server.addr).await?;
        check_echo(1, target.echo(1).await?)?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let kib = server.rss_kib()?;
        target.close().await;
        Ok::<_, BoxError>(vec![("W8.rss_idle_child_kib", kib)])
    }
    .await;
    server.stop().await?;
    measured
}

/// Stops every server, reporting the first failure.
pub(crate) async fn stop_all(servers: Vec<Server>) -> BoxResult<()> {
    let mut failure = None;
    for server in servers {
        if let Err(e) = server.stop().await {
            failure.get_or_insert(e);
        }
    }
    failure.map_or(Ok(()), Err)
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

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn per_second(n: u64, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64()
}
