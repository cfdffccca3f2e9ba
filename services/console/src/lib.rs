//! The web console: the single-page application built from `web-admin/` into
//! `web-admin/dist` (by `scripts/build-console.sh`, never by cargo), embedded in release builds
//! with `rust-embed` and read from the folder at run time in debug builds. The API router uses
//! [`serve`] as its fallback for GET and HEAD requests outside the API's own prefixes
//! ([`is_console_path`]):
//!
//! - an asset that exists is served, gzip-compressed when the build wrote a `.gz` beside it and
//!   the client accepts it; hashed assets (`/assets/...`) are immutable for a year, everything
//!   else is revalidated (`index.html` with `no-cache`);
//! - any other path is a client-side route and gets `index.html`;
//! - when the console was not built, every console path answers a small page saying how to
//!   build it.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "../../web-admin/dist/"]
#[allow_missing = true]
struct Assets;

/// Path prefixes that belong to the API (and keep its JSON 404), never to the console.
const API_PREFIXES: [&str; 9] =
    ["/admin", "/topics", "/ws", "/lookup", "/metrics", "/openapi.json", "/healthz", "/readyz", "/status.html"];

/// Whether a request for `path` with `method` is the console's to answer.
pub fn is_console_path(method: &Method, path: &str) -> bool {
    if method != Method::GET && method != Method::HEAD {
        return false;
    }
    !API_PREFIXES.iter().any(|p| path == *p || path.strip_prefix(p).is_some_and(|rest| rest.starts_with('/')))
}

/// Whether the console was built into (or, in debug builds, is present beside) this binary.
pub fn is_built() -> bool {
    Assets::get("index.html").is_some()
}

/// The page served in place of the console when it was not built.
pub const NOT_BUILT_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Magnetar</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; line-height: 1.5">
<h1>Magnetar is running</h1>
<p>The API is served here (<a href="/openapi.json">/openapi.json</a>, <code>/admin/v2/...</code>), but this
binary was built without the web console.</p>
<p>To build the console into the binary, run from the repository root (needs Node.js 20.19 or later and npm):</p>
<pre><code>scripts/build-console.sh &amp;&amp; cargo build --release</code></pre>
<p>or start everything at once with <code>scripts/standalone.sh</code>.</p>
</body></html>
"#;

/// Answers a GET or HEAD for a console path (see the crate documentation).
pub async fn serve(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let mut response = answer(uri.path(), &headers);
    if method == Method::HEAD {
        *response.body_mut() = Body::empty();
    }
    response
}

fn answer(path: &str, headers: &HeaderMap) -> Response {
    if !is_built() {
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")],
            NOT_BUILT_PAGE,
        )
            .into_response();
    }
    let file = path.trim_start_matches('/');
    let file = if file.is_empty() { "index.html" } else { file };
    match Assets::get(file) {
        Some(_) if file != "index.html" => asset(file, headers),
        // A missing file under /assets is a stale reference, not a client-side route.
        None if file.starts_with("assets/") => {
            (StatusCode::NOT_FOUND, [(header::CACHE_CONTROL, "no-cache")], "not found").into_response()
        }
        _ => asset("index.html", headers),
    }
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |e| {
            let mut parts = e.trim().split(';');
            parts.next().is_some_and(|name| name.trim().eq_ignore_ascii_case("gzip"))
                && !parts.any(|q| q.trim().replace(' ', "") == "q=0")
        },
    )
}

fn asset(file: &str, headers: &HeaderMap) -> Response {
    let Some(plain) = Assets::get(file) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let mime = plain.metadata.mimetype().to_string();
    let cache = if file.starts_with("assets/") { "public, max-age=31536000, immutable" } else { "no-cache" };
    let gz = accepts_gzip(headers).then(|| Assets::get(&format!("{file}.gz"))).flatten();
    let (body, encoding) = match gz {
        Some(gz) => (gz.data, Some("gzip")),
        None => (plain.data, None),
    };
    let mut response = Response::new(Body::from(body.into_owned()));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&mime).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Some(e) = encoding {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(e));
    }
    if file == "index.html" {
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths_are_never_the_consoles() {
        for p in [
            "/admin",
            "/admin/v2/tenants",
            "/topics/persistent/a/b/c",
            "/ws/v2/reader/x",
            "/lookup/v2/topic/x",
            "/metrics",
            "/metrics/",
            "/openapi.json",
            "/healthz",
            "/readyz",
            "/status.html",
        ] {
            assert!(!is_console_path(&Method::GET, p), "{p}");
        }
        for p in
            ["/", "/tenants", "/tenants/acme/namespaces/orders", "/assets/index-abc.js", "/administrators", "/topicsx"]
        {
            assert!(is_console_path(&Method::GET, p), "{p}");
            assert!(is_console_path(&Method::HEAD, p), "{p}");
        }
        assert!(!is_console_path(&Method::POST, "/tenants"));
    }

    #[test]
    fn gzip_is_offered_only_when_accepted() {
        let mut h = HeaderMap::new();
        assert!(!accepts_gzip(&h));
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("br, gzip;q=0.8"));
        assert!(accepts_gzip(&h));
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip;q=0, br"));
        assert!(!accepts_gzip(&h));
    }

    #[tokio::test]
    async fn every_console_path_answers_html() {
        let r = serve(Method::GET, Uri::from_static("/tenants/acme"), HeaderMap::new()).await;
        assert_eq!(r.status(), StatusCode::OK);
        let ct = r.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        assert!(ct.starts_with("text/html"), "{ct}");
    }
}
