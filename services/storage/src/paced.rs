//! Uploads at a byte rate: an HTTP client for `object_store` that streams large request bodies
//! (segment uploads) in small chunks through a rate budget, and the [`UploadPace`] that sets
//! the rate, fixed or following the broker's ingest.
//!
//! Why: an 8 MiB body sent at once makes the kernel move it in one burst (over loopback, the
//! receiver's half of the work lands on the same cores too), and for those milliseconds the
//! publish path waits for a CPU; the same bytes spread over a few hundred milliseconds cost it
//! nothing measurable (docs/benchmarks.md, `scripts/loopback-noise.py`). Requests with small
//! bodies (GETs, list, delete, the completion of a multipart upload) go out unpaced.
//!
//! A fixed rate is a trap: below the ingest rate, sealed segments pile up locally; far above
//! it, uploads burst again. So the default is [`UploadPacing::Auto`]: twice the recent ingest
//! (uploads then take at most half the time), never under [`AUTO_FLOOR`], fast enough to upload
//! the offloader's backlog within [`BACKLOG_DRAIN`], and no pacing at all while more than half
//! of the local disk budget waits for upload (catching up after an object-store outage matters
//! more than smooth latency).

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::BodyExt;
use object_store::ClientOptions;
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpResponse, HttpResponseBody, HttpService,
};
use parking_lot::Mutex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Bodies at least this large are paced.
const PACED_FROM: usize = 1 << 20;
/// Unit of pacing.
const CHUNK: usize = 64 << 10;

/// The least rate of automatic pacing: enough for an idle broker to upload an 8 MiB segment in
/// half a second, and the rate that measured best (docs/benchmarks.md).
pub const AUTO_FLOOR: u64 = 16 << 20;
/// How fast the ingest estimate forgets a higher rate once ingest drops (it follows a rise at
/// once, so uploads never fall behind a burst).
const INGEST_DECAY: Duration = Duration::from_secs(10);
/// A backlog of uploads (after an object-store outage, or offload enabled on a full topic) is
/// paced to drain within this time.
pub const BACKLOG_DRAIN: Duration = Duration::from_secs(10);

/// `upload_bytes_per_second` in the configuration: `"auto"` (default), `0` (unpaced) or a
/// fixed number of bytes per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UploadPacing {
    #[default]
    Auto,
    Off,
    Fixed(u64),
}

impl Serialize for UploadPacing {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            UploadPacing::Auto => s.serialize_str("auto"),
            UploadPacing::Off => s.serialize_u64(0),
            UploadPacing::Fixed(n) => s.serialize_u64(*n),
        }
    }
}

impl<'de> Deserialize<'de> for UploadPacing {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(0) => Ok(UploadPacing::Off),
            Raw::Number(n) => Ok(UploadPacing::Fixed(n)),
            Raw::Text(t) if t.eq_ignore_ascii_case("auto") => Ok(UploadPacing::Auto),
            // Environment variables arrive as text.
            Raw::Text(t) => match t.trim().parse::<u64>() {
                Ok(0) => Ok(UploadPacing::Off),
                Ok(n) => Ok(UploadPacing::Fixed(n)),
                Err(_) => Err(serde::de::Error::custom(format!(
                    "upload_bytes_per_second must be \"auto\" or a number of bytes per second (0 = unpaced), got {t:?}"
                ))),
            },
        }
    }
}

/// The current upload rate, shared by the HTTP client that paces the bodies and the broker
/// task that observes ingest ([`UploadPace::observe`]). 0 means unpaced.
#[derive(Debug)]
pub struct UploadPace {
    mode: UploadPacing,
    rate: AtomicU64,
    ingest: Mutex<Option<IngestEstimate>>,
    /// Bytes the offloader has yet to upload in its current pass.
    backlog: AtomicU64,
}

#[derive(Debug, Clone, Copy)]
struct IngestEstimate {
    at: std::time::Instant,
    total: u64,
    bytes_per_second: f64,
}

