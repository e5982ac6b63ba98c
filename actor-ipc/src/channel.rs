//! A connected, handshaken duplex of protocol messages.
//!
//! A [`Channel`] is made by [`Channel::connect`] or, for an accepted connection,
//! [`Channel::handshake`]. It splits into a [`ChannelReader`] (the one place frames are read)
//! and a cloneable [`ChannelSender`]. Every sender feeds one bounded queue drained by the
//! connection's only writer task, so:
//! - frames never interleave: a message is encoded whole before it is queued, and only the
//!   writer touches the socket;
//! - a cancelled sender never leaves half a frame: dropping a `send` future either queued the
//!   whole frame or nothing;
//! - under load the writer takes everything already queued and writes it with one vectored
//!   syscall (small frames were copied back to back as they were queued: see `outbox.rs`);
//! - a full queue makes senders wait: backpressure reaches the code producing messages instead
//!   of memory growing.

use std::{future::Future, io, pin::Pin, sync::Arc, task::Poll, time::Duration};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use tokio::{io::AsyncWriteExt, sync::oneshot};
use tokio_util::codec::{Decoder, FramedRead};

pub use crate::budget::{SendBudget, UNCHARGED_BELOW};
use crate::{
    addr::Addr,
    auth::{self, Role, Secret},
    budget::{Budgets, chargeable},
    error::{
        AuthError, ConnectError, EncodeError, FrameError, HandshakeError, RecvError, SendError,
    },
    frame::{DEFAULT_MAX_FRAME_LEN, FrameCodec},
    msg::{Msg, Uid},
    outbox::{Outbox, Outgoing, TryQueue, run_writer},
    transport::{ReadHalf, Transport, WriteHalf},
};

/// Limits and timeouts of a channel.
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    /// The largest frame body accepted from the peer. Default 16 MiB.
    pub max_frame_len: usize,
    /// How long the peer has to send its handshake. Default 5 s.
    pub handshake_timeout: Duration,
    /// How long connecting may take. Default 5 s.
    pub connect_timeout: Duration,
    /// How many frames may wait for the writer before senders wait. Default 1024.
    pub send_queue_frames: usize,
    /// How long a frame may stall once it has begun: a peer that sends part of a frame (a
    /// header, say) and then nothing more for this long is cut off, so it cannot hold a
    /// connection forever. Time between frames is not limited. Default 30 s.
    pub frame_stall_timeout: Duration,
    /// The tree's shared secret. With one, every connection begins with the challenge-response
    /// of [`crate::auth`] and a peer that cannot prove the same secret is refused before its
    /// handshake; without one (the default) the handshake is tractor 0.1.0a5's, and a peer
    /// asking for authentication is refused with [`AuthError::Required`].
    pub secret: Option<Secret>,
    /// The bytes that may wait for the writer before senders wait (backpressure on a peer
    /// that reads slowly). Default 32 MiB.
    pub send_queue_bytes: usize,
    /// A budget shared by every connection of an actor (an actor sets its own), so many slow
    /// peers together cannot pin unbounded memory either.
    pub shared_send_budget: Option<SendBudget>,
    /// How long a write may make no progress (the peer reads nothing) before the connection
    /// is given up. Default 30 s.
    pub write_stall_timeout: Duration,
    /// How many connections a listener serves at once; one more is accepted and closed at
    /// once (logged at most 10 times per 10 s), so a flood of connections cannot take every file
    /// descriptor. Default 4096.
    pub max_connections: usize,
    /// Close a connection that carried nothing and had no call running either way for this
    /// long. Default: never. Off by default because tractor 0.1.0a5 keeps a parent's and a
    /// child's connection idle for as long as the child lives, and peers of this runtime are
    /// watched by heartbeats instead (a silent peer is gone within their timeout); set it on
    /// an actor serving untrusted clients.
    pub idle_timeout: Option<Duration>,
    /// Low-latency mode: how long the reader spins (polling the socket, yielding to the
    /// runtime between polls) before it parks to wait for the next frame. `None` (the default)
    /// parks at once. Spinning saves the wake-up of a parked thread (about 50 µs across CPUs
    /// on small VMs) when frames come back to back; it is adaptive, so an idle connection
    /// costs nothing: the reader spins only while frames keep arriving within this time.
    /// Worth it on dedicated cores; it burns CPU the other tasks of a busy machine could use.
    ///
    /// In this mode a sender also writes its frames itself when the connection's writer task
    /// is idle, instead of waking it (one task hop less per message); many concurrent senders
    /// then make a syscall each rather than share one, so it suits latency, not throughput.
    pub spin: Option<Duration>,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        Self {
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            handshake_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            send_queue_frames: 1024,
            frame_stall_timeout: Duration::from_secs(30),
            secret: None,
            send_queue_bytes: 32 * 1024 * 1024,
            shared_send_budget: None,
            write_stall_timeout: Duration::from_secs(30),
            max_connections: 4096,
            idle_timeout: None,
            spin: None,
        }
    }
}

