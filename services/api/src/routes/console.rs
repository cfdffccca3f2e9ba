//! The fallback of the API router: GET and HEAD requests outside the API's prefixes go to the
//! web console (`magnetar-console`); everything else keeps the API's JSON 404.

use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};

pub async fn fallback(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if magnetar_console::is_console_path(&method, uri.path()) {
        magnetar_console::serve(method, uri, headers).await
    } else {
        super::ops::not_found(uri).await.into_response()
    }
}
