//! The queue between a connection's senders and its one writer task, and the writer itself.
//!
//! Senders append complete frames; the writer takes everything queued at once and writes it
//! with one syscall (vectored when it is more than one buffer). Small frames are copied back
//! to back into one buffer as they are queued: queuing one costs a short copy under an
//! uncontended lock, and a batch of them is one contiguous write, where a channel of buffers
//! cost an atomic handshake and a reference-counted buffer per frame, and the kernel an I/O
//! vector entry each. Large frames (and frames sent in parts) are queued as they are, shared
//! rather than copied. Order is kept: a run of small frames is closed off into the queue
//! before anything large is queued after it.
//!
//! The writer is woken only when the queue goes from empty to not empty, so a burst of frames
//! costs one wake-up. Senders wait while `capacity` frames are queued (backpressure on small
//! frames; large ones are also bounded in bytes by the channel's budgets).

use std::{
    collections::VecDeque,
    io::{self, IoSlice},
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll, Waker},
    time::Duration,
};

use bytes::{Buf, Bytes, BytesMut};
use tokio::{io::AsyncWriteExt, sync::Notify, sync::oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::{
    budget::{Budgets, UNCHARGED_BELOW},
    error::SendError,
    transport::WriteHalf,
};

/// The most buffers handed to one vectored write.
const MAX_IOV: usize = 256;

/// How much room the buffer of small frames gets at a time.
const SMALL_BLOCK: usize = 16 * 1024;

/// What a sender queues.
pub(crate) enum Outgoing {
    /// One complete frame.
    Frame(Bytes),
    /// Buffers that together are complete frames, written back to back.
    Parts(Vec<Bytes>),
}

/// The state senders and the writer share.
struct State {
    /// The newest small frames, back to back (after everything in `queue`).
    small: BytesMut,
    /// Older runs of small frames and large frames, in order.
    queue: VecDeque<Bytes>,
    /// Frames queued and not yet taken by the writer.
    frames: usize,
    /// Budget bytes charged for what is queued, released once it is written.
    charged: usize,
    /// Asked to write what is queued, shut the write direction down and stop (nothing is
    /// queued after the request); the inner sender, if any, hears when that is done.
    shutdown: Option<Option<oneshot::Sender<()>>>,
    /// Every sender is gone: nothing more will come.
    senders_gone: bool,
    /// The writer stopped: nothing is queued any more.
    stopped: bool,
    /// The writer, parked until something is queued.
    writer: Option<Waker>,
    /// The socket, shared by the writer task and senders writing inline; taken out when the
    /// writer stops (to shut the write direction down).
    socket: Option<Arc<WriteHalf>>,
    /// A sender is writing inline: the writer task waits, so nothing newer overtakes what it
    /// writes.
    inline_writing: bool,
    /// The buffer list of the last inline write, kept for the next one.
    spare: Vec<Bytes>,
    /// A task that will write inline soon (a reader answering a burst of calls) asked that
    /// queuing not wake the writer meanwhile.
    deferring: bool,
    /// The reader's last batch was a single message: the first frame queued after it (the
    /// one answer it woke, say a caller's next call or a context's echo) is written by its
    /// sender if the writer is idle. Taken by that frame, so a burst of answers still goes
    /// out together from the writer task.
    answer_inline: bool,
}

/// The queue of one connection's writer.
pub(crate) struct Outbox {
    state: Mutex<State>,
    /// How many frames may be queued before senders wait.
    capacity: usize,
    /// Signalled when a full queue was emptied or the writer stopped.
    room: Notify,
    /// Cancelled once the writer stopped, however it stopped.
    stopped: CancellationToken,
    /// Cancelled when the writer gave up because the peer read nothing (a write stall).
    failed: CancellationToken,
    /// The byte budgets queued frames were charged to, released once written.
    budgets: Budgets,
    /// Low-latency mode: a sender writes what it queued itself when the writer is idle,
    /// rather than waking it.
    inline: bool,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("Outbox")
            .field("frames", &state.frames)
            .field("capacity", &self.capacity)
            .field("stopped", &state.stopped)
            .finish()
    }
}

