//! Trees across hosts, on real engines: each host is a network namespace this test creates
//! (a veth on a bridge, an address the test assigns, a real `sshd` with a key generated here),
//! and `hosts-demo` runs its root in one of them and its relay and leaf over `ssh` in the
//! others. Everything is torn down afterwards, also when a test fails.
//!
//! These tests need root (network namespaces, sshd): CI runs as root. Without it they fail,
//! saying why: they must run.

// Test code: a failed unwrap or panic is a failed test, with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Command as StdCommand, Stdio},
    time::{Duration, Instant},
};

use common::{line_starting, within};
use tokio::{
    io::{AsyncBufReadExt, BufReader, Lines},
    process::{Child, Command},
};

const DEMO: &str = env!("CARGO_BIN_EXE_hosts-demo");
/// The heartbeat timeout the trees here use: the bound on noticing a lost host.
const HEARTBEAT_MS: u64 = 2_000;
/// How long after a loss everything must be gone: the heartbeat bound, its check interval and
/// the teardown steps.
const GONE_WITHIN: Duration = Duration::from_secs(8);

/// One lab at a time: labs are cheap, but each test's processes are checked by tree id, and
/// the machine has two cores.
static ONE_LAB: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs `program args` and fails the test with its output if it fails.
fn run(program: &str, args: &[&str]) {
    let out = StdCommand::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {} failed ({}): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Three hosts (network namespaces on one bridge), each running sshd, and the keys, ssh
/// config and tree secret to use them.
struct Lab {
    dir: tempfile::TempDir,
    /// Namespace names: the three hosts, then the switch.
    namespaces: Vec<String>,
    ips: Vec<String>,
    sshds: Vec<std::process::Child>,
}

impl Lab {
    async fn new(subnet: u8) -> Self {
        let probe = StdCommand::new("ip").args(["netns", "list"]).output();
        if !matches!(&probe, Ok(out) if out.status.success()) || !nix_is_root() {
            panic!(
                "these tests need network namespaces and sshd, so root (CAP_SYS_ADMIN, \
                 CAP_NET_ADMIN) and iproute2 + openssh-server: `ip netns list` gave {probe:?}"
            );
        }
        let sshd = Path::new("/usr/sbin/sshd");
        assert!(
            sshd.is_file(),
            "openssh-server is not installed (no {sshd:?})"
        );
        let dir = tempfile::tempdir().unwrap();
        let tag = format!("act{}s{subnet}", std::process::id());
        let mut lab = Lab {
            dir,
            namespaces: Vec::new(),
            ips: Vec::new(),
            sshds: Vec::new(),
        };
        let switch = format!("{tag}sw");
        run("ip", &["netns", "add", &switch]);
        lab.namespaces.push(switch.clone());
        run(
            "ip",
            &["-n", &switch, "link", "add", "br0", "type", "bridge"],
        );
        run("ip", &["-n", &switch, "link", "set", "br0", "up"]);
        for host in 1..=3u8 {
            let ns = format!("{tag}h{host}");
            let ip = format!("10.231.{subnet}.{host}");
            run("ip", &["netns", "add", &ns]);
            lab.namespaces.insert(lab.namespaces.len() - 1, ns.clone());
            let port = format!("port{host}");
            run(
                "ip",
                &[
                    "link", "add", "eth0", "netns", &ns, "type", "veth", "peer", "name", &port,
                    "netns", &switch,
                ],
            );
            run(
                "ip",
                &["-n", &switch, "link", "set", &port, "master", "br0", "up"],
            );
            run(
                "ip",
                &["-n", &ns, "addr", "add", &format!("{ip}/24"), "dev", "eth0"],
            );
            run("ip", &["-n", &ns, "link", "set", "eth0", "up"]);
            run("ip", &["-n", &ns, "link", "set", "lo", "up"]);
            lab.ips.push(ip);
        }
        let path = |name: &str| lab.dir.path().join(name);
        for key in ["host_key", "user_key"] {
            run(
                "ssh-keygen",
                &[
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-f",
                    path(key).to_str().unwrap(),
                ],
            );
        }
        std::fs::copy(path("user_key.pub"), path("authorized_keys")).unwrap();
        std::fs::write(
            path("ssh_config"),
            format!(
                "Host *\n  IdentityFile {}\n  UserKnownHostsFile {}\n  \
                 StrictHostKeyChecking accept-new\n  User root\n  LogLevel ERROR\n",
                path("user_key").display(),
                path("known_hosts").display()
            ),
        )
        .unwrap();
        std::fs::write(path("secret"), "the lab tree's secret, forty bytes or so!").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path("secret"), std::fs::Permissions::from_mode(0o600)).unwrap();
        // sshd's privilege-separation directory.
        std::fs::create_dir_all("/run/sshd").unwrap();
        for (index, ip) in lab.ips.clone().iter().enumerate() {
            let config = path(&format!("sshd_config{index}"));
            std::fs::write(
                &config,
                format!(
                    "ListenAddress {ip}\nHostKey {}\nAuthorizedKeysFile {}\nStrictModes no\n\
                     UsePAM no\nPasswordAuthentication no\nPermitRootLogin prohibit-password\n\
                     PidFile none\n",
                    path("host_key").display(),
                    path("authorized_keys").display()
                ),
            )
            .unwrap();
            let mut daemon = StdCommand::new("ip")
                .args(["netns", "exec", &lab.namespaces[index]])
                .arg(sshd)
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let stderr = daemon.stderr.take().unwrap();
            lab.sshds.push(daemon);
            // sshd says when it listens.
            let listening = tokio::task::spawn_blocking(move || {
                use std::io::BufRead;
                let mut seen = Vec::new();
                for line in std::io::BufReader::new(stderr).lines() {
                    let line = line.unwrap_or_default();
                    if line.contains("Server listening on") {
                        return Ok(());
                    }
                    seen.push(line);
                }
                Err(seen)
            });
            match within("sshd to listen", listening).await.unwrap() {
                Ok(()) => {}
                Err(said) => panic!("sshd on {ip} did not start: {said:?}"),
            }
        }
        lab
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn ssh_url(&self, host: usize) -> String {
        format!("ssh://{}", self.ips[host])
    }

    /// `hosts-demo args` run on `host` (0, 1, 2), with the tree's secret when `secret`.
    fn demo(&self, host: usize, secret: bool, args: &[&str]) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.namespaces[host], DEMO])
            .args(args)
            .env(actor::SSH_CONFIG_ENV, self.path("ssh_config"))
            .env(actor::HEARTBEAT_TIMEOUT_ENV, HEARTBEAT_MS.to_string())
            // Each actor logs that it serves: remote children's lines come back prefixed.
            .env(actor::LOG_ENV, "warn,actor::tree::actor=info")
            .env_remove(actor::AUTH_FILE_ENV)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if secret {
            command.env(actor::AUTH_FILE_ENV, self.path("secret"));
        }
        command
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for daemon in &mut self.sshds {
            let _ = daemon.kill();
            let _ = daemon.wait();
        }
        for ns in &self.namespaces {
            // Whatever still runs in a host (an sshd session whose link was cut waits for
            // TCP to give up) goes with it.
            if let Ok(out) = StdCommand::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = StdCommand::new("kill").args(["-9", pid]).status();
                }
            }
            let _ = StdCommand::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
}

