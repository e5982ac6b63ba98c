//! Where a child actor runs: on this host (the default) or on another one, reached through the
//! engine the user already has. We run no daemon and copy no binary: the program must exist at
//! its path on the other host.
//!
//! - `ssh://[user@]host[:port]`: the system's OpenSSH client (`ssh`), with the user's own keys,
//!   `~/.ssh/config` and agent. The child's spec travels on the remote command line (names,
//!   addresses: nothing secret); the tree's secret travels on the session's stdin, which then
//!   stays open as the child's lifeline: when it reaches EOF (the parent, or the `ssh` client,
//!   died), the child stops.
//!
//! - `slurm` or `slurm://PARTITION`: a job step started with `srun` (one task), with the
//!   options the user gives ([`SlurmJob`]); Slurm picks the node. The spec travels in the
//!   environment (srun exports it to the task), the secret on stdin, which srun forwards and
//!   which is again the lifeline; and when `srun` dies, Slurm ends the step.
//!
//! A remote child listens on the address its SSH connection arrived on (the remote end of
//! `SSH_CONNECTION`), or on the one [`SshHost::listen_on`] names, or else on its host's address
//! facing its parent; it connects back to its parent on an address of the parent's reachable
//! from there.

use std::{fmt, net::IpAddr, path::Path, str::FromStr, time::Duration};

use crate::base::error::{Error, Result};

pub(crate) use crate::base::platform::{CHILD_HOST_ENV, SLURM_LABEL, child_host_label};
/// Set on a remote child to the address it listens on, when the placement names one.
pub(crate) const LISTEN_HOST_ENV: &str = "ACTOR_LISTEN_HOST";
/// A file of OpenSSH client configuration (`ssh -F`) the SSH launcher uses, and hands on to
/// remote children for their own children.
pub const SSH_CONFIG_ENV: &str = "ACTOR_SSH_CONFIG";
/// The `ssh` program the SSH launcher runs (default: `ssh` on the `PATH`).
pub const SSH_PROGRAM_ENV: &str = "ACTOR_SSH";
/// The `srun` program the Slurm launcher runs (default: `srun` on the `PATH`).
pub const SRUN_PROGRAM_ENV: &str = "ACTOR_SRUN";

/// Where a child actor runs.
///
/// Parse one from text (`"local"`, `"ssh://alice@node7:2222"`) or build it with
/// [`Host::ssh`]:
///
/// ```
/// use actor::Host;
///
/// let host: Host = "ssh://alice@node7:2222".parse().unwrap();
/// assert_eq!(host.to_string(), "ssh://alice@node7:2222");
/// assert!(host.is_remote());
/// assert!(!"local".parse::<Host>().unwrap().is_remote());
/// assert!("ftp://node7".parse::<Host>().is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Host {
    /// This host: the child is a local process (the default).
    #[default]
    Local,
    /// Another host, through the system's OpenSSH client.
    Ssh(SshHost),
    /// A node of a Slurm cluster, as a job step started with `srun`.
    Slurm(SlurmJob),
}

impl Host {
    /// A host reached with `ssh` at `spec` (`[user@]host[:port]`, with or without `ssh://`).
    pub fn ssh(spec: &str) -> Result<Self> {
        SshHost::parse(spec.strip_prefix("ssh://").unwrap_or(spec)).map(Host::Ssh)
    }

    /// Whether the child runs on another host (and so must reach its parent over a network).
    pub fn is_remote(&self) -> bool {
        !matches!(self, Host::Local)
    }

    /// How long a child placed here may take to connect back, given a local child's `local`:
    /// an SSH login takes longer, and a Slurm job may wait in the queue.
    pub(crate) fn start_timeout(&self, local: Duration) -> Duration {
        match self {
            Host::Local => local,
            Host::Ssh(_) => SSH_START_TIMEOUT,
            Host::Slurm(job) => job.queue_wait.unwrap_or(SLURM_QUEUE_WAIT),
        }
    }
}

/// How long a child started over SSH may take to connect back (login, key exchange).
const SSH_START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a Slurm child may wait in the queue and start, unless its job says otherwise.
const SLURM_QUEUE_WAIT: Duration = Duration::from_secs(300);

