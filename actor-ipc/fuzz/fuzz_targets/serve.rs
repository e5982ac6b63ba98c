//! Fuzzes a SERVING actor end to end: one real actor (the `actor` runtime, as a program would
//! start it with `Actor::builder`) serves a small namespace `demo` on a Unix socket; every input
//! becomes a sequence of bytes written to it over a fresh connection, which is then half-closed
//! (and read until the actor closes it) or dropped.
//!
//! A finding is any panic (libfuzzer-sys aborts on a panic in any thread or task, the runtime's
//! own tasks included) or a failed check:
//!
//! - after a half-close, the actor closes its side within [`CLOSE_BOUND`] (it never holds a
//!   connection open once the client has gone, whatever it was sent);
//! - after every input, a fresh well-behaved client connects, handshakes and gets the right
//!   answer to `demo.add` within [`ANSWER_BOUND`] (the actor survives every malformed sequence);
//! - after every input, no call of the input's is still running within [`CLOSE_BOUND`] (calls
//!   are cancelled when their connection ends, whatever state they were in);
//! - an input that stopped the actor (a `self.cancel` call is a legitimate way) lets it tear
//!   down within [`TEARDOWN_BOUND`]; the harness then starts a new one.
//!
//! # Input format
//!
//! Byte 0 holds flags:
//!
//! | bits | meaning |
//! | --- | --- |
//! | 0 | write a valid handshake frame first (so the fuzzer starts past the handshake) |
//! | 1 | 0: the rest is written as raw bytes; 1: the rest is a token sequence (below) |
//! | 2 | 0: half-close, then read until the actor closes; 1: drop the socket once written |
//! | 3-5 | write in pieces of 0 (all at once), 1, 2, 3, 5, 8, 13 or 64 bytes, letting the actor run between pieces |
//!
//! Tokens, each starting with a byte `t`:
//!
//! - `t < 0xE0`: a frame whose body is the next `t` bytes;
//! - `0xE0`: a frame whose body length is the next two bytes (u16 LE), then the body;
//! - `0xE1`: unframed raw bytes: a length byte, then the bytes (headers of the fuzzer's own);
//! - `0xE2..=0xFF`: a valid message from [`template`], index `t - 0xE2`, with the next byte as
//!   its parameter (a call id `c0`..`c7` and a small number).
//!
//! Bodies and raw runs are cut short where the input ends.
#![no_main]

use std::{
    sync::{
        LazyLock, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use actor::{Actor, ActorHandle, Addr, Context};
use actor_ipc::{CallKind, Channel, ChannelConfig, Cmd, ErrorInfo, Msg, Payload, Uid, Value};
use futures::{Stream, StreamExt};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long the actor may take to close a connection the client half-closed, and to end the
/// calls of a connection that ended. Normal inputs take well under a millisecond; the bound is
/// generous because the machine may be loaded.
const CLOSE_BOUND: Duration = Duration::from_secs(10);
/// How long a well-behaved client waits for its answer.
const ANSWER_BOUND: Duration = Duration::from_secs(10);
/// How long a stopped actor may take to tear down (its grace periods are 2 s each).
const TEARDOWN_BOUND: Duration = Duration::from_secs(20);
/// How long writing one input may take (the actor reads whatever it is sent).
const WRITE_BOUND: Duration = Duration::from_secs(10);
/// The actor's frame limit: small, so "too large" is reachable by small inputs.
const MAX_FRAME_LEN: usize = 64 * 1024;
/// The longest stream `count` produces.
const MAX_COUNT: u64 = 64;

// ---- The served namespace ---------------------------------------------------------------

/// Request/response.
#[actor::remote(ns = "demo")]
async fn add(a: i64, b: i64) -> i64 {
    a.wrapping_add(b)
}

/// A stream of `0..n` (at most [`MAX_COUNT`] items).
#[actor::remote(ns = "demo")]
fn count(n: u64) -> impl Stream<Item = u64> {
    futures::stream::iter(0..n.min(MAX_COUNT))
}

/// A context: `started(start)`, then echoes its stream until the caller ends it.
#[actor::remote(ns = "demo", started = i64)]
async fn echo_ctx(ctx: Context, start: i64) -> actor::Result<String> {
    ctx.started(start).await?;
    let mut stream = ctx.open_stream::<Value>().await?;
    while let Some(item) = stream.next().await {
        stream.send(item?).await?;
    }
    Ok("done".into())
}

/// Never returns: runs until cancelled.
#[actor::remote(ns = "demo")]
async fn sleep_forever() {
    std::future::pending::<()>().await
}

/// A context that, once started, waits for its cancellation.
#[actor::remote(ns = "demo")]
async fn wait_ctx(ctx: Context) -> actor::Result<()> {
    ctx.started(true).await?;
    ctx.cancelled().await;
    Ok(())
}

// ---- The harness ------------------------------------------------------------------------

/// The runtime (built once) and the actor it serves.
struct Harness {
    runtime: tokio::runtime::Runtime,
    live: Mutex<Option<Live>>,
}

/// A serving actor and where it listens.
struct Live {
    handle: ActorHandle,
    addr: Addr,
}

/// Numbers the actors started, for their socket paths.
static STARTED: AtomicU64 = AtomicU64::new(0);

static HARNESS: LazyLock<Harness> = LazyLock::new(|| {
    // libFuzzer's `main` is not Rust's: SIGPIPE keeps its default action (kill the process),
    // which a real actor program (Rust's `main` ignores it) never has. Writing to a peer that
    // went away must be an EPIPE error here too, as in every real actor.
    // SAFETY: setting a signal's disposition to SIG_IGN before any other thread runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    // libFuzzer ends the process with `exit`: remove the sockets' directory then.
    extern "C" fn remove_socket_dir() {
        let _ = std::fs::remove_dir_all(socket_dir());
    }
    // SAFETY: registers a plain function that touches nothing but the file system.
    unsafe {
        libc::atexit(remove_socket_dir);
    }
    let runtime = actor::RuntimeFlavor::CurrentThread
        .build()
        .expect("a tokio runtime for the harness");
    let live = runtime.block_on(start_actor());
    Harness {
        runtime,
        live: Mutex::new(Some(live)),
    }
});

/// Where this process's actors listen.
fn socket_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("actor-fuzz-serve-{}", std::process::id()))
}

