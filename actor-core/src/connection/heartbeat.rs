//! Negotiating and running heartbeats on a connection (`docs/protocol-notes.md`): a peer that
//! stops answering (stopped, hung, its host gone, the link cut) is detected within the
//! timeout, its connection is shut, and every call waiting on it fails with the reason. The
//! rule is the engine's (`engine/heartbeat.rs`).

use std::{
    collections::HashMap,
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use actor_ipc::{Cmd, ErrorInfo, Msg, Payload};
use serde::Deserialize;
use tracing::{debug, warn};

use super::{Connection, EXTENSION_NS};
use crate::{
    base::error::{MODULE_NOT_EXPOSED, TYPE_ERROR},
    engine::heartbeat::{Liveness, Verdict, agreed_interval},
};

/// The extension call asking the peer for heartbeats. A tractor 0.1.0a5 peer refuses it
/// (`ModuleNotExposed`), which leaves heartbeats off for that connection.
pub(crate) const HEARTBEAT_CALL: &str = "heartbeat";

#[derive(Deserialize)]
struct Interval {
    interval_ms: u64,
}

impl Connection {
    /// Asks the peer for heartbeats, in the background; they start once it agrees.
    pub(crate) fn request_heartbeats(self: &Arc<Self>) {
        let Some(config) = self.core.heartbeat else {
            return;
        };
        let conn = Arc::downgrade(self);
        let ask = async move {
            let Some(conn) = conn.upgrade() else { return };
            let kwargs = Payload::encode(&HashMap::from([(
                "interval_ms",
                config.interval.as_millis() as u64,
            )]))
            .unwrap_or_else(|_| Payload::empty_map());
            match conn.run_raw(EXTENSION_NS, HEARTBEAT_CALL, kwargs).await {
                // The interval both sides use (the peer's timeout may need beats more often
                // than ours); `start_heartbeats` floors it, so a peer cannot make us spin.
                Ok(answer) => match answer.decode::<Interval>() {
                    Ok(agreed) => conn.start_heartbeats(Duration::from_millis(agreed.interval_ms)),
                    Err(e) => debug!(peer = %conn.peer, error = %e, "unusable heartbeat answer"),
                },
                Err(e) => debug!(peer = %conn.peer, error = %e, "peer declined heartbeats"),
            }
        };
        tokio::spawn(self.core.io_tasks.track_future(ask));
    }

    /// The peer asked for heartbeats: agree on the shorter interval and start.
    pub(crate) async fn enable_heartbeats(self: &Arc<Self>, cmd: Box<Cmd>) {
        let Some(config) = self.core.heartbeat else {
            let error = ErrorInfo::new(MODULE_NOT_EXPOSED, "heartbeats are off on this actor");
            return self.reply_error(&cmd.cid, error).await;
        };
        let asked = match cmd.kwargs.decode::<Interval>() {
            Ok(asked) => Duration::from_millis(asked.interval_ms),
            Err(e) => {
                let error = ErrorInfo::new(TYPE_ERROR, format!("{HEARTBEAT_CALL}(): {e}"));
                return self.reply_error(&cmd.cid, error).await;
            }
        };
        let agreed = agreed_interval(asked, config.interval);
        let reply = Payload::encode(&HashMap::from([("interval_ms", agreed.as_millis() as u64)]))
            .unwrap_or_else(|_| Payload::nil());
        self.reply_value(&cmd.cid, reply).await;
        self.start_heartbeats(agreed);
    }

    /// Runs the heartbeat task (once per connection): a heartbeat every `interval`, and the
    /// connection shut once the peer was silent for this side's timeout.
    fn start_heartbeats(self: &Arc<Self>, interval: Duration) {
        let Some(config) = self.core.heartbeat else {
            return;
        };
        if self.heartbeats_on.swap(true, Ordering::AcqRel) {
            return;
        }
        let interval = interval.max(crate::engine::heartbeat::MIN_INTERVAL);
        let conn = Arc::downgrade(self);
        let closed = self.closed.clone();
        let beat = async move {
            let mut liveness = Liveness::new(Instant::now(), interval, config.timeout);
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut seq = 0_u64;
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    () = closed.cancelled() => return,
                }
                let Some(conn) = conn.upgrade() else { return };
                let heard = conn.heard.swap(false, Ordering::AcqRel)
                    || conn.dispatching.load(Ordering::Relaxed);
                match liveness.tick(Instant::now(), heard) {
                    Verdict::Beat => {
                        seq += 1;
                        if let Ok(frame) = Msg::Heartbeat(seq).to_frame() {
                            // A full queue means frames are going out anyway.
                            let _ = conn.sender.try_send_frame(frame);
                        }
                    }
                    Verdict::Gone(silent) => {
                        let reason = format!(
                            "no heartbeat from {} for {:.1} s (it is stopped, hung or \
                             unreachable)",
                            conn.peer,
                            silent.as_secs_f64()
                        );
                        warn!(peer = %conn.peer, "{reason}; closing the connection");
                        conn.heartbeat_lost.store(true, Ordering::Release);
                        conn.shut(reason);
                        conn.stop_reading.cancel();
                        return;
                    }
                }
            }
        };
        tokio::spawn(self.core.io_tasks.track_future(beat));
    }

    /// With `ChannelConfig::idle_timeout`: closes the connection once it carried nothing, and
    /// had no call running either way, for that long.
    pub(crate) fn watch_idle(self: &Arc<Self>) {
        let Some(timeout) = self.core.config.idle_timeout else {
            return;
        };
        let conn = Arc::downgrade(self);
        let closed = self.closed.clone();
        let watch = async move {
            let check = (timeout / 4).max(crate::engine::heartbeat::MIN_INTERVAL);
            let mut idle_since = Instant::now();
            loop {
                tokio::select! {
                    () = tokio::time::sleep(check) => {}
                    () = closed.cancelled() => return,
                }
                let Some(conn) = conn.upgrade() else { return };
                let busy = conn.active.swap(false, Ordering::AcqRel)
                    || !conn.tasks.is_empty()
                    || !conn.calls.is_empty();
                if busy {
                    idle_since = Instant::now();
                } else if idle_since.elapsed() >= timeout {
                    debug!(peer = %conn.peer, ?timeout, "closing an idle connection");
                    conn.set_reason(&format!("idle for {timeout:?}"));
                    conn.close().await;
                    conn.stop_reading.cancel();
                    return;
                }
            }
        };
        tokio::spawn(self.core.io_tasks.track_future(watch));
    }

    /// Whether heartbeats run on this connection.
    pub(crate) fn heartbeats_on(&self) -> bool {
        self.heartbeats_on.load(Ordering::Acquire)
    }

    /// Whether the connection was shut because the peer fell silent.
    pub(crate) fn heartbeat_lost(&self) -> bool {
        self.heartbeat_lost.load(Ordering::Acquire)
    }
}