impl Outbox {
    pub(crate) fn new(capacity: usize, socket: WriteHalf, budgets: Budgets, inline: bool) -> Self {
        Self {
            state: Mutex::new(State {
                small: BytesMut::new(),
                queue: VecDeque::new(),
                frames: 0,
                charged: 0,
                shutdown: None,
                senders_gone: false,
                stopped: false,
                writer: None,
                socket: Some(Arc::new(socket)),
                inline_writing: false,
                spare: Vec::new(),
                deferring: false,
                answer_inline: false,
            }),
            capacity: capacity.max(1),
            room: Notify::new(),
            stopped: CancellationToken::new(),
            failed: CancellationToken::new(),
            budgets,
            inline,
        }
    }

    /// The state; every update is one step under the lock, so a poisoned lock is used as is.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `item` (charged `charged` budget bytes), waiting while the queue is full.
    /// Cancel-safe: dropped while waiting, nothing was queued.
    pub(crate) async fn queue(&self, item: Outgoing, charged: usize) -> Result<(), SendError> {
        self.queue_with(
            |state| {
                state.push_item(item);
                Ok(())
            },
            charged,
        )
        .await
    }

    /// Queues small frames that `write` appends straight to the buffer of small frames (no
    /// buffer of their own, no copy), waiting while the queue is full. Whatever `write` wrote
    /// is taken back if it fails. Cancel-safe like [`Outbox::queue`].
    pub(crate) async fn queue_written(
        &self,
        write: impl FnOnce(&mut BytesMut) -> Result<(), SendError>,
    ) -> Result<(), SendError> {
        self.queue_with(|state| state.write_small(write), 0).await
    }

    /// Like [`Outbox::queue_written`] if there is room now: `None` (nothing written) if the
    /// queue is full.
    pub(crate) fn try_queue_written(
        &self,
        write: impl FnOnce(&mut BytesMut) -> Result<(), SendError>,
    ) -> Option<Result<(), SendError>> {
        let mut place = Some(|state: &mut State| state.write_small(write));
        match self.try_place(&mut place, 0, true) {
            Poll::Ready(result) => Some(result),
            Poll::Pending => None,
        }
    }