/// The processes of tree `tree` (its remote children and their ssh launchers carry its id in
/// their environment), on any host: the namespaces share this machine's process table.
fn tree_processes(tree: &str) -> Vec<u32> {
    let needle = format!("ACTOR_TREE_ID={tree}");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == needle.as_bytes()))
        })
        .collect()
}

/// The pid of the process of tree `tree` that runs `program` (its `comm`) for child `child`.
fn child_process(tree: &str, child: &str, program: &str) -> Option<u32> {
    let needle = format!("ACTOR_CHILD_NAME={child}");
    tree_processes(tree).into_iter().find(|pid| {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        comm.trim() == program && env.split(|b| *b == 0).any(|var| var == needle.as_bytes())
    })
}

/// Kills what is left of a tree (after a failed test) and says whether anything was.
fn kill_tree(tree: &str) -> Vec<u32> {
    let left = tree_processes(tree);
    for pid in &left {
        let _ = StdCommand::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    }
    left
}

/// Waits until no process of `tree` is left, at most `bound`; returns how long it took.
async fn until_gone(tree: &str, bound: Duration) -> Duration {
    let began = Instant::now();
    while !tree_processes(tree).is_empty() {
        if began.elapsed() > bound {
            let left = kill_tree(tree);
            panic!("processes of tree {tree} still running after {bound:?}: {left:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    began.elapsed()
}

/// A started tree: its root, the root's output lines, the tree's id, and the root's stderr
/// (its own log and every remote child's), read to the end in the background.
struct Tree {
    root: Child,
    lines: Lines<BufReader<tokio::process::ChildStdout>>,
    id: String,
    stderr: tokio::task::JoinHandle<String>,
}

async fn start_tree(lab: &Lab, extra: &[&str]) -> Tree {
    let (relay, leaf) = (lab.ssh_url(1), lab.ssh_url(2));
    let mut args: Vec<&str> = extra.to_vec();
    args.extend([relay.as_str(), leaf.as_str()]);
    let mut root = lab.demo(0, true, &args).spawn().unwrap();
    let mut lines = BufReader::new(root.stdout.take().unwrap()).lines();
    let mut stderr = root.stderr.take().unwrap();
    let stderr = tokio::spawn(async move {
        let mut text = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut text).await;
        text
    });
    let id = line_starting(&mut lines, "tree ").await["tree ".len()..].to_owned();
    Tree {
        root,
        lines,
        id,
        stderr,
    }
}

#[tokio::test]
async fn a_tree_spans_three_hosts_with_every_call_kind() {
    let _one = ONE_LAB.lock().await;
    let lab = Lab::new(61).await;
    let Tree {
        mut root,
        mut lines,
        id: tree,
        stderr,
    } = start_tree(&lab, &[]).await;
    let relay_spawn = line_starting(&mut lines, "spawned relay on ").await;
    let leaf_spawn = line_starting(&mut lines, "spawned leaf on ").await;
    let relay = line_starting(&mut lines, "relay: ").await;
    let leaf = line_starting(&mut lines, "leaf: ").await;
    println!("{relay_spawn}\n{leaf_spawn}");
    // Each child runs on its own host, listens on that host's address, and uses the root's
    // registrar at the root host's address.
    let registrar = format!("registrar=tcp://{}:", lab.ips[0]);
    assert!(
        relay.contains(&format!("host={} ", lab.ips[1]))
            && relay.contains(&format!("addr=tcp://{}:", lab.ips[1]))
            && relay.contains(&registrar),
        "{relay}"
    );
    assert!(
        leaf.contains(&format!("host={} ", lab.ips[2]))
            && leaf.contains(&format!("addr=tcp://{}:", lab.ips[2]))
            && leaf.contains(&registrar),
        "{leaf}"
    );
    let found = line_starting(&mut lines, "found leaf at ").await;
    assert!(found.contains(&lab.ips[2]), "{found}");
    let call = line_starting(&mut lines, "call: ").await;
    assert!(call.contains("name=leaf"), "{call}");
    assert_eq!(
        line_starting(&mut lines, "stream: ").await,
        "stream: 1000 items from leaf, sum 499500"
    );
    assert_eq!(
        line_starting(&mut lines, "context: ").await,
        "context: leaf echoed one two three (3 messages)"
    );
    let error = line_starting(&mut lines, "error: ").await;
    assert_eq!(error, "error: ValueError raised in leaf, its trace:");
    let trace = line_starting(&mut lines, "  | ").await;
    assert!(trace.contains("no such setting"), "{trace}");
    let cancelled = line_starting(&mut lines, "cancelled: ").await;
    assert!(
        cancelled.ends_with("(timed out: true); calls running in leaf now: 0"),
        "{cancelled}"
    );
    println!("{}", line_starting(&mut lines, "latency: ").await);
    assert_eq!(
        line_starting(&mut lines, "closed").await,
        "closed (leaf closed, relay closed)"
    );
    let status = within("the root to exit", root.wait()).await.unwrap();
    assert!(status.success(), "root exited with {status}");
    // Closing the tree ended every process of it, on every host.
    until_gone(&tree, GONE_WITHIN).await;
    // The remote children's logs came back to the root, each line naming actor and host.
    let log = within("the root's stderr", stderr).await.unwrap();
    for (actor, host) in [("relay", 1), ("leaf", 2)] {
        let prefix = format!("[{actor}@{}] ", lab.ips[host]);
        assert!(
            log.lines()
                .any(|line| line.starts_with(&prefix) && line.contains("actor serving")),
            "no log line of {actor} prefixed {prefix:?}: {log}"
        );
    }
}

#[tokio::test]
async fn every_host_finds_the_leaf_by_name_and_killing_the_root_ends_the_tree() {
    let _one = ONE_LAB.lock().await;
    let lab = Lab::new(62).await;
    let Tree {
        mut root,
        mut lines,
        id: tree,
        ..
    } = start_tree(&lab, &["--hold"]).await;
    let leaf = line_starting(&mut lines, "leaf: ").await;
    let registrar = leaf
        .split_whitespace()
        .find_map(|field| field.strip_prefix("registrar="))
        .unwrap()
        .to_owned();
    line_starting(&mut lines, "holding").await;
    for host in 0..3 {
        let out = within(
            "a lookup",
            lab.demo(host, true, &["--find", "leaf", "--registrar", &registrar])
                .output(),
        )
        .await
        .unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success()
                && said.starts_with("found leaf at tcp://")
                && said.contains("name=leaf"),
            "lookup from host {host}: {said} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The tree listens beyond loopback: a peer without its secret is refused.
    let stranger = within(
        "a lookup without the secret",
        lab.demo(1, false, &["--find", "leaf", "--registrar", &registrar])
            .output(),
    )
    .await
    .unwrap();
    let refused = String::from_utf8_lossy(&stranger.stderr);
    assert!(
        !stranger.status.success() && refused.contains("secret"),
        "a peer without the secret got: {} / {refused}",
        String::from_utf8_lossy(&stranger.stdout)
    );
    assert_eq!(tree_processes(&tree).len(), 4, "2 children + 2 ssh clients");
    // SIGKILL of the root: its launchers die with it, each child's session ends, and each
    // child's parent connection ends; nothing of the tree is left on any host.
    root.start_kill().unwrap();
    let took = until_gone(&tree, GONE_WITHIN).await;
    println!("the tree was gone {took:?} after SIGKILL of its root");
}

#[tokio::test]
async fn cutting_a_hosts_link_mid_stream_fails_both_sides_and_leaves_nothing() {
    let _one = ONE_LAB.lock().await;
    let lab = Lab::new(63).await;
    let Tree {
        mut root,
        mut lines,
        id: tree,
        ..
    } = start_tree(&lab, &["--hold", "--stream"]).await;
    line_starting(&mut lines, "tick 3").await;
    // The leaf's host goes dark: no RST, no FIN, only silence.
    run(
        "ip",
        &["-n", &lab.namespaces[2], "link", "set", "eth0", "down"],
    );
    let cut = Instant::now();
    let failed = line_starting(&mut lines, "stream failed: ").await;
    let noticed = cut.elapsed();
    assert!(
        failed.contains("leaf") && failed.contains("heartbeat"),
        "{failed}"
    );
    assert!(
        noticed < Duration::from_millis(HEARTBEAT_MS * 2),
        "the root noticed the cut after {noticed:?}"
    );
    // The other side of the cut, the relay (which talks to the leaf over the same link),
    // found the leaf silent and says so.
    let relay = line_starting(&mut lines, "relay ").await;
    assert!(
        relay.starts_with("relay failed: ")
            && relay.contains("leaf")
            && relay.contains("heartbeat"),
        "{relay}"
    );
    println!("{failed}\n{relay}");
    let status = within("the root to exit", root.wait()).await.unwrap();
    assert!(!status.success(), "a broken stream must fail the root");
    // The leaf, on the dark side of the cut, cannot be heard from: its side of the error is
    // that it stops (its parent connection's heartbeats), checked on the process table.
    until_gone(&tree, GONE_WITHIN).await;
    println!(
        "the root noticed the cut after {noticed:?}; the tree was gone {:?} after it",
        cut.elapsed()
    );
}

#[tokio::test]
async fn a_tree_without_a_secret_cannot_span_hosts() {
    // No lab needed: the refusal comes before any ssh.
    let out = Command::new(DEMO)
        .args(["ssh://192.0.2.1", "ssh://192.0.2.2"])
        .env_remove(actor::AUTH_FILE_ENV)
        .output()
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && said.contains("needs a secret")
            && said.contains("ssh://192.0.2.1"),
        "{said}"
    );
}

#[tokio::test]
async fn a_remote_child_whose_ssh_session_ends_stops_at_once() {
    let _one = ONE_LAB.lock().await;
    let lab = Lab::new(64).await;
    let Tree {
        mut root,
        mut lines,
        id: tree,
        ..
    } = start_tree(&lab, &["--hold"]).await;
    line_starting(&mut lines, "holding").await;
    let relay = child_process(&tree, "relay", "hosts-demo").expect("the relay runs");
    let launcher = child_process(&tree, "relay", "ssh").expect("the relay's ssh runs");
    // The root and its connection to the relay stay up: only the session ends. The relay must
    // take that as its parent's end (its lifeline), and its own child goes with it.
    let killed = Instant::now();
    run("kill", &["-9", &launcher.to_string()]);
    while std::path::Path::new(&format!("/proc/{relay}")).exists()
        || child_process(&tree, "leaf", "hosts-demo").is_some()
    {
        // Without the lifeline the relay would live on: its connection to the root is fine.
        assert!(
            killed.elapsed() < GONE_WITHIN,
            "the relay or the leaf outlived the relay's ssh session by {:?}",
            killed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!(
        "relay and leaf gone {:?} after the relay's session ended",
        killed.elapsed()
    );
    root.start_kill().unwrap();
    until_gone(&tree, GONE_WITHIN).await;
}

/// The TCP addresses `pid` listens on (`ip:port`, from `/proc/net/tcp` and the process's
/// socket descriptors; IPv4).
fn listening_addresses(pid: u32) -> Vec<String> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|fds| {
            fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
                .filter_map(|target| {
                    let target = target.to_string_lossy().into_owned();
                    Some(
                        target
                            .strip_prefix("socket:[")?
                            .strip_suffix(']')?
                            .to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    // IPv4 and IPv6 sockets: a listener on `[::]` is beyond loopback too.
    ["tcp", "tcp6"]
        .iter()
        .flat_map(|table| {
            let text =
                std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
            text.lines()
                .skip(1)
                .filter_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    // local_address, state (0A: LISTEN), inode
                    let (local, state, inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
                    if *state != "0A" || !inodes.iter().any(|i| i == inode) {
                        return None;
                    }
                    let (ip, port) = local.split_once(':')?;
                    let port = u16::from_str_radix(port, 16).ok()?;
                    // The kernel prints each 32-bit word of the address in host byte order.
                    let words = (0..ip.len() / 8)
                        .map(|w| u32::from_str_radix(&ip[w * 8..w * 8 + 8], 16).ok())
                        .collect::<Option<Vec<u32>>>()?;
                    let bytes: Vec<u8> = words
                        .iter()
                        .flat_map(|w| w.swap_bytes().to_be_bytes())
                        .collect();
                    let ip: std::net::IpAddr = match bytes.len() {
                        4 => std::net::Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?).into(),
                        _ => std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?).into(),
                    };
                    Some(std::net::SocketAddr::new(ip, port).to_string())
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn a_tree_on_one_host_listens_on_loopback_only() {
    // No lab: a tree whose children are all local binds nothing beyond loopback.
    let mut root = Command::new(DEMO)
        .args(["--hold", "local", "local"])
        .env_remove(actor::AUTH_FILE_ENV)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(root.stdout.take().unwrap()).lines();
    let pid_of = |line: &str| -> u32 {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix("pid="))
            .unwrap()
            .parse()
            .unwrap()
    };
    let relay = pid_of(&line_starting(&mut lines, "relay: ").await);
    let leaf = pid_of(&line_starting(&mut lines, "leaf: ").await);
    line_starting(&mut lines, "holding").await;
    for pid in [root.id().unwrap(), relay, leaf] {
        let listening = listening_addresses(pid);
        assert!(!listening.is_empty(), "pid {pid} listens on nothing?");
        assert!(
            listening.iter().all(|a| a
                .parse::<std::net::SocketAddr>()
                .is_ok_and(|a| a.ip().is_loopback())),
            "pid {pid} listens beyond loopback: {listening:?}"
        );
    }
    root.start_kill().unwrap();
}