/// In low-latency mode, how long the reader asks its socket directly between letting the
/// other tasks of its thread run.
const SPIN_BURST: Duration = Duration::from_micros(5);

/// How much longer than the spin time a parked wait may last and still count as frames
/// coming quickly (see [`spin_next`]): a wake-up across CPUs costs about 50 µs on small VMs,
/// and a round trip that parked pays it once or twice.
const WAKE_ALLOWANCE: Duration = Duration::from_micros(200);

/// Whether a low-latency reader spins in its next wait, after a wait of `waited` in which it
/// spun (`spun`) or parked at once. Frames that keep coming within the spin time are worth
/// spinning for; after a longer wait (an idle peer) it parks at once until they come quickly
/// again. A wait that parked includes the wake-up itself, so "quickly" then allows for it:
/// otherwise one slow round trip (the peer preempted) would leave a busy connection parking
/// for good, each wake-up making the next wait too long again.
fn spin_next(spun: bool, waited: Duration, spin: Duration) -> bool {
    let quick = if spun { spin } else { spin + WAKE_ALLOWANCE };
    waited < quick
}

/// The largest frame read before the handshake is done (authentication messages and a uid of
/// at most 256 + 64 bytes fit easily).
const HANDSHAKE_FRAME_LIMIT: usize = 4096;

/// A handshaken connection to one peer.
#[derive(Debug)]
pub struct Channel {
    peer: Uid,
    sender: ChannelSender,
    reader: ChannelReader,
}

impl Channel {
    /// Connects to `addr` and handshakes as `local`.
    pub async fn connect(
        addr: &Addr,
        local: &Uid,
        config: &ChannelConfig,
    ) -> Result<Self, ConnectError> {
        let transport = tokio::time::timeout(config.connect_timeout, Transport::connect(addr))
            .await
            .map_err(|_| ConnectError::Timeout {
                addr: addr.clone(),
                after: config.connect_timeout,
            })?
            .map_err(|source| ConnectError::Io {
                addr: addr.clone(),
                source,
            })?;
        Self::handshake_as(transport, local, config, Role::Connecting)
            .await
            .map_err(|source| ConnectError::Handshake {
                addr: addr.clone(),
                source,
            })
    }

    /// Handshakes on a connected stream: sends `local`'s uid, then reads the peer's, without
    /// waiting for the peer to go first. The peer gets `config.handshake_timeout`. With
    /// `config.secret`, the secret is proved both ways first, this side as the accepting one
    /// ([`Channel::connect`] is the connecting one: the proofs are labelled by role).
    pub async fn handshake(
        transport: Transport,
        local: &Uid,
        config: &ChannelConfig,
    ) -> Result<Self, HandshakeError> {
        Self::handshake_as(transport, local, config, Role::Accepting).await
    }