    /// Queues what `place` puts in the state, once there is room (`place` runs at most once,
    /// under the lock).
    async fn queue_with(
        &self,
        place: impl FnOnce(&mut State) -> Result<(), SendError>,
        charged: usize,
    ) -> Result<(), SendError> {
        // Like a channel's send, queuing uses up the task's scheduling budget: a producer
        // whose items are always ready (and the queue never full) still lets the reader and
        // the writer of its thread run (they would otherwise wait until the byte budgets
        // were spent, behind megabytes the peer must read first).
        tokio::task::coop::consume_budget().await;
        let mut place = Some(place);
        // The common case first: room now, and no waiter registered with `room` (that
        // takes its lock twice).
        if let Poll::Ready(result) = self.try_place(&mut place, charged, true) {
            return result;
        }
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            // Registered before the check, so room made between the two is not missed.
            room.as_mut().enable();
            match self.try_place(&mut place, charged, true) {
                Poll::Ready(result) => return result,
                Poll::Pending => room.await,
            }
        }
    }

    /// Queues `item` if there is room now; else hands it back.
    pub(crate) fn try_queue(&self, item: Outgoing, charged: usize) -> Result<(), TryQueue> {
        let mut item = Some(item);
        let mut place = Some(|state: &mut State| {
            if let Some(item) = item.take() {
                state.push_item(item);
            }
            Ok(())
        });
        let placed = self.try_place(&mut place, charged, true);
        match (placed, item) {
            (Poll::Ready(Ok(())), _) => Ok(()),
            (Poll::Pending, Some(item)) => Err(TryQueue::Full(item)),
            _ => Err(TryQueue::Closed),
        }
    }

    /// Queues `item` even past the capacity (a sink that was told there was room, and lost it
    /// to another sender meanwhile).
    pub(crate) fn queue_now(&self, item: Outgoing, charged: usize) -> Result<(), SendError> {
        let mut place = Some(|state: &mut State| {
            state.push_item(item);
            Ok(())
        });
        match self.try_place(&mut place, charged, false) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(SendError::Closed),
        }
    }

    fn try_place(
        &self,
        place: &mut Option<impl FnOnce(&mut State) -> Result<(), SendError>>,
        charged: usize,
        bounded: bool,
    ) -> Poll<Result<(), SendError>> {
        let mut state = self.lock();
        if state.stopped || state.shutdown.is_some() {
            return Poll::Ready(Err(SendError::Closed));
        }
        if bounded && state.frames >= self.capacity {
            // Room comes from the writer: make sure it runs.
            let writer = state.writer.take();
            drop(state);
            if let Some(writer) = writer {
                writer.wake();
            }
            return Poll::Pending;
        }
        let Some(place) = place.take() else {
            return Poll::Ready(Err(SendError::Closed));
        };
        if let Err(e) = place(&mut state) {
            return Poll::Ready(Err(e));
        }
        self.queued(state, charged);
        Poll::Ready(Ok(()))
    }

    /// Counts what was just placed in `state` and wakes the writer if it waits.
    fn queued(&self, mut state: MutexGuard<'_, State>, charged: usize) {
        state.frames += 1;
        state.charged += charged;
        if state.deferring {
            return;
        }
        if self.inline || std::mem::take(&mut state.answer_inline) {
            drop(state);
            // Written now if the writer is idle; else it is at work and takes this too.
            self.write_inline();
            return;
        }
        let writer = state.writer.take();
        drop(state);
        if let Some(writer) = writer {
            writer.wake();
        }
    }

    /// Until [`Outbox::end_deferring`], queuing does not wake an idle writer: the caller will
    /// write what is queued itself.
    pub(crate) fn defer_writes(&self) {
        self.lock().deferring = true;
    }

    /// Ends [`Outbox::defer_writes`]: writes what is queued inline if the writer is idle
    /// (what the socket does not take goes to the writer).
    pub(crate) fn end_deferring(&self) {
        self.lock().deferring = false;
        self.write_inline();
    }

    /// Ends a reader's batch of `handled` messages like [`Outbox::end_deferring`]; after a
    /// single message, the next frame queued is written inline (see `State::answer_inline`).
    pub(crate) fn end_batch(&self, handled: usize) {
        {
            let mut state = self.lock();
            state.deferring = false;
            state.answer_inline = handled == 1;
        }
        self.write_inline();
    }

    /// Whether a frame could be queued now without waiting.
    pub(crate) fn has_room(&self) -> bool {
        let state = self.lock();
        state.stopped || state.shutdown.is_some() || state.frames < self.capacity
    }

    /// Completes when a frame could be queued without waiting (or never could again).
    pub(crate) async fn until_room(&self) {
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            if self.has_room() {
                return;
            }
            room.await;
        }
    }

    /// Asks the writer to write what is queued, shut the write direction down and stop;
    /// `done` hears when that is done. Nothing can be queued after this.
    pub(crate) fn request_shutdown(&self, done: Option<oneshot::Sender<()>>) {
        let mut state = self.lock();
        if state.stopped || state.shutdown.is_some() {
            return;
        }
        state.shutdown = Some(done);
        let writer = state.writer.take();
        drop(state);
        if let Some(writer) = writer {
            writer.wake();
        }
    }

    /// The last sender is gone: the writer writes what is queued and stops.
    pub(crate) fn senders_gone(&self) {
        let mut state = self.lock();
        state.senders_gone = true;
        let writer = state.writer.take();
        drop(state);
        if let Some(writer) = writer {
            writer.wake();
        }
    }

    /// Whether the writer stopped.
    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.is_cancelled()
    }

    /// Completes once the writer stopped.
    pub(crate) async fn stopped(&self) {
        self.stopped.cancelled().await
    }

    /// Completes when the writer gave up on a peer that read nothing.
    pub(crate) async fn failed(&self) {
        self.failed.cancelled().await
    }

    /// Takes everything queued into `batch` for the writer; parks it while nothing is.
    fn poll_take(&self, cx: &mut Context<'_>, batch: &mut Vec<Bytes>) -> Poll<Taken> {
        let mut state = self.lock();
        if state.inline_writing || state.is_empty() {
            // (A sender writing inline wakes the writer if it leaves anything behind.)
            if !state.inline_writing {
                if let Some(done) = state.shutdown.take() {
                    return Poll::Ready(Taken::Shutdown(done));
                }
                if state.senders_gone {
                    return Poll::Ready(Taken::Shutdown(None));
                }
            }
            match &mut state.writer {
                Some(waker) => waker.clone_from(cx.waker()),
                None => state.writer = Some(cx.waker().clone()),
            }
            return Poll::Pending;
        }
        let charged = self.take(state, batch);
        Poll::Ready(Taken::Frames { charged })
    }

    /// Moves everything queued into `batch`, makes room for senders, and returns the budget
    /// bytes it was charged.
    fn take(&self, mut state: MutexGuard<'_, State>, batch: &mut Vec<Bytes>) -> usize {
        batch.extend(state.queue.drain(..));
        if !state.small.is_empty() {
            batch.push(state.small.split().freeze());
        }
        let was_full = state.frames >= self.capacity;
        state.frames = 0;
        let charged = std::mem::take(&mut state.charged);
        drop(state);
        if was_full {
            self.room.notify_waiters();
        }
        charged
    }

    /// Writes what is queued from the calling task, as far as the socket takes it without
    /// waiting, when the writer task is idle (parked, with nothing queued before): the frames
    /// go out without waking another task. What the socket does not take now is handed back
    /// to the writer task, ahead of anything queued meanwhile.
    pub(crate) fn write_inline(&self) {
        let mut state = self.lock();
        if state.inline_writing || state.writer.is_none() || state.is_empty() || state.stopped {
            return;
        }
        let Some(socket) = state.socket.clone() else {
            return;
        };
        state.inline_writing = true;
        let mut batch = std::mem::take(&mut state.spare);
        let charged = self.take(state, &mut batch);
        let mut unwritten = 0;
        while unwritten < batch.len() {
            match try_write_bufs(&socket, &batch[unwritten..]) {
                Ok(0) => break,
                Ok(written) => unwritten = advance(&mut batch, unwritten, written),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Full, or failed: the writer task waits for room, or meets the error itself.
                Err(_) => break,
            }
        }
        let mut state = self.lock();
        state.inline_writing = false;
        let left: Vec<Bytes> = batch.drain(unwritten..).collect();
        batch.clear();
        state.spare = batch;
        if left.is_empty() {
            self.budgets.release(charged);
        } else {
            for buf in left.into_iter().rev() {
                state.queue.push_front(buf);
            }
            state.frames += 1;
            state.charged += charged;
        }
        // Whatever is left (frames, a shutdown, the senders' end) is the writer task's.
        let writer = if state.is_empty() && state.shutdown.is_none() && !state.senders_gone {
            None
        } else {
            state.writer.take()
        };
        drop(state);
        if let Some(writer) = writer {
            writer.wake();
        }
    }

    /// The writer stopped: refuses everything from now on, and returns the budget bytes of
    /// what was still queued (never to be written).
    fn stop(&self) -> usize {
        let mut state = self.lock();
        state.stopped = true;
        state.socket = None;
        state.queue.clear();
        state.small = BytesMut::new();
        state.frames = 0;
        let charged = std::mem::take(&mut state.charged);
        // A shutdown requested too late to be seen: its waiter hears the writer is gone.
        state.shutdown = None;
        drop(state);
        self.stopped.cancel();
        self.room.notify_waiters();
        charged
    }
}

