//! `actor`: see and drive running actor trees from a shell.
//!
//! ```text
//! actor ls                                   registered actors: name, uuid, address, host, pid, uptime
//! actor tree                                 the trees, indented, with each actor's running calls
//! actor call NAME|ADDR NS FUNC [k=v ...]     a call; --stream prints each item, --context drives one
//! actor cancel NAME|ADDR [--cid CID]         cancel one call, or the whole actor
//! actor top                                  a live table: calls/s, running calls, RSS per actor
//! actor trace DIR [--id TRACE]               the spans a tree recorded in ACTOR_TRACE_DIR, as trees
//! ```
//!
//! It finds the registrar at `--registrar ADDR`, else `$ACTOR_REGISTRAR`, else
//! `tcp://127.0.0.1:1616`, as the runtime does, and proves the secret in `--auth-file PATH` or
//! `$ACTOR_AUTH_FILE` to trees that have one. `--json` prints JSON for scripts.
//!
//! Exit codes: 0 done; 1 the call or command failed (a remote error, a refused cancel); 2 bad
//! usage; 3 the registrar or actor could not be reached; 4 no actor by that name.

mod call;
mod inspect;
mod json;
mod trace;

use std::{process::ExitCode, time::Duration};

use actor::{Addr, Portal, Registry};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "actor", version, about = "See and drive running actor trees")]
struct Cli {
    /// The registrar's address (default: $ACTOR_REGISTRAR, else tcp://127.0.0.1:1616).
    #[arg(long, global = true, value_name = "ADDR")]
    registrar: Option<Addr>,
    /// A file holding the tree's secret (default: $ACTOR_AUTH_FILE).
    #[arg(long, global = true, value_name = "PATH")]
    auth_file: Option<std::path::PathBuf>,
    /// Print JSON (one document, or one line per item) instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// How long to wait for any one actor to answer, in milliseconds.
    #[arg(long, global = true, value_name = "MS", default_value_t = 3_000)]
    timeout_ms: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The registered actors: name, uuid, address, host, pid, uptime.
    Ls,
    /// The actor trees, indented: each actor with pid, host, address, running calls, children
    /// not registered, services and thread slots.
    Tree,
    /// Calls a function: arguments `name=value`, values parsed as JSON where they parse.
    Call {
        /// Print each item of a stream function as it arrives.
        #[arg(long, conflicts_with = "context")]
        stream: bool,
        /// Open a context: print its `started` value, send each line of stdin (JSON, else
        /// text), print each item received, then its result.
        #[arg(long)]
        context: bool,
        /// The actor: a registered name, or an address (tcp://HOST:PORT, unix:///PATH).
        target: String,
        /// The namespace.
        ns: String,
        /// The function.
        func: String,
        /// Arguments, `name=value`.
        args: Vec<String>,
    },
    /// Cancels one running call (`--cid`) or the whole actor.
    Cancel {
        /// The actor: a registered name, or an address.
        target: String,
        /// The call id of the call to cancel (see `actor tree`).
        #[arg(long)]
        cid: Option<String>,
    },
    /// A live table of the registered actors: calls/s, running calls, RSS.
    Top {
        /// Refresh every this many milliseconds.
        #[arg(long, value_name = "MS", default_value_t = 1_000)]
        interval_ms: u64,
        /// Stop after this many refreshes (default: until interrupted).
        #[arg(long, value_name = "N")]
        iterations: Option<u64>,
    },
    /// Draws the traces a tree recorded in ACTOR_TRACE_DIR (the runtime's `otel` feature):
    /// each call under its caller, with the actor and process that served it.
    Trace {
        /// The directory the tree ran with as ACTOR_TRACE_DIR.
        dir: std::path::PathBuf,
        /// Only this trace (its id, or a prefix of it).
        #[arg(long, value_name = "TRACE")]
        id: Option<String>,
    },
}

/// Why a command failed, with its exit code.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The command or call failed (exit 1).
    Failed(String),
    /// The registrar or an actor could not be reached (exit 3).
    Unreachable(String),
    /// No actor is registered by that name (exit 4).
    NotFound(String),
}

impl Failure {
    fn exit_code(&self) -> u8 {
        match self {
            Failure::Failed(_) => 1,
            Failure::Unreachable(_) => 3,
            Failure::NotFound(_) => 4,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Failed(why) | Failure::Unreachable(why) | Failure::NotFound(why) => {
                f.write_str(why)
            }
        }
    }
}

/// What every command needs: where the registrar is, and how long to wait.
pub(crate) struct Context {
    pub(crate) registrar: Addr,
    pub(crate) timeout: Duration,
    pub(crate) json: bool,
}

