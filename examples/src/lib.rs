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
