//! Starting child actors: the parent's side (launch the process, wait for its connect-back,
//! send the init map) and the child's side (connect back, read the init map, listen, register,
//! serve the parent), following the spawn sequence of tractor 0.1.0a5.
//!
//! A child is this program re-launched (or another program) with its spec in the environment.
//! Children never outlive their parent: the kernel kills a child whose parent dies (parent-death
//! signal), and a child whose parent connection ends stops by itself.

use std::{process::Stdio, sync::Arc, time::Duration};

use actor_ipc::{
    Addr, Channel, ErrorInfo, Listener, Msg, RuntimeVars, Secret, SpawnInit, Uid, Value, WireAddr,
};
use tokio::{io::AsyncWriteExt, process::Child, sync::oneshot};
use tracing::debug;

use crate::{
    base::error::{Error, RemoteActorError, Result},
    base::lock,
    base::platform,
    base::secret::{AUTH_FILE_ENV, AUTH_STDIN_ENV, set_process_secret},
    calls::registry,
    portal::Portal,
    runtime::{self, ActorCore},
    serving,
    tree::{
        actor::{Actor, RuntimeFlavor},
        discovery::Registry,
        hosts::{self, Host},
        registration,
    },
};

/// The environment a child reads its spec from.
pub(crate) const CHILD_NAME_ENV: &str = "ACTOR_CHILD_NAME";
pub(crate) const CHILD_UUID_ENV: &str = "ACTOR_CHILD_UUID";
pub(crate) const PARENT_ADDR_ENV: &str = "ACTOR_PARENT_ADDR";
pub(crate) const PARENT_PID_ENV: &str = "ACTOR_PARENT_PID";
/// The tree a child belongs to (its root's uuid; not a secret).
pub(crate) const TREE_ENV: &str = "ACTOR_TREE_ID";
/// The log filter a child uses (the parent's, unless set per child).
pub const LOG_ENV: &str = "ACTOR_LOG";

/// How long a parent waits for a started child to connect back.
const CONNECT_BACK_TIMEOUT: Duration = Duration::from_secs(10);

/// What a child is told by its parent through its environment.
#[derive(Debug, Clone)]
pub(crate) struct ChildSpec {
    uid: Uid,
    parent: Addr,
    parent_pid: u32,
    tree: Option<String>,
    /// Set on a child started on another host: that host, as its parent named it.
    remote_host: Option<String>,
}

impl ChildSpec {
    /// The spec, if this process was started as a child.
    pub(crate) fn from_env() -> Option<Self> {
        let name = std::env::var(CHILD_NAME_ENV).ok()?;
        let uuid = std::env::var(CHILD_UUID_ENV).ok()?;
        let parent = std::env::var(PARENT_ADDR_ENV).ok()?.parse().ok()?;
        let parent_pid = std::env::var(PARENT_PID_ENV).ok()?.parse().ok()?;
        Some(Self {
            uid: Uid { name, uuid },
            parent,
            parent_pid,
            tree: std::env::var(TREE_ENV).ok(),
            remote_host: std::env::var(hosts::CHILD_HOST_ENV).ok(),
        })
    }
}

/// A program a child actor runs: by default this one, re-launched in child mode.
#[derive(Debug, Clone, Default)]
pub struct Program {
    path: Option<std::path::PathBuf>,
    /// Set for a Python tractor 0.1.0a5 child: its interpreter.
    tractor_python: Option<std::path::PathBuf>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    module_paths: Vec<(String, String)>,
    host: Host,
}

impl Program {
    /// Another program built with this runtime (its `main` under `#[actor::main]`).
    pub fn path(path: impl Into<std::path::PathBuf>) -> Self {
        Self {
            path: Some(path.into()),
            ..Self::default()
        }
    }

    /// A Python tractor 0.1.0a5 actor, started with tractor's own child entry point
    /// (`python -m tractor._child --uid .. --parent_addr ..`) by `python` (a virtual
    /// environment's interpreter, say). It needs a TCP parent. Name each enabled Python module's
    /// file with [`Program::module_path`] unless it is importable already.
    ///
    /// Like a Rust child, it dies with its parent: it is started under
    /// `setpriv --pdeathsig KILL` (util-linux) when that is installed.
    pub fn tractor(python: impl Into<std::path::PathBuf>) -> Self {
        Self {
            tractor_python: Some(python.into()),
            ..Self::default()
        }
    }

