//! The yardstick: the minimal runtime `BENCHMARKS.md`'s targets are measured against (tokio,
//! a length-delimited codec, rmp-serde, a pending-call map, a reader and a writer task per
//! side: nothing else). Its sources are not part of this repository; `--yardstick DIR` names
//! them. The bench builds it, runs it in the same invocation as ours, workload by workload
//! back to back with ours (which goes first alternates from run to run), pinned to one CPU and
//! unpinned, and prints ours as ratios of it.
//!
//! Pinned (every process on CPU 0) measures software cost; unpinned adds what a user of this
//! 2-CPU VM sees, where a wake-up across CPUs costs about 50 µs at random.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use super::{BoxResult, Figure, TARGETS, Transport, Workload};

/// Where the processes of a measurement run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Placement {
    /// Every process on CPU 0.
    Pinned,
    /// Wherever the scheduler puts them.
    Unpinned,
}

impl Placement {
    /// The suffix of implementation names measured this way.
    pub(crate) fn suffix(self) -> &'static str {
        match self {
            Self::Pinned => "pinned",
            Self::Unpinned => "unpinned",
        }
    }

    /// Moves this process (and so the processes it starts from now on) to its CPUs.
    pub(crate) fn apply(self) -> BoxResult<()> {
        use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
        use nix::unistd::Pid;
        let mut cpus = CpuSet::new();
        match self {
            Self::Pinned => cpus.set(0)?,
            Self::Unpinned => {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                // `available_parallelism` honours the current mask: widen it to every CPU.
                let all = std::fs::read_to_string("/sys/devices/system/cpu/online")
                    .ok()
                    .and_then(|s| parse_cpu_list(s.trim()))
                    .unwrap_or_else(|| (0..cores).collect());
                for cpu in all {
                    cpus.set(cpu)?;
                }
            }
        }
        sched_setaffinity(Pid::from_raw(0), &cpus)?;
        let now = sched_getaffinity(Pid::from_raw(0))?;
        eprintln!(
            "placement: {} (CPU 0 {}in the mask)",
            self.suffix(),
            if now.is_set(0)? { "" } else { "not " }
        );
        Ok(())
    }
}

/// `0-3,5` → [0, 1, 2, 3, 5].
fn parse_cpu_list(list: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in list.split(',') {
        match part.split_once('-') {
            Some((a, b)) => cpus.extend(a.parse::<usize>().ok()?..=b.parse::<usize>().ok()?),
            None => cpus.push(part.parse().ok()?),
        }
    }
    Some(cpus)
}

/// The built minimal runtime.
pub(crate) struct Yardstick {
    binary: PathBuf,
}

impl Yardstick {
    /// Builds the minimal runtime whose Cargo project is `dir`.
    pub(crate) fn build(dir: &Path) -> BoxResult<Self> {
        let manifest = dir.join("Cargo.toml");
        if !manifest.is_file() {
            return Err(format!(
                "--yardstick {}: no Cargo.toml there (the minimal runtime's sources)",
                dir.display()
            )
            .into());
        }
        let target = std::env::current_dir()?.join("target/bench-minimal");
        eprintln!("building the yardstick in {}", target.display());
        let status = Command::new("cargo")
            .args(["build", "--release", "--quiet", "--manifest-path"])
            .arg(&manifest)
            .arg("--target-dir")
            .arg(&target)
            .status()?;
        if !status.success() {
            return Err(format!("building the yardstick failed: {status}").into());
        }
        Ok(Self {
            binary: target.join("release/bench-minimal"),
        })
    }

    /// Runs the yardstick's counterparts of `workloads` on `transport` (current-thread
    /// runtime), named `minimal-<transport>`.
    pub(crate) fn measure(
        &self,
        transport: Transport,
        workloads: &[Workload],
    ) -> BoxResult<Vec<Figure>> {
        let mut args: Vec<&str> = Vec::new();
        for w in workloads {
            let arg = match w {
                Workload::W1 => "w1",
                Workload::W2 => "w2",
                Workload::W3 => "w3",
                // Its w4 measures W4 and W4b.
                Workload::W4 | Workload::W4b => "w4",
                Workload::W5 => "w5",
                _ => continue,
            };
            if !args.contains(&arg) {
                args.push(arg);
            }
        }
        if args.is_empty() {
            return Ok(Vec::new());
        }
        let name = format!("minimal-{}", transport.name());
        let text = self.run(transport, &args, &name)?;
        let wanted: Vec<&str> = workloads.iter().map(|w| w.key()).collect();
        Ok(results(&text)
            .filter_map(|(metric, value)| {
                // Only the metrics we report, as our static keys.
                let (metric, _) = TARGETS.iter().find(|(key, _)| *key == metric)?;
                let workload = metric.split('.').next()?;
                wanted.contains(&workload).then_some(())?;
                Some(Figure {
                    implementation: name.clone(),
                    metric,
                    value,
                })
            })
            .collect())
    }

    /// The busy-poll floor on `transport`: W2's round trip between two processes that spin on
    /// blocking std sockets (8-byte echo, no codec, no runtime), p50, named `floor-<transport>`.
    /// What the low-latency mode's goal is set against (at most twice the floor); measured
    /// beside ours because on a VM it moves from run to run. Unpinned only: pinned to one CPU,
    /// two spinners take turns by the scheduler's time slice.
    pub(crate) fn measure_floor(&self, transport: Transport) -> BoxResult<Figure> {
        let name = format!("floor-{}", transport.name());
        let text = self.run(transport, &["w2fp"], &name)?;
        results(&text)
            .find(|(metric, _)| *metric == FLOOR_P50)
            .map(|(_, value)| Figure {
                implementation: name,
                metric: "W2.p50_us",
                value,
            })
            .ok_or_else(|| format!("the yardstick printed no {FLOOR_P50}").into())
    }

    /// Runs the yardstick's `bench` with `args`, its figures named `name`; its stdout.
    fn run(&self, transport: Transport, args: &[&str], name: &str) -> BoxResult<String> {
        let out = Command::new(&self.binary)
            .arg("bench")
            .arg(transport.name())
            .args(args)
            .env("RAW_RT", "ct")
            .env("RAW_IMPL", name)
            .stderr(std::process::Stdio::null())
            .output()?;
        if !out.status.success() {
            return Err(format!("the yardstick failed: {}", out.status).into());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// The yardstick's name for the busy-poll floor's p50.
const FLOOR_P50: &str = "W2floor_spin.p50_us";

/// The `RESULT <implementation> <metric> <value>` lines of `text`, as (metric, value).
fn results(text: &str) -> impl Iterator<Item = (&str, f64)> {
    text.lines().filter_map(|line| {
        let mut words = line.split_whitespace();
        let (Some("RESULT"), Some(_), Some(metric), Some(value)) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            return None;
        };
        Some((metric, value.parse().ok()?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse() {
        assert_eq!(parse_cpu_list("0-3,5"), Some(vec![0, 1, 2, 3, 5]));
        assert_eq!(parse_cpu_list("0"), Some(vec![0]));
        assert_eq!(parse_cpu_list("x"), None);
    }

    #[test]
    fn result_lines_parse() {
        let text =
            "building\nRESULT floor-uds W2floor_spin.p50_us 3.9\nRESULT x y nan?\nRESULT a b\n";
        let found: Vec<(&str, f64)> = results(text).collect();
        assert_eq!(found, vec![("W2floor_spin.p50_us", 3.9)]);
    }
}
