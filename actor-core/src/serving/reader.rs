//! The one task that reads a connection. It never waits on a slow consumer (routing never
//! blocks) and yields now and then so the calls it fed, and the writer, make progress.

use std::sync::{Arc, atomic::Ordering};

use actor_ipc::{Channel, ChannelReader, ChannelSender, Msg, Uid};
use tracing::{debug, warn};

use super::{dispatch, runtime_calls};
use crate::{
    base::wake_gate::WakeGated,
    connection::{Connection, ShutOnDrop},
    runtime::ActorCore,
};

/// How many calls the reader serves before it writes the answers so far: the caller works on
/// them while the reader goes on, so caller and callee work at once instead of in turns (one
/// portal, 64 callers: about 1.5x the calls per second).
const FLUSH_EVERY: usize = 16;
/// How many calls the reader serves before it writes the answers so far, for this process:
/// [`FLUSH_EVERY`] when it may run on more than one CPU. Confined to one CPU (its affinity
/// allows no other: `taskset`, a one-CPU cpuset), the caller cannot work on early answers
/// meanwhile anyway; they go out together when the reader has served what it read, or
/// yields.
fn flush_every() -> usize {
    static EVERY: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *EVERY.get_or_init(|| match crate::base::platform::cpus() {
        1 => YIELD_EVERY,
        _ => FLUSH_EVERY,
    })
}

/// How many calls the reader serves before it lets the other tasks of its thread run (the
/// calls it started as tasks, other connections).
const YIELD_EVERY: usize = 64;
// The reader checks `flush_every()` only from FLUSH_EVERY calls on: both intervals must be
// multiples of it.
const _: () = assert!(YIELD_EVERY % FLUSH_EVERY == 0);
/// How many replies the reader routes before it lets the calls it fed run (they consume, and
/// grant credit, sooner; and one busy connection cannot hold the thread).
const ROUTE_YIELD_EVERY: usize = 256;
/// How many payload bytes the reader routes before it lets the calls it fed run: a stream of
/// large items read a socket's worth ahead (several MiB over TCP) kept that much memory
/// waiting, each item read into a fresh allocation, and reached its consumer out of cache.
const ROUTE_YIELD_BYTES: usize = 1024 * 1024;

/// Wraps a handshaken channel and starts reading it in a task of its own.
/// Heartbeats are asked for here: this side connected, or it is a parent on its child's
/// connection.
pub(crate) fn start(core: Arc<ActorCore>, channel: Channel) -> Arc<Connection> {
    let peer = channel.peer().clone();
    let (sender, reader) = channel.into_split();
    adopt(core, sender, reader, peer)
}

/// Serves a channel until it ends (the accept loop's per-connection task).
pub(crate) async fn serve(core: Arc<ActorCore>, channel: Channel) {
    let peer = channel.peer().clone();
    let (sender, reader) = channel.into_split();
    read_loop(Connection::new(core, sender, peer), reader).await;
}

/// Serves a connection whose halves were already used (a child's connection to its parent,
/// after the init map), reading it in a task of its own, and asks for heartbeats.
pub(crate) fn adopt(
    core: Arc<ActorCore>,
    sender: ChannelSender,
    reader: ChannelReader,
    peer: Uid,
) -> Arc<Connection> {
    let conn = Connection::new(core, sender, peer);
    let tracker = conn.core.io_tasks.clone();
    tokio::spawn(tracker.track_future(read_loop(conn.clone(), reader)));
    conn.request_heartbeats();
    conn
}

