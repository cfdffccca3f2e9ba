//! Configuration: defaults → TOML file → `MAGNETAR_SECTION__KEY` environment variables →
//! command-line flags. Unknown keys are rejected and every error names the key and where its
//! value came from; everything is validated before any socket opens.

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use magnetar_api::HttpConfig;
use magnetar_broker::BrokerConfig;
use magnetar_storage::object::{LocalConfig, ObjectStoreConfig};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server binds.
    pub http_addr: SocketAddr,
    /// Where the WAL, segments (and in standalone the SQLite file and objects) live.
    pub data_dir: PathBuf,
    /// Transparent huge pages for the broker process: `"off"` (the default) or `"system"`.
    #[serde(default)]
    pub transparent_huge_pages: TransparentHugePages,
    pub metadata: MetadataSection,
    pub object_store: ObjectStoreConfig,
    #[serde(default)]
    pub storage: StorageSection,
    #[serde(default)]
    pub broker: BrokerConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub log: LogSection,
    /// Authentication and authorization (`[auth]`); off by default in standalone, required by
    /// `magnetar broker` unless `allow_insecure`.
    #[serde(default)]
    pub auth: magnetar_auth::AuthConfig,
    /// Pulsar's binary protocol listener (`[binary]`, `pulsar://`).
    #[serde(default)]
    pub binary: magnetar_binary::BinaryConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetadataSection {
    /// `sqlite://PATH` or `postgres://user:password@host:port/db`.
    pub url: Secret,
}

/// Database URLs carry passwords: they never print.
pub use magnetar_core::Secret;

/// Durable-log settings; see docs/configuration.md.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSection {
    pub wal_max_batch_bytes: usize,
    pub wal_buffer_bytes: usize,
    pub wal_file_bytes: u64,
    /// Trimmed WAL files kept to be overwritten by later ones (0: delete them).
    pub wal_recycle_files: usize,
    /// A partition's records filling at least this much of one group commit go straight to
    /// its segment instead of through the WAL (0: never). docs/configuration.md.
    pub wal_bypass_bytes: usize,
    pub segment_max_bytes: u64,
    pub segment_max_age_secs: u64,
    pub read_cache_bytes: usize,
    /// Bytes at the end of each segment being written kept in the page cache, older ones
    /// dropped once on disk: `"auto"` (8 MiB on a virtual machine that hands free pages back to
    /// its host, else 0) or a number (0: the kernel decides). docs/configuration.md.
    pub page_cache_window: PageCacheWindow,
    /// How segments being written take their records: `"auto"` (direct I/O on a virtual
    /// machine that hands free pages back to its host, else through the page cache),
    /// `"direct"` or `"page-cache"`. docs/configuration.md.
    pub segment_writes: SegmentWrites,
    /// Local segment bytes not yet offloaded before publishes fail with 503 (0 = no limit).
    pub local_disk_budget_bytes: u64,
    /// What start-up does with a corrupt WAL frame that is not a torn tail: "refuse" or
    /// "skip-frame" (docs/configuration.md).
    pub wal_corruption: magnetar_storage::WalCorruption,
    /// Budget of the object tier's block cache.
    pub object_cache_bytes: u64,
    /// Unit of ranged GETs of offloaded segments.
    pub object_read_block_bytes: u64,
    /// Blocks fetched ahead of a sequential reader of an offloaded segment.
    pub object_read_ahead_blocks: u64,
    /// Multipart part size of segment uploads (at least 5 MiB); larger segments use multipart.
    pub object_part_bytes: usize,
}

impl Default for StorageSection {
    fn default() -> Self {
        let d = magnetar_storage::StorageConfig::default();
        let t = magnetar_storage::TierConfig::default();
        StorageSection {
            wal_max_batch_bytes: d.wal_max_batch_bytes,
            wal_buffer_bytes: d.wal_buffer_bytes,
            wal_file_bytes: d.wal_file_bytes,
            wal_recycle_files: d.wal_recycle_files,
            wal_bypass_bytes: d.wal_bypass_bytes,
            segment_max_bytes: d.segment_max_bytes,
            segment_max_age_secs: d.segment_max_age.as_secs(),
            read_cache_bytes: d.read_cache_bytes,
            page_cache_window: PageCacheWindow::Auto,
            segment_writes: SegmentWrites::Auto,
            local_disk_budget_bytes: d.local_disk_budget_bytes,
            wal_corruption: d.wal_corruption,
            object_cache_bytes: t.cache_bytes,
            object_read_block_bytes: t.block_bytes,
            object_read_ahead_blocks: t.read_ahead_blocks,
            object_part_bytes: t.part_bytes,
        }
    }
}