    async fn handshake_as(
        transport: Transport,
        local: &Uid,
        config: &ChannelConfig,
        role: Role,
    ) -> Result<Self, HandshakeError> {
        let binding = transport.accepting_end(role == Role::Accepting);
        let (read, mut write) = transport.into_split();
        // Until the peer is known (authenticated and handshaken), its frames are small: a
        // stranger cannot make this side reserve a large frame's buffer.
        let mut frames = FramedRead::new(
            read,
            FrameCodec::new(HANDSHAKE_FRAME_LIMIT.min(config.max_frame_len)),
        );
        let exchange = async {
            if let Some(secret) = &config.secret {
                match auth::authenticate(secret, role, &binding, &mut frames, &mut write).await {
                    // A probe (connect and close), as without a secret.
                    Err(AuthError::PeerClosed) => {
                        return Err(HandshakeError::ClosedBeforeHandshake);
                    }
                    other => other?,
                }
            }
            let hello = Msg::Handshake(local.clone())
                .to_frame()
                .map_err(|e| HandshakeError::Io(io::Error::other(e)))?;
            write.write_all(&hello).await.map_err(|e| {
                if is_disconnect(&e) {
                    HandshakeError::ClosedBeforeHandshake
                } else {
                    HandshakeError::Io(e)
                }
            })?;
            match frames.next().await {
                None => Err(HandshakeError::ClosedBeforeHandshake),
                Some(Err(FrameError::Io(e))) if is_disconnect(&e) => {
                    Err(HandshakeError::ClosedBeforeHandshake)
                }
                Some(Err(e)) => Err(HandshakeError::Frame(e)),
                Some(Ok(body)) if config.secret.is_none() && auth::is_challenge(&body) => {
                    Err(AuthError::Required.into())
                }
                Some(Ok(body)) => Ok(Msg::decode_handshake(body)?),
            }
        };
        let peer = tokio::time::timeout(config.handshake_timeout, exchange)
            .await
            .map_err(|_| HandshakeError::Timeout(config.handshake_timeout))??;
        frames.decoder_mut().set_max_frame_len(config.max_frame_len);
        let sender = ChannelSender::spawn_writer(write, config, &peer);
        Ok(Self {
            peer: peer.clone(),
            sender,
            reader: ChannelReader {
                frames,
                peer: Arc::new(peer),
                scratch: None,
                skip_confirmations: None,
                stall_timeout: config.frame_stall_timeout,
                spin: config.spin,
                spinning: true,
            },
        })
    }

    /// The peer's uid, from its handshake.
    pub fn peer(&self) -> &Uid {
        &self.peer
    }

    /// A handle for sending on this channel (cheap to clone).
    pub fn sender(&self) -> &ChannelSender {
        &self.sender
    }

    /// Sends one message. See [`ChannelSender::send`].
    pub async fn send(&self, msg: &Msg) -> Result<(), SendError> {
        self.sender.send(msg).await
    }

    /// Receives the next message. See [`ChannelReader::recv`].
    pub async fn recv(&mut self) -> Result<Option<Msg>, RecvError> {
        self.reader.recv().await
    }

    /// Splits into the sending handle and the reader, to use from different tasks.
    pub fn into_split(self) -> (ChannelSender, ChannelReader) {
        (self.sender, self.reader)
    }
}

/// Whether an I/O error just means the peer went away.
pub(crate) fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
    )
}

/// The reading side of a channel.
#[derive(Debug)]
pub struct ChannelReader {
    frames: FramedRead<ReadHalf, FrameCodec>,
    stall_timeout: Duration,
    /// Low-latency mode's spin before parking (`ChannelConfig::spin`).
    spin: Option<Duration>,
    /// Whether the last wait ended within the spin time (spin again) or not (park at once).
    spinning: bool,
    /// Shared with every `cmd` the peer sends as itself.
    peer: Arc<Uid>,
    /// Where a spinning reader's polls of the socket land (low-latency mode only).
    scratch: Option<Vec<u8>>,
    /// See [`ChannelReader::skip_confirmations_while`].
    skip_confirmations: Option<Arc<std::sync::atomic::AtomicUsize>>,
}

