//! The minimal baseline runtime the targets compare against: tokio, `LengthDelimitedCodec` frames
//! of rmp-serde messages, a call id per message and a pending-call map, nothing else (no
//! handshake, no flow control beyond the socket's, no cancellation, no registry).
//!
//! The server is this program re-launched with `--serve baseline`: a real separate process on a
//! current-thread runtime, one task per call, one writer task per connection that writes every
//! queued frame before flushing. The [`Client`] (in the bench's process) works the same way: a
//! writer task, a reader task routing replies by call id to the caller's queue.

use crate::BoxResult;
use std::{
    collections::HashMap,
    io,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, TcpStream, UnixListener, UnixStream},
    sync::mpsc,
    task::JoinHandle,
};
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

/// Frames queued for a connection's writer at most (a bound, so a fast stream waits for the
/// socket instead of filling memory).
const WRITE_QUEUE: usize = 128;

/// Every message of the protocol, both directions; `id` is the call it belongs to.
#[derive(Debug, Serialize, Deserialize)]
enum Msg {
    /// Call `echo(x)`; answered by a `Value`.
    Echo { id: u64, x: u64 },
    /// Stream `0..n` as `Value`s, then `Stop`.
    Count { id: u64, n: u64 },
    /// Stream `n` blobs of `size` bytes `0xab` as `Blob`s, then `Stop`.
    Blob { id: u64, n: u64, size: u64 },
    /// Open a context echoing every `Value` sent to it, until the caller's `Stop` (answered
    /// with a `Stop`).
    Context { id: u64 },
    /// A return value or a stream item.
    Value { id: u64, x: u64 },
    /// A byte blob (msgpack bin).
    Bytes { id: u64, data: Bytes },
    /// The end of a stream.
    Stop { id: u64 },
}

impl Msg {
    fn id(&self) -> u64 {
        match self {
            Self::Echo { id, .. }
            | Self::Count { id, .. }
            | Self::Blob { id, .. }
            | Self::Context { id }
            | Self::Value { id, .. }
            | Self::Bytes { id, .. }
            | Self::Stop { id } => *id,
        }
    }

    fn encode(&self) -> io::Result<Bytes> {
        rmp_serde::to_vec(self)
            .map(Bytes::from)
            .map_err(io::Error::other)
    }

    fn decode(frame: &[u8]) -> io::Result<Self> {
        rmp_serde::from_slice(frame).map_err(io::Error::other)
    }
}

/// Splits a connection into its frame reader and a writer task fed through the returned queue.
fn frames<S>(
    stream: S,
) -> (
    FramedRead<tokio::io::ReadHalf<S>, LengthDelimitedCodec>,
    Writer,
)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (read, write) = tokio::io::split(stream);
    let (queue, mut frames) = mpsc::channel::<Bytes>(WRITE_QUEUE);
    let mut sink = FramedWrite::new(write, LengthDelimitedCodec::new());
    let task = tokio::spawn(async move {
        while let Some(frame) = frames.recv().await {
            sink.feed(frame).await?;
            while let Ok(frame) = frames.try_recv() {
                sink.feed(frame).await?;
            }
            SinkExt::<Bytes>::flush(&mut sink).await?;
        }
        Ok::<_, io::Error>(())
    });
    let reader = FramedRead::new(read, LengthDelimitedCodec::new());
    (reader, Writer { queue, task })
}

/// The sending side of a connection.
struct Writer {
    queue: mpsc::Sender<Bytes>,
    task: JoinHandle<io::Result<()>>,
}

/// Queues `msg` on a connection's writer.
async fn send(queue: &mpsc::Sender<Bytes>, msg: &Msg) -> io::Result<()> {
    queue
        .send(msg.encode()?)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the connection is closed"))
}

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------