impl FromStr for Host {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "" | "local" | "localhost" => Ok(Host::Local),
            "slurm" | "slurm://" => Ok(Host::Slurm(SlurmJob::new())),
            _ => {
                if let Some(spec) = text.strip_prefix("ssh://") {
                    return SshHost::parse(spec).map(Host::Ssh);
                }
                match text.strip_prefix("slurm://") {
                    Some(partition) if !partition.contains(['/', ' ', '?']) => {
                        Ok(Host::Slurm(SlurmJob::new().partition(partition)))
                    }
                    _ => Err(Error::Usage(format!(
                        "host {text:?} is none of `local`, `ssh://[user@]host[:port]`, \
                         `slurm` and `slurm://PARTITION`"
                    ))),
                }
            }
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Local => f.write_str("local"),
            Host::Ssh(ssh) => write!(f, "ssh://{ssh}"),
            Host::Slurm(job) => match &job.partition {
                Some(partition) => write!(f, "slurm://{partition}"),
                None => f.write_str("slurm"),
            },
        }
    }
}

/// A host reached through OpenSSH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshHost {
    user: Option<String>,
    host: String,
    port: Option<u16>,
    options: Vec<String>,
    listen_on: Option<String>,
}

impl SshHost {
    fn parse(spec: &str) -> Result<Self> {
        let bad = |why: &str| Error::Usage(format!("ssh host {spec:?}: {why}"));
        let (user, rest) = match spec.rsplit_once('@') {
            Some((user, rest)) if !user.is_empty() => (Some(user.to_owned()), rest),
            Some(_) => return Err(bad("the user before `@` is empty")),
            None => (None, spec),
        };
        let (host, port) = match rest.strip_prefix('[') {
            // [v6]:port or [v6]
            Some(bracketed) => {
                let (host, after) = bracketed
                    .split_once(']')
                    .ok_or_else(|| bad("`[` without `]`"))?;
                let port = match after.strip_prefix(':') {
                    Some(port) => Some(port),
                    None if after.is_empty() => None,
                    None => return Err(bad("text after `]` is not `:port`")),
                };
                (host, port)
            }
            None => match rest.rsplit_once(':') {
                Some((host, port)) if !host.contains(':') => (host, Some(port)),
                _ => (rest, None),
            },
        };
        let port = port
            .map(|p| {
                p.parse::<u16>()
                    .map_err(|_| bad("the port is not a number"))
            })
            .transpose()?;
        if host.is_empty() || host.starts_with('-') || host.contains(char::is_whitespace) {
            return Err(bad("no usable host name"));
        }
        Ok(Self {
            user,
            host: host.to_owned(),
            port,
            options: Vec::new(),
            listen_on: None,
        })
    }

    /// Adds an argument for `ssh` (before the host): `.option("-i").option(key_path)`.
    pub fn option(mut self, arg: impl Into<String>) -> Self {
        self.options.push(arg.into());
        self
    }

    /// Makes the child listen on this address of its host instead of the one its SSH
    /// connection arrived on (a host with a separate data network, say).
    pub fn listen_on(mut self, ip: impl Into<String>) -> Self {
        self.listen_on = Some(ip.into());
        self
    }

    /// The host name or address, as given.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port SSH connects to, for finding the local address facing the host (22 unless
    /// given; an alias in the user's SSH config may say otherwise, which does not change which
    /// local interface faces the host).
    fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(22)
    }

    /// The command that runs `program` with `args` and `env` on the host.
    pub(crate) fn command(
        &self,
        program: &Path,
        args: &[String],
        env: &[(String, String)],
    ) -> tokio::process::Command {
        let ssh = std::env::var(SSH_PROGRAM_ENV).unwrap_or_else(|_| "ssh".to_owned());
        let mut command = crate::tree::spawn::with_parent_death_signal(Path::new(&ssh));
        // No terminal (a child's stdin is its lifeline, not a tty), never a password prompt.
        command.args(["-T", "-o", "BatchMode=yes"]);
        if let Ok(config) = std::env::var(SSH_CONFIG_ENV) {
            command.arg("-F").arg(config);
        }
        if let Some(port) = self.port {
            command.arg("-p").arg(port.to_string());
        }
        if let Some(user) = &self.user {
            command.arg("-l").arg(user);
        }
        command.args(&self.options).arg("--").arg(&self.host);
        let mut remote = String::from("exec env");
        let listen = self
            .listen_on
            .iter()
            .map(|ip| (LISTEN_HOST_ENV, ip.as_str()));
        for (key, value) in env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(listen)
        {
            remote.push(' ');
            remote.push_str(&shell_quote(&format!("{key}={value}")));
        }
        remote.push(' ');
        remote.push_str(&shell_quote(&program.to_string_lossy()));
        for arg in args {
            remote.push(' ');
            remote.push_str(&shell_quote(arg));
        }
        command.arg(remote);
        command
    }

    /// This host's address that faces the remote one: the source address the kernel picks for
    /// a packet to it (a UDP socket's `connect` sends nothing).
    pub(crate) async fn local_ip_facing(&self) -> Result<IpAddr> {
        let target = tokio::net::lookup_host((self.host.as_str(), self.port_or_default()))
            .await
            .map_err(|e| Error::Usage(format!("cannot resolve ssh host {}: {e}", self.host)))?
            .next()
            .ok_or_else(|| Error::Usage(format!("ssh host {} has no address", self.host)))?;
        ip_facing(target).map_err(|e| {
            Error::Usage(format!(
                "no route to ssh host {} ({target}): {e}",
                self.host
            ))
        })
    }
}