/// The room a reader makes in its buffer before reading, when less than [`READ_ROOM_LOW`] is
/// left.
const READ_ROOM: usize = 32 * 1024;
/// See [`READ_ROOM`].
const READ_ROOM_LOW: usize = 4 * 1024;

impl ChannelReader {
    /// The next message; `Ok(None)` when the peer closed the connection cleanly between frames.
    ///
    /// An error means the stream can no longer be trusted (an oversized or truncated frame, a
    /// body that is not a protocol message, a socket failure): close the connection. Except
    /// [`DecodeError::BadCmd`](crate::DecodeError::BadCmd): one malformed call in a whole frame,
    /// to answer with an error; the connection is still in step.
    pub async fn recv(&mut self) -> Result<Option<Msg>, RecvError> {
        loop {
            match self.recv_frame().await? {
                None => return Ok(None),
                Some(body) if self.skips(&body) => continue,
                Some(body) => return Ok(Some(Msg::decode_from(body, Some(&self.peer))?)),
            }
        }
    }

    /// Skips, from now on, the `functype asyncfunc` answers to request/response calls while
    /// `open_streams` (this side's open calls of other kinds on the connection) is zero: such
    /// an answer then confirms what its caller expects, and decoding and routing it is waste
    /// (a third of a call's reading). With a stream or context call open, every `functype` is
    /// delivered, so a call of another kind still sees a wrong one. Count a call before its
    /// `cmd` is sent.
    pub fn skip_confirmations_while(&mut self, open_streams: Arc<std::sync::atomic::AtomicUsize>) {
        self.skip_confirmations = Some(open_streams);
    }

    /// Whether `body` is a confirmation to skip.
    fn skips(&self, body: &[u8]) -> bool {
        self.skip_confirmations.as_ref().is_some_and(|open| {
            open.load(std::sync::atomic::Ordering::Acquire) == 0
                && crate::msg::is_asyncfunc_confirmation(body)
        })
    }

    /// Drops the confirmations to skip at the front of the read buffer where they lie: no
    /// frame of their own is split off (and reference-counted) to be looked at.
    fn skip_buffered_confirmations(&mut self) {
        let Some(open) = &self.skip_confirmations else {
            return;
        };
        if open.load(std::sync::atomic::Ordering::Acquire) != 0 {
            return;
        }
        let buf = self.frames.read_buffer_mut();
        while let Some(body) = crate::frame::buffered_body(buf)
            && crate::msg::is_asyncfunc_confirmation(body)
        {
            let whole = crate::frame::HEADER_LEN + body.len();
            bytes::Buf::advance(buf, whole);
        }
    }

    /// The next message if its whole frame is already buffered (read along with earlier
    /// ones): no I/O and no waiting, for a reader that drains a burst of messages in a tight
    /// loop. `None` when the next frame has not fully arrived (then [`ChannelReader::recv`]
    /// waits for it). Errors as for [`ChannelReader::recv`].
    pub fn try_recv_buffered(&mut self) -> Option<Result<Msg, RecvError>> {
        // Confirmations to skip are dropped where they lie: what decodes next is not one.
        self.skip_buffered_confirmations();
        let mut codec = *self.frames.decoder();
        match codec.decode(self.frames.read_buffer_mut()) {
            Ok(Some(body)) => {
                Some(Msg::decode_from(body, Some(&self.peer)).map_err(RecvError::from))
            }
            Ok(None) => None,
            Err(e) => Some(Err(e.into())),
        }
    }

