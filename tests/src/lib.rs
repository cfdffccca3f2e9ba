//! Test harness: starts the real broker (in-process on port 0, or the binary as a child process
//! for crash tests) against real services, and offers small HTTP helpers.
//!
//! Services come from `scripts/test.sh`, which starts PostgreSQL and an S3-compatible server and
//! exports their addresses. A test that needs one and does not find it fails with a message
//! saying how to get it; nothing is skipped silently.

use magnetar::config::{Config, MetadataSection, Secret};
use magnetar::server::{self, Running};
use reqwest::StatusCode;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// URL of the PostgreSQL server started by `scripts/test.sh`.
pub fn postgres_admin_url() -> String {
    std::env::var("MAGNETAR_TEST_POSTGRES_URL")
        .expect("MAGNETAR_TEST_POSTGRES_URL is not set: run the tests through scripts/test.sh, which starts PostgreSQL")
}

/// Creates a fresh database on the test PostgreSQL server and returns its URL.
pub async fn fresh_postgres_database() -> String {
    use sqlx::Connection;
    let admin = postgres_admin_url();
    let name = format!("magnetar_it_{}_{}", std::process::id(), unique());
    let mut conn = sqlx::PgConnection::connect(&admin).await.expect("cannot connect to the test PostgreSQL server");
    // The name is generated here from digits and a fixed prefix, never from input.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(admin);
    format!("{base}/{name}")
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    (u64::from(nanos) << 16) | N.fetch_add(1, Ordering::Relaxed)
}

/// Standalone configuration under `dir`, on an ephemeral port, with small segments.
pub fn test_config(dir: &Path) -> Config {
    let mut c = Config::standalone(dir);
    c.http_addr = "127.0.0.1:0".parse().expect("valid");
    // Tests run in parallel: the `pulsar://` listener takes a free port too.
    c.binary.addr = "127.0.0.1:0".parse().expect("valid");
    c.storage.segment_max_bytes = 64 * 1024;
    c.broker.retention_check_interval_ms = 200;
    c.broker.cursor_checkpoint_interval_ms = 200;
    c
}

/// A broker running inside the test process.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub dir: TempDir,
    running: Option<Running>,
}

impl TestApp {
    /// Standalone broker (SQLite metadata) in a fresh directory.
    pub async fn standalone() -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let cfg = test_config(dir.path());
        Self::start(dir, cfg).await
    }

    /// Broker with its metadata in a fresh PostgreSQL database.
    pub async fn with_postgres() -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cfg = test_config(dir.path());
        cfg.metadata = MetadataSection { url: Secret::new(fresh_postgres_database().await) };
        Self::start(dir, cfg).await
    }

    /// Standalone broker with authentication configured by `auth`.
    pub async fn with_auth(auth: magnetar_auth::AuthConfig) -> TestApp {
        Self::configured(|cfg| cfg.auth = auth).await
    }

    /// Standalone broker in a fresh directory, with the test configuration changed by `change`.
    pub async fn configured(change: impl FnOnce(&mut Config)) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cfg = test_config(dir.path());
        change(&mut cfg);
        Self::start(dir, cfg).await
    }

    pub async fn start(dir: TempDir, cfg: Config) -> TestApp {
        Self::start_with_clock(dir, cfg, magnetar_core::SystemClock::shared()).await
    }

    /// A broker whose wall clock the test drives (`magnetar_core::ManualClock`): TTL, retention
    /// ages and delayed delivery move when the test says, without waiting.
    pub async fn start_with_clock(dir: TempDir, cfg: Config, clock: magnetar_core::SharedClock) -> TestApp {
        let running = server::start_with_clock(cfg, true, clock).await.expect("broker starts");
        TestApp {
            base: format!("http://{}", running.addr),
            client: reqwest::Client::new(),
            dir,
            running: Some(running),
        }
    }

    /// Graceful stop, as on SIGTERM.
    pub async fn stop(mut self) -> TempDir {
        if let Some(r) = self.running.take() {
            r.broker.mark_unready();
            r.shutdown.cancel();
            r.done.await.expect("server task").expect("clean shutdown");
        }
        self.dir
    }

    pub fn broker(&self) -> &std::sync::Arc<magnetar_broker::Broker> {
        &self.running.as_ref().expect("running").broker
    }

    /// The `pulsar://` service URL of the broker's binary protocol listener.
    pub fn pulsar_url(&self) -> String {
        let addr = self.running.as_ref().expect("running").binary_addr.expect("the pulsar:// listener is enabled");
        format!("pulsar://{addr}")
    }

    /// The `pulsar+ssl://` service URL, when the test configured `binary.tls_addr`.
    pub fn pulsar_tls_url(&self) -> String {
        let addr = self.running.as_ref().expect("running").binary_tls_addr.expect("binary.tls_addr is configured");
        format!("pulsar+ssl://{addr}")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        call(&self.client, method, &self.url(path), body).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }
    pub async fn put(&self, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call(reqwest::Method::PUT, path, body).await
    }
    pub async fn post(&self, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, body).await
    }
    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::DELETE, path, None).await
    }
}