impl fmt::Display for SshHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

/// A Slurm job step running one child: `srun --ntasks=1` with the options given here.
///
/// ```
/// use actor::{Host, SlurmJob};
///
/// let host = Host::Slurm(SlurmJob::new().partition("debug").time("10:00").arg("--mem=1G"));
/// assert_eq!(host.to_string(), "slurm://debug");
/// assert_eq!("slurm://debug".parse::<Host>().unwrap().to_string(), "slurm://debug");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlurmJob {
    partition: Option<String>,
    nodes: Option<String>,
    time: Option<String>,
    args: Vec<String>,
    queue_wait: Option<Duration>,
}

impl SlurmJob {
    /// A step with Slurm's defaults (its default partition, one node, the partition's time).
    pub fn new() -> Self {
        Self::default()
    }

    /// `--partition`.
    pub fn partition(mut self, partition: impl Into<String>) -> Self {
        self.partition = Some(partition.into());
        self
    }

    /// `--nodes` (a count, or a range such as `1-2`).
    pub fn nodes(mut self, nodes: impl Into<String>) -> Self {
        self.nodes = Some(nodes.into());
        self
    }

    /// `--time` (Slurm's formats: `MM`, `MM:SS`, `HH:MM:SS`, `D-HH`...).
    pub fn time(mut self, time: impl Into<String>) -> Self {
        self.time = Some(time.into());
        self
    }

    /// Any other `srun` argument (`--mem=1G`, `--account=x`), before the program. Inside an
    /// allocation (`salloc`, or a child that is itself a step), a step waits for free
    /// resources of the allocation: `--overlap` lets it share them.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// How long the step may wait in the queue and start before the spawn fails (default
    /// five minutes); `srun` is then killed, which cancels the job.
    pub fn queue_wait(mut self, wait: Duration) -> Self {
        self.queue_wait = Some(wait);
        self
    }

    /// The command that runs `program` with `args` as the one task of a step named `name`;
    /// the task gets this process's environment with what the caller adds to the command.
    pub(crate) fn command(
        &self,
        name: &str,
        program: &Path,
        args: &[String],
    ) -> tokio::process::Command {
        let srun = std::env::var(SRUN_PROGRAM_ENV).unwrap_or_else(|_| "srun".to_owned());
        let mut command = crate::tree::spawn::with_parent_death_signal(Path::new(&srun));
        command
            .args(["--ntasks=1", "--quiet", "--export=ALL"])
            .arg(format!("--job-name={name}"));
        let options = [
            ("--partition", &self.partition),
            ("--nodes", &self.nodes),
            ("--time", &self.time),
        ];
        for (flag, value) in options {
            if let Some(value) = value {
                command.arg(format!("{flag}={value}"));
            }
        }
        command.args(&self.args).arg("--").arg(program).args(args);
        command
    }
}

/// This host's address that a node of its cluster reaches it at: the first address its host
/// name resolves to that is not loopback, else the first (a one-machine cluster).
pub(crate) async fn own_cluster_ip() -> Result<IpAddr> {
    let name = crate::base::platform::hostname()
        .map_err(|e| Error::Usage(format!("cannot read this host's name: {e}")))?;
    let addrs: Vec<IpAddr> = tokio::net::lookup_host((name.as_str(), 0))
        .await
        .map_err(|e| Error::Usage(format!("cannot resolve this host's name {name}: {e}")))?
        .map(|a| a.ip())
        .collect();
    addrs
        .iter()
        .find(|ip| !ip.is_loopback())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| Error::Usage(format!("this host's name {name} has no address")))
}

