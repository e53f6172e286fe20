//! What keeps the JSON API's changes from being made cross-site: a page of
//! another origin can make a browser send a POST to this server (a form
//! or a "simple" fetch), so every request that changes something (POST,
//! PUT, PATCH, DELETE) is refused unless its `Origin`, when the browser
//! sends one, is this server's own (`http://` and the `Host` it was asked
//! for), and unless its body is declared JSON (which a cross-site form
//! cannot send, and a cross-site fetch can only after a CORS preflight
//! this server never grants). The server binds loopback unless told
//! otherwise.

use axum::extract::Request;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Why a changing request is refused (a 403 or a 415).
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The `Origin` is another site's.
    CrossSite(String),
    /// The body is not declared `application/json`.
    NotJson,
}

/// The pure check of one request's method and headers.
pub fn check(method: &Method, headers: &HeaderMap) -> Result<(), Refusal> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let own = !host.is_empty() && origin.eq_ignore_ascii_case(&format!("http://{host}"));
        if !own {
            return Err(Refusal::CrossSite(origin.to_string()));
        }
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|c| c.to_str().ok())
        .and_then(|c| c.split(';').next())
        .is_some_and(|c| c.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(Refusal::NotJson);
    }
    Ok(())
}

/// The middleware: refuses what [`check`] refuses, before any handler.
pub async fn same_origin_json(request: Request, next: Next) -> Response {
    match check(request.method(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(Refusal::CrossSite(origin)) => (
            StatusCode::FORBIDDEN,
            format!("refused: a change requested by another site (Origin {origin:?}); use the player this server serves\n"),
        )
            .into_response(),
        Err(Refusal::NotJson) => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "refused: a change must send a JSON body with Content-Type: application/json\n",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn reads_pass_and_changes_need_own_origin_and_json() {
        let host = (header::HOST, "127.0.0.1:8080");
        let json = (header::CONTENT_TYPE, "application/json; charset=utf-8");
        assert_eq!(check(&Method::GET, &headers(&[])), Ok(()));
        let own = (header::ORIGIN, "http://127.0.0.1:8080");
        assert_eq!(
            check(&Method::POST, &headers(&[host.clone(), own, json.clone()])),
            Ok(())
        );
        // No Origin (curl, the tests): the content type still counts.
        assert_eq!(
            check(&Method::PUT, &headers(&[host.clone(), json.clone()])),
            Ok(())
        );
        let evil = (header::ORIGIN, "http://evil.example");
        assert_eq!(
            check(
                &Method::DELETE,
                &headers(&[host.clone(), evil, json.clone()])
            ),
            Err(Refusal::CrossSite("http://evil.example".into()))
        );
        let null = (header::ORIGIN, "null");
        assert!(check(&Method::POST, &headers(&[host.clone(), null, json])).is_err());
        let form = (header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        assert_eq!(
            check(&Method::POST, &headers(&[host.clone(), form])),
            Err(Refusal::NotJson)
        );
        let plain = (header::CONTENT_TYPE, "text/plain");
        assert_eq!(
            check(&Method::POST, &headers(&[host, plain])),
            Err(Refusal::NotJson)
        );
    }
}