    /// The next frame body, undecoded.
    pub async fn recv_frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        // Waiting between frames is not limited, and costs no timer (the hot path: frames
        // arrive whole). Only while part of a frame is buffered does a timer run, restarted
        // whenever more of it arrives.
        let mut stall: Option<(usize, Pin<Box<tokio::time::Sleep>>)> = None;
        if let Some(spin) = self.spin {
            let began = std::time::Instant::now();
            if self.spinning {
                // Poll, and between polls let the runtime run (its I/O driver is polled
                // without blocking), until a frame is in or the spin time is over.
                loop {
                    let polled = std::future::poll_fn(|cx| {
                        Poll::Ready(match self.poll_frame(cx, &mut stall) {
                            Poll::Ready(frame) => Some(frame),
                            Poll::Pending => None,
                        })
                    })
                    .await;
                    if let Some(frame) = polled {
                        return frame;
                    }
                    if began.elapsed() >= spin {
                        break;
                    }
                    // Let the other tasks of this thread run (the call that was just answered
                    // wakes on this thread)...
                    tokio::task::yield_now().await;
                    // ...then ask the socket itself for a short burst: a frame is seen the
                    // moment it arrives, not at the runtime's next poll of its I/O driver.
                    let until = (began + spin).min(std::time::Instant::now() + SPIN_BURST);
                    while !self.recv_now() && std::time::Instant::now() < until {
                        std::hint::spin_loop();
                    }
                }
            }
            let spun = self.spinning;
            let frame = std::future::poll_fn(|cx| self.poll_frame(cx, &mut stall)).await;
            self.spinning = spin_next(spun, began.elapsed(), spin);
            return frame;
        }
        std::future::poll_fn(|cx| self.poll_frame(cx, &mut stall)).await
    }

    /// Moves what the socket holds right now into the frame buffer, without waiting; true if
    /// anything came (or the socket has ended or failed: the frame reader then reports it).
    fn recv_now(&mut self) -> bool {
        // Kept between calls: a fresh zeroed buffer per poll was a 4 KiB memset every few
        // hundred nanoseconds of spinning.
        let scratch = self.scratch.get_or_insert_with(|| vec![0; 4096]);
        match self.frames.get_ref().recv_now(scratch) {
            Ok(0) => true,
            Ok(n) => {
                let got = &scratch[..n];
                self.frames.read_buffer_mut().extend_from_slice(got);
                true
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => false,
            Err(_) => true,
        }
    }

    /// Polls for the next frame; the stall timer runs while part of one is buffered.
    fn poll_frame(
        &mut self,
        cx: &mut std::task::Context<'_>,
        stall: &mut Option<(usize, Pin<Box<tokio::time::Sleep>>)>,
    ) -> Poll<Result<Option<Bytes>, FrameError>> {
        if self.spin.is_some() {
            // Bytes a spinning reader moved in itself: the frame reader, which saw its buffer
            // short of a frame, would not look at it again before the socket reads ready.
            let mut codec = *self.frames.decoder();
            match codec.decode(self.frames.read_buffer_mut()) {
                Ok(Some(frame)) => return Poll::Ready(Ok(Some(frame))),
                Ok(None) => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        // Room for a burst of frames in one read: left to the frame reader, a buffer whose
        // frames are still in use is replaced by one of its first size (8 KiB), and a burst
        // of calls larger than what is left of it arrives in two reads, the second frame
        // split between them.
        let buf = self.frames.read_buffer_mut();
        if buf.capacity() - buf.len() < READ_ROOM_LOW {
            buf.reserve(READ_ROOM);
        }
        if let Poll::Ready(frame) = self.frames.poll_next_unpin(cx) {
            return Poll::Ready(frame.transpose());
        }
        let buffered = self.frames.read_buffer().len();
        if buffered == 0 {
            *stall = None;
            return Poll::Pending;
        }
        let progressed = stall.as_ref().is_none_or(|(seen, _)| *seen != buffered);
        if progressed {
            let timer = Box::pin(tokio::time::sleep(self.stall_timeout));
            *stall = Some((buffered, timer));
        }
        if let Some((_, timer)) = stall.as_mut()
            && timer.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(FrameError::Stalled {
                received: buffered,
                after: self.stall_timeout,
            }));
        }
        Poll::Pending
    }

    /// The peer's uid.
    pub fn peer(&self) -> &Uid {
        &self.peer
    }
}

/// Why [`ChannelSender::try_send_frame`] did not queue a frame.
#[derive(Debug)]
pub enum TrySendError {
    /// The queue is full; here is the frame back.
    Full(Bytes),
    /// The writer has stopped.
    Closed,
}

