//! The process's secret: the one every connection of this process proves, unless an actor was
//! given its own.
//!
//! A child gets its tree's secret from its parent through its standard input (a pipe the
//! parent writes once), never through its arguments or environment, which other local users
//! can read in `/proc`. A root gets one from [`AUTH_FILE_ENV`] (a path; the file holds the
//! secret), from `RootOptions::secret`, or from `ActorBuilder::secret`.

use std::sync::{Mutex, OnceLock};

use actor_ipc::Secret;

use crate::base::{
    error::{Error, Result},
    lock,
};

/// Names a file holding the secret of this program's tree (the file, never the secret).
pub const AUTH_FILE_ENV: &str = "ACTOR_AUTH_FILE";

/// Set by a parent on a child it writes the secret to: "read one line of hex from stdin".
pub(crate) const AUTH_STDIN_ENV: &str = "ACTOR_AUTH_STDIN";

/// The secret set for this process, or read from [`AUTH_FILE_ENV`] on first use.
static PROCESS_SECRET: Mutex<Option<Secret>> = Mutex::new(None);
/// What reading [`AUTH_FILE_ENV`] gave, read once.
static FROM_ENV: OnceLock<std::result::Result<Option<Secret>, String>> = OnceLock::new();

/// Makes `secret` the one this process's actors and clients (e.g. [`crate::connect`]) prove by
/// default, and require of their peers. For programs that only call others; a root is given
/// its tree's secret with `RootOptions::secret` or `ActorBuilder::secret`.
pub fn set_process_secret(secret: Secret) {
    *lock(&PROCESS_SECRET) = Some(secret);
}

/// The secret this process proves by default: the one set for it, else the one in the file
/// [`AUTH_FILE_ENV`] names, else none. An unreadable or unusable file is an error, never a
/// silent fall back to no authentication.
pub(crate) fn process_secret() -> Result<Option<Secret>> {
    if let Some(secret) = lock(&PROCESS_SECRET).clone() {
        return Ok(Some(secret));
    }
    FROM_ENV
        .get_or_init(|| match std::env::var_os(AUTH_FILE_ENV) {
            None => Ok(None),
            Some(path) => Secret::from_file(path.as_ref())
                .map(Some)
                .map_err(|e| format!("{AUTH_FILE_ENV}: {e}")),
        })
        .clone()
        .map_err(Error::Usage)
}
