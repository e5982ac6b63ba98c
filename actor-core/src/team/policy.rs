//! Which failures a team retries, how often, and how long it waits in between: plain rules,
//! no I/O, unit-tested here.

use std::{collections::HashSet, time::Duration};

use crate::base::error::Error;

/// The `type_str` a Rust function raises for a failure its team should retry
/// ([`crate::Error::recoverable`]); every team retries it, besides its own retry list.
pub const RECOVERABLE: &str = crate::base::error::RECOVERABLE_TYPE;

/// How a team treats failed attempts.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Remote error types (`type_str`) retried, besides [`RECOVERABLE`].
    pub(crate) retry_on: HashSet<String>,
    /// Attempts a task gets in all (the first included).
    pub(crate) max_attempts: u32,
    /// The wait before the first retry; doubled for each further one.
    pub(crate) backoff: Duration,
    /// The longest wait between attempts.
    pub(crate) max_backoff: Duration,
    /// How long one attempt may run before it fails (recoverably) and its member is replaced.
    pub(crate) deadline: Option<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retry_on: HashSet::new(),
            max_attempts: 3,
            backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
            deadline: None,
        }
    }
}

/// What a failed attempt means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Worth another attempt on another member: the member died or its connection broke, the
    /// deadline passed, or the error's type is one the team retries.
    Recoverable,
    /// Reported at once: the function failed in a way another attempt would repeat.
    Unrecoverable,
}

impl RetryPolicy {
    /// Classifies an attempt's error.
    pub(crate) fn classify(&self, error: &Error) -> Failure {
        match error {
            // The member is gone or could not be reached: the task never got its answer.
            Error::Disconnected { .. }
            | Error::Connect(_)
            | Error::Cancelled
            | Error::ChildExited { .. }
            | Error::Timeout { .. } => Failure::Recoverable,
            Error::Remote(remote)
                if remote.type_str == RECOVERABLE
                    || remote.type_str == crate::base::error::REROUTED_TYPE
                    || self.retry_on.contains(&remote.type_str)
                    // The member was stopped under the task (its actor cancelled).
                    || remote.type_str == crate::base::error::ACTOR_CANCELLED =>
            {
                Failure::Recoverable
            }
            _ => Failure::Unrecoverable,
        }
    }

    /// The wait before attempt `next` (2 for the first retry), with up to ±50% jitter from
    /// `random` (any value; spreads retries that failed together).
    pub(crate) fn backoff_before(&self, next: u32, random: u64) -> Duration {
        let doublings = next.saturating_sub(2).min(20);
        let base = self
            .backoff
            .saturating_mul(1 << doublings)
            .min(self.max_backoff);
        // A factor in [0.5, 1.5).
        let factor = 0.5 + (random % 1000) as f64 / 1000.0;
        base.mul_f64(factor).min(self.max_backoff)
    }
}

/// A random number for jitter, without a dependency: a freshly seeded hasher's output.
pub(crate) fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use actor_ipc::{ErrorInfo, Uid};

    use super::{Failure, RECOVERABLE, RetryPolicy};
    use crate::base::error::{Error, RemoteActorError};

    fn remote(type_str: &str) -> Error {
        Error::Remote(RemoteActorError::from_info(
            ErrorInfo::new(type_str, "trace"),
            &Uid::new("w"),
        ))
    }

    #[test]
    fn lost_members_deadlines_and_listed_types_are_recoverable() {
        let mut policy = RetryPolicy::default();
        policy.retry_on.insert("ConnectionResetError".into());
        let lost = Error::Disconnected {
            peer: Uid::new("w"),
            detail: "eof".into(),
        };
        assert_eq!(policy.classify(&lost), Failure::Recoverable);
        let late = Error::Timeout {
            what: "task 1".into(),
            after: Duration::from_secs(1),
        };
        assert_eq!(policy.classify(&late), Failure::Recoverable);
        assert_eq!(policy.classify(&remote(RECOVERABLE)), Failure::Recoverable);
        assert_eq!(
            policy.classify(&remote("ConnectionResetError")),
            Failure::Recoverable
        );
        assert_eq!(
            policy.classify(&remote("ValueError")),
            Failure::Unrecoverable
        );
        assert_eq!(
            policy.classify(&Error::Usage("misuse".into())),
            Failure::Unrecoverable
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let policy = RetryPolicy {
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            ..RetryPolicy::default()
        };
        // Jitter factor 1.0 (random % 1000 == 500): the plain doubling.
        assert_eq!(policy.backoff_before(2, 500), Duration::from_millis(100));
        assert_eq!(policy.backoff_before(3, 500), Duration::from_millis(200));
        assert_eq!(policy.backoff_before(4, 500), Duration::from_millis(400));
        assert_eq!(policy.backoff_before(30, 500), Duration::from_millis(1000));
        // The jitter's ends: half and one and a half times.
        assert_eq!(policy.backoff_before(2, 0), Duration::from_millis(50));
        assert_eq!(
            policy.backoff_before(2, 999),
            Duration::from_micros(149_900)
        );
    }
}