async fn read_loop(conn: Arc<Connection>, mut reader: ChannelReader) {
    // However the reader ends (even by a panic or an abort), the connection is shut.
    let _shut = ShutOnDrop(conn.clone());
    reader.skip_confirmations_while(conn.open_streams.clone());
    conn.watch_idle();
    // Made once: a fresh cancellation future per message showed in stream profiles. Gated:
    // polled again only once it woke this task (each poll of it takes a lock), not each time
    // the socket runs dry.
    let stopping = conn.stop_reading.clone();
    let mut stopping = WakeGated::new(stopping.cancelled());
    // Writing stalled past its deadline (a peer that reads nothing): the connection is over.
    let sender = conn.sender.clone();
    let mut writer_failed = WakeGated::new(sender.failed());
    let mut paced = Pacing::default();
    let mut last = dispatch::LastResolved::default();
    let reason = 'reading: loop {
        let msg = tokio::select! {
            // The reader first: `stopping` is polled only when no message is ready.
            biased;
            msg = reader.recv() => msg,
            () = &mut stopping => {
                if conn.is_closed() {
                    // Given up on (its peer fell silent): nothing more to read.
                    break "the connection was given up on".to_owned();
                }
                // The actor is stopping: keep reading until its teardown closes us, so
                // cancel acknowledgements and final replies still flow.
                drain_until_closed(&conn, &mut reader).await;
                break "the actor stopped".to_owned();
            }
            () = &mut writer_failed => {
                break "the peer read nothing for the write stall timeout".to_owned();
            }
        };
        // The answers to what is read now go out together when it is handled, written by
        // this task (no wake-up of the writer task for each).
        conn.sender.defer_writes();
        if let Some(reason) = handle(&conn, msg, &mut paced, &mut last).await {
            conn.sender.end_deferring();
            break reason;
        }
        // The messages read along with that one: handled in a tight loop, without another
        // trip through `select!` and the frame reader's future for each.
        let mut handled = 1;
        while let Some(msg) = reader.try_recv_buffered() {
            handled += 1;
            if let Some(reason) = handle(&conn, msg.map(Some), &mut paced, &mut last).await {
                conn.sender.end_deferring();
                break 'reading reason;
            }
        }
        conn.sender.end_batch(handled);
        // Other tasks get their turn between batches rather than inside one: a mid-batch
        // pause would also write the answers so far, a write more per batch.
        if paced.yield_due() {
            tokio::task::yield_now().await;
        }
        paced.served_in_batch = 0;
    };
    conn.shut(reason);
}

/// How many calls and replies the reader handled since it last let other tasks run, and
/// calls since the batch it is handling began.
#[derive(Default)]
struct Pacing {
    served_in_batch: usize,
    served_since_yield: usize,
    routed: usize,
    /// Payload bytes routed since the reader last let the consumers run.
    routed_bytes: usize,
}

impl Pacing {
    /// Whether the reader has served enough calls to let other tasks run now; counting
    /// starts again when it has.
    fn yield_due(&mut self) -> bool {
        let due = self.served_since_yield >= YIELD_EVERY;
        if due {
            self.served_since_yield = 0;
        }
        due
    }

    /// Counts a reply about to be routed, carrying `payload_len` bytes; whether the reader
    /// should then let the calls it fed run: every [`ROUTE_YIELD_EVERY`] replies, or once
    /// [`ROUTE_YIELD_BYTES`] of payload wait for their consumers.
    fn route_yield_due(&mut self, payload_len: usize) -> bool {
        self.routed += 1;
        self.routed_bytes += payload_len;
        let due = self.routed % ROUTE_YIELD_EVERY == 0 || self.routed_bytes >= ROUTE_YIELD_BYTES;
        if due {
            self.routed_bytes = 0;
        }
        due
    }
}

/// The size of the value a reply carries (what its consumer holds until it is done with it).
fn payload_len(msg: &Msg) -> usize {
    match msg {
        Msg::Return { value, .. } | Msg::Yield { value, .. } | Msg::Started { value, .. } => {
            value.as_bytes().len()
        }
        _ => 0,
    }
}

