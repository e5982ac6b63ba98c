//! A standalone registrar: the name service separately launched actors register with and find
//! each other through (tractor's "arbiter"; Python tractor actors can use it too).
//!
//! ```text
//! cargo run --release -p examples --bin registrar                     # tcp://127.0.0.1:1616
//! cargo run --release -p examples --bin registrar -- --listen unix:///tmp/reg.sock
//! ```
//!
//! Prints `listening on ADDR` per address; exits cleanly on SIGINT, SIGTERM or `cancel`.

use std::process::ExitCode;

use actor::{Actor, Addr, RuntimeFlavor};
use clap::Parser;

#[derive(Parser)]
#[command(about = "A standalone registrar for actors to find each other by name")]
struct Cli {
    /// A file holding the secret every peer must prove (see docs/protocol-notes.md); without
    /// it, any local user can call and stop this actor.
    #[arg(long, value_name = "PATH")]
    auth_file: Option<std::path::PathBuf>,
    /// An address to listen on (repeatable; default tcp://127.0.0.1:1616).
    #[arg(long)]
    listen: Vec<Addr>,
    /// The registrar actor's name.
    #[arg(long, default_value = "registrar")]
    name: String,
}

fn main() -> ExitCode {
    examples::init_logging();
    let cli = Cli::parse();
    let outcome = RuntimeFlavor::default()
        .build()
        .map_err(actor::Error::from)
        .and_then(|runtime| runtime.block_on(serve(cli)));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("registrar: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(cli: Cli) -> actor::Result<()> {
    let mut builder = Actor::builder(cli.name).serve_registrar();
    if let Some(path) = &cli.auth_file {
        builder = builder.secret(
            actor::Secret::from_file(path).map_err(|e| actor::Error::Usage(e.to_string()))?,
        );
    }
    if cli.listen.is_empty() {
        builder = builder.listen(actor::discovery::default_registrar()?);
    }
    for addr in cli.listen {
        builder = builder.listen(addr);
    }
    examples::serve_until_stopped(builder).await
}