/// `storage.segment_writes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SegmentWrites {
    Auto,
    Direct,
    PageCache,
}

impl SegmentWrites {
    /// Whether segments are written with direct I/O; `Auto` looks at the machine (as the page
    /// cache window does: where new page-cache pages are dear, none are taken).
    pub fn direct(self) -> bool {
        match self {
            SegmentWrites::Direct => true,
            SegmentWrites::PageCache => false,
            SegmentWrites::Auto => magnetar_storage::pagecache::host_reclaims_free_pages(),
        }
    }
}

/// `transparent_huge_pages`: whether the kernel may back the broker's memory with 2 MiB pages.
///
/// `Off` turns them off for this process only (`PR_SET_THP_DISABLE`), as Redis does: buffers
/// of large messages come and go faster than the allocator reuses their memory, and each new
/// huge page is zeroed whole on first touch (a quarter of the broker's CPU in a 64 KB produce,
/// docs/benchmarks.md). `System` leaves the kernel's setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransparentHugePages {
    #[default]
    Off,
    System,
}

/// `storage.page_cache_window`: `"auto"` or a number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageCacheWindow {
    Auto,
    Bytes(u64),
}

impl PageCacheWindow {
    /// The window in bytes; `Auto` looks at the machine (`magnetar_storage::pagecache`).
    pub fn bytes(self) -> u64 {
        match self {
            PageCacheWindow::Bytes(n) => n,
            PageCacheWindow::Auto if magnetar_storage::pagecache::host_reclaims_free_pages() => {
                magnetar_storage::pagecache::AUTO_WINDOW_BYTES
            }
            PageCacheWindow::Auto => 0,
        }
    }
}

impl Serialize for PageCacheWindow {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            PageCacheWindow::Auto => s.serialize_str("auto"),
            PageCacheWindow::Bytes(n) => s.serialize_u64(*n),
        }
    }
}

