//! The few operating-system specifics the runtime needs, each behind a small named function
//! (Linux is the target platform).

use super::error::ChildExit;
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};

/// The CPUs this process may run on (its affinity and cgroup quota), read once: each read
/// parses `/proc/self/cgroup` and the cgroup's quota files, and an actor starting asks more
/// than once (its thread slots, its readers' pacing).
pub(crate) fn cpus() -> usize {
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// Asks the kernel to SIGKILL this process when the thread that started it (its parent) dies,
/// whatever the parent's death: the first of the two no-orphan mechanisms (the second is the
/// parent connection's EOF). Returns `false` if the parent is already gone (it died between
/// starting us and this call), in which case the caller must exit.
pub(crate) fn die_with_parent(expected_parent: u32) -> bool {
    if let Err(e) = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL) {
        tracing::warn!(error = %e, "cannot ask for the parent-death signal");
    }
    parent_pid() == expected_parent
}

/// This process's parent's pid.
pub(crate) fn parent_pid() -> u32 {
    u32::try_from(nix::unistd::getppid().as_raw()).unwrap_or(0)
}

/// How a waited-for child process ended.
pub(crate) fn child_exit(status: &std::io::Result<std::process::ExitStatus>) -> ChildExit {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => ChildExit::Code(code),
            (None, Some(number)) => ChildExit::Signal {
                number,
                name: Signal::try_from(number).ok().map(Signal::as_str),
            },
            (None, None) => ChildExit::Unknown(status.to_string()),
        },
        Err(e) => ChildExit::Unknown(e.to_string()),
    }
}

/// Sends SIGKILL to `pid` (the last step of a forced teardown, and what a dropped nursery does).
/// Errors (the process is already gone) are ignored.
pub(crate) fn kill_now(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// Sends SIGTERM to `pid` (the polite step of a forced teardown). Errors (the process is
/// already gone) are ignored.
pub(crate) fn terminate(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
}

/// Raises this process's soft limit on open files to its hard limit (once; many systems
/// start processes at 1,024, fewer than an actor's connection limit) and returns the soft
/// limit in force, so connection limits can stay below it: running out of descriptors makes
/// accepting fail for everyone, a connection limit refuses only the connections past it.
pub(crate) fn open_files_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    static LIMIT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(_) => soft,
        },
        Ok((soft, _)) => soft,
        Err(_) => u64::MAX,
    })
}

/// Set on a remote child: the host label its log lines carry (`[name@host]`), and the sign
/// that its lifeline is its stdin, not its parent's pid.
pub(crate) const CHILD_HOST_ENV: &str = "ACTOR_CHILD_HOST";

/// The host label a Slurm child is given; it names itself by its node once it runs.
pub(crate) const SLURM_LABEL: &str = "slurm";

/// The label a remote child's log lines and reports carry: its host as its parent named it,
/// or for a Slurm step, the node it landed on.
pub(crate) fn child_host_label(given: &str) -> String {
    match (given, std::env::var("SLURMD_NODENAME")) {
        (SLURM_LABEL, Ok(node)) => format!("{SLURM_LABEL}:{node}"),
        _ => given.to_owned(),
    }
}

/// The host this process runs on, as reports name it: a remote child's label, else the
/// machine's host name.
pub(crate) fn host_label() -> String {
    match std::env::var(CHILD_HOST_ENV) {
        Ok(given) => child_host_label(&given),
        Err(_) => hostname().unwrap_or_default(),
    }
}

/// This machine's host name.
pub(crate) fn hostname() -> std::io::Result<String> {
    nix::unistd::gethostname()
        .map(|name| name.to_string_lossy().into_owned())
        .map_err(std::io::Error::from)
}