impl Context {
    /// The registrar, connected; a clear error naming the address when nothing answers there.
    pub(crate) async fn registry(&self) -> Result<Registry, Failure> {
        match self
            .ask_registrar(Registry::connect(&self.registrar))
            .await?
        {
            Ok(registry) => Ok(registry),
            Err(e) => Err(Failure::Unreachable(format!(
                "no registrar answers at {}: {e}\n  is a tree running? point --registrar or \
                 ACTOR_REGISTRAR at its registrar (a tree's root serves one, by default at \
                 tcp://127.0.0.1:1616)",
                self.registrar
            ))),
        }
    }

    /// `request` to the registrar, within the timeout: a registrar that does not answer in
    /// time is unreachable.
    pub(crate) async fn ask_registrar<T>(
        &self,
        request: impl std::future::Future<Output = T>,
    ) -> Result<T, Failure> {
        let registrar = format!("the registrar at {}", self.registrar);
        self.answered_in_time(&registrar, request).await
    }

    /// A portal to `target`: an address, or a name looked up at the registrar.
    pub(crate) async fn portal(&self, target: &str) -> Result<(Portal, Addr), Failure> {
        let addr = if target.contains("://") {
            target
                .parse::<Addr>()
                .map_err(|e| Failure::Failed(format!("{target:?} is not an address: {e}")))?
        } else {
            let registry = self.registry().await?;
            let found = self
                .ask_registrar(registry.query_actor(target))
                .await?
                .map_err(|e| Failure::Failed(format!("looking up {target}: {e}")))?;
            found.ok_or_else(|| {
                Failure::NotFound(format!(
                    "no actor called {target:?} is registered at {} (see `actor ls`)",
                    self.registrar
                ))
            })?
        };
        let portal = self.connect(&addr).await?;
        Ok((portal, addr))
    }

    /// `request` to the actor at `addr`, within the timeout: one that does not answer in time
    /// is unreachable.
    pub(crate) async fn within<T>(
        &self,
        addr: &Addr,
        request: impl std::future::Future<Output = T>,
    ) -> Result<T, Failure> {
        self.answered_in_time(&format!("the actor at {addr}"), request)
            .await
    }

    /// `request` within the timeout; `who` (what was asked) is named as unreachable if it
    /// does not answer in time.
    async fn answered_in_time<T>(
        &self,
        who: &str,
        request: impl std::future::Future<Output = T>,
    ) -> Result<T, Failure> {
        tokio::time::timeout(self.timeout, request)
            .await
            .map_err(|_| {
                Failure::Unreachable(format!("{who} did not answer within {:?}", self.timeout))
            })
    }

    /// A portal to the actor at `addr`.
    pub(crate) async fn connect(&self, addr: &Addr) -> Result<Portal, Failure> {
        match tokio::time::timeout(self.timeout, actor::connect(addr)).await {
            Ok(Ok(portal)) => Ok(portal),
            Ok(Err(e)) => Err(Failure::Unreachable(format!(
                "cannot reach the actor at {addr}: {e}"
            ))),
            Err(_) => Err(Failure::Unreachable(format!(
                "the actor at {addr} did not answer within {:?}",
                self.timeout
            ))),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Reading recorded spans needs no registrar, secret or runtime.
    if let Command::Trace { dir, id } = &cli.command {
        return exit_code(trace::trace(cli.json, dir, id.as_deref()));
    }
    let secret_file = cli
        .auth_file
        .clone()
        .or_else(|| std::env::var_os(actor::AUTH_FILE_ENV).map(Into::into));
    if let Some(path) = secret_file {
        match actor::Secret::from_file(&path) {
            Ok(secret) => actor::set_process_secret(secret),
            Err(e) => {
                eprintln!("actor: the secret in {}: {e}", path.display());
                return ExitCode::from(2);
            }
        }
    }
    let registrar = match cli
        .registrar
        .clone()
        .map_or_else(actor::discovery::default_registrar, Ok)
    {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("actor: {e}");
            return ExitCode::from(2);
        }
    };
    let context = Context {
        registrar,
        timeout: Duration::from_millis(cli.timeout_ms.max(1)),
        json: cli.json,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("actor: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Ls => inspect::ls(&context).await,
            Command::Tree => inspect::tree(&context).await,
            Command::Call {
                stream,
                context: open_context,
                target,
                ns,
                func,
                args,
            } => {
                let mode = match (stream, open_context) {
                    (true, _) => call::Mode::Stream,
                    (_, true) => call::Mode::Context,
                    _ => call::Mode::Function,
                };
                call::call(&context, mode, &target, &ns, &func, &args).await
            }
            Command::Cancel { target, cid } => {
                call::cancel(&context, &target, cid.as_deref()).await
            }
            Command::Trace { dir, id } => trace::trace(context.json, &dir, id.as_deref()),
            Command::Top {
                interval_ms,
                iterations,
            } => {
                inspect::top(
                    &context,
                    Duration::from_millis(interval_ms.max(50)),
                    iterations,
                )
                .await
            }
        }
    });
    exit_code(outcome)
}

/// How a command ended, as the process's exit code (its failure printed first).
fn exit_code(outcome: Result<(), Failure>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("actor: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}