    /// The file of Python module `ns` (tractor adds its folder to the child's import path).
    pub fn module_path(mut self, ns: impl Into<String>, file: impl Into<String>) -> Self {
        self.module_paths.push((ns.into(), file.into()));
        self
    }

    /// Adds an environment variable for the child.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Where the child runs.
    pub(crate) fn placement(&self) -> &Host {
        &self.host
    }

    /// Runs the child on `host` (default: this host). On another host the program is the one
    /// at the same path there (or the path given with [`Program::path`]): nothing is copied.
    /// A tree with a remote child must have a secret (see [`crate::AUTH_FILE_ENV`]): its
    /// actors then listen beyond loopback, and refuse whoever does not prove it.
    pub fn host(mut self, host: Host) -> Self {
        self.host = host;
        self
    }
}

/// The variables of this runtime a remote child gets from its parent's environment (a local
/// child inherits the whole environment; a remote one only what its command line carries).
/// (With the tracing variables, [`crate::base::trace::HANDED_ON_TRACE_ENV`].)
const HANDED_ON_ENV: [&str; 9] = [
    LOG_ENV,
    "RUST_LOG",
    "RUST_BACKTRACE",
    crate::engine::heartbeat::HEARTBEAT_TIMEOUT_ENV,
    crate::runtime::core::LOW_LATENCY_ENV,
    hosts::SSH_CONFIG_ENV,
    hosts::SSH_PROGRAM_ENV,
    hosts::SRUN_PROGRAM_ENV,
    "SLURM_CONF",
];

/// What the parent tells a child to be.
#[derive(Debug, Clone)]
pub(crate) struct ChildRequest {
    pub(crate) name: String,
    pub(crate) enable: Vec<String>,
    pub(crate) program: Program,
    pub(crate) log: Option<String>,
}

/// A started child: its process and a portal to it.
pub(crate) struct StartedChild {
    pub(crate) uid: Uid,
    pub(crate) process: Child,
    pub(crate) portal: Portal,
    /// A remote child's stdin (the launcher's session), held open while it lives: its end is
    /// the child's signal to stop. Kept apart from `process`, whose `wait` would close it.
    pub(crate) lifeline: Option<tokio::process::ChildStdin>,
}