impl UploadPace {
    pub fn new(mode: UploadPacing) -> Arc<Self> {
        let rate = match mode {
            UploadPacing::Auto => AUTO_FLOOR,
            UploadPacing::Off => 0,
            UploadPacing::Fixed(n) => n,
        };
        Arc::new(UploadPace { mode, rate: AtomicU64::new(rate), ingest: Mutex::new(None), backlog: AtomicU64::new(0) })
    }

    pub fn mode(&self) -> UploadPacing {
        self.mode
    }

    /// The offloader's pass has this many bytes to upload.
    pub fn set_backlog(&self, bytes: u64) {
        self.backlog.store(bytes, Ordering::Relaxed);
    }

    /// One upload of the pass is done.
    pub fn uploaded(&self, bytes: u64) {
        let _ = self.backlog.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| Some(b.saturating_sub(bytes)));
    }

    /// Bytes per second large bodies are sent at now; 0 = unpaced.
    pub fn bytes_per_second(&self) -> u64 {
        self.rate.load(Ordering::Relaxed)
    }

    /// Feeds the automatic mode: `ingest_total` is a running count of bytes written by
    /// producers (the WAL's), `pending` the local bytes not yet uploaded, `budget` the local disk
    /// budget (0 = none). A no-op for a fixed rate or none. Returns the rate now in force.
    pub fn observe(&self, now: std::time::Instant, ingest_total: u64, pending: u64, budget: u64) -> u64 {
        if self.mode != UploadPacing::Auto {
            return self.bytes_per_second();
        }
        let mut est = self.ingest.lock();
        let ingest = match *est {
            None => 0.0,
            Some(prev) => {
                let dt = now.saturating_duration_since(prev.at);
                if dt < Duration::from_millis(100) {
                    return self.bytes_per_second(); // too short to measure
                }
                let current = ingest_total.saturating_sub(prev.total) as f64 / dt.as_secs_f64();
                follow(prev.bytes_per_second, current, dt)
            }
        };
        *est = Some(IngestEstimate { at: now, total: ingest_total, bytes_per_second: ingest });
        let rate = auto_rate(ingest, self.backlog.load(Ordering::Relaxed), pending, budget);
        self.rate.store(rate, Ordering::Relaxed);
        rate
    }
}

/// The ingest estimate: up at once, down gradually over [`INGEST_DECAY`].
fn follow(estimate: f64, current: f64, dt: Duration) -> f64 {
    if current >= estimate {
        return current;
    }
    let weight = (dt.as_secs_f64() / INGEST_DECAY.as_secs_f64()).min(1.0);
    estimate + (current - estimate) * weight
}

/// Twice the ingest, at least [`AUTO_FLOOR`], and enough to upload the backlog within
/// [`BACKLOG_DRAIN`] while the ingest goes on; unpaced (0) while more than half the local disk
/// budget waits for upload.
fn auto_rate(ingest_bytes_per_second: f64, backlog: u64, pending: u64, budget: u64) -> u64 {
    if budget > 0 && pending > budget / 2 {
        return 0;
    }
    let drain = ingest_bytes_per_second + backlog as f64 / BACKLOG_DRAIN.as_secs_f64();
    ((2.0 * ingest_bytes_per_second).max(drain) as u64).max(AUTO_FLOOR)
}

/// Builds [`PacedService`]s sending large bodies at the pace's current rate.
#[derive(Debug, Clone)]
pub struct PacedConnector {
    pub pace: Arc<UploadPace>,
    pub connect_timeout: Duration,
    pub timeout: Duration,
}

impl HttpConnector for PacedConnector {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        // The options that matter here (timeouts) are this connector's own: `ClientOptions`
        // does not hand out its reqwest client.
        let client = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .build()
            .map_err(|e| object_store::Error::Generic { store: "S3", source: Box::new(e) })?;
        Ok(HttpClient::new(PacedService { client, pace: Arc::clone(&self.pace) }))
    }
}

#[derive(Debug)]
pub struct PacedService {
    client: reqwest::Client,
    pace: Arc<UploadPace>,
}

