//! A daemon actor serving namespace `demo`: the runtime's public contract for outside tools.
//!
//! ```text
//! cargo run --release -p examples --bin daemon -- --name d --listen unix:///tmp/d.sock
//! ```
//!
//! Prints `listening on ADDR` (one line per address, with the real port where 0 was given) once
//! it accepts connections, and exits cleanly on SIGINT, SIGTERM or the `cancel` runtime call.
//!
//! `demo` functions: `add(a, b)`, `echo(x)`, `count(n)` (stream 0..n), `blob(n, size)` (stream
//! of n byte blobs), `echo_ctx(start)` (context echoing its stream), `sleep_forever()`,
//! `fail(msg)` (a `ValueError`), `running()` (demo calls running now, not counting itself).

use std::process::ExitCode;

use actor::{Actor, Addr, RuntimeFlavor};
use clap::Parser;

#[derive(Parser)]
#[command(about = "A daemon actor serving the `demo` namespace")]
struct Cli {
    /// A file holding the secret every peer must prove (see docs/protocol-notes.md); without
    /// it, any local user can call and stop this actor.
    #[arg(long, value_name = "PATH")]
    auth_file: Option<std::path::PathBuf>,
    /// The actor's name.
    #[arg(long)]
    name: String,
    /// An address to listen on: tcp://HOST:PORT or unix:///PATH (repeatable).
    #[arg(long, required = true)]
    listen: Vec<Addr>,
    /// Register with the registrar at this address (and unregister on exit).
    #[arg(long)]
    registrar: Option<Addr>,
    /// Serve at most this many connections at once (more are closed at once).
    #[arg(long, value_name = "N", default_value_t = actor::ipc::ChannelConfig::default().max_connections)]
    max_connections: usize,
    /// Give up a connection whose peer reads nothing for this long while we have data for it.
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    write_stall_timeout_ms: u64,
    /// Close a connection idle this long (nothing sent or received, no call running).
    #[arg(long, value_name = "MS")]
    idle_timeout_ms: Option<u64>,
    /// The tokio runtime flavour (for measuring; the default was chosen by measurement).
    #[arg(long, value_enum, default_value_t = Flavor::Current)]
    runtime: Flavor,
}

/// `--runtime` values.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Flavor {
    /// One thread (the default).
    Current,
    /// One worker thread per core.
    Multi,
}

fn main() -> ExitCode {
    examples::init_logging();
    let cli = Cli::parse();
    let flavor = match cli.runtime {
        Flavor::Current => RuntimeFlavor::CurrentThread,
        Flavor::Multi => RuntimeFlavor::MultiThread,
    };
    let runtime = match flavor.build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("daemon: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("daemon: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(cli: Cli) -> actor::Result<()> {
    let config = actor::ipc::ChannelConfig {
        max_connections: cli.max_connections,
        write_stall_timeout: std::time::Duration::from_millis(cli.write_stall_timeout_ms),
        idle_timeout: cli.idle_timeout_ms.map(std::time::Duration::from_millis),
        ..Default::default()
    };
    let mut builder = Actor::builder(cli.name)
        .enable(examples::demo::NS)
        .channel_config(config);
    if let Some(path) = &cli.auth_file {
        builder = builder.secret(
            actor::Secret::from_file(path).map_err(|e| actor::Error::Usage(e.to_string()))?,
        );
    }
    for addr in cli.listen {
        builder = builder.listen(addr);
    }
    if let Some(registrar) = cli.registrar {
        builder = builder.registrar(registrar);
    }
    examples::serve_until_stopped(builder).await
}