/// Starts a child of `parent` and completes the spawn sequence.
pub(crate) async fn spawn_child(
    parent: &Arc<ActorCore>,
    request: ChildRequest,
) -> Result<StartedChild> {
    let host = request.program.host.clone();
    let secret = parent.config.secret.clone();
    if host.is_remote() && secret.is_none() {
        return Err(Error::Usage(format!(
            "child {} cannot run on {host}: a tree that spans hosts needs a secret, and this \
             one has none (give the root one with RootOptions::secret, ActorBuilder::secret \
             or {AUTH_FILE_ENV})",
            request.name
        )));
    }
    let parent_addr = match &host {
        Host::Local => parent
            .addrs
            .get()
            .and_then(|a| a.first())
            .cloned()
            .ok_or_else(|| {
                Error::Usage("this actor does not listen: it cannot have children".into())
            })?,
        Host::Ssh(ssh) => address_facing(parent, ssh.local_ip_facing().await?, ssh.host()).await?,
        Host::Slurm(_) => address_facing(parent, hosts::own_cluster_ip().await?, "slurm").await?,
    };
    let uid = Uid::new(&request.name);
    let (connected, connect_back) = oneshot::channel();
    lock(&parent.pending_children).insert(uid.uuid.clone(), connected);
    // However this ends (an error, or the caller dropping it midway), the entry goes.
    let _pending = PendingChild {
        parent: parent.clone(),
        uuid: uid.uuid.clone(),
    };
    // How this program re-launches itself as a child (a test binary: the test's filter).
    let relaunch = parent
        .launch_args
        .get()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut command = match (&host, &request.program) {
        (
            Host::Local,
            Program {
                tractor_python: Some(python),
                ..
            },
        ) => match tractor_command(python, &uid, &parent_addr) {
            Ok(command) => command,
            Err(e) => return Err(e),
        },
        (
            Host::Local,
            Program {
                path: Some(path), ..
            },
        ) => named_command(path, &uid.name),
        (Host::Local, _) => {
            let mut command = named_command(&std::env::current_exe()?, &uid.name);
            command.args(relaunch);
            command
        }
        (Host::Ssh(ssh), program) => {
            let (path, args) = remote_program(program, relaunch, &uid.name)?;
            let env = remote_env(parent, &request, &uid, &parent_addr, ssh);
            ssh.command(&path, &args, &env)
        }
        (Host::Slurm(job), program) => {
            let (path, args) = remote_program(program, relaunch, &uid.name)?;
            // srun hands this environment, with the spec added below, to the task.
            job.command(&uid.name, &path, &args)
        }
    };
    if !host.is_remote() {
        command.args(&request.program.args);
    }
    command
        // A child's thread slots are its own (`StartActor::thread_slots`), not inherited.
        .env_remove(crate::tree::actor::THREAD_SLOTS_ENV)
        .envs(request.program.env.iter().map(|(k, v)| (k, v)))
        .env(CHILD_NAME_ENV, &uid.name)
        .env(CHILD_UUID_ENV, &uid.uuid)
        .env(PARENT_ADDR_ENV, parent_addr.to_string())
        .env(PARENT_PID_ENV, std::process::id().to_string())
        .env(TREE_ENV, parent.tree.get().map_or("", String::as_str))
        .env_remove(AUTH_STDIN_ENV)
        // A remote child's own children are local to it unless placed elsewhere.
        .env_remove(hosts::CHILD_HOST_ENV)
        .env_remove(hosts::LISTEN_HOST_ENV)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Host::Slurm(_) = &host {
        command.env(hosts::CHILD_HOST_ENV, hosts::SLURM_LABEL);
    }
    // The tree's secret goes through a pipe on the child's stdin: never its arguments or
    // environment, which other local users can read in /proc. A remote child's stdin (the ssh
    // session's) stays open after it: it is the child's lifeline.
    if secret.is_some() || host.is_remote() {
        command.env(AUTH_STDIN_ENV, "1").stdin(Stdio::piped());
    }
    if let Some(log) = request.log.clone().or_else(|| std::env::var(LOG_ENV).ok()) {
        command.env(LOG_ENV, log);
    }
    let mut process = match command.spawn() {
        Ok(process) => process,
        Err(e) => {
            // Which program could not be run: the bare OS error does not say.
            let program = command
                .as_std()
                .get_program()
                .to_string_lossy()
                .into_owned();
            let detail = format!("cannot run {program}: {e}");
            return Err(Error::Io(std::io::Error::new(e.kind(), detail)));
        }
    };
    let pid = process.id();
    if let (Some(secret), Some(stdin)) = (secret, process.stdin.as_mut()) {
        let line = format!("{}\n", secret.to_hex());
        // A child that exits first fails its start below, with its own error.
        if let Err(e) = stdin.write_all(line.as_bytes()).await {
            debug!(child = %uid, error = %e, "could not hand the secret to the child");
        }
    }
    // A local child's lifeline is its parent-death signal: its stdin closes now.
    let lifeline = process.stdin.take().filter(|_| host.is_remote());
    let channel = tokio::select! {
        channel = tokio::time::timeout(host.start_timeout(CONNECT_BACK_TIMEOUT), connect_back) => match channel {
            Ok(Ok(channel)) => channel,
            _ => {
                return Err(Error::Timeout {
                    what: format!(
                        "child {} ({host}) did not connect back to {parent_addr}",
                        uid.name
                    ),
                    after: host.start_timeout(CONNECT_BACK_TIMEOUT),
                });
            }
        },
        status = process.wait() => {
            return Err(Error::ChildExited {
                actor: uid.name.clone(),
                pid,
                exit: platform::child_exit(&status),
            });
        }
    };
    let registrar = match parent.registrar_addr.get() {
        Some(registrar) if host.is_remote() => registrar_facing(parent, registrar, &parent_addr),
        Some(registrar) => registrar.to_wire(),
        None => WireAddr {
            host: String::new(),
            port: 0,
        },
    };
    let bind_host = match &parent_addr {
        Addr::Tcp { host, .. } => host.clone(),
        Addr::Unix(_) => "unix".to_owned(),
    };
    let init = Msg::SpawnInit(Box::new(SpawnInit {
        parent_main_data: Value::Map(Vec::new()),
        enable_modules: request
            .enable
            .iter()
            .map(|ns| {
                let path = request
                    .program
                    .module_paths
                    .iter()
                    .find(|(m, _)| m == ns)
                    .map(|(_, path)| path.clone())
                    .unwrap_or_default();
                (ns.clone(), path)
            })
            .collect(),
        registrar: registrar.clone(),
        bind_host,
        bind_port: 0,
        runtime_vars: RuntimeVars {
            debug_mode: false,
            is_root: false,
            root_mailbox: registrar,
            extra: Vec::new(),
        },
    }));
    if let Err(e) = channel.send(&init).await {
        let lost = Error::Disconnected {
            peer: uid.clone(),
            detail: e.to_string(),
        };
        return Err(abandon(&uid, &mut process, lost).await);
    }
    let conn = serving::start(parent.clone(), channel);
    let portal = Portal::from_connection(conn);
    if let Err(e) = until_serving(&uid, pid, &portal, &mut process).await {
        return Err(abandon(&uid, &mut process, e).await);
    }
    Ok(StartedChild {
        uid,
        process,
        portal,
        lifeline,
    })
}

