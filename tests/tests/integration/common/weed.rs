//! A SeaweedFS of one test alone (`MAGNETAR_TEST_WEED_BIN`), for tests that stop the object
//! store: the shared one `scripts/test.sh` starts is never stopped.

use super::{env, shared_s3};
use magnetar_storage::object::{ObjectStoreConfig, Secret};
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `weed mini` (S3 API) of this test alone, on free loopback ports, that the test stops and
/// restarts on the same data directory and ports.
pub struct Weed {
    bin: String,
    dir: tempfile::TempDir,
    ports: Vec<u16>,
    child: Option<Child>,
}

const WEED_BUCKET: &str = "outage";
const WEED_KEY: &str = "outage-key";
const WEED_SECRET: &str = "outage-secret";

impl Weed {
    pub async fn start() -> Weed {
        let bin = env("MAGNETAR_TEST_WEED_BIN");
        let dir = match std::env::var("MAGNETAR_TEST_TMPDIR") {
            Ok(tmp) => tempfile::tempdir_in(tmp).expect("weed dir"),
            Err(_) => tempfile::tempdir().expect("weed dir"),
        };
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        let identities = json!({"identities": [{"name": "outage",
            "credentials": [{"accessKey": WEED_KEY, "secretKey": WEED_SECRET}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]});
        std::fs::write(dir.path().join("s3.json"), identities.to_string()).unwrap();
        let mut w = Weed { bin, dir, ports: free_ports(), child: None };
        // A port found free may be taken by another test's process before weed binds it: then
        // weed exits at once, and starts again on other ports.
        for _ in 0..3 {
            match w.try_spawn().await {
                Err(log) if log.contains("is not available") => w.ports = free_ports(),
                other => return other.map(|()| w).unwrap_or_else(|log| panic!("{log}")),
            }
        }
        w.spawn().await;
        w
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports[6])
    }

    pub fn store_config(&self) -> ObjectStoreConfig {
        let mut cfg = shared_s3();
        if let ObjectStoreConfig::S3(s3) = &mut cfg {
            s3.endpoint = Some(self.endpoint());
            s3.bucket = WEED_BUCKET.into();
            s3.access_key_id = Some(Secret::new(WEED_KEY));
            s3.secret_access_key = Some(Secret::new(WEED_SECRET));
        }
        cfg
    }

    /// A broker configuration (`cluster_toml`'s) with its `[object_store]` pointed at this server.
    pub fn serving(&self, cfg: &str) -> String {
        let values = [
            ("endpoint", self.endpoint()),
            ("bucket", WEED_BUCKET.to_string()),
            ("access_key_id", WEED_KEY.to_string()),
            ("secret_access_key", WEED_SECRET.to_string()),
        ];
        let mut section = "";
        let lines: Vec<String> = cfg
            .lines()
            .map(|line| {
                if line.starts_with('[') {
                    section = line;
                }
                let key = line.split(" = ").next().unwrap_or_default();
                match values.iter().find(|(k, _)| section == "[object_store]" && *k == key) {
                    Some((k, v)) => format!("{k} = \"{v}\""),
                    None => line.to_string(),
                }
            })
            .collect();
        lines.join("\n") + "\n"
    }

    /// Starts the server (as `scripts/test.sh` does) and waits until S3 answers and the bucket
    /// exists.
    pub async fn spawn(&mut self) {
        if let Err(log) = self.try_spawn().await {
            panic!("{log}");
        }
    }

    /// [`Self::spawn`], or why weed exited during start-up.
    async fn try_spawn(&mut self) -> Result<(), String> {
        assert!(self.child.is_none(), "weed already running");
        let p = &self.ports;
        let d = self.dir.path();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(d.join("weed.log")).unwrap();
        let child = Command::new(&self.bin)
            .arg("mini")
            .arg(format!("-dir={}", d.join("data").display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
            .arg(format!("-master.port={}", p[0]))
            .arg(format!("-master.port.grpc={}", p[1]))
            .arg(format!("-volume.port={}", p[2]))
            .arg(format!("-volume.port.grpc={}", p[3]))
            .arg(format!("-filer.port={}", p[4]))
            .arg(format!("-filer.port.grpc={}", p[5]))
            .arg(format!("-s3.port={}", p[6]))
            .arg(format!("-s3.port.grpc={}", p[7]))
            .args(["-s3.port.iceberg=0", "-s3.port.lance=0", "-admin.ui=false", "-webdav=false"])
            .arg(format!("-admin.port={}", p[8]))
            .arg(format!("-admin.port.grpc={}", p[9]))
            .arg(format!("-s3.config={}", d.join("s3.json").display()))
            .arg(format!("-bucket={WEED_BUCKET}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start weed mini");
        self.child = Some(child);
        let client = reqwest::Client::new();
        let s3 = self.endpoint();
        let bucket = format!("http://127.0.0.1:{}/buckets/{WEED_BUCKET}/", p[4]);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                let log = std::fs::read_to_string(d.join("weed.log")).unwrap_or_default();
                // The next attempt's log starts afresh.
                let _ = std::fs::remove_file(d.join("weed.log"));
                return Err(format!("weed mini exited during start-up with {status}:\n{log}"));
            }
            let s3_up = client.get(&s3).send().await.is_ok();
            let bucket_up = matches!(client.get(&bucket).send().await, Ok(r) if r.status().is_success());
            if s3_up && bucket_up {
                return Ok(());
            }
            assert!(Instant::now() < deadline, "weed mini not ready within 60 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL: the store disappears mid-request, as a crashed or unreachable server does.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Weed {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Ten free ports, found together so that they differ.
fn free_ports() -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> =
        (0..10).map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("free port")).collect();
    listeners.iter().map(|l| l.local_addr().unwrap().port()).collect()
}
