//! Running our built executables (`check`, `in`, `out`) the way Concourse does: request
//! JSON on stdin, response JSON on stdout, logs on stderr; and running any other
//! subprocess (skopeo) with a timeout, so a hung child fails the test instead of CI.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long one of our binaries may run before the test fails.
pub const BIN_TIMEOUT: Duration = Duration::from_secs(60);

/// What a finished process did.
#[derive(Debug)]
pub struct Output {
    /// Exit status.
    pub status: ExitStatus,
    /// Everything written to stdout (lossy UTF-8).
    pub stdout: String,
    /// Everything written to stderr (lossy UTF-8).
    pub stderr: String,
    /// stdout parsed as JSON, if it is JSON.
    pub json: Option<Value>,
}

impl Output {
    /// Exit status 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// The response JSON of a successful run; panics with stderr otherwise.
    pub fn expect_success(&self) -> &Value {
        assert!(
            self.status.success(),
            "expected success, got {}\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self.json.as_ref().unwrap_or_else(|| {
            panic!(
                "exit 0 but stdout is not JSON:\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// The stderr of a failed run; panics with stdout and stderr if it succeeded.
    pub fn expect_failure(&self) -> &str {
        assert!(
            !self.status.success(),
            "expected failure, got {}\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        &self.stderr
    }
}

/// The path of one of our executables: `"check"`, `"in"` or `"out"`.
pub fn bin_path(bin: &str) -> PathBuf {
    PathBuf::from(match bin {
        "check" => env!("CARGO_BIN_EXE_check"),
        "in" => env!("CARGO_BIN_EXE_in"),
        "out" => env!("CARGO_BIN_EXE_out"),
        other => panic!("no such executable {other:?}: expected check, in or out"),
    })
}

/// Runs `bin` with `args` and `stdin_json` on stdin (60 s timeout).
pub fn run(bin: &str, args: &[&str], stdin_json: &Value) -> Output {
    run_raw(bin, args, stdin_json.to_string().as_bytes())
}

/// The buildah `out` runs in tests: `ci/buildah`, trixie's buildah (the one the resource
/// image ships) from the root `ci/setup` prepares, unless `IMAGE_RESOURCE_BUILDAH` is set.
pub fn buildah() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ci/buildah")
}

/// Runs `bin` with `args` and raw `stdin` bytes (60 s timeout).
pub fn run_raw(bin: &str, args: &[&str], stdin: &[u8]) -> Output {
    run_with_env(bin, args, &[], stdin)
}

/// Runs `bin` with `args`, extra environment variables and raw `stdin` (60 s timeout).
pub fn run_with_env(bin: &str, args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Output {
    let mut command = Command::new(bin_path(bin));
    command.args(args);
    if std::env::var_os("IMAGE_RESOURCE_BUILDAH").is_none() {
        command.env("IMAGE_RESOURCE_BUILDAH", buildah());
    }
    for (name, value) in env {
        command.env(name, value);
    }
    run_command(command, stdin, BIN_TIMEOUT)
}

/// Runs `command` with `stdin`, collecting stdout and stderr; kills it and panics (with
/// what it wrote so far) after `timeout`.
pub fn run_command(mut command: Command, stdin: &[u8], timeout: Duration) -> Output {
    let description = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("starting {description}: {err}"));

    let mut child_stdin = child.stdin.take().expect("piped stdin");
    let input = stdin.to_vec();
    // Writing in a thread: a child that does not read stdin must not block us; dropping
    // the handle closes stdin.
    let writer = std::thread::spawn(move || {
        let _ = child_stdin.write_all(&input);
    });
    let stdout = reader_thread(child.stdout.take().expect("piped stdout"));
    let stderr = reader_thread(child.stderr.take().expect("piped stderr"));

    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                // A grandchild may still hold the pipe: wait a little, not forever.
                let stderr = stderr
                    .recv_timeout(Duration::from_secs(2))
                    .unwrap_or_default();
                panic!(
                    "{description} did not finish within {timeout:?}; killed. stderr:\n{}",
                    String::from_utf8_lossy(&stderr)
                );
            }
            Err(err) => panic!("waiting for {description}: {err}"),
        }
    };
    let _ = writer.join();
    let stdout = String::from_utf8_lossy(&stdout.recv().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&stderr.recv().unwrap_or_default()).into_owned();
    let json = serde_json::from_str(&stdout).ok();
    Output {
        status,
        stdout,
        stderr,
        json,
    }
}

fn reader_thread(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        let _ = sender.send(buf);
    });
    receiver
}