/// A child's entry in its parent's table of children connecting back, removed when dropped.
struct PendingChild {
    parent: Arc<ActorCore>,
    uuid: String,
}

impl Drop for PendingChild {
    fn drop(&mut self) {
        lock(&self.parent.pending_children).remove(&self.uuid);
    }
}

/// Waits until the child serves (it answers a call on its parent connection, which it serves
/// only once it has started: listening, registered, its namespaces found). A child that cannot
/// start says why and exits instead: its own error is returned, or how it ended.
async fn until_serving(
    uid: &Uid,
    pid: Option<u32>,
    portal: &Portal,
    process: &mut Child,
) -> Result<()> {
    // Cancelling a task that does not exist is answered at once by every actor (tractor
    // 0.1.0a5's too) and changes nothing: a ping any child understands.
    let ping = portal.run_from_ns(
        "self",
        "_cancel_task",
        Value::Map(vec![("cid".into(), format!("ready-{}", uid.uuid).into())]),
    );
    let outcome = tokio::select! {
        answered = tokio::time::timeout(CONNECT_BACK_TIMEOUT, ping) => match answered {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => e,
            Err(_) => Error::Timeout {
                what: format!("child {} did not start serving", uid.name),
                after: CONNECT_BACK_TIMEOUT,
            },
        },
        status = process.wait() => {
            // What it said before exiting reaches the reader before the end of the stream.
            let _ = tokio::time::timeout(Duration::from_millis(500), portal.closed()).await;
            match portal.runtime_error() {
                Some(info) => Error::Remote(RemoteActorError::from_info(info, uid)),
                None => Error::ChildExited {
                    actor: uid.name.clone(),
                    pid,
                    exit: platform::child_exit(&status),
                },
            }
        }
    };
    // A child that said why it could not start: that is the error, not the lost connection.
    Err(match (&outcome, portal.runtime_error()) {
        (Error::Disconnected { .. }, Some(info)) => {
            Error::Remote(RemoteActorError::from_info(info, uid))
        }
        _ => outcome,
    })
}

/// Gives up on a child that did not start: kills it if it still runs and reaps it (bounded),
/// so no process or zombie is left; returns `error`, why it was given up on.
async fn abandon(uid: &Uid, process: &mut Child, error: Error) -> Error {
    debug!(child = %uid, %error, "child did not start");
    let _ = process.start_kill();
    if tokio::time::timeout(CONNECT_BACK_TIMEOUT, process.wait())
        .await
        .is_err()
    {
        tracing::warn!(child = %uid, "a child that did not start could not be reaped");
    }
    error
}