async fn start_actor() -> Live {
    let n = STARTED.fetch_add(1, Ordering::Relaxed);
    let dir = socket_dir();
    std::fs::create_dir_all(&dir).expect("a directory for the actor's socket");
    let path = dir.join(format!("actor-{n}.sock"));
    let _ = std::fs::remove_file(&path);
    let config = ChannelConfig {
        max_frame_len: MAX_FRAME_LEN,
        handshake_timeout: Duration::from_secs(1),
        connect_timeout: Duration::from_secs(1),
        send_queue_frames: 64,
        frame_stall_timeout: Duration::from_secs(1),
        ..ChannelConfig::default()
    };
    let handle = Actor::builder("fuzzed")
        .listen(Addr::unix(&path))
        .enable("demo")
        .channel_config(config)
        .stream_window(8)
        .start()
        .await
        .expect("the fuzzed actor starts");
    let addr = handle.addrs()[0].clone();
    Live { handle, addr }
}

fuzz_target!(|data: &[u8]| {
    let harness = &*HARNESS;
    let mut live = harness.live.lock().unwrap_or_else(|e| e.into_inner());
    let current = live.take().expect("an actor between inputs");
    *live = Some(harness.runtime.block_on(one_input(current, data)));
});

/// Runs one input against the actor; returns the actor to use next (a new one if this input
/// stopped it).
async fn one_input(live: Live, data: &[u8]) -> Live {
    let plan = Plan::parse(data);
    exchange(&live.addr, &plan).await;

    let live = if live.handle.cancellation_token().is_cancelled() {
        // The input stopped the actor (e.g. a `self.cancel` call): legitimate. It must tear
        // down in bounded time; then a new one serves the next input.
        let uid = live.handle.uid().clone();
        if tokio::time::timeout(TEARDOWN_BOUND, live.handle.wait())
            .await
            .is_err()
        {
            panic!(
                "the actor {uid} was stopped by the input but did not tear down within {TEARDOWN_BOUND:?}"
            );
        }
        start_actor().await
    } else {
        live
    };

    well_behaved_call(&live.addr, data.len() as i64).await;
    calls_end(&live.handle).await;
    live
}

/// How one input is written.
struct Plan {
    handshake: bool,
    drop_at_once: bool,
    chunk: usize,
    bytes: Vec<u8>,
}

