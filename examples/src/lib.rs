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
