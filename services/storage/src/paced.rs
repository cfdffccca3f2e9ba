//! Uploads at a byte rate: an HTTP client for `object_store` that streams large request bodies
//! (segment uploads) in small chunks through a rate budget.
//!
//! Why: an 8 MiB body sent at once makes the kernel move it in one burst (over loopback, the
//! receiver's half of the work lands on the same cores too), and for those milliseconds the
//! publish path waits for a CPU; the same bytes spread over a few hundred milliseconds cost it
//! nothing measurable (docs/benchmarks.md, `scripts/loopback-noise.py`). Requests with small
//! bodies (GETs, list, delete, the completion of a multipart upload) go out unpaced.

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::BodyExt;
use object_store::ClientOptions;
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpResponse, HttpResponseBody, HttpService,
};
use std::time::Duration;
use tokio::time::Instant;

/// Bodies at least this large are paced.
const PACED_FROM: usize = 1 << 20;
/// Unit of pacing.
const CHUNK: usize = 64 << 10;

/// Builds [`PacedService`]s sending large bodies at `bytes_per_second`.
#[derive(Debug, Clone, Copy)]
pub struct PacedConnector {
    pub bytes_per_second: u64,
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
        Ok(HttpClient::new(PacedService { client, bytes_per_second: self.bytes_per_second.max(1) }))
    }
}

#[derive(Debug)]
pub struct PacedService {
    client: reqwest::Client,
    bytes_per_second: u64,
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
        *request.body_mut() = Some(if len >= PACED_FROM {
            paced(body, self.bytes_per_second)
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

/// The body as `CHUNK`-sized pieces, each sent no earlier than its byte position allows at
/// `rate` bytes per second (counted from the first).
fn paced(body: object_store::client::HttpRequestBody, rate: u64) -> reqwest::Body {
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
    let started = Instant::now();
    let mut sent = 0u64;
    let stream = pieces.then(move |piece| {
        let due = started + Duration::from_secs_f64(sent as f64 / rate as f64);
        if let Ok(p) = &piece {
            sent += p.len() as u64;
        }
        async move {
            tokio::time::sleep_until(due).await;
            piece
        }
    });
    reqwest::Body::wrap_stream(stream)
}