fn kind(e: &reqwest::Error) -> HttpErrorKind {
    if e.is_timeout() {
        HttpErrorKind::Timeout
    } else if e.is_connect() {
        HttpErrorKind::Connect
    } else if e.is_decode() {
        HttpErrorKind::Decode
    } else if e.is_request() || e.is_body() {
        HttpErrorKind::Request
    } else {
        HttpErrorKind::Unknown
    }
}

fn http_error(e: reqwest::Error) -> HttpError {
    HttpError::new(kind(&e), e)
}

#[async_trait::async_trait]
impl HttpService for PacedService {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let (parts, body) = req.into_parts();
        let url: reqwest::Url = parts.uri.to_string().parse().map_err(|e| HttpError::new(HttpErrorKind::Request, e))?;
        let mut request = reqwest::Request::new(parts.method, url);
        *request.headers_mut() = parts.headers;
        let len = body.content_length();
        *request.body_mut() = Some(if len >= PACED_FROM && self.pace.bytes_per_second() > 0 {
            paced(body, Arc::clone(&self.pace))
        } else {
            let bytes = body.collect().await?.to_bytes();
            reqwest::Body::from(bytes)
        });
        let response = self.client.execute(request).await.map_err(http_error)?;
        let response: http::Response<reqwest::Body> = response.into();
        let (parts, body) = response.into_parts();
        Ok(HttpResponse::from_parts(parts, HttpResponseBody::new(body.map_err(http_error))))
    }
}

