//! Helpers for the test suite: a real listener serving real sockets, and a raw client that can
//! send any bytes at all. Tests drive them from outside, the way a hostile or broken peer would.

// Test code: a failed unwrap or panic is a failed test, with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use actor_ipc::{
    Addr, Channel, ChannelConfig, HandshakeError, Listener, Msg, RecvError, Uid, frame::put_frame,
};
use bytes::BytesMut;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    sync::mpsc,
    task::JoinHandle,
};

/// How long a test waits for an event before failing loudly.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Awaits `fut`, failing the test with `what` if it takes longer than [`EVENT_TIMEOUT`].
pub async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(EVENT_TIMEOUT, fut).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {EVENT_TIMEOUT:?} waiting for {what}"),
    }
}

/// The two transports, for tests that run on both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TCP on loopback.
    Tcp,
    /// A Unix-domain socket in a temporary directory.
    Unix,
}

/// Both transports.
pub const TRANSPORTS: [Transport; 2] = [Transport::Tcp, Transport::Unix];

/// How one served connection ended.
#[derive(Debug)]
pub enum Outcome {
    /// The handshake failed.
    Handshake(HandshakeError),
    /// Receiving failed after the handshake.
    Recv(RecvError),
    /// The peer sent the sentinel.
    Sentinel,
    /// The peer closed cleanly between frames.
    Eof,
}

/// A listener serving an echo handler on a real socket: every message received after the
/// handshake is sent back; each connection's end is reported on `outcomes`.
pub struct EchoServer {
    /// Where it listens.
    pub addr: Addr,
    /// How each connection ended, in the order they ended.
    pub outcomes: mpsc::UnboundedReceiver<Outcome>,
    /// The server's uid.
    pub uid: Uid,
    task: JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl EchoServer {
    /// Starts a server on `transport` with the given channel limits.
    pub async fn start(transport: Transport, config: ChannelConfig) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let addr = match transport {
            Transport::Tcp => Addr::tcp("127.0.0.1", 0),
            Transport::Unix => Addr::unix(dir.path().join("echo.sock")),
        };
        let listener = Listener::bind(&addr).await.expect("bind");
        let addr = listener.local_addr().clone();
        let uid = Uid::new("echo-server");
        let (report, outcomes) = mpsc::unbounded_channel();
        let task = tokio::spawn(listener.serve(uid.clone(), config, move |accepted| {
            let report = report.clone();
            async move {
                let outcome = match accepted {
                    Err(e) => Outcome::Handshake(e),
                    Ok(channel) => echo(channel).await,
                };
                let _ = report.send(outcome);
            }
        }));
        Self {
            addr,
            outcomes,
            uid,
            task,
            _dir: dir,
        }
    }

    /// The next connection's outcome.
    pub async fn next_outcome(&mut self) -> Outcome {
        within("a connection outcome", self.outcomes.recv())
            .await
            .expect("server stopped")
    }