/// The command running `program` as the child called `name`: its `argv[0]` is the program's
/// path followed by the child's name, so the process table (`ps`, `pgrep -f`) says which
/// actor each process is. The program itself is found by path, never by `argv[0]`.
fn named_command(program: &std::path::Path, name: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program);
    command.arg0(format!("{} {name}", program.display()));
    command
}

/// The command starting a Python tractor 0.1.0a5 child the way tractor starts its own.
fn tractor_command(
    python: &std::path::Path,
    uid: &Uid,
    parent: &Addr,
) -> Result<tokio::process::Command> {
    let Addr::Tcp { host, port } = parent else {
        return Err(Error::Usage(
            "a tractor 0.1.0a5 child needs its parent to listen on TCP".into(),
        ));
    };
    let mut command = with_parent_death_signal(python);
    command
        .args(["-m", "tractor._child", "--uid"])
        .arg(format!(
            "({}, {})",
            python_str(&uid.name),
            python_str(&uid.uuid)
        ))
        .arg("--parent_addr")
        .arg(format!("('{host}', {port})"));
    Ok(command)
}

/// `text` as a Python string literal (tractor's child reads its uid with `literal_eval`).
fn python_str(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Starts a program with the parent-death signal set (util-linux), for children that do not
/// ask for it themselves.
const SETPRIV: &str = "/usr/bin/setpriv";

/// A command running `program` under the parent-death signal (SIGKILL), when `setpriv` is
/// installed: a launcher (`ssh`) or a foreign child dies with this process, whatever kills it.
pub(crate) fn with_parent_death_signal(program: &std::path::Path) -> tokio::process::Command {
    let setpriv = std::path::Path::new(SETPRIV);
    if setpriv.is_file() {
        let mut command = tokio::process::Command::new(setpriv);
        command.args(["--pdeathsig", "KILL", "--"]).arg(program);
        command
    } else {
        tracing::warn!(
            "{SETPRIV} is missing: {} will not die with its parent",
            program.display()
        );
        tokio::process::Command::new(program)
    }
}

/// The program a remote child runs, at its path on the other host, and its arguments: this
/// program re-launched (with `relaunch`) unless another is named. The entry of the child
/// connecting back is removed by the caller's guard if this fails.
fn remote_program(
    program: &Program,
    relaunch: &[String],
    child: &str,
) -> Result<(std::path::PathBuf, Vec<String>)> {
    if program.tractor_python.is_some() {
        return Err(Error::Usage(format!(
            "child {child}: a tractor child runs on this host only"
        )));
    }
    let (path, mut args) = match &program.path {
        Some(path) => (path.clone(), Vec::new()),
        None => (std::env::current_exe()?, relaunch.to_vec()),
    };
    args.extend(program.args.iter().cloned());
    Ok((path, args))
}

/// The spec of a remote child, for its command line: its names and addresses (nothing
/// secret), and the runtime's variables of this environment.
fn remote_env(
    parent: &ActorCore,
    request: &ChildRequest,
    uid: &Uid,
    parent_addr: &Addr,
    ssh: &hosts::SshHost,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = HANDED_ON_ENV
        .iter()
        .chain(crate::base::trace::HANDED_ON_TRACE_ENV.iter())
        .filter(|key| **key != LOG_ENV || request.log.is_none())
        .filter_map(|key| Some(((*key).to_owned(), std::env::var(key).ok()?)))
        .collect();
    if let Some(log) = &request.log {
        env.push((LOG_ENV.to_owned(), log.clone()));
    }
    env.extend(request.program.env.iter().cloned());
    env.extend([
        (CHILD_NAME_ENV.to_owned(), uid.name.clone()),
        (CHILD_UUID_ENV.to_owned(), uid.uuid.clone()),
        (PARENT_ADDR_ENV.to_owned(), parent_addr.to_string()),
        // No parent pid on that host: the lifeline is the session's stdin.
        (PARENT_PID_ENV.to_owned(), "0".to_owned()),
        (
            TREE_ENV.to_owned(),
            parent.tree.get().cloned().unwrap_or_default(),
        ),
        (AUTH_STDIN_ENV.to_owned(), "1".to_owned()),
        (hosts::CHILD_HOST_ENV.to_owned(), ssh.host().to_owned()),
    ]);
    env
}

/// An address of `parent` on `facing` (this host's address facing `toward`): a TCP listener
/// it has there (one on every interface stands for it), else a new listener there, bound once
/// and kept for the actor's life.
async fn address_facing(
    parent: &Arc<ActorCore>,
    facing: std::net::IpAddr,
    toward: &str,
) -> Result<Addr> {
    for addr in parent.addrs.get().map(Vec::as_slice).unwrap_or_default() {
        if let Addr::Tcp { host, port } = addr
            && let Ok(ip) = host
                .trim_matches(|c| c == '[' || c == ']')
                .parse::<std::net::IpAddr>()
        {
            if ip.is_unspecified() {
                return Ok(Addr::tcp(facing.to_string(), *port));
            }
            if ip == facing {
                return Ok(addr.clone());
            }
        }
    }
    let mut extra = parent.facing_listeners.lock().await;
    if let Some(addr) = extra.get(&facing) {
        return Ok(addr.clone());
    }
    let listener = Listener::bind(&Addr::tcp(facing.to_string(), 0))
        .await
        .map_err(|e| {
            Error::Usage(format!(
                "cannot listen on {facing} (the address facing {toward}): {e}"
            ))
        })?;
    let addr = listener.local_addr().clone();
    debug!(%addr, toward, "listening for remote children");
    parent
        .io_tasks
        .spawn(serving::accept_loop(parent.clone(), listener));
    extra.insert(facing, addr.clone());
    Ok(addr)
}

/// The registrar's address as a remote child should use it: this actor's own address facing
/// that host when the registrar is this actor at a local-only address (a root serving its
/// own), else the registrar's address as it is.
fn registrar_facing(parent: &ActorCore, registrar: &Addr, facing: &Addr) -> WireAddr {
    let local_only = match registrar {
        Addr::Unix(_) => true,
        Addr::Tcp { host, .. } => crate::tree::actor::is_loopback(host),
    };
    let is_own = parent
        .addrs
        .get()
        .is_some_and(|addrs| addrs.contains(registrar));
    if local_only && is_own {
        facing.to_wire()
    } else {
        if local_only {
            tracing::warn!(
                %registrar,
                "a remote child cannot reach the registrar at a local-only address: it will \
                 not be findable by name"
            );
        }
        registrar.to_wire()
    }
}

/// Runs this process as the child `spec` describes, then exits the process. `launch_args` are
/// how this program re-launches itself for this child's own children.
pub(crate) fn run_child(spec: ChildSpec, launch_args: Vec<String>) -> ! {
    let label = match &spec.remote_host {
        Some(host) => format!("{}@{}", spec.uid.name, hosts::child_host_label(host)),
        None => spec.uid.name.clone(),
    };
    init_logging(Some(&label), &spec.uid.name);
    if std::env::var_os(AUTH_STDIN_ENV).is_some() {
        match read_secret_from_stdin() {
            Ok(secret) => set_process_secret(secret),
            Err(e) => {
                eprintln!("[{label}] no secret from the parent: {e}");
                std::process::exit(1);
            }
        }
    }
    // A remote child's parent is a login shell's sshd, not its parent actor: its lifeline is
    // its stdin (the session), watched once it serves.
    if spec.remote_host.is_none() && !platform::die_with_parent(spec.parent_pid) {
        eprintln!("[{label}] parent already gone; exiting");
        std::process::exit(1);
    }
    let (runtime, slot) = match RuntimeFlavor::default().build_for_actor() {
        Ok(built) => built,
        Err(e) => {
            eprintln!("[{}] cannot start a runtime: {e}", spec.uid.name);
            std::process::exit(1);
        }
    };
    let entered = runtime::enter_runtime(slot);
    let code = runtime.block_on(serve_as_child(spec, launch_args));
    drop(entered);
    drop(runtime);
    crate::base::trace::flush_spans();
    std::process::exit(code);
}

/// How long a remote child whose lifeline ended may take to stop before it exits anyway.
const LIFELINE_GRACE: Duration = Duration::from_secs(3);

/// Stops this remote child when its stdin (the ssh session) reaches EOF or fails: its parent
/// or the launcher is gone. The process exits after [`LIFELINE_GRACE`] if stopping hangs.
fn watch_lifeline(stop: tokio_util::sync::CancellationToken) {
    let spawned = std::thread::Builder::new()
        .name("lifeline".into())
        .spawn(move || {
            use std::io::Read;
            let mut sink = [0u8; 64];
            let mut stdin = std::io::stdin().lock();
            // Anything after the secret line is ignored; only its end matters.
            while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
            stop.cancel();
            // Likely unheard: stderr is the ended session's too.
            tracing::warn!("lifeline ended (the parent's session closed); stopping");
            std::thread::sleep(LIFELINE_GRACE);
            std::process::exit(1);
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot watch the lifeline: this child outlives only its connection");
    }
}

/// Reads the line of hex the parent writes to a child's stdin.
fn read_secret_from_stdin() -> Result<Secret> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Secret::from_hex(&line).map_err(|e| Error::Usage(e.to_string()))
}

async fn serve_as_child(spec: ChildSpec, launch_args: Vec<String>) -> i32 {
    // Ctrl-C in a terminal reaches the whole process group: a child leaves its teardown to its
    // parent (which cancels it, so it unregisters and runs its hooks) instead of dying at once.
    let _ignore_interrupts =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt());
    let name = spec.uid.name.clone();
    let local = ActorCore::client(&name);
    let channel = match Channel::connect(&spec.parent, &spec.uid, &local.config).await {
        Ok(channel) => channel,
        Err(e) => {
            eprintln!(
                "[{name}] cannot connect back to the parent at {}: {e}",
                spec.parent
            );
            return 1;
        }
    };
    let parent_uid = channel.peer().clone();
    let (sender, mut reader) = channel.into_split();
    // The parent's init map is the first message after the handshake.
    let init = match tokio::time::timeout(CONNECT_BACK_TIMEOUT, reader.recv()).await {
        Ok(Ok(Some(Msg::SpawnInit(init)))) => init,
        other => {
            eprintln!("[{name}] no init map from the parent: {other:?}");
            return 1;
        }
    };
    let report = |error: ErrorInfo| {
        let sender = sender.clone();
        async move {
            let _ = sender
                .send(&Msg::Error {
                    cid: None,
                    error: Box::new(error),
                })
                .await;
            let _ = tokio::time::timeout(Duration::from_secs(1), sender.close()).await;
        }
    };
    for (ns, _) in &init.enable_modules {
        if !registry::has_namespace(ns) {
            let detail = format!(
                "{name} cannot start: namespace {ns:?} has no remote functions in this program"
            );
            report(ErrorInfo::new("ModuleNotFoundError", detail)).await;
            return 1;
        }
    }
    let listen = match (&spec.parent, &spec.remote_host) {
        (Addr::Tcp { .. }, Some(host)) => {
            let Some(ip) = hosts::remote_listen_host(host, &spec.parent) else {
                let detail = format!(
                    "{name} cannot start on {host}: no address to listen on (no SSH_CONNECTION, \
                     no {}, no route to the parent)",
                    hosts::LISTEN_HOST_ENV
                );
                report(ErrorInfo::new("RuntimeError", detail)).await;
                return 1;
            };
            Addr::tcp(ip, 0)
        }
        (Addr::Tcp { .. }, None) => Addr::tcp(init.bind_host.clone(), init.bind_port),
        (Addr::Unix(_), _) => {
            Addr::unix(std::env::temp_dir().join(format!("actor-{}.sock", spec.uid.uuid)))
        }
    };
    let mut builder = Actor::builder(name.clone())
        .uid(spec.uid.clone())
        .launch_args(launch_args)
        .listen(listen);
    if let Some(tree) = spec.tree.clone().filter(|t| !t.is_empty()) {
        builder = builder.tree(tree);
    }
    for (ns, _) in &init.enable_modules {
        builder = builder.enable(ns.clone());
    }
    let registrar = (init.registrar.port != 0
        || init
            .registrar
            .host
            .starts_with(actor_ipc::addr::UNIX_SCHEME))
    .then(|| init.registrar.to_addr());
    // A parent listening at the registrar's address is the registrar: this child registers
    // over the connection it has to it rather than opening another (a connection, its
    // handshake and the accept on the parent's side: about a seventh of a child's start).
    let through_parent = registrar.as_ref() == Some(&spec.parent);
    if let Some(registrar) = &registrar {
        builder = builder.registrar(registrar.clone());
        if through_parent {
            builder = builder.registers_through_parent();
        }
    }
    let mut actor = match builder.start().await {
        Ok(actor) => actor,
        Err(e) => {
            report(ErrorInfo::new(
                e.type_str(),
                format!("{name} cannot start: {e}"),
            ))
            .await;
            return 1;
        }
    };
    // A service's end stops this actor: the parent hears why (its nursery reports it), as it
    // hears of a child that could not start.
    let to_parent = sender.clone();
    *lock(&actor.core().fatal_report) = Some(Box::new(move |error: ErrorInfo| {
        Box::pin(async move {
            let _ = to_parent
                .send(&Msg::Error {
                    cid: None,
                    error: Box::new(error),
                })
                .await;
        })
    }));
    // Serve the parent's connection; when it ends, this actor ends (no orphans).
    let parent_conn = serving::adopt(actor.core().clone(), sender, reader, parent_uid);
    if let (true, Some(registrar), Some(first)) =
        (through_parent, registrar, actor.addrs().first().cloned())
    {
        // Its calls go out before this task yields, so before the answer to the parent's
        // readiness ping (the read loop just spawned has not run yet): the parent has this
        // child in its table by the time its `start_actor` returns, as with a registration
        // made at start.
        let core = actor.core().clone();
        let portal = Portal::from_connection(parent_conn.clone());
        let registry = Registry::through(&core, portal, registrar.clone());
        if let Err(e) = registration::register(&core, &registry, &first).await {
            tracing::warn!(uid = %core.uid, %registrar, error = %e, "cannot register with the parent");
        }
        // Held to the end (a portal's last clone closes its connection when dropped), and
        // unregistered through at the end.
        actor.unregister_through(registry);
    }
    let stop = actor.cancellation_token();
    actor.core().io_tasks.spawn(async move {
        parent_conn.closed().await;
        debug!("parent connection ended; stopping");
        stop.cancel();
    });
    if spec.remote_host.is_some() {
        watch_lifeline(actor.cancellation_token());
    }
    let core = actor.core().clone();
    actor.wait().await;
    // Stopped by a service's end: a failure, in the exit status too.
    if lock(&core.fatal).is_some() { 1 } else { 0 }
}

