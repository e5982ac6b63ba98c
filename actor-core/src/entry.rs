//! Entry points: decide, before any user code runs, whether this process is a root actor or a
//! child actor started by a parent, and run accordingly.
//!
//! `#[actor::main]` and `#[actor::test]` expand to calls of `run_main` and `run_test_program`,
//! which place the program as `root_program` says; programs that cannot use the attributes
//! call [`run_root`] themselves.

use std::future::Future;

use actor_ipc::{Addr, Secret};
use tracing::debug;

use crate::{
    base::error::{Error, Result},
    base::secret::set_process_secret,
    root_program::Program,
    runtime::enter_runtime,
    tree::actor::{Actor, RuntimeFlavor},
    tree::discovery::default_registrar,
    tree::spawn::{ChildSpec, init_logging, run_child},
};

/// The exit status of a program interrupted by SIGINT (128 + 2, as shells report it).
pub const INTERRUPTED_EXIT: i32 = 130;

/// How the root actor of a program listens and finds its registrar.
#[derive(Debug, Clone)]
pub struct RootOptions {
    name: String,
    listen: Option<Addr>,
    registrar: Option<Addr>,
    own_registrar: bool,
    enable: Vec<String>,
    child_args: Vec<String>,
    secret: Option<Secret>,
}

impl RootOptions {
    /// A root actor called `name`, listening on a free loopback TCP port, using the registrar
    /// at the default address (serving one there itself if nothing answers).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            listen: None,
            registrar: None,
            own_registrar: false,
            enable: Vec::new(),
            child_args: Vec::new(),
            secret: None,
        }
    }

    /// Listens on `addr` instead (children use the same transport: a `unix://` address makes
    /// the whole tree talk over Unix sockets).
    pub fn listen(mut self, addr: Addr) -> Self {
        self.listen = Some(addr);
        self
    }

    /// Uses the registrar at `addr` (serving one there if nothing answers).
    pub fn registrar(mut self, addr: Addr) -> Self {
        self.registrar = Some(addr);
        self
    }

    /// Serves a private registrar on the root's own address instead of looking for one (tests
    /// running side by side each get their own).
    pub fn own_registrar(mut self) -> Self {
        self.own_registrar = true;
        self
    }

    /// Makes `secret` the tree's secret: every connection of this program proves it, and every
    /// peer must (see [`actor_ipc::auth`]); children get it from the root through a pipe.
    /// Without this, a root uses the file named by `ACTOR_AUTH_FILE`, if set.
    pub fn secret(mut self, secret: Secret) -> Self {
        self.secret = Some(secret);
        self
    }

    /// Lets children call namespace `ns` in the root.
    pub fn enable(mut self, ns: impl Into<String>) -> Self {
        self.enable.push(ns.into());
        self
    }
}

/// Runs `main` as the root actor of this program: starts a runtime and the root actor, runs
/// `main` in it (so it can open nurseries), then tears the root down. If this process was
/// started as a child actor, it serves as that child instead and exits; `main` never runs.
///
/// `main`'s future is polled by the runtime's `block_on` (it need not be `Send`); under
/// `#[actor::main]` and `#[actor::test]`, a program that can be a task runs as one, whose
/// calls are answered sooner (see `root_program`).
pub fn run_root<F, Fut, T>(options: RootOptions, main: F) -> Result<T>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = T>,
{
    run_root_program(options, || Program::in_place(main()))
}

/// [`run_root`], the program placed already (a task of its own, or in place).
fn run_root_program<'a, T: 'a>(
    options: RootOptions,
    main: impl FnOnce() -> Program<'a, T>,
) -> Result<T> {
    if let Some(spec) = ChildSpec::from_env() {
        run_child(spec, options.child_args);
    }
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::Usage(
            "run_root called inside a running actor runtime: a root actor already runs here \
             (open a nursery instead)"
                .into(),
        ));
    }
    init_logging(None, &options.name);
    let (runtime, slot) = RuntimeFlavor::default().build_for_actor()?;
    // This thread runs the root's tasks: they all see the root as their actor.
    let entered = enter_runtime(slot);
    let interrupted = runtime.block_on(async move {
        let root = start_root(options).await?;
        let core = root.core().clone();
        // SIGINT tears the whole tree down: the program's future is dropped (its nurseries
        // kill their children), the root stops, and the process exits with the interrupt.
        let interrupt = tokio::signal::ctrl_c();
        let out = {
            let mut program = main().start(core.clone());
            let out = tokio::select! {
                out = &mut program => out,
                _ = interrupt => None,
                // A service's end stops the root: its program too.
                () = core.fatal_token.cancelled() => None,
            };
            if out.is_none() {
                // The program runs no further. The services first (what they end now is no
                // failure), then, gracefully, every nursery cancels its children (which
                // unregister and run their teardown hooks), bounded; dropping the program
                // then kills what is left.
                program.freeze();
                core.services_stop.cancel();
                tear_down_nurseries(&core).await;
            }
            program.end().await;
            out
        };
        root.cancel();
        root.wait().await;
        if let Some(fatal) = crate::base::lock(&core.fatal).take() {
            return Err(Error::ServiceFailed {
                detail: fatal.tb_str,
            });
        }
        Ok::<_, Error>(out)
    });
    drop(entered);
    crate::base::trace::flush_spans();
    let interrupted = interrupted?;
    match interrupted {
        Some(out) => Ok(out),
        None => {
            drop(runtime);
            eprintln!("interrupted");
            std::process::exit(INTERRUPTED_EXIT);
        }
    }
}