    /// Proves the server still accepts and serves: a fresh connection handshakes and gets an
    /// echo of one message.
    pub async fn assert_still_serving(&self) {
        let local = Uid::new("probe");
        let mut channel = within(
            "a fresh connection",
            Channel::connect(&self.addr, &local, &ChannelConfig::default()),
        )
        .await
        .expect("a fresh connection handshakes");
        assert_eq!(channel.peer(), &self.uid);
        let msg = Msg::Stop { cid: "ping".into() };
        channel.send(&msg).await.expect("send");
        let echoed = within("the echo", channel.recv()).await.expect("recv");
        assert_eq!(echoed, Some(msg));
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn echo(mut channel: Channel) -> Outcome {
    loop {
        match channel.recv().await {
            Err(e) => return Outcome::Recv(e),
            Ok(None) => return Outcome::Eof,
            Ok(Some(Msg::Sentinel)) => return Outcome::Sentinel,
            Ok(Some(msg)) => {
                if channel.send(&msg).await.is_err() {
                    return Outcome::Eof;
                }
            }
        }
    }
}

/// A raw connection that sends whatever bytes a test wants.
pub struct RawClient {
    stream: RawStream,
}

enum RawStream {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

impl RawClient {
    /// Connects without handshaking.
    pub async fn connect(addr: &Addr) -> Self {
        let stream = match addr {
            Addr::Tcp { host, port } => RawStream::Tcp(
                tokio::net::TcpStream::connect((host.as_str(), *port))
                    .await
                    .expect("connect"),
            ),
            Addr::Unix(path) => RawStream::Unix(
                tokio::net::UnixStream::connect(path)
                    .await
                    .expect("connect"),
            ),
        };
        Self { stream }
    }

    /// Connects and sends a valid handshake.
    pub async fn connect_handshaken(addr: &Addr) -> Self {
        let mut client = Self::connect(addr).await;
        let hello = Msg::Handshake(Uid::new("raw-client"))
            .to_frame()
            .expect("encode");
        client.write(&hello).await;
        client
    }

    /// Writes raw bytes.
    pub async fn write(&mut self, bytes: &[u8]) {
        match &mut self.stream {
            RawStream::Tcp(s) => s.write_all(bytes).await,
            RawStream::Unix(s) => s.write_all(bytes).await,
        }
        .expect("write");
    }

    /// Writes `body` as one well-framed frame.
    pub async fn write_frame(&mut self, body: &[u8]) {
        let mut buf = BytesMut::new();
        put_frame(body, &mut buf).expect("frame");
        self.write(&buf).await;
    }

    /// Closes the write direction (the server sees EOF).
    pub async fn shutdown_write(&mut self) {
        match &mut self.stream {
            RawStream::Tcp(s) => s.shutdown().await,
            RawStream::Unix(s) => s.shutdown().await,
        }
        .expect("shutdown");
    }

    /// Reads until the server closes the connection, returning everything it sent.
    pub async fn read_to_end(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let read = async {
            match &mut self.stream {
                RawStream::Tcp(s) => s.read_to_end(&mut out).await,
                RawStream::Unix(s) => s.read_to_end(&mut out).await,
            }
        };
        // A reset is also the server closing on us.
        let _ = within("the server to close the connection", read).await;
        out
    }
}

/// The environment variable that turns a test binary into a fixture actor (see
/// [`FixtureActor`]).
pub const FIXTURE_LISTEN_ENV: &str = "ACTOR_TEST_FIXTURE_LISTEN";
/// The namespaces the fixture actor enables (comma-separated).
pub const FIXTURE_ENABLE_ENV: &str = "ACTOR_TEST_FIXTURE_ENABLE";
/// The fixture actor's stream window, if not the default.
pub const FIXTURE_WINDOW_ENV: &str = "ACTOR_TEST_FIXTURE_WINDOW";

/// A second process serving the remote functions of the test binary itself.
///
/// The test binary is started again with [`FIXTURE_LISTEN_ENV`] set, running only the test
/// named `entry`, which must call [`serve_fixture_if_asked`] first thing: in the child it serves
/// until cancelled; in the normal test run it returns at once. The child is killed when this
/// value drops, so a failing test leaves no process behind.
pub struct FixtureActor {
    /// The child process.
    pub child: tokio::process::Child,
    /// Where it listens.
    pub addr: Addr,
    _dir: tempfile::TempDir,
}

impl FixtureActor {
    /// Starts the fixture actor on `transport`, enabling `namespaces`.
    pub async fn start(entry: &str, transport: Transport, namespaces: &[&str]) -> Self {
        Self::start_with_window(entry, transport, namespaces, actor::DEFAULT_STREAM_WINDOW).await
    }

    /// Starts the fixture actor with a stream window of `window` items.
    pub async fn start_with_window(
        entry: &str,
        transport: Transport,
        namespaces: &[&str],
        window: usize,
    ) -> Self {
        use tokio::io::AsyncBufReadExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let listen = match transport {
            Transport::Tcp => Addr::tcp("127.0.0.1", 0),
            Transport::Unix => Addr::unix(dir.path().join("fixture.sock")),
        };
        let exe = std::env::current_exe().expect("test binary path");
        let mut child = tokio::process::Command::new(exe)
            .args(["--exact", entry, "--nocapture", "--test-threads=1"])
            .env(FIXTURE_LISTEN_ENV, listen.to_string())
            .env(FIXTURE_ENABLE_ENV, namespaces.join(","))
            .env(FIXTURE_WINDOW_ENV, window.to_string())
            // Panics are part of some tests: their message is enough.
            .env("RUST_BACKTRACE", "0")
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn the fixture actor");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let addr = within("the fixture actor to listen", async {
            while let Some(line) = lines.next_line().await.expect("read stdout") {
                // libtest may have printed the test's name on the same line.
                if let Some((_, url)) = line.split_once("listening on ") {
                    return url.trim().parse::<Addr>().expect("a listening URL");
                }
            }
            panic!("the fixture actor exited before listening");
        })
        .await;
        // Keep draining its stdout so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            child,
            addr,
            _dir: dir,
        }
    }