impl Plan {
    fn parse(data: &[u8]) -> Self {
        let flags = data.first().copied().unwrap_or(0);
        let rest = data.get(1..).unwrap_or(&[]);
        let bytes = if flags & 0b10 == 0 {
            rest.to_vec()
        } else {
            tokens(rest)
        };
        Self {
            handshake: flags & 0b1 != 0,
            drop_at_once: flags & 0b100 != 0,
            chunk: [0, 1, 2, 3, 5, 8, 13, 64][usize::from((flags >> 3) & 0b111)],
            bytes,
        }
    }
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

/// Turns a token sequence into the bytes to write.
fn tokens(mut rest: &[u8]) -> Vec<u8> {
    fn take<'a>(rest: &mut &'a [u8], n: usize) -> &'a [u8] {
        let (head, tail) = rest.split_at(n.min(rest.len()));
        *rest = tail;
        head
    }
    let mut out = Vec::new();
    while let Some((&t, tail)) = rest.split_first() {
        rest = tail;
        match t {
            0..0xE0 => out.extend(frame(take(&mut rest, usize::from(t)))),
            0xE0 => {
                let len = match take(&mut rest, 2) {
                    [lo, hi] => usize::from(u16::from_le_bytes([*lo, *hi])),
                    [lo] => usize::from(*lo),
                    _ => 0,
                };
                out.extend(frame(take(&mut rest, len)));
            }
            0xE1 => {
                let len = take(&mut rest, 1).first().copied().unwrap_or(0);
                out.extend_from_slice(take(&mut rest, usize::from(len)));
            }
            _ => {
                let param = take(&mut rest, 1).first().copied().unwrap_or(0);
                out.extend_from_slice(&template(t - 0xE2, param));
            }
        }
    }
    out
}

/// The uid the fuzzed client handshakes with and calls as.
fn fuzz_uid() -> Uid {
    Uid {
        name: "fuzz".into(),
        uuid: "7d3c2b1a-0000-4000-8000-000000000001".into(),
    }
}

fn map(entries: &[(&str, Value)]) -> Value {
    Value::Map(
        entries
            .iter()
            .map(|(k, v)| (Value::from(*k), v.clone()))
            .collect(),
    )
}

fn cmd(ns: &str, func: &str, kwargs: Value, cid: String) -> Msg {
    Msg::Cmd(Box::new(Cmd {
        ns: ns.into(),
        func: func.into(),
        kwargs: Payload::from_value(&kwargs),
        caller: fuzz_uid(),
        cid,
        trace: None,
    }))
}

/// A valid message (one frame) of the protocol, `index` choosing which, `param` its call id
/// (`c0`..`c7`, from the low 3 bits) and a small number (the whole byte).
fn template(index: u8, param: u8) -> Vec<u8> {
    let cid = format!("c{}", param & 7);
    let n = i64::from(param);
    let msg = match index % 18 {
        0 => cmd("demo", "add", map(&[("a", n.into()), ("b", 1.into())]), cid),
        1 => cmd("demo", "count", map(&[("n", (n % 40).into())]), cid),
        2 => cmd("demo", "echo_ctx", map(&[("start", n.into())]), cid),
        3 => cmd("demo", "sleep_forever", map(&[]), cid),
        4 => cmd("demo", "wait_ctx", map(&[]), cid),
        // Cancels call `c<param>` (the cancel itself has its own cid).
        5 => cmd(
            "self",
            "_cancel_task",
            map(&[("cid", cid.as_str().into())]),
            format!("k{param}"),
        ),
        // A context stream item, and the end of a stream, from the caller.
        6 => Msg::Yield {
            cid,
            value: Payload::from_value(&n.into()),
        },
        7 => Msg::Stop { cid },
        8 => cmd(
            "actor.runtime",
            "flow_control",
            map(&[("window", (n % 20).into())]),
            cid,
        ),
        9 => Msg::Credit {
            cid,
            credit: u64::from(param % 20),
        },
        10 => Msg::Sentinel,
        11 => Msg::Handshake(fuzz_uid()),
        // Wrong arguments (a TypeError), an unknown function, a namespace not enabled.
        12 => cmd("demo", "add", map(&[("a", "x".into())]), cid),
        13 => cmd("demo", "nope", map(&[]), cid),
        14 => cmd("secret", "add", map(&[]), cid),
        // Replies to calls the actor never made.
        15 => Msg::Return {
            cid,
            value: Payload::from_value(&n.into()),
        },
        16 => Msg::Error {
            cid: Some(cid),
            error: Box::new(ErrorInfo::new("ValueError", "fuzz")),
        },
        // The introspection calls.
        _ => cmd(
            "actor.runtime",
            if param & 8 == 0 {
                "services"
            } else {
                "thread_runner"
            },
            map(&[]),
            cid,
        ),
    };
    msg.to_frame().expect("a template encodes").to_vec()
}

