//! The heartbeat rule (`docs/protocol-notes.md`): how often each side of a connection proves
//! it is alive, and when silence means the peer is gone. No I/O here: the connection's
//! heartbeat task feeds [`Liveness`] its ticks and what it heard, and acts on the verdict.

use std::time::{Duration, Instant};

/// The environment variable setting how long a peer may be silent before it is declared
/// gone, in milliseconds (`0` turns heartbeats off). Children inherit it.
pub const HEARTBEAT_TIMEOUT_ENV: &str = "ACTOR_HEARTBEAT_TIMEOUT_MS";

/// How long a peer may be silent by default before it is declared gone.
pub const DEFAULT_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(5);

/// How many heartbeats fit in the timeout: one or two lost or late ones are no failure.
const BEATS_PER_TIMEOUT: u32 = 5;

/// The shortest interval either side agrees to (a peer cannot make us spin).
pub(crate) const MIN_INTERVAL: Duration = Duration::from_millis(50);

/// A connection's heartbeat settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatConfig {
    /// How often this side sends a heartbeat on a quiet connection, and asks its peer to.
    pub interval: Duration,
    /// How long the peer may be silent before it is declared gone.
    pub timeout: Duration,
}

impl HeartbeatConfig {
    /// Heartbeats that declare a silent peer gone after `timeout`.
    pub fn with_timeout(timeout: Duration) -> Self {
        let timeout = timeout.max(MIN_INTERVAL * 2);
        Self {
            interval: (timeout / BEATS_PER_TIMEOUT).max(MIN_INTERVAL),
            timeout,
        }
    }

    /// The settings from [`HEARTBEAT_TIMEOUT_ENV`], else the default; `None` when turned off.
    pub(crate) fn from_env() -> Option<Self> {
        match std::env::var(HEARTBEAT_TIMEOUT_ENV)
            .ok()
            .and_then(|ms| ms.trim().parse::<u64>().ok())
        {
            Some(0) => None,
            Some(ms) => Some(Self::with_timeout(Duration::from_millis(ms))),
            None => Some(Self::with_timeout(DEFAULT_HEARTBEAT_TIMEOUT)),
        }
    }
}

/// The interval both sides use: the shorter of the two asked for, so each side's timeout is
/// met; never below [`MIN_INTERVAL`].
pub(crate) fn agreed_interval(asked: Duration, ours: Duration) -> Duration {
    asked.min(ours).max(MIN_INTERVAL)
}

/// What one side knows about its peer's liveness.
#[derive(Debug)]
pub(crate) struct Liveness {
    timeout: Duration,
    interval: Duration,
    last_heard: Instant,
    last_tick: Instant,
}

/// What the heartbeat task should do after a tick.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Send a heartbeat and wait for the next tick.
    Beat,
    /// The peer was silent for this long: it is gone.
    Gone(Duration),
}

impl Liveness {
    /// Starts counting at `now`, with the agreed `interval` and this side's `timeout` (at
    /// least two intervals).
    pub(crate) fn new(now: Instant, interval: Duration, timeout: Duration) -> Self {
        Self {
            timeout: timeout.max(interval * 2),
            interval,
            last_heard: now,
            last_tick: now,
        }
    }

    /// A tick at `now`; `heard` says whether anything arrived since the last one.
    pub(crate) fn tick(&mut self, now: Instant, heard: bool) -> Verdict {
        let late = now.saturating_duration_since(self.last_tick);
        self.last_tick = now;
        // A tick far behind its time means this side did not run (its thread was blocked, or
        // the machine suspended): what arrived meanwhile is unread yet, so silence says
        // nothing about the peer. Start counting again.
        if heard || late > self.interval * 2 {
            self.last_heard = now;
            return Verdict::Beat;
        }
        let silent = now.saturating_duration_since(self.last_heard);
        if silent >= self.timeout {
            Verdict::Gone(silent)
        } else {
            Verdict::Beat
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn silence_past_the_timeout_is_gone_and_hearing_resets_it() {
        let t0 = Instant::now();
        let mut live = Liveness::new(t0, 100 * MS, 500 * MS);
        for i in 1..5 {
            assert_eq!(live.tick(t0 + 100 * MS * i, false), Verdict::Beat);
        }
        assert_eq!(live.tick(t0 + 500 * MS, true), Verdict::Beat);
        for i in 6..10 {
            assert_eq!(live.tick(t0 + 100 * MS * i, false), Verdict::Beat);
        }
        assert_eq!(live.tick(t0 + 1000 * MS, false), Verdict::Gone(500 * MS));
    }

    #[test]
    fn a_late_tick_restarts_the_count_instead_of_blaming_the_peer() {
        let t0 = Instant::now();
        let mut live = Liveness::new(t0, 100 * MS, 500 * MS);
        assert_eq!(live.tick(t0 + 100 * MS, false), Verdict::Beat);
        // This side was blocked for 2 s.
        assert_eq!(live.tick(t0 + 2100 * MS, false), Verdict::Beat);
        for i in 22..26 {
            assert_eq!(live.tick(t0 + 100 * MS * i, false), Verdict::Beat);
        }
        assert_eq!(live.tick(t0 + 2600 * MS, false), Verdict::Gone(500 * MS));
    }

    #[test]
    fn intervals_agree_on_the_shorter_with_a_floor() {
        assert_eq!(agreed_interval(300 * MS, 200 * MS), 200 * MS);
        assert_eq!(agreed_interval(MS, 200 * MS), MIN_INTERVAL);
        assert_eq!(agreed_interval(60 * MS, 200 * MS), 60 * MS);
        let config = HeartbeatConfig::with_timeout(Duration::from_secs(5));
        assert_eq!(config.interval, Duration::from_secs(1));
    }
}