/// `text` as one word for a POSIX shell (the remote login shell runs the command line).
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The address a remote child placed at `placement` listens on: the one named for it, else
/// for a child started over SSH the local end of that connection (`SSH_CONNECTION`: client
/// ip, client port, server ip, server port), else this host's address facing `parent`.
/// `None` when none is known.
///
/// A Slurm step inherits its launcher's whole environment (`srun --export=ALL`), so an
/// `SSH_CONNECTION` there is the login node's, not its own: it is not looked at.
pub(crate) fn remote_listen_host(placement: &str, parent: &crate::Addr) -> Option<String> {
    listen_host(
        std::env::var(LISTEN_HOST_ENV).ok(),
        std::env::var("SSH_CONNECTION").ok(),
        placement,
        parent,
    )
}

/// [`remote_listen_host`] from the values of its variables.
fn listen_host(
    named: Option<String>,
    ssh_connection: Option<String>,
    placement: &str,
    parent: &crate::Addr,
) -> Option<String> {
    if let Some(host) = named {
        return Some(host);
    }
    if let Some(ip) = ssh_connection
        .filter(|_| placement != SLURM_LABEL)
        .and_then(|c| c.split_whitespace().nth(2).map(str::to_owned))
    {
        return Some(ip);
    }
    let crate::Addr::Tcp { host, port } = parent else {
        return None;
    };
    use std::net::ToSocketAddrs;
    let target = (host.trim_matches(|c| c == '[' || c == ']'), *port)
        .to_socket_addrs()
        .ok()?
        .next()?;
    ip_facing(target).ok().map(|ip| ip.to_string())
}

/// This host's address facing `target`: the source address the kernel picks for a packet to
/// it (connecting a UDP socket sends nothing).
fn ip_facing(target: std::net::SocketAddr) -> std::io::Result<IpAddr> {
    let any: std::net::SocketAddr = if target.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = std::net::UdpSocket::bind(any)?;
    socket.connect(target)?;
    Ok(socket.local_addr()?.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slurm_step_ignores_the_ssh_session_it_inherited() {
        let parent = crate::Addr::tcp("127.0.0.1", 4000);
        let login = Some("10.0.0.9 51000 10.0.0.1 22".to_owned());
        // Started over SSH: the server end of that session.
        assert_eq!(
            listen_host(None, login.clone(), "ssh://node1", &parent).as_deref(),
            Some("10.0.0.1")
        );
        // A Slurm step launched from that login: its own address facing the parent.
        assert_eq!(
            listen_host(None, login.clone(), SLURM_LABEL, &parent).as_deref(),
            Some("127.0.0.1")
        );
        // An address named for it wins either way.
        assert_eq!(
            listen_host(Some("10.0.0.5".into()), login, SLURM_LABEL, &parent).as_deref(),
            Some("10.0.0.5")
        );
    }

    #[test]
    fn ssh_hosts_parse_with_user_port_and_ipv6() {
        let host: Host = "ssh://bob@10.0.0.2:2222".parse().unwrap();
        let Host::Ssh(ssh) = &host else {
            panic!("not ssh: {host:?}")
        };
        assert_eq!(ssh.user.as_deref(), Some("bob"));
        assert_eq!(ssh.host, "10.0.0.2");
        assert_eq!(ssh.port, Some(2222));
        assert_eq!(host.to_string(), "ssh://bob@10.0.0.2:2222");
        let v6: Host = "ssh://[fd00::2]:22".parse().unwrap();
        assert_eq!(v6.to_string(), "ssh://[fd00::2]:22");
        let bare = Host::ssh("node7").unwrap();
        assert_eq!(bare.to_string(), "ssh://node7");
        for bad in [
            "ssh://",
            "ssh://@h",
            "ssh://h:port",
            "ssh://-oProxyCommand=x",
            "tcp://h",
        ] {
            assert!(bad.parse::<Host>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn the_remote_command_is_one_quoted_word_per_argument() {
        let Host::Ssh(ssh) = Host::ssh("me@h").unwrap() else {
            panic!("not ssh")
        };
        let command = ssh.command(
            Path::new("/opt/my app/bin"),
            &["it's".to_owned()],
            &[("ACTOR_CHILD_NAME".to_owned(), "w 1".to_owned())],
        );
        let args: Vec<String> = command
            .as_std()
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let remote = args.last().unwrap();
        assert_eq!(
            remote,
            r"exec env 'ACTOR_CHILD_NAME=w 1' '/opt/my app/bin' 'it'\''s'"
        );
        assert!(args.windows(2).any(|w| w == ["--", "h"]), "{args:?}");
    }
}
