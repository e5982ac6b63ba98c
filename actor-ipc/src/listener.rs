//! Accepting connections on either transport, and the accept loop that serves them.
//!
//! [`Listener::serve`] accepts forever and runs each connection's handshake and handler in its
//! own task, so one slow or hostile peer never delays the next accept, and a connection that
//! fails (bad handshake, malformed frame) ends alone. Dropping the `serve` future stops
//! accepting and aborts every connection task it started.

use std::{future::Future, io, path::PathBuf, sync::Arc, time::Duration};

use tokio::{
    net::{TcpListener, UnixListener},
    task::JoinSet,
};
use tracing::{debug, warn};

use crate::{
    addr::Addr,
    channel::{Channel, ChannelConfig},
    error::HandshakeError,
    msg::Uid,
    transport::Transport,
};

/// A bound, listening socket.
#[derive(Debug)]
pub struct Listener {
    inner: Inner,
    local: Addr,
}

#[derive(Debug)]
enum Inner {
    Tcp(TcpListener),
    Unix {
        listener: UnixListener,
        /// Removed when the listener is dropped, so a restart can bind the same path.
        path: PathBuf,
    },
}

/// How long to pause after a failed accept (e.g. out of file descriptors) before retrying,
/// so the loop does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

impl Listener {
    /// Binds `addr`. A TCP port of 0 picks a free port ([`Listener::local_addr`] tells which).
    /// A Unix socket path left behind by a dead process is replaced; one that a live process
    /// listens on is refused with `AddrInUse`. A Unix socket is made owner-only (mode 0600),
    /// whatever the umask.
    pub async fn bind(addr: &Addr) -> io::Result<Self> {
        match addr {
            Addr::Tcp { host, port } => {
                let listener = TcpListener::bind((host.as_str(), *port)).await?;
                let bound = listener.local_addr()?;
                Ok(Self {
                    local: Addr::tcp(host.clone(), bound.port()),
                    inner: Inner::Tcp(listener),
                })
            }
            Addr::Unix(path) => {
                remove_stale_socket(path).await?;
                let listener = UnixListener::bind(path)?;
                // Owner-only whatever the umask: other local users cannot connect (a socket
                // file's permissions are what Linux checks on connect).
                std::fs::set_permissions(
                    path,
                    std::os::unix::fs::PermissionsExt::from_mode(0o600),
                )?;
                Ok(Self {
                    local: addr.clone(),
                    inner: Inner::Unix {
                        listener,
                        path: path.clone(),
                    },
                })
            }
        }
    }

    /// The address peers can connect to.
    pub fn local_addr(&self) -> &Addr {
        &self.local
    }

    /// Accepts one connection (no handshake yet).
    pub async fn accept(&self) -> io::Result<Transport> {
        match &self.inner {
            Inner::Tcp(l) => Transport::from_tcp(l.accept().await?.0),
            Inner::Unix { listener, .. } => Ok(Transport::Unix(listener.accept().await?.0)),
        }
    }

    /// Accepts connections until this future is dropped. Each connection is handshaken as
    /// `local` in its own task and handed to `handler`, with the handshake's outcome (a failed
    /// handshake is also logged: at debug level when the peer merely closed, as probes do).
    ///
    /// Dropping this future stops accepting and aborts every connection task it spawned.
    pub async fn serve<H, F>(self, local: Uid, config: ChannelConfig, handler: H)
    where
        H: Fn(Result<Channel, HandshakeError>) -> F + Send + Sync + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let local = Arc::new(local);
        let config = Arc::new(config);
        let mut connections = JoinSet::new();
        let mut refusals = RateLimitedLog::default();
        let mut failures = RateLimitedLog::default();
        // Refused peers are logged at most 10 times per 10 s (a flood must not flood the log).
        let auth_refusals = Arc::new(std::sync::Mutex::new(RateLimitedLog::default()));
        loop {
            tokio::select! {
                accepted = self.accept() => match accepted {
                    // Finished connections still counted are reaped first.
                    Ok(transport) if {
                        while connections.try_join_next().is_some() {}
                        connections.len() >= config.max_connections
                    } => {
                        // Closed at once: the peer sees the end before any handshake.
                        drop(transport);
                        if let Some(suppressed) = refusals.due() {
                            warn!(
                                addr = %self.local,
                                limit = config.max_connections,
                                suppressed,
                                "connection limit reached; refusing new connections"
                            );
                        }
                    }
                    Ok(transport) => {
                        let (handler, local, config, auth_refusals) =
                            (handler.clone(), local.clone(), config.clone(), auth_refusals.clone());
                        connections.spawn(async move {
                            let peer = transport.peer_description();
                            let outcome = Channel::handshake(transport, &local, &config).await;
                            match &outcome {
                                Err(HandshakeError::ClosedBeforeHandshake) => {
                                    debug!(%peer, "peer closed before handshaking");
                                }
                                Err(HandshakeError::Auth(e)) => {
                                    let due = auth_refusals
                                        .lock()
                                        .map(|mut log| log.due())
                                        .unwrap_or(None);
                                    if let Some(suppressed) = due {
                                        warn!(%peer, suppressed, "refused a connection: {e}");
                                    }
                                }
                                Err(e) => warn!(%peer, error = %e, "handshake failed"),
                                Ok(_) => {}
                            }
                            handler(outcome).await;
                        });
                    }
                    Err(e) => {
                        // Out of descriptors, typically: say so (not every 50 ms), and pause
                        // so the loop does not spin while the condition lasts.
                        if let Some(suppressed) = failures.due() {
                            warn!(addr = %self.local, error = %e, suppressed, "accept failed; retrying");
                        }
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                },
                // Reap finished connection tasks so the set does not grow.
                Some(finished) = connections.join_next(), if !connections.is_empty() => {
                    if let Err(e) = finished {
                        if e.is_panic() {
                            warn!(error = %e, "a connection task panicked");
                        }
                    }
                }
            }
        }
    }
}

/// The window over which a repeated condition (refused connections, failed accepts) is
/// logged at most [`LOG_BURST`] times.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// How many lines a repeated condition may log per [`LOG_EVERY`].
const LOG_BURST: u32 = 10;

/// Logs a repeated condition at most [`LOG_BURST`] times per [`LOG_EVERY`], counting what it
/// did not log.
#[derive(Default)]
struct RateLimitedLog {
    window_start: Option<tokio::time::Instant>,
    logged: u32,
    suppressed: u64,
}

impl RateLimitedLog {
    /// `Some(occurrences not logged since the last line)` when a line is due now.
    fn due(&mut self) -> Option<u64> {
        let now = tokio::time::Instant::now();
        if self
            .window_start
            .is_none_or(|start| now.duration_since(start) >= LOG_EVERY)
        {
            self.window_start = Some(now);
            self.logged = 0;
        }
        if self.logged >= LOG_BURST {
            self.suppressed += 1;
            return None;
        }
        self.logged += 1;
        Some(std::mem::take(&mut self.suppressed))
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Inner::Unix { path, .. } = &self.inner {
            // Best effort: the file may already be gone.
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Removes a socket file nobody listens on any more; refuses if someone does, and never
/// touches a path that is not a socket.
async fn remove_stale_socket(path: &std::path::Path) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        ));
    }
    match tokio::net::UnixStream::connect(path).await {
        // Only a refusal proves nobody listens: a full backlog (EAGAIN) is a live listener.
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => std::fs::remove_file(path),
        Ok(_) | Err(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("{} is in use by a live listener", path.display()),
        )),
    }
}