/// The sending side of a channel: a cloneable handle on the connection's writer queue.
#[derive(Debug, Clone)]
pub struct ChannelSender {
    outbox: Arc<Outbox>,
    /// Shared by every clone: when the last one drops, the writer finishes and stops.
    _senders: Arc<Senders>,
    /// The byte budgets queued frames are charged to.
    budgets: Budgets,
    /// The longest frame body sent: the peer refuses longer ones (with the same default).
    max_frame_len: usize,
}

/// Tells the writer when the last sender is gone.
#[derive(Debug)]
struct Senders(Arc<Outbox>);

impl Drop for Senders {
    fn drop(&mut self) {
        self.0.senders_gone();
    }
}

impl ChannelSender {
    fn spawn_writer(write: WriteHalf, config: &ChannelConfig, peer: &Uid) -> Self {
        let budgets = Budgets::new(
            SendBudget::new(config.send_queue_bytes),
            config.shared_send_budget.clone(),
        );
        let outbox = Arc::new(Outbox::new(
            config.send_queue_frames,
            write,
            budgets.clone(),
            config.spin.is_some(),
        ));
        tokio::spawn(run_writer(
            outbox.clone(),
            config.write_stall_timeout,
            peer.to_string(),
        ));
        Self {
            _senders: Arc::new(Senders(outbox.clone())),
            outbox,
            budgets,
            max_frame_len: config.max_frame_len,
        }
    }

    /// Checks every frame in `buf` (complete frames, back to back) against the limit.
    fn check(&self, buf: &[u8]) -> Result<(), SendError> {
        check_frames(buf, self.max_frame_len)
    }

    /// Encodes `msg` and queues it as one frame, waiting while the queue is full.
    ///
    /// Returns once the frame is queued, not written. Cancel-safe: if this future is dropped,
    /// the frame was queued whole or not at all.
    pub async fn send(&self, msg: &Msg) -> Result<(), SendError> {
        let frame = msg.to_frame()?;
        self.send_frame(frame).await
    }

    /// Queues a complete, already encoded frame (length prefix included).
    pub async fn send_frame(&self, frame: Bytes) -> Result<(), SendError> {
        self.check(&frame)?;
        let charge = self.budgets.charge(frame.len()).await;
        let charged = chargeable(frame.len());
        self.outbox.queue(Outgoing::Frame(frame), charged).await?;
        charge.commit();
        Ok(())
    }

    /// Until [`ChannelSender::end_deferring`], frames queued on this channel do not wake its
    /// idle writer task: the caller (a reader about to answer a burst of calls) writes them
    /// itself when it ends deferring, in one syscall and without a task hop. A sender that
    /// finds the queue full still wakes the writer, so nothing waits on a deferral.
    pub fn defer_writes(&self) {
        self.outbox.defer_writes();
    }

    /// Ends [`ChannelSender::defer_writes`] and writes what is queued from this task, as far as
    /// the socket takes it without waiting, if the writer task is idle (else that task does).
    pub fn end_deferring(&self) {
        self.outbox.end_deferring();
    }

    /// Ends a reader's batch of `handled` messages like [`ChannelSender::end_deferring`].
    /// After a single message the connection is in a request/response rhythm, and the next
    /// frame queued (the answer that message woke: a caller's next call, a context's echo)
    /// is written by its sender when the writer task is idle, without waking that task. Only
    /// that one frame: the answers to a burst still go out together from the writer.
    pub fn end_batch(&self, handled: usize) {
        self.outbox.end_batch(handled);
    }

