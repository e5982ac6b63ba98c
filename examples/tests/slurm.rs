//! Children under a real Slurm: a single-node cluster (munged, slurmctld and slurmd from
//! Debian's packages, each in the foreground in a directory of its own, no cgroups), started by
//! the test and stopped afterwards. `hosts-demo` runs its relay as a job step with `srun`.
//!
//! These tests need root (slurmd runs steps as their user) and the packages `slurmctld`,
//! `slurmd`, `slurm-client` and `munge`: CI installs them. Without them they fail, saying why.

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
    process::{Child, ChildStdout, Command},
};

const DEMO: &str = env!("CARGO_BIN_EXE_hosts-demo");
/// How long a job may take to leave `squeue` after its step ended or its srun died.
const GONE_WITHIN: Duration = Duration::from_secs(15);

/// One cluster at a time: each is a whole Slurm on this machine's two cores.
static ONE_CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A free TCP port on loopback (bound and released: the daemons bind it next).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A one-node Slurm cluster of this machine.
struct Cluster {
    dir: tempfile::TempDir,
    daemons: Vec<(&'static str, std::process::Child)>,
}

impl Cluster {
    async fn start() -> Self {
        for tool in [
            "/usr/sbin/munged",
            "/usr/sbin/slurmctld",
            "/usr/sbin/slurmd",
            "/usr/bin/srun",
        ] {
            assert!(
                Path::new(tool).is_file(),
                "{tool} is missing: these tests need munge, slurmctld, slurmd and slurm-client"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let mut cluster = Cluster {
            dir,
            daemons: Vec::new(),
        };
        let path = |name: &str| cluster.dir.path().join(name);
        for sub in ["state", "spool"] {
            std::fs::create_dir(path(sub)).unwrap();
        }
        let key: Vec<u8> = (0..1024).map(|i| (i * 7 + 13) as u8).collect();
        std::fs::write(path("munge.key"), key).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path("munge.key"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        let node = nix_hostname();
        let conf = format!(
            "ClusterName=actorlab\n\
             SlurmctldHost={node}(127.0.0.1)\n\
             SlurmctldPort={ctld}\n\
             SlurmdPort={slurmd}\n\
             SlurmUser=root\n\
             SlurmdUser=root\n\
             AuthType=auth/munge\n\
             AuthInfo=socket={munge}\n\
             CredType=cred/munge\n\
             StateSaveLocation={state}\n\
             SlurmdSpoolDir={spool}\n\
             SlurmctldPidFile={dir}/slurmctld.pid\n\
             SlurmdPidFile={dir}/slurmd.pid\n\
             ProctrackType=proctrack/linuxproc\n\
             TaskPlugin=task/none\n\
             JobAcctGatherType=jobacct_gather/none\n\
             AccountingStorageType=accounting_storage/none\n\
             SwitchType=switch/none\n\
             MpiDefault=none\n\
             ReturnToService=2\n\
             SchedulerType=sched/builtin\n\
             SelectType=select/cons_tres\n\
             SelectTypeParameters=CR_CPU\n\
             NodeName={node} NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN\n\
             PartitionName=lab Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n",
            ctld = free_port(),
            slurmd = free_port(),
            munge = path("munge.sock").display(),
            state = path("state").display(),
            spool = path("spool").display(),
            dir = cluster.dir.path().display(),
        );
        std::fs::write(path("slurm.conf"), conf).unwrap();
        let munged = StdCommand::new("/usr/sbin/munged")
            .arg("--foreground")
            .arg("--force")
            .arg(format!("--key-file={}", path("munge.key").display()))
            .arg(format!("--socket={}", path("munge.sock").display()))
            .arg(format!("--pid-file={}", path("munged.pid").display()))
            .arg(format!("--log-file={}", path("munged.log").display()))
            .arg(format!("--seed-file={}", path("munged.seed").display()))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        cluster.daemons.push(("munged", munged));
        for (name, program, args) in [
            ("slurmctld", "/usr/sbin/slurmctld", &["-D", "-i"][..]),
            ("slurmd", "/usr/sbin/slurmd", &["-D"][..]),
        ] {
            let log = std::fs::File::create(path(&format!("{name}.log"))).unwrap();
            let daemon = StdCommand::new(program)
                .args(args)
                .arg("-f")
                .arg(path("slurm.conf"))
                .env("SLURM_CONF", path("slurm.conf"))
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap();
            cluster.daemons.push((name, daemon));
        }
        // Ready when the node is idle in the partition.
        let began = Instant::now();
        loop {
            let state = cluster.slurm_tool("sinfo", &["-h", "-o", "%t"]);
            if state.trim() == "idle" {
                break;
            }
            if began.elapsed() > common::WAIT {
                panic!(
                    "the Slurm node is not idle after {:?} (sinfo: {state:?}); slurmctld: {} \
                     slurmd: {}",
                    common::WAIT,
                    std::fs::read_to_string(path("slurmctld.log")).unwrap_or_default(),
                    std::fs::read_to_string(path("slurmd.log")).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        cluster
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("slurm.conf")
    }

    /// Runs a Slurm client tool against this cluster; its stdout (empty if it failed).
    fn slurm_tool(&self, tool: &str, args: &[&str]) -> String {
        StdCommand::new(tool)
            .args(args)
            .env("SLURM_CONF", self.conf())
            .stderr(Stdio::null())
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
            .unwrap_or_default()
    }

    /// The jobs in the queue: `name state` per line.
    fn queue(&self) -> Vec<String> {
        self.slurm_tool("squeue", &["-h", "-o", "%j %T"])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Waits until the queue is empty, at most [`GONE_WITHIN`]; how long it took.
    async fn until_queue_empty(&self) -> Duration {
        let began = Instant::now();
        loop {
            let queue = self.queue();
            if queue.is_empty() {
                return began.elapsed();
            }
            assert!(
                began.elapsed() < GONE_WITHIN,
                "jobs still queued {GONE_WITHIN:?} later: {queue:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `hosts-demo args` with this cluster and a tree secret.
    fn demo(&self, args: &[&str]) -> Command {
        let secret = self.dir.path().join("secret");
        std::fs::write(&secret, "the slurm tree's secret: forty bytes or so").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut command = Command::new(DEMO);
        command
            .args(args)
            .env("SLURM_CONF", self.conf())
            .env(actor::AUTH_FILE_ENV, secret)
            .env(actor::HEARTBEAT_TIMEOUT_ENV, "2000")
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        command
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Jobs first (their steps run under slurmd), then the daemons.
        let _ = StdCommand::new("scancel")
            .args(["--user", "root"])
            .env("SLURM_CONF", self.conf())
            .status();
        for (_, daemon) in self.daemons.iter_mut().rev() {
            let _ = daemon.kill();
            let _ = daemon.wait();
        }
    }
}

fn nix_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned()
}

fn start(cluster: &Cluster, args: &[&str]) -> (Child, Lines<BufReader<ChildStdout>>) {
    let mut root = cluster.demo(args).spawn().unwrap();
    let lines = BufReader::new(root.stdout.take().unwrap()).lines();
    (root, lines)
}

#[tokio::test]
async fn a_child_runs_as_a_slurm_step_is_called_cancelled_and_leaves_the_queue() {
    let _one = ONE_CLUSTER.lock().await;
    let cluster = Cluster::start().await;
    let (mut root, mut lines) = start(&cluster, &["slurm://lab", "local"]);
    let spawned = line_starting(&mut lines, "spawned relay on slurm://lab in ").await;
    println!("{spawned}");
    let relay = line_starting(&mut lines, "relay: ").await;
    assert!(
        relay.contains(&format!("host=slurm:{} ", nix_hostname())),
        "{relay}"
    );
    // While it runs, the relay is a running job of that name.
    let queue = cluster.queue();
    assert!(
        queue.iter().any(|job| job == "relay RUNNING"),
        "squeue: {queue:?}"
    );
    assert_eq!(
        line_starting(&mut lines, "stream: ").await,
        "stream: 1000 items from leaf, sum 499500"
    );
    let cancelled = line_starting(&mut lines, "cancelled: ").await;
    assert!(
        cancelled.ends_with("calls running in leaf now: 0"),
        "{cancelled}"
    );
    println!("{}", line_starting(&mut lines, "latency: ").await);
    line_starting(&mut lines, "closed").await;
    let status = within("the root to exit", root.wait()).await.unwrap();
    assert!(status.success(), "root exited with {status}");
    let took = cluster.until_queue_empty().await;
    println!("the relay's job left the queue {took:?} after the root exited");
}

#[tokio::test]
async fn killing_the_root_ends_its_slurm_step() {
    let _one = ONE_CLUSTER.lock().await;
    let cluster = Cluster::start().await;
    let (mut root, mut lines) = start(&cluster, &["--hold", "slurm", "local"]);
    let relay = line_starting(&mut lines, "relay: ").await;
    line_starting(&mut lines, "holding").await;
    let pid: u32 = relay
        .split_whitespace()
        .find_map(|field| field.strip_prefix("pid="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        cluster.queue().iter().any(|job| job == "relay RUNNING"),
        "{:?}",
        cluster.queue()
    );
    root.start_kill().unwrap();
    let killed = Instant::now();
    let took = cluster.until_queue_empty().await;
    while Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            killed.elapsed() < GONE_WITHIN,
            "the relay (pid {pid}) outlived its root"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "the step left the queue {took:?} after SIGKILL of the root; the relay was gone after {:?}",
        killed.elapsed()
    );
}