/// Tears down every nursery still open in `core`'s actor, at most [`INTERRUPT_GRACE`] in all.
async fn tear_down_nurseries(core: &std::sync::Arc<crate::runtime::ActorCore>) {
    let nurseries = core.nurseries.live();
    let all = futures::future::join_all(nurseries.iter().map(|n| n.teardown()));
    if tokio::time::timeout(INTERRUPT_GRACE, all).await.is_err() {
        tracing::warn!("children still running after the interrupt grace; killing them");
    }
}

/// How long a SIGINT's graceful teardown may take before the rest is killed.
const INTERRUPT_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

async fn start_root(options: RootOptions) -> Result<crate::tree::actor::ActorHandle> {
    if let Some(secret) = options.secret.clone() {
        set_process_secret(secret);
    }
    let listen = match options.listen.clone() {
        Some(addr) => addr,
        None => default_root_addr()?,
    };
    let builder = || {
        let mut builder = Actor::builder(options.name.clone())
            .listen(listen.clone())
            .launch_args(options.child_args.clone());
        for ns in &options.enable {
            builder = builder.enable(ns.clone());
        }
        builder
    };
    if options.own_registrar {
        return builder().serve_registrar().start().await;
    }
    let registrar = match options.registrar.clone() {
        Some(addr) => addr,
        None => default_registrar()?,
    };
    // Using the registrar: if it goes away, this root serves it there, so the programs
    // sharing it keep discovery; until one answers, the root serves all the same.
    let use_registrar = |registrar: Addr| builder().registrar(registrar).take_over_registrar();
    if registrar_answers(&registrar).await {
        debug!(%registrar, "using the registrar that answers");
        return use_registrar(registrar).start().await;
    }
    debug!(%registrar, "nothing answers at the registrar address: serving it");
    match builder()
        .listen(registrar.clone())
        .serve_registrar()
        .start()
        .await
    {
        // Another program won the address meanwhile, or it cannot be bound at all.
        Err(Error::Io(e)) => {
            tracing::warn!(
                %registrar,
                error = %e,
                "cannot serve the registrar there; running without one until it answers"
            );
            use_registrar(registrar).start().await
        }
        other => other,
    }
}

/// The environment variable choosing the transport of roots that were given no address:
/// `tcp` (default: a free loopback port) or `unix` (a socket in the temporary directory).
pub const TRANSPORT_ENV: &str = "ACTOR_TRANSPORT";

/// Where a root listens when not told: per [`TRANSPORT_ENV`].
fn default_root_addr() -> Result<Addr> {
    match std::env::var(TRANSPORT_ENV).as_deref() {
        Ok("unix") => Ok(Addr::unix(std::env::temp_dir().join(format!(
            "actor-root-{}-{}.sock",
            std::process::id(),
            actor_ipc::Uid::new("").uuid
        )))),
        Ok("tcp") | Err(_) => Ok(Addr::tcp("127.0.0.1", 0)),
        Ok(other) => Err(Error::Usage(format!(
            "{TRANSPORT_ENV}={other:?}: expected tcp or unix"
        ))),
    }
}

/// Whether something accepts connections at `addr` (a probe: connect, then close before the
/// handshake, which registrars treat as normal).
async fn registrar_answers(addr: &Addr) -> bool {
    let probe = actor_ipc::transport::Transport::connect(addr);
    matches!(
        tokio::time::timeout(std::time::Duration::from_millis(500), probe).await,
        Ok(Ok(_))
    )
}

/// Runs a test as a root actor with its own registrar, its program in place; when this test
/// binary is re-launched as a child of that test, serves as the child instead.
#[doc(hidden)]
pub fn run_test<F, Fut, T>(test_path: &str, main: F) -> T
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = T>,
{
    run_test_program(test_path, || Program::in_place(main()))
}

/// [`run_test`], the program placed already: what `#[actor::test]` expands to.
#[doc(hidden)]
pub fn run_test_program<'a, T: 'a>(test_path: &str, main: impl FnOnce() -> Program<'a, T>) -> T {
    // libtest names a test by its path without the crate name.
    let filter = test_path
        .split_once("::")
        .map_or(test_path, |(_, rest)| rest)
        .to_owned();
    let mut options = RootOptions::new(test_path.rsplit("::").next().unwrap_or("test"));
    options.child_args = vec![
        "--exact".into(),
        filter,
        // The test may be #[ignore]d and run with --ignored: its children must run it too.
        "--include-ignored".into(),
        "--nocapture".into(),
        "--test-threads=1".into(),
        "-q".into(),
    ];
    match run_root_program(options.own_registrar(), main) {
        Ok(out) => out,
        // In a test, a panic is how a failure is reported.
        #[allow(clippy::panic)]
        Err(e) => panic!("the test's root actor failed: {e}"),
    }
}

/// `#[actor::main]`: [`run_root`] with the program's name; a runtime failure is printed and
/// exits the process with status 1.
#[doc(hidden)]
pub fn run_main<'a, T: 'a>(main: impl FnOnce() -> Program<'a, T>) -> T {
    let name = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "root".into());
    match run_root_program(RootOptions::new(name), main) {
        Ok(out) => out,
        Err(e) => {
            eprintln!("actor runtime: {e}");
            std::process::exit(1);
        }
    }
}

impl From<std::convert::Infallible> for Error {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}