    /// A portal to it.
    pub async fn portal(&self) -> actor::Portal {
        // Under its own identity: `actor::connect` outside an actor would borrow whichever
        // actor happens to be alone in this test process (and die with it).
        within(
            "connecting to the fixture",
            actor::connect_as("fixture-client", &self.addr),
        )
        .await
        .expect("connect to the fixture actor")
    }
}

/// In a fixture child (see [`FixtureActor`]), serves this binary's remote functions until
/// cancelled and exits the process; otherwise returns at once.
pub fn serve_fixture_if_asked() {
    let Ok(url) = std::env::var(FIXTURE_LISTEN_ENV) else {
        return;
    };
    let addr: Addr = url.parse().expect("fixture address");
    let namespaces = std::env::var(FIXTURE_ENABLE_ENV).unwrap_or_default();
    let runtime = actor::RuntimeFlavor::default().build().expect("runtime");
    runtime.block_on(async move {
        let window = std::env::var(FIXTURE_WINDOW_ENV)
            .ok()
            .and_then(|w| w.parse().ok())
            .unwrap_or(actor::DEFAULT_STREAM_WINDOW);
        let mut builder = actor::Actor::builder("fixture")
            .listen(addr)
            .stream_window(window);
        for ns in namespaces.split(',').filter(|ns| !ns.is_empty()) {
            builder = builder.enable(ns);
        }
        let actor = builder.start().await.expect("fixture actor starts");
        for addr in actor.addrs() {
            println!("listening on {addr}");
        }
        actor.wait().await;
    });
    std::process::exit(0);
}

/// Sends `signal` (e.g. `-KILL`, `-STOP`) to process `pid` with kill(1), failing the test if
/// it cannot.
pub fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {signal} {pid} failed: {status}");
}

/// Whether `pid` is a live process (a zombie waiting to be reaped counts as gone).
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next());
            !matches!(state, Some('Z' | 'X'))
        }
        Err(_) => false,
    }
}

/// The trace text of every error, each of which must be a remote error (sorted).
pub fn remote_traces(errors: &[actor::Error]) -> Vec<String> {
    let mut traces: Vec<String> = errors
        .iter()
        .map(|e| match e.as_remote() {
            Some(remote) => remote.tb_str.clone(),
            None => panic!("not a remote error: {e:?} (all: {errors:?})"),
        })
        .collect();
    traces.sort();
    traces
}

/// Runs the `#[ignore]`d test `name` of this same test binary in a new process with `envs`
/// set (for settings a root reads before its test body runs), and fails unless it passes
/// within `limit`.
pub fn run_ignored_test_with_env(name: &str, envs: &[(&str, &std::ffi::OsStr)], limit: Duration) {
    let mut run = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--ignored", "--nocapture"])
        .envs(envs.iter().copied())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + limit;
    // Bounded polling of the exit: a std child has no async wait here.
    let status = loop {
        if let Some(status) = run.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = run.kill();
            let _ = run.wait();
            panic!("{name} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{name} failed: {status}");
}