impl State {
    /// Whether nothing waits to be written.
    fn is_empty(&self) -> bool {
        self.frames == 0 && self.queue.is_empty() && self.small.is_empty()
    }

    fn push_item(&mut self, item: Outgoing) {
        match item {
            Outgoing::Frame(frame) => self.push(frame),
            Outgoing::Parts(parts) => {
                for part in parts {
                    self.push(part);
                }
            }
        }
    }

    /// Lets `write` append small frames to the buffer of small frames; takes back whatever it
    /// wrote if it fails.
    fn write_small(
        &mut self,
        write: impl FnOnce(&mut BytesMut) -> Result<(), SendError>,
    ) -> Result<(), SendError> {
        let start = self.small.len();
        if self.small.capacity() - start < UNCHARGED_BELOW {
            self.small.reserve(SMALL_BLOCK);
        }
        let written = write(&mut self.small);
        if written.is_err() {
            self.small.truncate(start);
        }
        written
    }

    /// Appends one buffer of complete frames (or part of one) after everything queued.
    fn push(&mut self, buf: Bytes) {
        if buf.len() < UNCHARGED_BELOW {
            if self.small.capacity() - self.small.len() < buf.len() {
                // A block at a time (reused once the writer has written what was in it).
                self.small.reserve(SMALL_BLOCK);
            }
            self.small.extend_from_slice(&buf);
            return;
        }
        if !self.small.is_empty() {
            let run = self.small.split().freeze();
            self.queue.push_back(run);
        }
        self.queue.push_back(buf);
    }
}