    /// Queues the complete frames `write` appends to a buffer (e.g. with
    /// [`Msg::put_cmd_frame`]), `size_hint` bytes at most. Small ones (under
    /// [`UNCHARGED_BELOW`]) are written straight into the writer's queue: no buffer of their
    /// own, no copy. Larger ones get a buffer and are charged like
    /// [`ChannelSender::send_frame`]. Waits while the queue is full; cancel-safe.
    pub async fn send_written(
        &self,
        size_hint: usize,
        write: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError>,
    ) -> Result<(), SendError> {
        if size_hint >= UNCHARGED_BELOW {
            let mut buf = BytesMut::with_capacity(size_hint);
            write(&mut buf)?;
            return self.send_frame(buf.freeze()).await;
        }
        let limit = self.max_frame_len;
        self.outbox
            .queue_written(|buf| {
                let start = buf.len();
                write(buf)?;
                check_frames(&buf[start..], limit)
            })
            .await?;
        Ok(())
    }

    /// [`ChannelSender::send_written`] without waiting, for frames smaller than
    /// [`UNCHARGED_BELOW`] when the queue has room now; `None`, with nothing written,
    /// otherwise (the caller then waits in `send_written`). A hot sender (a reader answering
    /// the call it just served) tries this first: no future to build, poll and drop, and no
    /// scheduling budget spent.
    pub fn try_send_written(
        &self,
        size_hint: usize,
        write: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError>,
    ) -> Option<Result<(), SendError>> {
        if size_hint >= UNCHARGED_BELOW {
            return None;
        }
        let limit = self.max_frame_len;
        self.outbox.try_queue_written(|buf| {
            let start = buf.len();
            write(buf)?;
            check_frames(&buf[start..], limit)
        })
    }

    /// Queues buffers that together are complete frames (e.g. a frame's header, a large
    /// payload shared rather than copied, and the rest), to be written back to back with no
    /// other frame between them. Waits while the queue is full; cancel-safe like
    /// [`ChannelSender::send_frame`].
    pub async fn send_frame_parts(&self, parts: Vec<Bytes>) -> Result<(), SendError> {
        // The parts make one frame: its header leads the first part.
        if let Some(first) = parts.first() {
            check_header(first, self.max_frame_len)?;
        }
        let len = parts.iter().map(Bytes::len).sum();
        let charge = self.budgets.charge(len).await;
        self.outbox
            .queue(Outgoing::Parts(parts), chargeable(len))
            .await?;
        charge.commit();
        Ok(())
    }

    /// Queues a complete frame if the writer queue has room right now, without waiting.
    /// Returns the frame back if the queue is full, so the caller can send it later.
    pub fn try_send_frame(&self, frame: Bytes) -> Result<(), TrySendError> {
        if self.check(&frame).is_err() {
            return Err(TrySendError::Closed);
        }
        let Some(charge) = self.budgets.try_charge(frame.len()) else {
            return Err(TrySendError::Full(frame));
        };
        let charged = chargeable(frame.len());
        match self.outbox.try_queue(Outgoing::Frame(frame), charged) {
            Ok(()) => {
                charge.commit();
                Ok(())
            }
            Err(TryQueue::Full(Outgoing::Frame(frame))) => Err(TrySendError::Full(frame)),
            Err(_) => Err(TrySendError::Closed),
        }
    }

    /// A [`Sink`](futures::Sink) of complete frames on this channel, for code that composes
    /// sinks. Readiness means the writer queue has room; a frame is queued whole or not at all.
    pub fn frame_sink(&self) -> FrameSink {
        FrameSink {
            sender: self.clone(),
            room: None,
        }
    }

    /// Sends the sentinel (`nil`: "stop processing messages on this connection"), writes
    /// everything queued before it, and shuts the connection's write direction down. Returns
    /// once that is done (or the connection had already failed).
    pub async fn close(&self) -> Result<(), SendError> {
        self.send(&Msg::Sentinel).await?;
        let (done, finished) = oneshot::channel();
        self.outbox.request_shutdown(Some(done));
        finished.await.map_err(|_| SendError::Closed)
    }

    /// Asks the writer to write what is queued, shut the write direction down and stop,
    /// without waiting (and without the sentinel: for a connection that is over). The socket
    /// closes once its reader is gone too, even while handles on this sender remain. Frames
    /// sent afterwards are refused.
    pub fn shutdown_soon(&self) {
        self.outbox.request_shutdown(None);
    }