/// Serves on `listen` (`tcp://HOST:PORT` or `unix:///PATH`) until the process is stopped;
/// prints `listening on ADDR` once it accepts connections.
pub(crate) async fn serve(listen: &str) -> BoxResult<()> {
    if let Some(path) = listen.strip_prefix("unix://") {
        // A stale file from a killed run would make the bind fail.
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        println!("listening on unix://{path}");
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::spawn(serve_connection(stream));
        }
    } else if let Some(host_port) = listen.strip_prefix("tcp://") {
        let listener = TcpListener::bind(host_port).await?;
        println!("listening on tcp://{}", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            tokio::spawn(serve_connection(stream));
        }
    } else {
        Err(format!("{listen:?}: expected tcp://HOST:PORT or unix:///PATH").into())
    }
}

/// One connection: a task per call; context items routed by call id.
async fn serve_connection<S>(stream: S) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, writer) = frames(stream);
    let mut contexts: HashMap<u64, mpsc::UnboundedSender<Msg>> = HashMap::new();
    while let Some(frame) = reader.next().await {
        let msg = Msg::decode(&frame?)?;
        let queue = writer.queue.clone();
        match msg {
            Msg::Echo { id, x } => {
                tokio::spawn(async move { send(&queue, &Msg::Value { id, x }).await });
            }
            Msg::Count { id, n } => {
                tokio::spawn(async move {
                    for x in 0..n {
                        send(&queue, &Msg::Value { id, x }).await?;
                    }
                    send(&queue, &Msg::Stop { id }).await
                });
            }
            Msg::Blob { id, n, size } => {
                let data = Bytes::from(vec![0xab_u8; usize::try_from(size).unwrap_or(0)]);
                tokio::spawn(async move {
                    for _ in 0..n {
                        let data = data.clone();
                        send(&queue, &Msg::Bytes { id, data }).await?;
                    }
                    send(&queue, &Msg::Stop { id }).await
                });
            }
            Msg::Context { id } => {
                let (items, mut inbox) = mpsc::unbounded_channel();
                contexts.insert(id, items);
                tokio::spawn(async move {
                    while let Some(msg) = inbox.recv().await {
                        match msg {
                            Msg::Value { x, .. } => send(&queue, &Msg::Value { id, x }).await?,
                            _ => break,
                        }
                    }
                    send(&queue, &Msg::Stop { id }).await
                });
            }
            Msg::Value { id, .. } | Msg::Stop { id } => {
                let stop = matches!(msg, Msg::Stop { .. });
                if let Some(context) = contexts.get(&id) {
                    let _ = context.send(msg);
                }
                if stop {
                    contexts.remove(&id);
                }
            }
            Msg::Bytes { .. } => {}
        }
    }
    drop(writer.queue);
    writer.task.await.map_err(io::Error::other)?
}

// ---------------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------------

/// Calls in flight: call id → the caller's queue of replies.
type Pending = Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Msg>>>>;

/// A connection to a baseline server, shareable by concurrent callers.
pub(crate) struct Client {
    queue: mpsc::Sender<Bytes>,
    pending: Pending,
    next_id: AtomicU64,
    tasks: [JoinHandle<io::Result<()>>; 2],
}

impl Drop for Client {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// One call's replies; leaves the pending-call map when dropped.
struct Call<'a> {
    id: u64,
    replies: mpsc::UnboundedReceiver<Msg>,
    client: &'a Client,
}

impl Drop for Call<'_> {
    fn drop(&mut self) {
        if let Ok(mut pending) = self.client.pending.lock() {
            pending.remove(&self.id);
        }
    }
}

impl Call<'_> {
    async fn recv(&mut self) -> BoxResult<Msg> {
        self.replies
            .recv()
            .await
            .ok_or_else(|| format!("call {}: the connection ended", self.id).into())
    }

    async fn send(&self, msg: &Msg) -> BoxResult<()> {
        Ok(send(&self.client.queue, msg).await?)
    }
}

impl Client {
    /// Connects to `addr` (`tcp://HOST:PORT` or `unix:///PATH`).
    pub(crate) async fn connect(addr: &str) -> BoxResult<Self> {
        if let Some(path) = addr.strip_prefix("unix://") {
            Ok(Self::start(UnixStream::connect(path).await?))
        } else if let Some(host_port) = addr.strip_prefix("tcp://") {
            let stream = TcpStream::connect(host_port).await?;
            stream.set_nodelay(true)?;
            Ok(Self::start(stream))
        } else {
            Err(format!("{addr:?}: expected tcp://HOST:PORT or unix:///PATH").into())
        }
    }