/// Handles one message (or read error); `Some(reason)` when the connection is over.
async fn handle(
    conn: &Arc<Connection>,
    msg: Result<Option<Msg>, actor_ipc::RecvError>,
    paced: &mut Pacing,
    last: &mut dispatch::LastResolved,
) -> Option<String> {
    match &msg {
        // A heartbeat is a sign of life, not activity: a peer cannot keep an idle
        // connection open by sending them.
        Ok(Some(Msg::Heartbeat(_))) => conn.heard.store(true, Ordering::Relaxed),
        Ok(Some(_)) => {
            conn.heard.store(true, Ordering::Relaxed);
            conn.active.store(true, Ordering::Relaxed);
        }
        _ => {}
    }
    match msg {
        Ok(Some(Msg::Cmd(cmd))) => {
            // While a call is served inline (it may wait to queue its reply), this side
            // reads nothing: silence then says nothing about the peer.
            conn.dispatching.store(true, Ordering::Relaxed);
            dispatch::dispatch(conn, cmd, last).await;
            conn.dispatching.store(false, Ordering::Relaxed);
            paced.served_in_batch += 1;
            paced.served_since_yield += 1;
            // (Both flush intervals are multiples of FLUSH_EVERY: a short batch never reads
            // the CPU count, which a child's start would otherwise pay for its first call.)
            if paced.served_in_batch >= FLUSH_EVERY && paced.served_in_batch % flush_every() == 0 {
                // The answers so far go out now.
                conn.sender.end_deferring();
                if paced.yield_due() {
                    tokio::task::yield_now().await;
                }
                conn.sender.defer_writes();
            }
        }
        Ok(Some(Msg::Sentinel)) => {
            debug!(peer = %conn.peer, "sentinel received");
            conn.tasks_cancel.cancel();
            conn.set_reason("the peer sent the sentinel");
            // Answer with our own sentinel and close.
            conn.close().await;
            return Some("the peer sent the sentinel".to_owned());
        }
        Ok(Some(Msg::Error { cid: None, error })) => {
            warn!(peer = %conn.peer, type_str = %error.type_str, "runtime error from peer: {}", error.tb_str);
            conn.set_runtime_error(*error);
        }
        Ok(Some(Msg::Heartbeat(_))) => {}
        Ok(Some(msg)) => {
            let consumers_due = paced.route_yield_due(payload_len(&msg));
            conn.route(msg);
            if consumers_due {
                conn.sender.end_deferring();
                tokio::task::yield_now().await;
                conn.sender.defer_writes();
            }
        }
        Ok(None) => return Some("the peer closed the connection".to_owned()),
        Err(actor_ipc::RecvError::Decode(actor_ipc::DecodeError::BadCmd { cid, detail })) => {
            // One malformed call, read whole: answered (when it can be), the rest goes on.
            match cid {
                Some(cid) => {
                    let error = actor_ipc::ErrorInfo::new(
                        crate::base::error::TYPE_ERROR,
                        format!("malformed cmd: {detail}"),
                    );
                    conn.reply_error(&cid, error).await;
                }
                None => {
                    warn!(peer = %conn.peer, error = %detail, "ignoring a cmd without a cid")
                }
            }
        }
        Err(actor_ipc::RecvError::Frame(actor_ipc::FrameError::Io(e))) => {
            // A reset or a broken pipe: the peer went away, nothing malformed.
            debug!(peer = %conn.peer, error = %e, "connection lost");
            return Some(format!("connection lost: {e}"));
        }
        Err(actor_ipc::RecvError::Frame(
            e @ (actor_ipc::FrameError::TruncatedHeader { .. }
            | actor_ipc::FrameError::TruncatedBody { .. }),
        )) => {
            // The connection ended inside a frame: the peer went away mid-write (it
            // exited, or was killed). Closed all the same, but not a peer's bad input.
            debug!(peer = %conn.peer, error = %e, "connection lost inside a frame");
            return Some(format!("connection lost: {e}"));
        }
        Err(e) => {
            warn!(peer = %conn.peer, error = %e, "closing a connection after bad input");
            return Some(format!("bad input: {e}"));
        }
    }
    None
}

/// After the actor was cancelled: route replies and acks until the connection closes.
async fn drain_until_closed(conn: &Arc<Connection>, reader: &mut ChannelReader) {
    loop {
        tokio::select! {
            msg = reader.recv() => match msg {
                Ok(Some(Msg::Heartbeat(_))) => conn.heard.store(true, Ordering::Relaxed),
                // Runtime calls (cancel acknowledgements, registrar calls) still work.
                Ok(Some(Msg::Cmd(cmd))) if runtime_calls::is_runtime_ns(&cmd.ns) => {
                    runtime_calls::serve(conn, cmd).await
                }
                Ok(Some(Msg::Cmd(cmd))) => {
                    let error = actor_ipc::ErrorInfo::new(
                        crate::base::error::ACTOR_CANCELLED,
                        format!(
                            "`{}.{}` refused: actor {} is stopping (call another actor, or \
                             again once it is back)",
                            cmd.ns, cmd.func, conn.core.uid
                        ),
                    );
                    conn.reply_error(&cmd.cid, error).await;
                }
                Ok(Some(Msg::Sentinel)) => {
                    // Answer with ours once what is queued is written: the process may
                    // exit right after, and must not leave a frame half sent.
                    conn.close().await;
                    return;
                }
                Ok(None) | Err(_) => return,
                Ok(Some(msg)) => conn.route(msg),
            },
            () = conn.closed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reader_lets_consumers_run_by_replies_and_by_bytes() {
        let mut paced = Pacing::default();
        // Small replies: every ROUTE_YIELD_EVERY.
        let due: Vec<bool> = (0..ROUTE_YIELD_EVERY)
            .map(|_| paced.route_yield_due(9))
            .collect();
        assert!(due[..ROUTE_YIELD_EVERY - 1].iter().all(|d| !d));
        assert!(due[ROUTE_YIELD_EVERY - 1]);
        // Large ones: as soon as a megabyte waits, then counting bytes again.
        let item = 300 * 1024;
        let due: Vec<bool> = (0..8).map(|_| paced.route_yield_due(item)).collect();
        assert_eq!(due, [false, false, false, true, false, false, false, true]);
    }
}
