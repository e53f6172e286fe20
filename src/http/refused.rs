//! A request the JSON API refuses: its status and a one-line reason, as
//! plain text (what a user or a script reads).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// The answer `status` with `why`.
pub fn fail(status: StatusCode, why: impl std::fmt::Display) -> Response {
    refuse(status, why).into_response()
}

/// A refused request: its status and why (smaller than a `Response`).
pub struct Refused(StatusCode, String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        (self.0, self.1).into_response()
    }
}

/// A refusal of `status` with `why`, to return from a helper.
pub fn refuse(status: StatusCode, why: impl std::fmt::Display) -> Refused {
    Refused(status, format!("{why}\n"))
}