impl<'de> Deserialize<'de> for PageCacheWindow {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = PageCacheWindow;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("\"auto\" or a number of bytes")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Self::Value, E> {
                Ok(PageCacheWindow::Bytes(n))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Self::Value, E> {
                u64::try_from(n).map(PageCacheWindow::Bytes).map_err(|_| E::custom(format!("{n} is negative")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                match v {
                    "auto" => Ok(PageCacheWindow::Auto),
                    other => other
                        .parse()
                        .map(PageCacheWindow::Bytes)
                        .map_err(|_| E::custom(format!("{other:?} is neither \"auto\" nor a number of bytes"))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `magnetar=debug,info`.
    pub level: String,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection { format: LogFormat::Text, level: "info".into() }
    }
}

impl Config {
    /// Zero-setup defaults of `magnetar standalone` under `data_dir`.
    pub fn standalone(data_dir: &Path) -> Config {
        Config {
            http_addr: "127.0.0.1:8080".parse().expect("valid address"),
            data_dir: data_dir.to_path_buf(),
            transparent_huge_pages: TransparentHugePages::Off,
            metadata: MetadataSection {
                url: Secret::new(format!("sqlite://{}", data_dir.join("metadata.db").display())),
            },
            object_store: ObjectStoreConfig::Local(LocalConfig { root: data_dir.join("objects") }),
            storage: StorageSection::default(),
            // One disk holds both tiers in standalone: offloading would only copy the data.
            // Pulsar's defaults apply (off; a 4 h deletion lag once a namespace turns it on).
            broker: BrokerConfig {
                offload_threshold_bytes: -1,
                offload_deletion_lag_ms: 4 * 3_600_000,
                ..BrokerConfig::default()
            },
            http: HttpConfig::default(),
            log: LogSection::default(),
            auth: magnetar_auth::AuthConfig::default(),
            binary: magnetar_binary::BinaryConfig::default(),
        }
    }

    /// Defaults of `magnetar broker`: the standalone ones with the cloud offload defaults
    /// (every segment uploaded as it seals, the local copy kept as a cache for
    /// `offload_deletion_lag_ms`), as docs/configuration.md documents them.
    pub fn cluster(data_dir: &Path) -> Config {
        Config { broker: BrokerConfig::default(), ..Config::standalone(data_dir) }
    }

    /// Layers a TOML file (if any) and `MAGNETAR_*` variables over `base`.
    pub fn load(base: Config, file: Option<&Path>) -> anyhow::Result<Config> {
        let mut given = Figment::new();
        if let Some(f) = file {
            if !f.exists() {
                bail!("configuration file {} does not exist", f.display());
            }
            given = given.merge(Toml::file(f));
        }
        // `MAGNETAR_TEST_*` variables belong to the test harness, not to the broker.
        given = given.merge(Env::prefixed("MAGNETAR_").split("__").filter(|k| {
            let k = k.as_str().to_ascii_lowercase();
            // `MAGNETAR_LOG` is the tracing filter (cli.rs), not the `[log]` section.
            !k.starts_with("test_") && k != "log"
        }));
        // The object store section is a tagged choice (`kind = "local" | "s3"`): a given one
        // replaces the default instead of being merged field by field into it.
        let mut defaults = serde_json::to_value(&base)?;
        if given.contains("object_store")
            && let Some(map) = defaults.as_object_mut()
        {
            map.remove("object_store");
        }
        let fig = Figment::from(Serialized::defaults(defaults)).merge(given);
        let config: Config = fig.extract().map_err(|e| anyhow::anyhow!(describe(e)))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        let url = self.metadata.url.expose();
        if !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            bail!(
                "metadata.url must start with sqlite:// or postgres:// (got a value starting with `{}`)",
                url.split(':').next().unwrap_or("")
            );
        }
        self.auth.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
        self.binary.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
        self.broker.membership.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
        self.broker.deduplication.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
        self.broker.durability.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
        if self.storage.segment_max_bytes < 1024 {
            bail!("storage.segment_max_bytes = {} is too small (at least 1024)", self.storage.segment_max_bytes);
        }
        if self.storage.object_part_bytes < 5 << 20 {
            bail!(
                "storage.object_part_bytes = {} is too small (S3 needs at least 5242880)",
                self.storage.object_part_bytes
            );
        }
        if self.storage.object_read_block_bytes == 0 {
            bail!("storage.object_read_block_bytes must be positive");
        }
        if self.broker.max_message_bytes == 0 || self.broker.max_message_bytes > 512 * 1024 * 1024 {
            bail!("broker.max_message_bytes = {} must be between 1 and 536870912", self.broker.max_message_bytes);
        }
        if self.broker.max_chunked_message_bytes < self.broker.max_message_bytes
            || self.broker.max_chunked_message_bytes > i32::MAX as usize
        {
            bail!(
                "broker.max_chunked_message_bytes = {} must be between broker.max_message_bytes = {} and 2147483647",
                self.broker.max_chunked_message_bytes,
                self.broker.max_message_bytes
            );
        }
        if self.http.max_request_bytes < self.broker.max_message_bytes {
            bail!(
                "http.max_request_bytes = {} must be at least broker.max_message_bytes = {}",
                self.http.max_request_bytes,
                self.broker.max_message_bytes
            );
        }
        let b = &self.broker;
        if b.subscribe_rate_period_seconds == 0 {
            bail!("broker.subscribe_rate_period_seconds must be at least 1");
        }
        if b.tier.owner_silence_ms < 300 {
            bail!("broker.tier.owner_silence_ms = {} is too short (at least 300)", b.tier.owner_silence_ms);
        }
        if b.inactive_topic_max_seconds < 0 || b.subscription_expiration_minutes < 0 {
            bail!("broker.inactive_topic_max_seconds and broker.subscription_expiration_minutes must be 0 or more");
        }
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("cannot create data_dir {}", self.data_dir.display()))?;
        Ok(())
    }

    pub fn storage_config(&self) -> magnetar_storage::StorageConfig {
        let s = &self.storage;
        magnetar_storage::StorageConfig {
            data_dir: self.data_dir.join("log"),
            wal_max_batch_bytes: s.wal_max_batch_bytes,
            wal_buffer_bytes: s.wal_buffer_bytes,
            wal_file_bytes: s.wal_file_bytes,
            wal_recycle_files: s.wal_recycle_files,
            segment_max_bytes: s.segment_max_bytes,
            segment_max_age: std::time::Duration::from_secs(s.segment_max_age_secs.max(1)),
            max_message_bytes: self.broker.max_message_bytes,
            read_cache_bytes: s.read_cache_bytes,
            page_cache_window_bytes: s.page_cache_window.bytes(),
            direct_segment_writes: s.segment_writes.direct(),
            wal_bypass_bytes: s.wal_bypass_bytes,
            local_disk_budget_bytes: s.local_disk_budget_bytes,
            wal_corruption: s.wal_corruption,
        }
    }

    pub fn tier_config(&self) -> magnetar_storage::TierConfig {
        let s = &self.storage;
        magnetar_storage::TierConfig {
            multipart_threshold_bytes: s.object_part_bytes as u64,
            part_bytes: s.object_part_bytes,
            block_bytes: s.object_read_block_bytes,
            cache_bytes: s.object_cache_bytes,
            read_ahead_blocks: s.object_read_ahead_blocks,
        }
    }
}

/// Figment's errors already say which key and which source (file path or env variable); make
/// sure each one is on its own line.
fn describe(e: figment::Error) -> String {
    let mut out = String::from("invalid configuration:");
    for err in e {
        out.push_str("\n  - ");
        out.push_str(&err.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of `v` in `toml`, as a setting of type `T` (or the error a start would print).
    fn parse<T: serde::de::DeserializeOwned>(toml: &str) -> Result<T, String> {
        #[derive(Deserialize)]
        struct V<T> {
            v: T,
        }
        Figment::from(Toml::string(toml)).extract::<V<T>>().map(|v| v.v).map_err(|e| e.to_string())
    }

    #[test]
    fn the_page_cache_window_is_auto_or_bytes() {
        assert_eq!(parse("v = 'auto'"), Ok(PageCacheWindow::Auto));
        assert_eq!(parse("v = 16777216"), Ok(PageCacheWindow::Bytes(16 << 20)));
        // Environment variables arrive as strings.
        assert_eq!(parse("v = '0'"), Ok(PageCacheWindow::Bytes(0)));
        let bad = parse::<PageCacheWindow>("v = 'lots'").unwrap_err();
        assert!(bad.contains("\"lots\" is neither \"auto\" nor a number of bytes"), "{bad}");
        assert!(parse::<PageCacheWindow>("v = -1").unwrap_err().contains("-1 is negative"));
        assert_eq!(PageCacheWindow::Bytes(5).bytes(), 5);
    }

    #[test]
    fn segment_writes_are_auto_direct_or_page_cache() {
        assert_eq!(parse("v = 'auto'"), Ok(SegmentWrites::Auto));
        assert_eq!(parse("v = 'direct'"), Ok(SegmentWrites::Direct));
        assert_eq!(parse("v = 'page-cache'"), Ok(SegmentWrites::PageCache));
        let bad = parse::<SegmentWrites>("v = 'fast'").unwrap_err();
        assert!(bad.contains("fast") && bad.contains("page-cache"), "{bad}");
        assert!(SegmentWrites::Direct.direct() && !SegmentWrites::PageCache.direct());
    }

    #[test]
    fn transparent_huge_pages_are_off_or_system() {
        assert_eq!(Config::standalone(Path::new("d")).transparent_huge_pages, TransparentHugePages::Off);
        assert_eq!(parse("v = 'off'"), Ok(TransparentHugePages::Off));
        assert_eq!(parse("v = 'system'"), Ok(TransparentHugePages::System));
        let bad = parse::<TransparentHugePages>("v = 'always'").unwrap_err();
        assert!(bad.contains("always") && bad.contains("system"), "{bad}");
    }
}