/// The body as `CHUNK`-sized pieces, each sent once the previous ones have had their time at
/// the pace's rate. The rate is read per piece, so a change (catching up after an outage)
/// applies to uploads already under way.
fn paced(body: object_store::client::HttpRequestBody, pace: Arc<UploadPace>) -> reqwest::Body {
    let frames = http_body_util::BodyStream::new(body);
    let pieces = frames.flat_map(|frame| {
        let pieces: Vec<Result<Bytes, HttpError>> = match frame {
            Ok(f) => match f.into_data() {
                Ok(data) => {
                    (0..data.len()).step_by(CHUNK).map(|at| Ok(data.slice(at..(at + CHUNK).min(data.len())))).collect()
                }
                Err(_) => Vec::new(),
            },
            Err(e) => vec![Err(e)],
        };
        futures::stream::iter(pieces)
    });
    let mut due = Instant::now();
    let stream = pieces.then(move |piece| {
        let at = due;
        if let Ok(p) = &piece {
            let rate = pace.bytes_per_second();
            due = if rate == 0 { Instant::now() } else { at + Duration::from_secs_f64(p.len() as f64 / rate as f64) };
        }
        async move {
            tokio::time::sleep_until(at).await;
            piece
        }
    });
    reqwest::Body::wrap_stream(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn automatic_rate_is_twice_the_ingest_never_under_the_floor() {
        assert_eq!(auto_rate(0.0, 0, 0, 0), AUTO_FLOOR);
        assert_eq!(auto_rate(4.0 * MIB as f64, 0, 0, 0), AUTO_FLOOR);
        assert_eq!(auto_rate(30.0 * MIB as f64, 0, 0, 0), 60 * MIB);
    }

    #[test]
    fn a_backlog_is_paced_to_drain_within_ten_seconds() {
        // One sealed segment waiting changes nothing; 1.2 GiB after an outage, with 10 MiB/s
        // still coming in, goes at 10 + 123 MiB/s.
        assert_eq!(auto_rate(10.0 * MIB as f64, 8 * MIB, 8 * MIB, 0), 20 * MIB);
        assert_eq!(auto_rate(10.0 * MIB as f64, 1230 * MIB, 1230 * MIB, 0), 133 * MIB);
        let pace = UploadPace::new(UploadPacing::Auto);
        let t0 = std::time::Instant::now();
        pace.observe(t0, 0, 0, 0);
        pace.set_backlog(400 * MIB);
        assert_eq!(pace.observe(t0 + Duration::from_secs(1), 0, 0, 0), 40 * MIB);
        pace.uploaded(300 * MIB);
        assert_eq!(pace.observe(t0 + Duration::from_secs(2), 0, 0, 0), AUTO_FLOOR);
        pace.uploaded(300 * MIB);
        pace.set_backlog(0);
        assert_eq!(pace.observe(t0 + Duration::from_secs(3), 0, 0, 0), AUTO_FLOOR);
    }

    #[test]
    fn automatic_rate_is_unpaced_while_half_the_budget_waits_for_upload() {
        assert_eq!(auto_rate(10.0 * MIB as f64, 0, 512 * MIB, 1024 * MIB), 20 * MIB);
        assert_eq!(auto_rate(10.0 * MIB as f64, 0, 513 * MIB, 1024 * MIB), 0);
        // No budget: local bytes alone (kept by policy, say) never lift the pacing.
        assert_eq!(auto_rate(0.0, 0, 100 << 30, 0), AUTO_FLOOR);
    }

    #[test]
    fn ingest_estimate_rises_at_once_and_decays_gradually() {
        let pace = UploadPace::new(UploadPacing::Auto);
        let t0 = std::time::Instant::now();
        let s = Duration::from_secs(1);
        assert_eq!(pace.observe(t0, 0, 0, 0), AUTO_FLOOR);
        // 40 MiB in one second: 80 MiB/s at once.
        assert_eq!(pace.observe(t0 + s, 40 * MIB, 0, 0), 80 * MIB);
        // Ingest stops: one second later the estimate has dropped a tenth of the way.
        assert_eq!(pace.observe(t0 + 2 * s, 40 * MIB, 0, 0), 72 * MIB);
        // Observations closer than 100 ms apart change nothing.
        assert_eq!(pace.observe(t0 + 2 * s + Duration::from_millis(10), 90 * MIB, 0, 0), 72 * MIB);
        let mut rate = 0;
        for i in 3..60 {
            rate = pace.observe(t0 + i * s, 40 * MIB, 0, 0);
        }
        assert_eq!(rate, AUTO_FLOOR, "an idle broker settles at the floor");
    }

    #[test]
    fn fixed_and_off_ignore_observations() {
        let fixed = UploadPace::new(UploadPacing::Fixed(5 * MIB));
        let off = UploadPace::new(UploadPacing::Off);
        let t0 = std::time::Instant::now();
        for (i, total) in [0, 100 * MIB, 200 * MIB].into_iter().enumerate() {
            let now = t0 + Duration::from_secs(i as u64);
            assert_eq!(fixed.observe(now, total, 10 * MIB, 1), 5 * MIB);
            assert_eq!(off.observe(now, total, 0, 0), 0);
        }
    }

    #[test]
    fn configuration_accepts_auto_zero_and_numbers_and_names_bad_values() {
        #[derive(Deserialize, Serialize, Debug, PartialEq)]
        struct C {
            upload_bytes_per_second: UploadPacing,
        }
        let p = |json: &str| serde_json::from_str::<C>(json).map(|c| c.upload_bytes_per_second);
        assert_eq!(p(r#"{"upload_bytes_per_second":"auto"}"#).unwrap(), UploadPacing::Auto);
        assert_eq!(p(r#"{"upload_bytes_per_second":"AUTO"}"#).unwrap(), UploadPacing::Auto);
        assert_eq!(p(r#"{"upload_bytes_per_second":0}"#).unwrap(), UploadPacing::Off);
        assert_eq!(p(r#"{"upload_bytes_per_second":"0"}"#).unwrap(), UploadPacing::Off);
        assert_eq!(p(r#"{"upload_bytes_per_second":16777216}"#).unwrap(), UploadPacing::Fixed(16 << 20));
        assert_eq!(p(r#"{"upload_bytes_per_second":"16777216"}"#).unwrap(), UploadPacing::Fixed(16 << 20));
        let err = p(r#"{"upload_bytes_per_second":"fast"}"#).unwrap_err().to_string();
        assert!(err.contains("\"fast\"") && err.contains("auto"), "{err}");
        assert!(p(r#"{"upload_bytes_per_second":-1}"#).is_err());
        for v in [UploadPacing::Auto, UploadPacing::Off, UploadPacing::Fixed(7)] {
            let json = serde_json::to_string(&C { upload_bytes_per_second: v }).unwrap();
            assert_eq!(p(&json).unwrap(), v, "{json}");
        }
    }
}
