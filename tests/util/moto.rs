//! [`Moto`]: a `moto_server` (the moto project's AWS mock, from PyPI) on
//! 127.0.0.1:<free port>, standing in for ECR and STS; killed on drop.
//!
//! moto answers `ecr:GetAuthorizationToken` with the token `AWS:<account>-auth-token`, where
//! the account is the caller's: 123456789012 for any plain access key, and the role's
//! account for keys from `sts:AssumeRole` (moto accepts any role ARN). So a registry whose
//! `AWS` user has the password `111111111111-auth-token` only lets in a resource that assumed
//! a role of account 111111111111 first.
//!
//! `moto_server` is found as `IMAGE_RESOURCE_MOTO_SERVER`, then in `ci/setup`'s virtualenv
//! `/opt/image-resource-moto`, then on `PATH`.

use std::io::Read;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::registry::free_port;

/// moto's account for plain access keys.
pub const DEFAULT_ACCOUNT: &str = "123456789012";

/// The ECR password moto hands out to callers of `account`.
pub fn ecr_password(account: &str) -> String {
    format!("{account}-auth-token")
}

/// A running `moto_server`.
pub struct Moto {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

fn moto_server() -> PathBuf {
    if let Some(path) = std::env::var_os("IMAGE_RESOURCE_MOTO_SERVER") {
        return PathBuf::from(path);
    }
    let venv = PathBuf::from("/opt/image-resource-moto/bin/moto_server");
    if venv.exists() {
        return venv;
    }
    PathBuf::from("moto_server")
}

impl Moto {
    /// Starts moto and waits (up to 20 s) until it answers.
    pub fn start() -> Moto {
        let dir = tempfile::tempdir().expect("temp dir for moto");
        let log = dir.path().join("moto.log");
        let port = free_port();
        let out = std::fs::File::create(&log).expect("moto log file");
        let err = out.try_clone().expect("moto log file");
        let binary = moto_server();
        let mut command = Command::new(&binary);
        command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        // Nothing from the test's environment may change moto's accounts.
        command.env_remove("MOTO_ACCOUNT_ID");
        let child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "starting {}: {e} (run ci/setup: it installs moto[server] from PyPI)",
                binary.display()
            )
        });
        let mut moto = Moto {
            child,
            port,
            log,
            _dir: dir,
        };
        moto.wait_ready();
        moto
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "moto_server exited ({status}) while starting:\n{}",
                    self.log()
                );
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "moto_server did not listen on 127.0.0.1:{} within 20 s:\n{}",
            self.port,
            self.log()
        );
    }

    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// moto's own log (one line per request).
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&self.log) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    /// How many requests moto has answered so far.
    pub fn requests(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains("\"POST /"))
            .count()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
