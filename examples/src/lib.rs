//! Runnable programs showing the actor runtime. Each binary in `src/bin` is one lesson; this
//! library holds only what they share.

pub mod demo;

/// Sends `tracing` output to stderr, filtered by `RUST_LOG` (default: warnings and errors), so
/// a program's stdout stays what it means to show.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // A second call (or a subscriber set by an embedding program) is not an error worth dying
    // for: the first one wins.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Holds the tree as it is (for `actor tree`, `actor top`...) until a line, or the end of
/// stdin, arrives: prints `holding: ...` on stderr first, then `HOLDING` on stdout (the line
/// a script waits for).
pub async fn hold(what: &str) -> std::io::Result<()> {
    use tokio::io::AsyncBufReadExt;
    eprintln!(
        "holding: {what}; inspect it with `actor tree --registrar {}`; press Enter to go on",
        actor::Actor::current()
            .and_then(|me| me.registrar())
            .map_or_else(|| "?".to_owned(), |addr| addr.to_string())
    );
    println!("HOLDING");
    let mut line = String::new();
    tokio::io::BufReader::new(tokio::io::stdin())
        .read_line(&mut line)
        .await?;
    Ok(())
}

/// Starts an actor, prints `listening on ADDR` for each address once it accepts connections,
/// and serves until SIGINT, SIGTERM or the `cancel` runtime call; then tears it down.
///
/// Signal handlers are installed before the first line is printed, so a signal sent as soon as
/// the line is read is handled, not fatal.
pub async fn serve_until_stopped(builder: actor::ActorBuilder) -> actor::Result<()> {
    let signals = stop_signals()?;
    let actor = builder.start().await?;
    for addr in actor.addrs() {
        println!("listening on {addr}");
    }
    let stop = actor.cancellation_token();
    tokio::spawn(async move {
        signals.await;
        stop.cancel();
    });
    actor.wait().await;
    Ok(())
}

/// A future completing on SIGINT or SIGTERM (handlers installed on return).
fn stop_signals() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// The CPU time each thread of process `pid` has used so far, in nanoseconds, by thread id:
/// how the low-latency mode's idle cost is measured (by its test and by the bench).
///
/// Read from each thread's `schedstat` (time on a CPU, in ns) rather than the process's
/// `stat`: `stat` counts in 10 ms clock ticks and rounds user and system time apart, so an
/// idle process can appear to gain 20 ms between two readings, twice a 1% budget over a second.
pub fn cpu_time_by_thread(pid: u32) -> std::io::Result<std::collections::HashMap<u32, u64>> {
    let mut times = std::collections::HashMap::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let entry = entry?;
        let Ok(tid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        // A thread can end between the listing and the read; it then has nothing to add.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("schedstat")) else {
            continue;
        };
        let on_cpu_ns = stat
            .split_whitespace()
            .next()
            .and_then(|ns| ns.parse::<u64>().ok())
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("thread {tid} of {pid}: unreadable schedstat {stat:?}"),
                )
            })?;
        times.insert(tid, on_cpu_ns);
    }
    Ok(times)
}

/// The CPU time used between two [`cpu_time_by_thread`] readings of one process (a thread
/// born in between counts whole; one that ended in between is not seen).
pub fn cpu_used_between(
    before: &std::collections::HashMap<u32, u64>,
    after: &std::collections::HashMap<u32, u64>,
) -> std::time::Duration {
    let ns = after
        .iter()
        .map(|(tid, now)| now.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .sum();
    std::time::Duration::from_nanos(ns)
}