/// Why [`Outbox::try_queue`] did not queue.
pub(crate) enum TryQueue {
    /// The queue is full; the item comes back.
    Full(Outgoing),
    /// The writer stopped.
    Closed,
}

/// What the writer took.
enum Taken {
    Frames { charged: usize },
    Shutdown(Option<oneshot::Sender<()>>),
}

/// Writes what is queued until a shutdown, the last sender's end, or a failed write.
pub(crate) async fn run_writer(outbox: Arc<Outbox>, stall_timeout: Duration, peer: String) {
    let Some(socket) = outbox.lock().socket.clone() else {
        return;
    };
    let budgets = &outbox.budgets;
    let mut batch: Vec<Bytes> = Vec::new();
    let done = loop {
        let taken = std::future::poll_fn(|cx| outbox.poll_take(cx, &mut batch)).await;
        let charged = match taken {
            Taken::Frames { charged } => charged,
            Taken::Shutdown(done) => break done,
        };
        let written = write_all_vectored(&socket, &mut batch, stall_timeout).await;
        budgets.release(charged);
        if let Err(e) = written {
            if e.kind() == io::ErrorKind::TimedOut {
                warn!(
                    %peer,
                    "the peer read nothing for {stall_timeout:?} with {} bytes queued; \
                     giving the connection up",
                    budgets.connection_used()
                );
                // Only a stall ends the connection from here: after any other write error
                // (the peer went away) what it sent before going is still there to read,
                // and the reader meets the end itself.
                outbox.failed.cancel();
            } else {
                debug!(%peer, error = %e, "channel writer stopped: write failed");
            }
            budgets.release(outbox.stop());
            return;
        }
    };
    // Refuse further frames before the final shutdown, so no sender believes a late frame
    // went out.
    budgets.release(outbox.stop());
    // The socket is ours alone once no sender writes inline any more (a sender holds it only
    // while a write that never waits runs).
    let mut socket = socket;
    let mut write = loop {
        match Arc::try_unwrap(socket) {
            Ok(write) => break write,
            Err(shared) => {
                socket = shared;
                tokio::task::yield_now().await;
            }
        }
    };
    if let Err(e) = write.shutdown().await {
        debug!(error = %e, "channel writer: shutdown failed");
    }
    if let Some(done) = done {
        // The closer may have stopped waiting; nothing to do then.
        let _ = done.send(());
    }
}

/// Writes as much of `bufs` as the socket takes now (up to [`MAX_IOV`] buffers), in one
/// syscall (vectored when there is more than one buffer). The I/O vector on the stack is only
/// as long as the write needs: one of [`MAX_IOV`] entries made for every write cost about 840
/// instructions, more than the rest of a wake-up of the writer (one message each way, W5).
fn try_write_bufs(socket: &WriteHalf, bufs: &[Bytes]) -> io::Result<usize> {
    /// Writes of at most this many buffers (nearly all) use a short vector.
    const FEW: usize = 8;
    match bufs {
        // Most writes (a call, an answer, a batch gathered in one buffer): no vector at all.
        [one] => socket.try_write(one),
        _ if bufs.len() <= FEW => {
            let mut slices = [IoSlice::new(&[]); FEW];
            let count = fill_slices(&mut slices, bufs);
            socket.try_write_vectored(&slices[..count])
        }
        _ => {
            let mut slices = [IoSlice::new(&[]); MAX_IOV];
            let count = fill_slices(&mut slices, bufs);
            socket.try_write_vectored(&slices[..count])
        }
    }
}