/// Sends this process's `tracing` output to stderr, filtered by [`LOG_ENV`] or `RUST_LOG`
/// (default: warnings), each line prefixed with the actor's name when it is a child (a child's
/// stderr is its parent's, so the parent's terminal shows whose line it is).
pub(crate) fn init_logging(actor_name: Option<&str>, service_name: &str) {
    use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};
    let filter = std::env::var(LOG_ENV)
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("warn"));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        // A log line that cannot be written is lost, never a panic: a remote child's stderr is
        // its ssh session's, which ends when its parent goes.
        .log_internal_errors(false);
    // The filter is the log's own: spans recorded for tracing (the `otel` feature) are not
    // filtered by the log level.
    let fmt = match actor_name {
        Some(name) => fmt
            .event_format(NamePrefix {
                name: name.to_owned(),
                inner: tracing_subscriber::fmt::format(),
            })
            .with_filter(filter)
            .boxed(),
        None => fmt.with_filter(filter).boxed(),
    };
    let subscriber = tracing_subscriber::registry().with(fmt);
    #[cfg(feature = "otel")]
    let subscriber = subscriber.with(crate::base::trace::layer_from_env(service_name));
    #[cfg(not(feature = "otel"))]
    let _ = service_name;
    // A subscriber already set by the program wins.
    let _ = subscriber.try_init();
}

/// Prefixes each log line with `[actor name]`.
struct NamePrefix {
    name: String,
    inner: tracing_subscriber::fmt::format::Format,
}

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for NamePrefix
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        write!(writer, "[{}] ", self.name)?;
        self.inner.format_event(ctx, writer, event)
    }
}