/// Connects, writes the plan, then half-closes and reads until the actor closes, or drops
/// the connection.
async fn exchange(addr: &Addr, plan: &Plan) {
    let Addr::Unix(path) = addr else {
        unreachable!("the harness listens on a Unix socket")
    };
    let stream = match tokio::net::UnixStream::connect(path).await {
        Ok(stream) => stream,
        Err(e) => panic!("cannot connect to the actor at {addr}: {e}"),
    };
    let (mut read, mut write) = stream.into_split();
    let mut bytes = Vec::with_capacity(plan.bytes.len() + 64);
    if plan.handshake {
        let hello = Msg::Handshake(fuzz_uid()).to_frame().expect("a handshake");
        bytes.extend_from_slice(&hello);
    }
    bytes.extend_from_slice(&plan.bytes);

    // Read while writing: the actor's replies must not fill the socket and stall both sides.
    let reader = async {
        let mut sink = vec![0_u8; 64 * 1024];
        let mut seen = Vec::new();
        loop {
            match read.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) if *DEBUG => seen.extend_from_slice(&sink[..n]),
                Ok(_) => {}
            }
        }
        if *DEBUG {
            show_replies(seen);
        }
    };
    let writer = async {
        let chunk = if plan.chunk == 0 {
            bytes.len().max(1)
        } else {
            plan.chunk
        };
        for piece in bytes.chunks(chunk) {
            if write.write_all(piece).await.is_err() {
                return; // the actor closed: fine, whatever it was sent
            }
            if plan.chunk != 0 {
                tokio::task::yield_now().await;
            }
        }
    };
    // The reader runs while the input is written, also when the socket is then dropped: a
    // client that never reads gets backpressure (the actor stops reading once its replies
    // fill the socket), which is right, not a finding.
    tokio::pin!(reader);
    let written = tokio::select! {
        written = tokio::time::timeout(WRITE_BOUND, writer) => written,
        () = &mut reader => return, // the actor closed before all was written
    };
    if written.is_err() {
        panic!(
            "writing {} bytes to the actor took over {WRITE_BOUND:?} while reading its replies",
            bytes.len()
        );
    }
    if plan.drop_at_once {
        return; // both halves dropped: the connection is closed
    }
    let _ = write.shutdown().await;
    drop(write);
    if tokio::time::timeout(CLOSE_BOUND, reader).await.is_err() {
        panic!(
            "the actor held the connection open over {CLOSE_BOUND:?} after the client \
             half-closed it ({} bytes sent)",
            bytes.len()
        );
    }
}

/// `SERVE_DEBUG=1` prints what the actor answered to each input (to check seeds by hand).
static DEBUG: LazyLock<bool> = LazyLock::new(|| std::env::var_os("SERVE_DEBUG").is_some());

fn show_replies(bytes: Vec<u8>) {
    use tokio_util::codec::Decoder;
    let mut codec = actor_ipc::FrameCodec::new(usize::MAX);
    let mut buf = bytes::BytesMut::from(&bytes[..]);
    eprintln!("-- the actor answered {} bytes:", bytes.len());
    while let Ok(Some(body)) = codec.decode(&mut buf) {
        match Msg::decode(body) {
            Ok(msg) => eprintln!("   {msg:?}"),
            Err(e) => eprintln!("   undecodable: {e}"),
        }
    }
}

/// A fresh client calls `demo.add` and must get the right answer.
async fn well_behaved_call(addr: &Addr, x: i64) {
    let check = async {
        let config = ChannelConfig::default();
        let mut channel = Channel::connect(addr, &Uid::new("checker"), &config)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        channel
            .send(&cmd(
                "demo",
                "add",
                map(&[("a", x.into()), ("b", 1.into())]),
                "chk".into(),
            ))
            .await
            .map_err(|e| format!("send: {e}"))?;
        let mut replies = Vec::new();
        loop {
            match channel.recv().await {
                Ok(Some(Msg::FuncType { cid, kind })) if cid == "chk" => {
                    if kind != CallKind::AsyncFunc {
                        return Err(format!("functype {kind:?} for add"));
                    }
                }
                Ok(Some(Msg::Return { cid, value })) if cid == "chk" => {
                    let got: i64 = value.decode().map_err(|e| format!("result: {e}"))?;
                    if got != x + 1 {
                        return Err(format!("add({x}, 1) returned {got}"));
                    }
                    break;
                }
                Ok(Some(msg)) => replies.push(msg),
                Ok(None) => return Err(format!("closed before the answer; got {replies:?}")),
                Err(e) => return Err(format!("recv: {e}; got {replies:?}")),
            }
        }
        let _ = channel.send(&Msg::Sentinel).await;
        Ok::<(), String>(())
    };
    match tokio::time::timeout(ANSWER_BOUND, check).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("a well-behaved client got no correct answer: {e}"),
        Err(_) => panic!("a well-behaved client got no answer within {ANSWER_BOUND:?}"),
    }
}

/// Every call the input started ends once its connection has.
async fn calls_end(handle: &ActorHandle) {
    let deadline = tokio::time::Instant::now() + CLOSE_BOUND;
    let mut waited = 0_u32;
    while handle.running_calls("demo") != 0 {
        if tokio::time::Instant::now() > deadline {
            panic!(
                "{} demo calls still running {CLOSE_BOUND:?} after their connection ended",
                handle.running_calls("demo")
            );
        }
        // Let the actor's tasks run first; then poll with a short timer.
        if waited < 64 {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        waited += 1;
    }
}
