//! The Python reference peer (tractor 0.1.0a5) for tests, shared by the crates whose tests
//! need it (`#[path]`-included): installed on first use by the project's own installer
//! (`tools/install-tractor-a5.sh`, pinned versions) into `<target>/tractor-a5-venv`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{path::PathBuf, sync::OnceLock};

/// The repository's root (every crate of the workspace is one level below it).
pub(crate) fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The build's target directory (`target/` or `$CARGO_TARGET_DIR`), found from where cargo put
/// `binary`, one of this build's binaries: the reference peer's venv is kept there, between
/// runs.
fn target_dir(binary: &str) -> PathBuf {
    let bin = PathBuf::from(binary);
    bin.ancestors()
        .nth(2)
        .unwrap_or_else(|| panic!("no target directory above {}", bin.display()))
        .to_path_buf()
}

/// The reference peer's python, installed on first use into the target directory of
/// `binary` (any binary of this build). Without `python3` or its `venv` module the installer
/// says what to install, and every test that needs the peer fails with that message: they are
/// never skipped.
pub(crate) fn tractor_python(binary: &str) -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let script = workspace().join("tools/install-tractor-a5.sh");
            let venv = target_dir(binary).join("tractor-a5-venv");
            let out = std::process::Command::new("bash")
                .arg(&script)
                .arg(&venv)
                .output()
                .unwrap_or_else(|e| panic!("cannot run bash {}: {e}", script.display()));
            assert!(
                out.status.success(),
                "the Python reference peer (tractor 0.1.0a5) could not be installed; the \
                 interop tests need it.\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let python = String::from_utf8_lossy(&out.stdout)
                .lines()
                .last()
                .unwrap_or_default()
                .trim()
                .to_owned();
            let python = PathBuf::from(python);
            assert!(
                python.is_file(),
                "the installer printed no python: {python:?}"
            );
            python
        })
        .clone()
}