    fn start<S: AsyncRead + AsyncWrite + Send + 'static>(stream: S) -> Self {
        let (mut reader, writer) = frames(stream);
        let pending = Pending::default();
        let routes = pending.clone();
        let read_task = tokio::spawn(async move {
            let routed = async {
                while let Some(frame) = reader.next().await {
                    let msg = Msg::decode(&frame?)?;
                    if let Ok(pending) = routes.lock() {
                        if let Some(caller) = pending.get(&msg.id()) {
                            let _ = caller.send(msg);
                        }
                    }
                }
                Ok(())
            }
            .await;
            // Wakes every caller still waiting: their calls end with an error.
            if let Ok(mut pending) = routes.lock() {
                pending.clear();
            }
            routed
        });
        Self {
            queue: writer.queue,
            pending,
            next_id: AtomicU64::new(0),
            tasks: [read_task, writer.task],
        }
    }

    /// Registers a new call and sends its first message.
    async fn call(&self, first: impl FnOnce(u64) -> Msg) -> BoxResult<Call<'_>> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (replies_to, replies) = mpsc::unbounded_channel();
        self.pending
            .lock()
            .map_err(|_| "the pending-call map is poisoned")?
            .insert(id, replies_to);
        let call = Call {
            id,
            replies,
            client: self,
        };
        call.send(&first(id)).await?;
        Ok(call)
    }

    /// `echo(x)`.
    pub(crate) async fn echo(&self, x: u64) -> BoxResult<u64> {
        let mut call = self.call(|id| Msg::Echo { id, x }).await?;
        match call.recv().await? {
            Msg::Value { x, .. } => Ok(x),
            other => Err(format!("echo({x}) answered {other:?}").into()),
        }
    }

    /// Streams `0..n`, handing each item to `each`.
    pub(crate) async fn count(
        &self,
        n: u64,
        mut each: impl FnMut(u64) -> BoxResult<()>,
    ) -> BoxResult<()> {
        let mut call = self.call(|id| Msg::Count { id, n }).await?;
        loop {
            match call.recv().await? {
                Msg::Value { x, .. } => each(x)?,
                Msg::Stop { .. } => return Ok(()),
                other => return Err(format!("count: unexpected {other:?}").into()),
            }
        }
    }

    /// Streams `n` blobs of `size` bytes, handing each to `each`.
    pub(crate) async fn blobs(
        &self,
        n: u64,
        size: u64,
        mut each: impl FnMut(Bytes) -> BoxResult<()>,
    ) -> BoxResult<()> {
        let mut call = self.call(|id| Msg::Blob { id, n, size }).await?;
        loop {
            match call.recv().await? {
                Msg::Bytes { data, .. } => each(data)?,
                Msg::Stop { .. } => return Ok(()),
                other => return Err(format!("blob: unexpected {other:?}").into()),
            }
        }
    }

    /// Opens an echoing context, sends `rounds` values one at a time, each waiting for its
    /// echo (checked), then closes it; the time of the round trips alone.
    pub(crate) async fn ping_pong(&self, rounds: u64) -> BoxResult<std::time::Duration> {
        let mut call = self.call(|id| Msg::Context { id }).await?;
        let id = call.id;
        let start = std::time::Instant::now();
        for x in 0..rounds {
            call.send(&Msg::Value { id, x }).await?;
            match call.recv().await? {
                Msg::Value { x: got, .. } if got == x => {}
                other => return Err(format!("round {x} answered {other:?}").into()),
            }
        }
        let elapsed = start.elapsed();
        call.send(&Msg::Stop { id }).await?;
        match call.recv().await? {
            Msg::Stop { .. } => Ok(elapsed),
            other => Err(format!("closing the context answered {other:?}").into()),
        }
    }
}
