//! Server processes: this program re-launched with `--serve actor` (the `daemon` example's
//! actor: namespace `demo` on one address) or `--serve baseline`, and the bench's handle on one.
//!
//! The bench starts its servers from its own executable rather than the `daemon` binary so one
//! `cargo run --bin bench` measures the code it was built from (a `daemon` binary beside it may
//! be stale), and actor and baseline servers are the same executable.
//!
//! A server serves until its stdin closes: the bench closes it to stop a server gracefully, and
//! the kernel closes it if the bench dies, so no server outlives the bench.

use crate::BoxResult;
use std::{
    io::Read,
    path::PathBuf,
    process::Stdio,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use actor::{Actor, Addr};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, ChildStdin, Command},
};

use crate::{Flavor, Transport};

/// How long a server may take to start listening, or to exit once stopped.
const SERVER_TIMEOUT: Duration = Duration::from_secs(10);

/// What a server process runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub(crate) enum ServerKind {
    /// An actor serving `demo` (the `daemon` example).
    Actor,
    /// The minimal baseline runtime (always on a current-thread runtime).
    Baseline,
}

impl ServerKind {
    fn arg(self) -> &'static str {
        match self {
            Self::Actor => "actor",
            Self::Baseline => "baseline",
        }
    }
}

/// Runs this process as a server of `kind` on `listen`, until stdin closes.
pub(crate) fn serve(kind: ServerKind, listen: &str, flavor: Flavor) -> BoxResult<()> {
    let runtime = match (kind, flavor) {
        (ServerKind::Actor, Flavor::Multi) => actor::RuntimeFlavor::MultiThread.build()?,
        _ => actor::RuntimeFlavor::CurrentThread.build()?,
    };
    match kind {
        ServerKind::Actor => runtime.block_on(serve_actor(listen)),
        ServerKind::Baseline => {
            on_stdin_closed(|| std::process::exit(0))?;
            runtime.block_on(crate::baseline::serve(listen))
        }
    }
}

/// What `daemon --listen ADDR` does, stopping (gracefully, like `cancel`) when stdin closes.
async fn serve_actor(listen: &str) -> BoxResult<()> {
    let addr: Addr = listen
        .parse()
        .map_err(|e| format!("bad --listen {listen:?}: {e}"))?;
    let actor = Actor::builder("bench-daemon")
        .enable(examples::demo::NS)
        .listen(addr)
        .start()
        .await?;
    for addr in actor.addrs() {
        println!("listening on {addr}");
    }
    let stop = actor.cancellation_token();
    on_stdin_closed(move || stop.cancel())?;
    actor.wait().await;
    Ok(())
}

/// Calls `then` on a thread of its own once stdin reaches its end.
fn on_stdin_closed(then: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("stdin-watch".into())
        .spawn(move || {
            let mut sink = [0_u8; 64];
            let mut stdin = std::io::stdin();
            while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
            then();
        })
        .map(|_| ())
}

/// A running server process. Killed if dropped before [`Server::stop`].
pub(crate) struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    /// Where to connect.
    pub(crate) addr: String,
    /// Its process id.
    pub(crate) pid: u32,
    socket: Option<PathBuf>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(path) = &self.socket {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Server {
    /// Starts a server and waits until it listens.
    pub(crate) async fn start(
        kind: ServerKind,
        transport: Transport,
        flavor: Flavor,
    ) -> BoxResult<Self> {
        static SERIAL: AtomicU64 = AtomicU64::new(0);
        let (listen, socket) = match transport {
            Transport::Tcp => ("tcp://127.0.0.1:0".to_owned(), None),
            Transport::Uds => {
                let path = std::env::temp_dir().join(format!(
                    "actor-bench-{}-{}.sock",
                    std::process::id(),
                    SERIAL.fetch_add(1, Ordering::Relaxed)
                ));
                (format!("unix://{}", path.display()), Some(path))
            }
        };
        let exe = std::env::current_exe()?;
        let mut child = Command::new(&exe)
            .args(["--serve", kind.arg(), "--listen", &listen])
            .args(["--runtime", flavor.arg()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
        let pid = child.id().ok_or("the server exited at once")?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or("the server's stdout was not captured")?;
        let mut lines = BufReader::new(stdout).lines();
        let announced = tokio::time::timeout(SERVER_TIMEOUT, async {
            while let Some(line) = lines.next_line().await? {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    return Ok::<_, std::io::Error>(Some(addr.trim().to_owned()));
                }
            }
            Ok(None)
        })
        .await;
        let addr = match announced {
            Ok(Ok(Some(addr))) => addr,
            Ok(Ok(None)) => {
                return Err(format!(
                    "the {} server exited before listening on {listen} (status {:?})",
                    kind.arg(),
                    child.wait().await.ok()
                )
                .into());
            }
            Ok(Err(e)) => return Err(format!("reading the server's stdout: {e}").into()),
            Err(_) => {
                return Err(format!(
                    "the {} server did not print `listening on` within {} s",
                    kind.arg(),
                    SERVER_TIMEOUT.as_secs()
                )
                .into());
            }
        };
        // Keep draining stdout so the server never blocks on (or dies of) a closed pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            child,
            stdin,
            addr,
            pid,
            socket,
        })
    }

    /// Closes the server's stdin and waits for it to exit cleanly; kills it if it does not.
    pub(crate) async fn stop(mut self) -> BoxResult<()> {
        drop(self.stdin.take());
        let result = match tokio::time::timeout(SERVER_TIMEOUT, self.child.wait()).await {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => Err(format!("server {} exited with {status}", self.pid).into()),
            Ok(Err(e)) => Err(format!("waiting for server {}: {e}", self.pid).into()),
            Err(_) => Err(format!(
                "server {} did not exit within {} s of its stdin closing",
                self.pid,
                SERVER_TIMEOUT.as_secs()
            )
            .into()),
        };
        if result.is_err() {
            let _ = self.child.kill().await;
        }
        result
    }

    /// Resident memory now (`VmRSS` of `/proc/<pid>/status`), in KiB.
    pub(crate) fn rss_kib(&self) -> BoxResult<f64> {
        rss_kib(&self.pid.to_string())
    }
}

/// Resident memory of process `pid` (a number, or `self`), in KiB, from `/proc`.
pub(crate) fn rss_kib(pid: &str) -> BoxResult<f64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .ok_or_else(|| format!("{path} has no VmRSS line"))?;
    let kib = line
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<f64>()
        .map_err(|e| format!("{path}: VmRSS {line:?}: {e}"))?;
    Ok(kib)
}