/// Points `slices` at the first buffers of `bufs`; returns how many.
fn fill_slices<'a, const N: usize>(slices: &mut [IoSlice<'a>; N], bufs: &'a [Bytes]) -> usize {
    let mut count = 0;
    for (slot, buf) in slices.iter_mut().zip(bufs) {
        *slot = IoSlice::new(buf);
        count += 1;
    }
    count
}

/// Accounts for `written` bytes from buffer `next` on: returns the first buffer not yet
/// written whole (partly written buffers are advanced past what was written).
fn advance(bufs: &mut [Bytes], mut next: usize, mut written: usize) -> usize {
    while written > 0 {
        let Some(buf) = bufs.get_mut(next) else { break };
        if written >= buf.len() {
            written -= buf.len();
            next += 1;
        } else {
            buf.advance(written);
            written = 0;
        }
    }
    while bufs.get(next).is_some_and(Bytes::is_empty) {
        next += 1;
    }
    next
}

/// Writes every buffer completely, gathering them into as few syscalls as the socket allows.
/// A write that makes no progress for `stall_timeout` fails with `TimedOut`.
async fn write_all_vectored(
    socket: &WriteHalf,
    bufs: &mut Vec<Bytes>,
    stall_timeout: Duration,
) -> io::Result<()> {
    let mut next = 0;
    while next < bufs.len() {
        match try_write_bufs(socket, &bufs[next..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => next = advance(bufs, next, written),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // The stall timer (which reads the clock) runs only for a write that waits.
                tokio::time::timeout(stall_timeout, socket.writable())
                    .await
                    .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
            }
            Err(e) => return Err(e),
        }
    }
    bufs.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    // Test code: a failed unwrap is a failed test, with the reason printed.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::io::Read;

    use super::*;
    use crate::budget::SendBudget;

    /// An outbox over one end of a socket pair with its writer task parked, and the other
    /// end (non-blocking), to see what was written without letting the writer run.
    async fn parked_outbox() -> (
        Arc<Outbox>,
        std::os::unix::net::UnixStream,
        tokio::net::unix::OwnedReadHalf,
    ) {
        let (ours, theirs) = tokio::net::UnixStream::pair().unwrap();
        let theirs = theirs.into_std().unwrap();
        theirs.set_nonblocking(true).unwrap();
        let (read, write) = ours.into_split();
        let budgets = Budgets::new(SendBudget::new(1 << 20), None);
        let outbox = Arc::new(Outbox::new(16, WriteHalf::Unix(write), budgets, false));
        tokio::spawn(run_writer(
            outbox.clone(),
            Duration::from_secs(30),
            "peer".into(),
        ));
        // On this one thread, the writer runs now, finds nothing, and parks.
        tokio::task::yield_now().await;
        assert!(outbox.lock().writer.is_some(), "the writer did not park");
        (outbox, theirs, read)
    }

    /// How many bytes the peer can read right now.
    fn readable_now(theirs: &mut std::os::unix::net::UnixStream) -> usize {
        let mut buf = [0_u8; 256];
        match theirs.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(e) => panic!("reading the peer's end: {e}"),
        }
    }

    fn frame(byte: u8) -> Outgoing {
        Outgoing::Frame(Bytes::from(vec![byte; 10]))
    }

    #[tokio::test(flavor = "current_thread")]
    async fn after_a_lone_message_the_next_frame_is_written_by_its_sender() {
        let (outbox, mut theirs, _read) = parked_outbox().await;
        outbox.end_batch(1);
        outbox.queue_now(frame(1), 0).unwrap();
        // Written before this task let the writer run.
        assert_eq!(readable_now(&mut theirs), 10);
        // Only that one: the next frame is the writer's.
        outbox.queue_now(frame(2), 0).unwrap();
        assert_eq!(readable_now(&mut theirs), 0);
        tokio::task::yield_now().await;
        assert_eq!(readable_now(&mut theirs), 10);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn after_a_burst_of_messages_their_answers_wait_for_the_writer_together() {
        let (outbox, mut theirs, _read) = parked_outbox().await;
        outbox.end_batch(3);
        outbox.queue_now(frame(1), 0).unwrap();
        outbox.queue_now(frame(2), 0).unwrap();
        assert_eq!(readable_now(&mut theirs), 0);
        // The writer sends both at once.
        tokio::task::yield_now().await;
        assert_eq!(readable_now(&mut theirs), 20);
    }
}