/// An HTTP client sending `token` as its bearer credential with every request.
pub fn bearer_client(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse().expect("header value"));
    reqwest::Client::builder().default_headers(headers).build().expect("HTTP client")
}

/// One HTTP call; the body is parsed as JSON when it is JSON, else returned as a string.
pub async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = client.request(method, url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap_or_else(|e| panic!("request to {url} failed: {e}"));
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

/// The broker binary run as a child process, for tests that kill it.
pub struct BrokerProcess {
    pub base: String,
    pub data_dir: PathBuf,
    pub addr: String,
    args: Vec<String>,
    extra_env: Vec<(String, String)>,
    child: Option<Child>,
}

/// The `magnetar-under-test` binary cargo builds next to the test executables
/// (`target/<profile>/deps/<test>` → `target/<profile>/magnetar-under-test`).
pub fn broker_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target directory");
    let bin = dir.join(format!("magnetar-under-test{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p magnetar-tests` (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// Runs `magnetar standalone` on a fresh data directory with `env` added, expecting it to refuse
/// to start, and returns what it printed to stderr.
pub fn standalone_start_error(env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(broker_binary())
        .args(["standalone", "--data-dir"])
        .arg(dir.path().join("data"))
        .envs(env.iter().copied())
        .output()
        .expect("run the broker binary");
    assert!(!out.status.success(), "the broker started with {env:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A port nothing listens on now, for a broker process started later on it. Drawn below
/// Linux's ephemeral range (32768 and up): a port the kernel hands out for `bind(0)` or for an
/// outgoing connection could be taken again, by another test, between this check and the
/// broker's bind.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static DRAWS: AtomicU64 = AtomicU64::new(0);
    let seed = u64::from(std::process::id())
        ^ std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    for _ in 0..1000 {
        let mut x = seed.wrapping_add(DRAWS.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        x ^= x >> 31;
        x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x ^= x >> 29;
        let port = 20_000 + (x % 12_000) as u16;
        if reserve_port(port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between 20000 and 31999 after 1000 tries")
}

/// Holds `port` for this test process until it exits (an exclusive `flock` on a file named after
/// it, shared by the tests of a run): a broker killed and restarted on its port must find the
/// port still its own, never taken meanwhile by another test drawing a free port — a test whose
/// brokers answered on a port another test's broker had taken would talk to the wrong cluster.
#[allow(unsafe_code)]
fn reserve_port(port: u16) -> bool {
    use std::os::fd::AsRawFd;
    static HELD: std::sync::Mutex<Vec<std::fs::File>> = std::sync::Mutex::new(Vec::new());
    let dir = std::env::var_os("MAGNETAR_TEST_TMPDIR")
        .map_or_else(|| std::env::temp_dir().join("magnetar-test-ports"), |d| PathBuf::from(d).join("ports"));
    std::fs::create_dir_all(&dir).expect("the directory of port reservations");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(port.to_string()))
        .expect("a port reservation file");
    // SAFETY: flock on a descriptor this function owns; the lock goes when the process exits.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return false;
    }
    HELD.lock().expect("port reservations").push(file);
    true
}

impl BrokerProcess {
    /// Starts `magnetar standalone` on `data_dir` and waits until it is ready.
    pub fn start(data_dir: &Path, extra_env: &[(&str, &str)]) -> BrokerProcess {
        let addr = format!("127.0.0.1:{}", free_port());
        let args = vec![
            "standalone".to_string(),
            "--data-dir".to_string(),
            data_dir.display().to_string(),
            "--http-addr".to_string(),
            addr.clone(),
        ];
        Self::start_args(data_dir, addr, args, extra_env)
    }

    /// Starts `magnetar broker --config FILE` (cluster mode); `config_toml` must not set
    /// `http_addr` or `data_dir`, the harness chooses them. Without an `[auth]` section the
    /// broker runs with `--insecure` (it refuses to start without authentication otherwise).
    pub fn start_cluster(data_dir: &Path, config_toml: &str, extra_env: &[(&str, &str)]) -> BrokerProcess {
        let addr = format!("127.0.0.1:{}", free_port());
        std::fs::create_dir_all(data_dir).expect("data dir");
        let file = data_dir.join("magnetar.toml");
        let toml = format!("http_addr = \"{addr}\"\ndata_dir = \"{}\"\n{config_toml}", data_dir.display());
        std::fs::write(&file, toml).expect("write config");
        let mut args = vec!["broker".to_string(), "--config".to_string(), file.display().to_string()];
        if !config_toml.contains("[auth]") {
            args.push("--insecure".to_string());
        }
        Self::start_args(data_dir, addr, args, extra_env)
    }

    /// Starts the broker binary with exactly these arguments and extra environment, listening on
    /// `addr` (which the arguments or the configuration must make it bind), and waits until it is
    /// ready; its log goes next to `data_dir`.
    pub fn start_args(data_dir: &Path, addr: String, args: Vec<String>, extra_env: &[(&str, &str)]) -> BrokerProcess {
        let mut p = BrokerProcess {
            base: format!("http://{addr}"),
            data_dir: data_dir.to_path_buf(),
            addr,
            args,
            // Brokers started side by side must not all bind Pulsar's port 6650.
            extra_env: std::iter::once(("MAGNETAR_BINARY__ADDR".to_string(), "127.0.0.1:0".to_string()))
                .chain(extra_env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
                .collect(),
            child: None,
        };
        p.spawn();
        p
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.with_extension("log"))
            .expect("broker log file");
        let child = Command::new(broker_binary())
            .args(&self.args)
            .envs(self.extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the broker binary");
        self.child = Some(child);
        self.wait_ready();
    }

    /// The panic lines of the broker's log and its last `n` lines.
    fn log_tail(&self, n: usize) -> (Vec<String>, String) {
        let log = std::fs::read_to_string(self.data_dir.with_extension("log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let panics = lines.iter().filter(|l| l.contains("panicked at")).map(|l| l.to_string()).collect();
        (panics, lines[lines.len().saturating_sub(n)..].join("\n"))
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = format!("{}/readyz", self.base);
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                let tail = self.log_tail(20).1;
                panic!("broker exited during start-up with {status}; its log ends with:\n{tail}");
            }
            if let Ok(true) = reqwest::blocking_get(&url) {
                return;
            }
            assert!(Instant::now() < deadline, "broker not ready within 60 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The process id of the running broker.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        // SAFETY-free: libc::kill with a valid pid of our own child.
        send_sigterm(c.id());
        c.wait().expect("wait for broker")
    }

    /// Waits for the process to exit on its own (polling); `None` if it still runs at `timeout`.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let c = self.child.as_mut().expect("running");
            if let Some(status) = c.try_wait().expect("wait for broker") {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// SIGSTOP: the process freezes as a long GC pause or a stalled VM would (`resume` ends it).
    pub fn pause(&self) {
        signal(self.child.as_ref().expect("running").id(), libc::SIGSTOP);
    }

    /// SIGCONT after `pause`.
    pub fn resume(&self) {
        signal(self.child.as_ref().expect("running").id(), libc::SIGCONT);
    }

    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the broker first");
        self.spawn();
    }

    /// Empties the stopped broker's data directory, keeping only its configuration file: what a
    /// broker whose volume was lost and replaced by a blank one starts on.
    pub fn lose_disk(&mut self) {
        assert!(self.child.is_none(), "stop the broker first");
        for entry in std::fs::read_dir(&self.data_dir).expect("data dir") {
            let path = entry.expect("data dir entry").path();
            if path.file_name().is_some_and(|n| n == "magnetar.toml") {
                continue;
            }
            let removed = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
            removed.unwrap_or_else(|e| panic!("cannot remove {}: {e}", path.display()));
        }
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        self.kill9();
        // A failing test shows what its brokers logged: their logs go with the test's directory.
        if std::thread::panicking() {
            let (panics, tail) = self.log_tail(40);
            eprintln!(
                "---- broker {} ({}): {} panic line(s) {:?}; its log ends with:\n{tail}\n----",
                self.addr,
                self.data_dir.display(),
                panics.len(),
                panics
            );
            keep_log(&self.data_dir.with_extension("log"));
        }
    }
}

/// With `MAGNETAR_TEST_KEEP_LOGS=DIR`, a failing test's broker logs are copied whole into DIR
/// (the test's own directory, and the logs in it, are deleted with it).
fn keep_log(log: &std::path::Path) {
    let Some(dir) = std::env::var_os("MAGNETAR_TEST_KEEP_LOGS") else { return };
    let dir = std::path::PathBuf::from(dir);
    let name = format!("{}-{}", std::process::id(), log.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
    let kept = std::fs::create_dir_all(&dir).and_then(|_| std::fs::copy(log, dir.join(&name)));
    match kept {
        Ok(_) => eprintln!("---- the whole log kept as {}", dir.join(name).display()),
        Err(e) => eprintln!("---- could not keep {} in {}: {e}", log.display(), dir.display()),
    }
}

fn send_sigterm(pid: u32) {
    signal(pid, libc::SIGTERM);
}

#[allow(unsafe_code)]
fn signal(pid: u32, sig: libc::c_int) {
    // The only way to signal a child without an extra dependency; pid is our live child.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

mod reqwest {
    pub use ::reqwest::*;

    /// A tiny blocking readiness probe (the harness's child-process code is synchronous).
    pub fn blocking_get(url: &str) -> std::io::Result<bool> {
        use std::io::{Read, Write};
        let rest = url.trim_start_matches("http://");
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let mut s = std::net::TcpStream::connect(host)?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
        write!(s, "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")?;
        let mut buf = String::new();
        s.read_to_string(&mut buf)?;
        Ok(buf.starts_with("HTTP/1.1 200"))
    }
}

/// Authentication on with an HS256 secret and `root` as the superuser role.
pub fn hs256_auth(secret: &str) -> magnetar_auth::AuthConfig {
    magnetar_auth::AuthConfig {
        enabled: true,
        token_secret_key: magnetar_auth::Secret::new(secret),
        superuser_roles: vec!["root".into()],
        ..magnetar_auth::AuthConfig::default()
    }
}

/// A token for `role` signed with the HS256 `secret`, valid for `ttl_secs`.
pub fn hs256_token(secret: &str, role: &str, ttl_secs: u64) -> String {
    use magnetar_auth::tokens_cli::{SigningKey, create_token};
    create_token(SigningKey::Secret(secret), "sub", role, Some(ttl_secs), &[]).expect("mint token")
}
