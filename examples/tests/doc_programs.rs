//! The programs the docs give a newcomer, built the way a newcomer builds them: `cargo new`, the
//! `Cargo.toml` lines the docs show, the docs' `main.rs`, `cargo build`; then run, and checked
//! from outside (their output, their exit status, the process table afterwards).
//!
//! Covers `docs/first-actor-tree.md` (its three-process tree) and the README's "Actor trees"
//! and "Teams" examples, with the README's `Cargo.toml` lines.

// Test code: a failed unwrap or panic is a failed test, with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

/// The workspace's root folder.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the examples package is in the workspace")
        .to_path_buf()
}

/// The fenced code blocks of a Markdown file whose info string starts with `lang`.
fn blocks(doc: &str, lang: &str) -> Vec<String> {
    let text = std::fs::read_to_string(workspace().join(doc)).unwrap();
    let mut found = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(info)) if info.starts_with(lang) => current = Some(String::new()),
            (Some(_), Some("")) => found.extend(current.take()),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    found
}

/// The one block of `doc` in `lang` that contains `marker`.
fn block_with(doc: &str, lang: &str, marker: &str) -> String {
    let mut matching: Vec<String> = blocks(doc, lang)
        .into_iter()
        .filter(|b| b.contains(marker))
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "{doc}: expected one {lang} block with {marker:?}"
    );
    matching.remove(0)
}

/// The `cargo` running these tests.
fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn check(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what}: {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `cargo new NAME` in `dir`, the docs' `[dependencies]` lines (the path pointed at this
/// checkout), `main_rs` as `src/main.rs`, `cargo build`: the path of the program built.
fn build_like_a_newcomer(dir: &Path, name: &str, dependencies: &str, main_rs: &str) -> PathBuf {
    check(
        "cargo new",
        &cargo()
            .args(["new", "--vcs", "none", "--quiet", name])
            .current_dir(dir)
            .output()
            .unwrap(),
    );
    let project = dir.join(name);
    let checkout = workspace().join("actor-core");
    let lines: Vec<&str> = dependencies
        .lines()
        .filter(|line| *line != "[dependencies]")
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("path = \"../actor/actor-core\"")),
        "the docs' lines name the checkout's path: {dependencies}"
    );
    let lines = lines
        .join("\n")
        .replace("../actor/actor-core", &checkout.to_string_lossy());
    let manifest_path = project.join("Cargo.toml");
    let manifest = std::fs::read_to_string(&manifest_path).unwrap();
    assert!(manifest.contains("[dependencies]"), "{manifest}");
    std::fs::write(
        &manifest_path,
        manifest.replace("[dependencies]", &format!("[dependencies]\n{lines}")),
    )
    .unwrap();
    std::fs::write(project.join("src/main.rs"), main_rs).unwrap();
    // The versions this workspace is tested with, and no download: everything the program
    // needs is what the workspace was built with.
    std::fs::copy(workspace().join("Cargo.lock"), project.join("Cargo.lock")).unwrap();
    let target = workspace().join("target").join("doc-programs");
    check(
        &format!("cargo build of {name}"),
        &cargo()
            .args(["build", "--offline", "--quiet"])
            .env("CARGO_TARGET_DIR", &target)
            .current_dir(&project)
            .output()
            .unwrap(),
    );
    target.join("debug").join(name)
}

/// Runs `program` with a registrar of its own (a free port) and returns its output.
fn run(program: &Path) -> Output {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = Command::new(program)
        .env("ACTOR_REGISTRAR", format!("tcp://127.0.0.1:{port}"))
        .output()
        .unwrap();
    check(&program.display().to_string(), &output);
    output
}

/// Processes still running `program` (its children would be).
fn running(program: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let exe = std::fs::read_link(entry.path().join("exe")).ok()?;
            (exe == program).then_some(pid)
        })
        .collect()
}

#[test]
fn the_docs_programs_build_from_their_cargo_toml_lines_and_run() {
    let dir = tempfile::tempdir().unwrap();

    // docs/first-actor-tree.md: its lines, its program, its output.
    let page = "docs/first-actor-tree.md";
    let program = build_like_a_newcomer(
        dir.path(),
        "hello-tree",
        &block_with(page, "toml", "[dependencies]"),
        &block_with(page, "rust", "#[actor::main]"),
    );
    let output = run(&program);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 7, "{stdout}");
    let root_pid: u32 = lines[0]
        .strip_prefix("root: pid ")
        .unwrap()
        .parse()
        .unwrap();
    let worker_pid: u32 = lines[1]
        .strip_prefix("worker: pid ")
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(root_pid, worker_pid, "the worker is a process of its own");
    assert_eq!(
        lines[2..],
        [
            "worker: 1 + 2 = 3",
            "worker: streamed 0",
            "worker: streamed 1",
            "worker: streamed 2",
            "adder: 20 + 22 = 42",
        ]
    );
    // The page shows the same output (its pids aside).
    let shown = block_with(page, "text", "adder: 20 + 22 = 42");
    assert_eq!(shown.lines().skip(2).collect::<Vec<_>>(), lines[2..]);
    assert!(running(&program).is_empty(), "a child outlived the root");

    // The README's tree and team examples, with the README's lines.
    let readme = "README.md";
    for (name, marker) in [
        ("readme-tree", "run_in_actor(\"adder\""),
        ("readme-team", "nursery.team("),
    ] {
        let program = build_like_a_newcomer(
            dir.path(),
            name,
            &block_with(readme, "toml", "[dependencies]"),
            &block_with(readme, "rust", marker),
        );
        run(&program);
        assert!(
            running(&program).is_empty(),
            "a child of {name} outlived the root"
        );
    }
}
