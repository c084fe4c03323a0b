//! A real OpenSSH server (Debian's `/usr/sbin/sshd`, package `openssh-server`) on
//! `127.0.0.1:<free port>`, for git over `ssh://`: a generated ed25519 host key, one
//! authorized user key ([`Sshd::user_key`]), its config and log in a TempDir, killed on Drop.
//! Logins are as the user running the tests (root in CI), so any repository path the test
//! made is reachable.

use std::fs::File;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::registry::free_port;
use super::tls::write_file;

const SSHD_BIN: &str = "/usr/sbin/sshd";
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// An ssh key pair made by `ssh-keygen`.
#[derive(Debug, Clone)]
pub struct KeyPair {
    /// The OpenSSH private key text.
    pub private: String,
    /// The public key line (`ssh-ed25519 AAAA... comment`).
    pub public: String,
}

impl KeyPair {
    /// The base64 lines of the private key (what must never be printed).
    pub fn private_body_lines(&self) -> Vec<String> {
        self.private
            .lines()
            .filter(|line| !line.starts_with("-----") && !line.trim().is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// Generates an ed25519 key pair in `dir` under `name` (and `name.pub`).
pub fn generate_key(dir: &Path, name: &str) -> KeyPair {
    let path = dir.join(name);
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .stdin(Stdio::null())
        .status()
        .expect("running ssh-keygen (apt-get install openssh-client)");
    assert!(status.success(), "ssh-keygen for {name}: {status}");
    let read = |p: PathBuf| std::fs::read_to_string(&p).expect("reading a generated key");
    KeyPair {
        private: read(path.clone()),
        public: read(path.with_extension("pub")).trim().to_string(),
    }
}

/// A running sshd; killed on Drop.
pub struct Sshd {
    child: Child,
    dir: TempDir,
    port: u16,
    host_key: KeyPair,
    user_key: KeyPair,
}

impl Sshd {
    /// Starts sshd and waits (up to 10 s) until it greets; retries on another port if the
    /// one picked was taken meanwhile.
    pub fn start() -> Sshd {
        let mut last = String::new();
        for _attempt in 0..3 {
            match Sshd::try_start() {
                Ok(sshd) => return sshd,
                Err(error) => last = error,
            }
        }
        panic!("{last}")
    }

    fn try_start() -> Result<Sshd, String> {
        // sshd refuses to start without its privilege separation directory.
        std::fs::create_dir_all("/run/sshd").map_err(|e| format!("creating /run/sshd: {e}"))?;
        let dir = tempfile::Builder::new()
            .prefix("sshd-")
            .tempdir()
            .map_err(|e| format!("creating an sshd temp dir: {e}"))?;
        let host_key = generate_key(dir.path(), "host_key");
        let user_key = generate_key(dir.path(), "user_key");
        let authorized = dir.path().join("authorized_keys");
        write_file(&authorized, &format!("{}\n", user_key.public));
        let port = free_port();
        let d = dir.path().display();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\n\
             AuthorizedKeysFile {d}/authorized_keys\nPidFile {d}/sshd.pid\nUsePAM no\n\
             StrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nLogLevel VERBOSE\n"
        );
        let config_path = dir.path().join("sshd_config");
        write_file(&config_path, &config);
        let log_path = dir.path().join("sshd.log");
        let log = File::create(&log_path).map_err(|e| format!("creating the sshd log: {e}"))?;
        let child = Command::new(SSHD_BIN)
            .args(["-D", "-e", "-f"])
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting {SSHD_BIN}: {e} (apt-get install openssh-server)"))?;
        let mut sshd = Sshd {
            child,
            dir,
            port,
            host_key,
            user_key,
        };
        sshd.wait_ready()?;
        Ok(sshd)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("sshd exited ({status}); its log:\n{}", self.log()));
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "sshd on port {} did not listen within {START_TIMEOUT:?}; its log:\n{}",
            self.port,
            self.log()
        ))
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `ssh://root@127.0.0.1:PORT/<absolute path>`.
    pub fn url(&self, path: &Path) -> String {
        format!("ssh://root@127.0.0.1:{}{}", self.port, path.display())
    }

    /// The key that may log in.
    pub fn user_key(&self) -> &KeyPair {
        &self.user_key
    }

    /// This server's known_hosts line: `[127.0.0.1]:PORT ssh-ed25519 AAAA...`.
    pub fn known_hosts_line(&self) -> String {
        let mut fields = self.host_key.public.split_whitespace();
        let (kind, key) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""));
        format!("[127.0.0.1]:{} {kind} {key}", self.port)
    }

    /// Its temp dir (config, keys, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What sshd logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
