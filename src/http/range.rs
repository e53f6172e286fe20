//! Which bytes of a song a request gets, and with which status: one pure
//! function over the request's `Range`, `If-Range` and `If-None-Match`
//! headers, the file's length and its entity tag (RFC 9110 §13, §14).
//!
//! The choices, for what players actually send:
//!
//! - `bytes=a-b`, `bytes=a-`, `bytes=-n` (suffix) give 206 with that one
//!   range; `b` past the end is cut to the last byte, a suffix longer than
//!   the file is the whole file. Safari's probe `bytes=0-1` gets exactly
//!   two bytes.
//! - A range that starts at or past the end, and `bytes=-0`, give 416 with
//!   `Content-Range: bytes */LEN`.
//! - A malformed `bytes` range (`bytes=abc`, `bytes=5-2`, no `=`) gives 416
//!   too: RFC 9110 lets a server reject an invalid range set or ignore it,
//!   and a clear error tells a broken client what went wrong where a whole
//!   200 body would silently cost it the full download.
//! - A unit other than `bytes` is ignored (the RFC says it MUST be): 200.
//! - Several ranges (`bytes=0-1,4-5`) get the whole body with 200, which
//!   the RFC always allows; no player we serve asks for several, and a
//!   single-part answer to a multi-part question is one a client may not
//!   expect. If none of them is satisfiable, 416.
//! - `If-None-Match` naming our tag (or `*`) gives 304; it is looked at
//!   before the range, as RFC 9110 §13.2.2 orders them.
//! - `If-Range` with our tag (strong comparison) keeps the range; another
//!   tag, a weak one, or a date (we send no `Last-Modified`) drops it: 200.
//! - `HEAD` is answered as `GET` would be, headers and status alike, as
//!   nginx and Apache do; it only sends no body.

/// The request headers that decide the answer (their raw values).
#[derive(Clone, Copy, Debug, Default)]
pub struct Conditions<'a> {
    /// `Range`.
    pub range: Option<&'a str>,
    /// `If-Range`.
    pub if_range: Option<&'a str>,
    /// `If-None-Match`.
    pub if_none_match: Option<&'a str>,
}

/// What to answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// 200 with the whole file.
    Full,
    /// 206 with bytes `start..end` (end exclusive) of the file.
    Partial {
        /// First byte.
        start: u64,
        /// One past the last byte.
        end: u64,
    },
    /// 304: the client's copy (named by `If-None-Match`) is current.
    NotModified,
    /// 416 with `Content-Range: bytes */LEN`: no byte of the range exists,
    /// or the range is malformed.
    Unsatisfiable,
}

impl Answer {
    /// The bytes of the file this answer sends (empty for 304 and 416).
    pub fn bytes(&self, len: u64) -> std::ops::Range<u64> {
        match *self {
            Answer::Full => 0..len,
            Answer::Partial { start, end } => start..end,
            Answer::NotModified | Answer::Unsatisfiable => 0..0,
        }
    }
}

/// Decides the answer to a `GET` or `HEAD` of a file of `len` bytes whose
/// strong entity tag is `etag` (with its quotes, as sent in `ETag`).
pub fn answer(cond: &Conditions, len: u64, etag: &str) -> Answer {
    if cond.if_none_match.is_some_and(|v| matches_weakly(v, etag)) {
        return Answer::NotModified;
    }
    let Some(range) = cond.range else {
        return Answer::Full;
    };
    if let Some(if_range) = cond.if_range {
        // Only an identical strong tag keeps the range.
        if if_range.trim() != etag {
            return Answer::Full;
        }
    }
    match parse_range(range) {
        Parsed::OtherUnit => Answer::Full,
        Parsed::Malformed => Answer::Unsatisfiable,
        Parsed::Specs(specs) => {
            let mut satisfiable = specs.iter().filter_map(|s| s.resolve(len));
            match (satisfiable.next(), specs.len()) {
                (None, _) => Answer::Unsatisfiable,
                (Some((start, end)), 1) => Answer::Partial { start, end },
                (Some(_), _) => Answer::Full,
            }
        }
    }
}

/// The `Content-Range` value of a 206 (`start..end` of `len`).
pub fn content_range(start: u64, end: u64, len: u64) -> String {
    format!("bytes {start}-{}/{len}", end.saturating_sub(1))
}

/// The `Content-Range` value of a 416.
pub fn unsatisfied_range(len: u64) -> String {
    format!("bytes */{len}")
}

/// True when an `If-None-Match` list names `etag` (weak comparison: a
/// `W/` prefix is ignored) or is `*`.
fn matches_weakly(list: &str, etag: &str) -> bool {
    list.split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// One range of a `bytes` range set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Spec {
    /// `first-` or `first-last` (inclusive).
    From { first: u64, last: Option<u64> },
    /// `-n`: the last `n` bytes.
    Suffix(u64),
}

impl Spec {
    /// The bytes `start..end` of a file of `len` this spec selects, or None
    /// when it selects none.
    fn resolve(&self, len: u64) -> Option<(u64, u64)> {
        match *self {
            Spec::From { first, last } => {
                if first >= len {
                    return None;
                }
                let end = last.map_or(len, |l| l.saturating_add(1).min(len));
                Some((first, end))
            }
            Spec::Suffix(0) => None,
            Spec::Suffix(n) => (len > 0).then(|| (len - n.min(len), len)),
        }
    }
}

/// A parsed `Range` header.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    /// A unit we do not serve: the header is ignored.
    OtherUnit,
    /// Not a valid `bytes` range set.
    Malformed,
    /// The ranges, in the order given (at least one).
    Specs(Vec<Spec>),
}

fn parse_range(value: &str) -> Parsed {
    let Some((unit, set)) = value.trim().split_once('=') else {
        return Parsed::Malformed;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return Parsed::OtherUnit;
    }
    let mut specs = Vec::new();
    // A list may hold empty elements (RFC 9110 §5.6.1): skip them.
    for part in set.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match parse_spec(part) {
            Some(spec) => specs.push(spec),
            None => return Parsed::Malformed,
        }
    }
    if specs.is_empty() {
        Parsed::Malformed
    } else {
        Parsed::Specs(specs)
    }
}

fn parse_spec(part: &str) -> Option<Spec> {
    let (first, last) = part.split_once('-')?;
    if first.is_empty() {
        return Some(Spec::Suffix(number(last)?));
    }
    let first = number(first)?;
    let last = if last.is_empty() {
        None
    } else {
        Some(number(last)?)
    };
    if last.is_some_and(|l| l < first) {
        return None;
    }
    Some(Spec::From { first, last })
}

/// Digits only; a number too large for u64 saturates (it is past any end).
fn number(digits: &str) -> Option<u64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.parse().unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests;