    /// Whether the writer has stopped (the connection failed or was closed).
    pub fn is_closed(&self) -> bool {
        self.outbox.is_stopped()
    }

    /// Completes when the writer has stopped.
    pub async fn closed(&self) {
        self.outbox.stopped().await
    }

    /// Completes when the writer gave up because the peer read nothing for the write stall
    /// timeout (never on a [`ChannelSender::close`], nor on a write error: the reader sees the
    /// peer's end itself, after what it sent before going).
    pub async fn failed(&self) {
        self.outbox.failed().await
    }
}

/// Checks each frame of `buf` (complete frames back to back, each a 4-byte little-endian
/// length and its body) against `limit`.
fn check_frames(mut buf: &[u8], limit: usize) -> Result<(), SendError> {
    while buf.len() >= 4 {
        let len = check_header(buf, limit)?;
        buf = buf.get(4 + len..).unwrap_or_default();
    }
    Ok(())
}

/// The body length the frame header at the start of `buf` declares, if within `limit`.
fn check_header(buf: &[u8], limit: usize) -> Result<usize, SendError> {
    let Some(header) = buf.get(..4) else {
        return Ok(0);
    };
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    if len > limit {
        return Err(SendError::TooLarge { len, limit });
    }
    Ok(len)
}

/// A sink of complete frames feeding a channel's writer (see [`ChannelSender::frame_sink`]).
pub struct FrameSink {
    sender: ChannelSender,
    /// Waiting for room in the byte budgets or the writer queue (only while either is full).
    room: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl std::fmt::Debug for FrameSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameSink")
            .field("budgets", &self.sender.budgets)
            .field("waiting_for_room", &self.room.is_some())
            .finish()
    }
}

impl futures::Sink<Bytes> for FrameSink {
    type Error = SendError;

    fn poll_ready(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), SendError>> {
        loop {
            if let Some(room) = self.room.as_mut() {
                std::task::ready!(room.as_mut().poll(cx));
                self.room = None;
            }
            if self.sender.outbox.is_stopped() {
                return Poll::Ready(Err(SendError::Closed));
            }
            if !self.sender.budgets.has_room() {
                let budgets = self.sender.budgets.clone();
                self.room = Some(Box::pin(async move { budgets.until_room().await }));
                continue;
            }
            if !self.sender.outbox.has_room() {
                let outbox = self.sender.outbox.clone();
                self.room = Some(Box::pin(async move { outbox.until_room().await }));
                continue;
            }
            return Poll::Ready(Ok(()));
        }
    }

    fn start_send(self: std::pin::Pin<&mut Self>, frame: Bytes) -> Result<(), SendError> {
        check_frames(&frame, self.sender.max_frame_len)?;
        let sender = &self.sender;
        let charge = sender.budgets.charge_now(frame.len());
        let charged = chargeable(frame.len());
        // Readiness said there was room; another sender may have taken it since, which
        // overfills the queue by this one frame rather than losing it.
        sender.outbox.queue_now(Outgoing::Frame(frame), charged)?;
        charge.commit();
        Ok(())
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), SendError>> {
        // Queued frames belong to the writer task; there is nothing to flush here.
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_close(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), SendError>> {
        // The channel stays open for its other senders.
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_spins_again_once_frames_come_quickly_even_after_parking() {
        let spin = Duration::from_micros(50);
        let us = Duration::from_micros;
        // Spinning: a frame within the spin time keeps it spinning; a longer wait stops it.
        assert!(spin_next(true, us(10), spin));
        assert!(!spin_next(true, us(60), spin));
        // Parked: a wait that paid a wake-up (longer than the spin time) but came soon after
        // it resumes spinning; an idle peer's long wait does not.
        assert!(spin_next(false, us(120), spin));
        assert!(!spin_next(false, Duration::from_millis(5), spin));
        assert!(!spin_next(false, Duration::from_secs(1), spin));
    }
}
