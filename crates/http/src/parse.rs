//! Request heads, sans-I/O: bytes in, an [`http::Request`] and the body's framing out
//! (hyper's `proto/h1/role.rs`). Strict: anything two parsers could read two ways is refused.
//!
//! A connection keeps what its last head made (`Reuse`): fields and a target that repeat are
//! shared instead of checked and copied again, and a head that repeats the last one byte for
//! byte is not parsed at all, since parsing depends on nothing but the bytes and the limits.

use http::header::{
    AUTHORIZATION, CONNECTION, CONTENT_LENGTH, EXPECT, HOST, PROXY_AUTHORIZATION,
    TRANSFER_ENCODING, UPGRADE,
};
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri, Version};
use std::mem::MaybeUninit;

/// Limits on a request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeadLimits {
    /// Longest request line (method, target, version) in bytes; longer → 414.
    pub(crate) max_request_line: usize,
    /// Most header fields; more → 431.
    pub(crate) max_headers: usize,
    /// Longest head (request line and all header fields) in bytes; longer → 431.
    pub(crate) max_head_bytes: usize,
    /// Largest request body in bytes (`None`: no limit); a `Content-Length` over it → 413.
    pub(crate) max_body: Option<u64>,
}

impl Default for HeadLimits {
    fn default() -> HeadLimits {
        HeadLimits {
            max_request_line: 8 * 1024,
            max_headers: 100,
            max_head_bytes: 64 * 1024,
            max_body: None,
        }
    }
}

/// How the request's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body.
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// What parsing found of a complete, valid request head besides the request itself (which
/// [`parse_head_into`] leaves where its caller keeps it: a request is a few hundred bytes,
/// each move of it a copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) body_framing: Framing,
    pub(crate) keep_alive: bool,
    pub(crate) expect_continue: bool,
    /// The request asks to switch protocols (`Upgrade` on HTTP/1.1; on HTTP/1.0 it is
    /// ignored, RFC 9110 §7.8).
    pub(crate) upgrade: bool,
    /// Where the request line lies in the head (after the empty lines a client may send
    /// before it), without its CRLF.
    pub(crate) line: std::ops::Range<usize>,
    /// Bytes of the buffer the head took.
    pub(crate) consumed: usize,
    /// The head repeats the connection's last one byte for byte (its request line too).
    pub(crate) repeated: bool,
}

/// A complete, valid request head, the request with what else parsing found (the tests'
/// view of [`parse_head_into`]; the fields of [`Head`] read through it).
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct Parsed<B> {
    /// The request, with the body the caller made for it.
    pub(crate) head: Request<B>,
    pub(crate) found: Head,
}

#[cfg(test)]
impl<B> std::ops::Deref for Parsed<B> {
    type Target = Head;

    fn deref(&self) -> &Head {
        &self.found
    }
}

/// The outcome of [`parse_head`] when nothing is wrong.
#[cfg(test)]
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "the tests' view, made once per head"
)]
pub(crate) enum Status<B> {
    Complete(Parsed<B>),
    /// More bytes are needed.
    Incomplete,
}

/// A request that must be refused: answer `status`, then close the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError {
    pub(crate) status: StatusCode,
    pub(crate) reason: &'static str,
}

fn err(status: StatusCode, reason: &'static str) -> ParseError {
    ParseError { status, reason }
}

fn bad(reason: &'static str) -> ParseError {
    err(StatusCode::BAD_REQUEST, reason)
}

/// Whether the head's line terminators are all CRLF (a bare LF is accepted by httparse, but
/// other parsers read it differently): every CR is followed by an LF and every LF follows a
/// CR, checked on every pair of neighbouring bytes without branching, so that it vectorizes.
fn lines_are_crlf(head: &[u8]) -> bool {
    let (Some(&first), Some(&last)) = (head.first(), head.last()) else {
        return true;
    };
    let mismatched = head.iter().zip(&head[1..]).fold(0u8, |acc, (&a, &b)| {
        acc | u8::from((a == b'\r') != (b == b'\n'))
    });
    mismatched == 0 && first != b'\n' && last != b'\r'
}

/// `buf` from its request line on: after the empty lines a client may send before it (RFC
/// 9112 §2.2), which httparse skips too.
fn after_empty_lines(buf: &[u8]) -> &[u8] {
    let start = buf.iter().position(|&b| b != b'\r' && b != b'\n');
    &buf[start.unwrap_or(buf.len())..]
}

/// After httparse's `Version` error: `HTTP/<digit>.<digit>` with another major version is
/// 505, anything else 400; `None` while the request line has not ended and what came of the
/// version could still become `HTTP/<digit>.<digit>` (so that a head read in pieces is
/// answered as it would be whole).
fn version_error(buf: &[u8]) -> Option<ParseError> {
    let buf = after_empty_lines(buf);
    let line_end = buf.iter().position(|&b| b == b'\r' || b == b'\n');
    let line = &buf[..line_end.unwrap_or(buf.len())];
    let v = line.rsplit(|&b| b == b' ').next().unwrap_or(line);
    let shape = b"HTTP/0.0";
    let fits = v.len() <= shape.len()
        && v.iter().zip(shape).all(|(&b, &s)| {
            if s == b'0' {
                b.is_ascii_digit()
            } else {
                b == s
            }
        });
    if line_end.is_none() && fits {
        return None;
    }
    if fits && v.len() == shape.len() && v[5] != b'1' {
        return Some(err(
            StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            "unsupported HTTP version",
        ));
    }
    Some(bad("bad HTTP version"))
}

/// After httparse's `Version` error: where the minor digit is in a request line that has ended
/// and says `HTTP/1.2` to `HTTP/1.9`.
fn later_minor_version(buf: &[u8]) -> Option<usize> {
    let line = after_empty_lines(buf);
    let line_end = line.iter().position(|&b| b == b'\r' || b == b'\n')?;
    let version = line[..line_end].rsplit(|&b| b == b' ').next()?;
    match version {
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', b'2'..=b'9'] => {
            Some(buf.len() - line.len() + line_end - 1)
        }
        _ => None,
    }
}

/// Comma-separated list elements of every field `name`, trimmed (RFC 9110 §5.6.1).
fn list<'a>(headers: &'a HeaderMap, name: &HeaderName) -> impl Iterator<Item = &'a [u8]> {
    headers
        .get_all(name)
        .into_iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(|e| e.trim_ascii())
}

fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    list(headers, name).any(|e| e.eq_ignore_ascii_case(token.as_bytes()))
}

/// Whether the `Expect` fields ask for `100-continue`; any other expectation, which this
/// server cannot meet, is refused with 417 (RFC 9110 §10.1.1) before the handler runs.
fn expects_continue(headers: &HeaderMap) -> Result<bool, ParseError> {
    let mut found = false;
    for e in list(headers, &EXPECT).filter(|e| !e.is_empty()) {
        if !e.eq_ignore_ascii_case(b"100-continue") {
            return Err(err(
                StatusCode::EXPECTATION_FAILED,
                "unsupported expectation",
            ));
        }
        found = true;
    }
    Ok(found)
}

fn content_length(headers: &HeaderMap) -> Result<Option<u64>, ParseError> {
    let mut found = None;
    for e in list(headers, &CONTENT_LENGTH) {
        if e.is_empty() || !e.iter().all(u8::is_ascii_digit) {
            return Err(bad("invalid Content-Length"));
        }
        let n = std::str::from_utf8(e)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| bad("Content-Length too big"))?;
        if found.is_some_and(|f| f != n) {
            return Err(bad("conflicting Content-Length"));
        }
        found = Some(n);
    }
    Ok(found)
}

/// Validate `Transfer-Encoding`: `Ok(true)` when present (then `chunked` is last and only
/// once).
fn transfer_encoding(headers: &HeaderMap) -> Result<bool, ParseError> {
    if !headers.contains_key(TRANSFER_ENCODING) {
        return Ok(false);
    }
    let codings: Vec<&[u8]> = list(headers, &TRANSFER_ENCODING).collect();
    let last = codings.len() - 1;
    for (i, c) in codings.iter().enumerate() {
        if c.is_empty() {
            return Err(bad("empty Transfer-Encoding element"));
        }
        if c.eq_ignore_ascii_case(b"chunked") {
            if i != last {
                return Err(bad("chunked is not the last transfer coding"));
            }
        } else if i == last {
            return Err(bad("the last transfer coding is not chunked"));
        } else {
            return Err(err(
                StatusCode::NOT_IMPLEMENTED,
                "unsupported transfer coding",
            ));
        }
    }
    Ok(true)
}

/// Header fields parsed without allocating, on the stack: more than most clients send. A
/// head with more (up to the limit, by default hyper's 100) is parsed again with room on the
/// heap, and the connection's next head there at once ([`Reuse`] remembers). Not 100 on the
/// stack: that would take 3.2 KiB of it, and the deepest a connection's stack went stays
/// resident while the connection idles.
const STACK_HEADERS: usize = 24;

/// Why a body over [`HeadLimits::max_body`] is refused (413), when its head says so or when
/// a chunked one grows past it.
pub(crate) const BODY_TOO_LARGE: &str = "the body is over the size limit";

/// The bytes of empty lines (CR and LF) taken before a request line: eight CRLFs.
const MAX_EMPTY_LINE_BYTES: usize = 16;

/// What a connection keeps from one request head to the next, so that parsing allocates and
/// validates less.
#[derive(Debug, Default)]
pub(crate) struct Reuse {
    /// A header map to fill: an answered response's, emptied, its capacity kept. Boxed, so
    /// that the connection lends it to the thread's other connections while it idles (see
    /// [`Reuse::lend_map`]) by a pointer; a request is built with its contents, swapped.
    spare: Option<Box<HeaderMap>>,
    /// The last origin-form target, as parsed, if it is no longer than
    /// [`CACHED_TARGET_BYTES`].
    target: Option<PathAndQuery>,
    /// The last head's fields, as converted, in order. A keep-alive client repeats most of
    /// them (`Host`, `User-Agent`, `Accept`, cookies: what HPACK is built on); a field equal
    /// to the one at the same place in the last head is cloned (a reference count) instead of
    /// validated and copied again. `None` where a field is not kept: credentials, and what
    /// goes over [`CACHED_FIELD_BYTES`] (an idle connection holds no more names and values
    /// than that).
    fields: Vec<Option<(HeaderName, HeaderValue)>>,
    /// The last head, whole, with what parsing made of it, when all of it could be built
    /// again from what is kept (above): a head that repeats it byte for byte (a keep-alive
    /// client that polls, a load balancer's health check, a benchmark) is not parsed again.
    last: Option<LastRequest>,
    /// The buffer the last head's bytes are kept in, its capacity kept between heads.
    last_bytes: Vec<u8>,
    /// The last head had more fields than the stack holds (see [`STACK_HEADERS`]): the next
    /// is parsed with the heap's room at once, not first on the stack and then again (a
    /// client's heads are alike).
    wide: bool,
}

/// `map`, a new request's (empty), swapped for the one kept in `spare` ([`Reuse::spare`]), if
/// any: the request's fields go into that map's room, and the empty one waits in the box for
/// the answered response's.
#[inline(always)]
fn fill_with_spare(spare: &mut Option<Box<HeaderMap>>, map: &mut HeaderMap) {
    if let Some(spare) = spare {
        std::mem::swap(map, &mut **spare);
    }
}

/// What parsing made of the last head (see [`Reuse::last`]); its bytes are
/// [`Reuse::last_bytes`]. Parsing is a function of the bytes and the limits alone, so a head
/// of the same bytes under the same limits parses to the same request.
#[derive(Debug)]
struct LastRequest {
    limits: HeadLimits,
    /// The target (origin-form: a path and query is all of it).
    target: PathAndQuery,
    method: Method,
    version: Version,
    /// What else parsing found, as a repeat of the head returns it (`repeated` set).
    found: Head,
}

/// The longest head a connection keeps whole to recognise a repeat of it.
const CACHED_HEAD_BYTES: usize = 1024;

/// How many bytes of field names and values a connection keeps from its last head at most.
const CACHED_FIELD_BYTES: usize = 4 * 1024;

/// The longest request target a connection keeps from its last head.
const CACHED_TARGET_BYTES: usize = 1024;

impl Reuse {
    /// Whether the head at the start of `buf` repeats the last one byte for byte (under the
    /// same `limits`).
    #[inline(always)]
    fn repeats(&self, buf: &[u8], limits: &HeadLimits) -> bool {
        let n = self.last_bytes.len();
        self.last
            .as_ref()
            .is_some_and(|last| last.limits == *limits)
            && buf.len() >= n
            && buf[..n] == self.last_bytes[..]
    }

    /// The request of a head that [`repeats`](Reuse::repeats) the last one, built into
    /// `slot` from what was kept of it.
    #[inline(always)]
    fn repeat<B>(&mut self, slot: &mut Option<Request<B>>, body: impl FnOnce() -> B) -> Head {
        let Some(last) = &self.last else {
            unreachable!("a repeat of a head that was kept");
        };
        #[cfg(test)]
        tests::REPEATS.with(|n| n.set(n.get() + 1));
        let head = slot.insert(Request::new(body()));
        *head.uri_mut() = Uri::from(last.target.clone());
        *head.method_mut() = last.method.clone();
        *head.version_mut() = last.version;
        let map = head.headers_mut();
        fill_with_spare(&mut self.spare, map);
        // Every field was kept (or the head would not have been): `flatten` skips nothing.
        for (name, value) in self.fields.iter().flatten() {
            map.append(name.clone(), value.clone());
        }
        last.found.clone()
    }

    /// Keep `head` (the bytes of a head just parsed into `parsed`, its target origin-form)
    /// to recognise a repeat of it, if it is short enough and all of its fields were kept;
    /// else forget the last one.
    fn remember<B>(&mut self, bytes: &[u8], limits: &HeadLimits, req: &Request<B>, head: &Head) {
        self.last_bytes.clear();
        self.last = None;
        let Some(target) = &self.target else {
            return;
        };
        let whole = bytes.len() <= CACHED_HEAD_BYTES
            && self.fields.len() == req.headers().len()
            && self.fields.iter().all(Option::is_some);
        if !whole {
            return;
        }
        self.last_bytes.extend_from_slice(bytes);
        self.last = Some(LastRequest {
            limits: *limits,
            target: target.clone(),
            method: req.method().clone(),
            version: req.version(),
            found: Head {
                repeated: true,
                ..head.clone()
            },
        });
    }

    /// Keep `map` (an answered response's) to hold the next request's fields; a map grown
    /// huge is let go, and one that never grew is not worth keeping.
    pub(crate) fn recycle(&mut self, mut map: HeaderMap) {
        if map.capacity() == 0 || map.capacity() > 64 {
            return;
        }
        map.clear();
        match self.spare.as_deref_mut() {
            Some(spare) => {
                let old = std::mem::replace(spare, map);
                if old.capacity() == 0 && old.is_empty() {
                    // The map a request was made with (what parsing swaps the spare for):
                    // it holds no allocation (`HeaderMap::new` does not allocate,
                    // documented, and a map that never grew has no capacity). Nothing to
                    // free; its drop would only look.
                    std::mem::forget(old);
                }
            }
            None => self.spare = Some(Box::new(map)),
        }
    }

    /// The map kept to hold the next request's fields, if it has room, leaving none (one
    /// without room, what a request left, is freed: it is not worth lending).
    pub(crate) fn lend_map(&mut self) -> Option<Box<HeaderMap>> {
        self.spare.take().filter(|m| m.capacity() > 0)
    }

    /// Keep `map` (lent by a connection: empty) to hold the next request's fields, in place
    /// of the one kept.
    pub(crate) fn put_map(&mut self, map: Box<HeaderMap>) {
        debug_assert!(map.is_empty());
        self.spare = Some(map);
    }

    /// Whether no map is kept to hold the next request's fields (lent while the connection
    /// waited, or never made).
    pub(crate) fn lacks_map(&self) -> bool {
        self.spare.is_none()
    }

    /// The parsed `target` into `uri`, cloned when it repeats the last origin-form one.
    #[inline(always)]
    fn uri(&mut self, target: &str, uri: &mut Uri) -> Result<(), ParseError> {
        if let Some(last) = &self.target
            && last.as_str() == target
        {
            // Only the path and query to clone: the scheme and authority of origin-form are
            // empty.
            *uri = Uri::from(last.clone());
            return Ok(());
        }
        // RFC 9112 §3.2: a target is ASCII and has no fragment (which the URI parser would
        // cut off silently: the handler would see another target than a proxy in front did).
        if target.bytes().any(|b| b == b'#' || !b.is_ascii()) {
            return Err(bad("bad request target"));
        }
        *uri = target.parse().map_err(|_| bad("bad request target"))?;
        if target.starts_with('/') && target.len() <= CACHED_TARGET_BYTES {
            self.target = uri.path_and_query().cloned();
        } else {
            self.target = None;
        }
        Ok(())
    }

    /// Field `i` of the head appended to `map`, converted, or cloned when it repeats field `i`
    /// of the last one; kept for the next head if its value fits in what is left of the
    /// head's `budget`. Says which field it was, as far as framing and persistence care.
    #[inline(always)]
    fn field(
        &mut self,
        i: usize,
        name: &str,
        value: &[u8],
        budget: &mut usize,
        map: &mut HeaderMap,
    ) -> Result<Field, ParseError> {
        let cost = name.len() + value.len();
        let fits = cost <= *budget;
        if fits {
            *budget -= cost;
        }
        if let Some(Some((n, v))) = self.fields.get(i)
            && n.as_str().eq_ignore_ascii_case(name)
            && v.as_bytes() == value
        {
            let kind = Field::of(n);
            map.append(n.clone(), v.clone());
            if !fits {
                self.fields[i] = None;
            }
            return Ok(kind);
        }
        let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad("bad header name"))?;
        let v = HeaderValue::from_bytes(value).map_err(|_| bad("bad header value"))?;
        let kind = Field::of(&n);
        // Checked here, where a value is new; a repeated one was checked when it was.
        if kind == Field::Host && !is_host(value) {
            return Err(bad("invalid Host"));
        }
        let keep = (fits && n != AUTHORIZATION && n != PROXY_AUTHORIZATION)
            .then(|| (n.clone(), v.clone()));
        if i < self.fields.len() {
            self.fields[i] = keep;
        } else if i == self.fields.len() {
            self.fields.push(keep);
        }
        map.append(n, v);
        Ok(kind)
    }
}

/// Whether `value` is a valid `Host` field value (RFC 9112 §3.2: `uri-host [ ":" port ]`,
/// the host a reg-name or a bracketed IP literal, the port digits; empty is allowed, for a
/// target without an authority). A server must refuse any other value with 400; a `Host` the
/// application would read as another host than a proxy in front did is how requests are
/// routed around that proxy's rules.
fn is_host(value: &[u8]) -> bool {
    let (host, port) = match value.iter().rposition(|&b| b == b':' || b == b']') {
        Some(i) if value[i] == b':' => (&value[..i], &value[i + 1..]),
        _ => (value, &b""[..]),
    };
    if !port.iter().all(u8::is_ascii_digit) {
        return false;
    }
    // An IP literal (IPv6, or IPvFuture) is bracketed; a reg-name is unreserved, sub-delims
    // and percent-encoded octets.
    if let [b'[', inner @ .., b']'] = host {
        return is_ip_literal(inner);
    }
    pct_encoded_or(host, |b| is_unreserved(b) || SUB_DELIMS.contains(&b))
}

/// RFC 3986's `sub-delims`.
const SUB_DELIMS: &[u8] = b"!$&'()*+,;=";

/// RFC 3986's `unreserved`.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~".contains(&b)
}

/// Whether `s` is made of bytes that are `allowed` and percent-encoded octets.
fn pct_encoded_or(s: &[u8], allowed: impl Fn(u8) -> bool) -> bool {
    let mut i = 0;
    while i < s.len() {
        if allowed(s[i]) {
            i += 1;
        } else if s[i] == b'%'
            && s.get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
        {
            i += 3;
        } else {
            return false;
        }
    }
    true
}

/// Whether `inner` (between the brackets) is an IPv6 address (with a zone identifier after
/// `%25`, RFC 6874) or an IPvFuture literal (`v` hex digits `.` then unreserved, sub-delims
/// or `:`), RFC 3986 §3.2.2.
fn is_ip_literal(inner: &[u8]) -> bool {
    if let [b'v' | b'V', rest @ ..] = inner {
        let Some(dot) = rest.iter().position(|&b| b == b'.') else {
            return false;
        };
        let (version, tail) = (&rest[..dot], &rest[dot + 1..]);
        return !version.is_empty()
            && version.iter().all(u8::is_ascii_hexdigit)
            && !tail.is_empty()
            && tail
                .iter()
                .all(|&b| is_unreserved(b) || SUB_DELIMS.contains(&b) || b == b':');
    }
    let (address, zone) = match inner.windows(3).position(|w| w == b"%25") {
        Some(i) => (&inner[..i], Some(&inner[i + 3..])),
        None => (inner, None),
    };
    let zone_ok = zone.is_none_or(|z| !z.is_empty() && pct_encoded_or(z, is_unreserved));
    zone_ok && std::str::from_utf8(address).is_ok_and(|s| s.parse::<std::net::Ipv6Addr>().is_ok())
}

/// What a header field means to parsing: the ones that decide framing and persistence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Host,
    Framing,
    Connection,
    Expect,
    Upgrade,
    Other,
}

impl Field {
    #[inline(always)]
    fn of(name: &HeaderName) -> Field {
        if name == HOST {
            Field::Host
        } else if name == CONTENT_LENGTH || name == TRANSFER_ENCODING {
            Field::Framing
        } else if name == CONNECTION {
            Field::Connection
        } else if name == EXPECT {
            Field::Expect
        } else if name == UPGRADE {
            Field::Upgrade
        } else {
            Field::Other
        }
    }
}

/// [`parse_head_into`], the request and what else was found together.
#[cfg(test)]
pub(crate) fn parse_head<B>(
    buf: &[u8],
    limits: &HeadLimits,
    reuse: &mut Reuse,
    body: impl FnOnce() -> B,
) -> Result<Status<B>, ParseError> {
    let mut slot = None;
    Ok(
        match parse_head_into(buf, limits, reuse, &mut slot, body)? {
            Some(found) => Status::Complete(Parsed {
                head: slot.expect("a complete head's request"),
                found,
            }),
            None => Status::Incomplete,
        },
    )
}

/// Parse one request head at the start of `buf`, with what the connection's last head left
/// in `reuse`: `None` if more bytes are needed. The request of a complete head, with the
/// body `body` makes, is put in `slot` (what it held before is dropped); after an error
/// `slot` may hold a request that was being built.
pub(crate) fn parse_head_into<B>(
    buf: &[u8],
    limits: &HeadLimits,
    reuse: &mut Reuse,
    slot: &mut Option<Request<B>>,
    body: impl FnOnce() -> B,
) -> Result<Option<Head>, ParseError> {
    // The request line's length before its LF, whether or not it is complete yet (for a head
    // that is not complete or not valid: a complete one's is known from its parts).
    let line_too_long = || {
        let line = after_empty_lines(buf);
        let line_end = line.iter().position(|&b| b == b'\n');
        line_end.unwrap_or(line.len()) > limits.max_request_line
    };
    let long_line = || err(StatusCode::URI_TOO_LONG, "request line too long");
    if reuse.repeats(buf, limits) {
        return Ok(Some(reuse.repeat(slot, body)));
    }
    // RFC 9112 §2.2 asks a server to ignore at least one empty line before a request line (a
    // client may end a body with a stray CRLF): a few are, more are refused, or a head made
    // of nothing else, read in many small pieces, would be parsed again from its start after
    // each.
    if buf.len() - after_empty_lines(buf).len() > MAX_EMPTY_LINE_BYTES {
        return Err(bad("too many empty lines before the request line"));
    }
    // Room for the header fields: on the stack for as many as most heads have (no allocation
    // per request), on the heap, up to the limit, for a head with more.
    let mut on_stack = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
    let mut on_heap = Vec::new();
    let mut req = httparse::Request::new(&mut []);
    let on_stack_room = limits.max_headers.min(STACK_HEADERS);
    let heap_room = limits.max_headers > STACK_HEADERS;
    let mut parsed = Err(httparse::Error::TooManyHeaders);
    if !(reuse.wide && heap_room) {
        parsed = req.parse_with_uninit_headers(buf, &mut on_stack[..on_stack_room]);
        #[cfg(test)]
        tests::HTTPARSE_CALLS.with(|n| n.set(n.get() + 1));
    }
    let on_the_heap = matches!(parsed, Err(httparse::Error::TooManyHeaders)) && heap_room;
    if on_the_heap {
        on_heap.resize_with(limits.max_headers, MaybeUninit::uninit);
        req = httparse::Request::new(&mut []);
        parsed = req.parse_with_uninit_headers(buf, &mut on_heap);
        #[cfg(test)]
        tests::HTTPARSE_CALLS.with(|n| n.set(n.get() + 1));
    }
    // A complete head tells how much room the next needs; one that is not complete yet and
    // needed the heap needs it again when more of it has come.
    reuse.wide = match parsed {
        Ok(httparse::Status::Complete(_)) => req.headers.len() > STACK_HEADERS,
        _ => on_the_heap,
    };
    let consumed = match parsed {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if line_too_long() {
                return Err(long_line());
            }
            if buf.len() > limits.max_head_bytes {
                return Err(err(
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    "head too large",
                ));
            }
            // A bare CR or LF in what came so far is refused now rather than later.
            let upto = buf.strip_suffix(b"\r").unwrap_or(buf);
            if !lines_are_crlf(upto) {
                return Err(bad("bare LF or CR in the head"));
            }
            return Ok(None);
        }
        Err(_) if line_too_long() => return Err(long_line()),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(err(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "too many header fields",
            ));
        }
        Err(httparse::Error::Version) => {
            if let Some(at) = later_minor_version(buf) {
                // RFC 9112 §2.3: a later minor version of HTTP/1 is read as the latest this
                // server knows, HTTP/1.1 (the response says `HTTP/1.1`). httparse knows only
                // 1.0 and 1.1: the head is parsed again from a copy that says 1.1, as long as
                // a head may be (a longer one is refused for its length as it would be).
                if at >= limits.max_head_bytes {
                    // The request line alone is over the head's limit.
                    return Err(err(
                        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                        "head too large",
                    ));
                }
                let mut copy = buf[..buf.len().min(limits.max_head_bytes + 1)].to_vec();
                copy[at] = b'1';
                let parsed = parse_head_into(&copy, limits, reuse, slot, body);
                // What was kept is the copy's bytes, not the client's: a head is a repeat of
                // this one only if it is byte for byte what the client sent, which the copy is
                // not (nor is this head a repeat of one that said 1.1; its request line, kept
                // for the logs, differs).
                reuse.last = None;
                reuse.last_bytes.clear();
                return parsed.map(|found| {
                    found.map(|h| Head {
                        repeated: false,
                        ..h
                    })
                });
            }
            return version_error(buf).map_or(Ok(None), Err);
        }
        Err(httparse::Error::Token) => return Err(bad("bad method")),
        Err(httparse::Error::HeaderName) => return Err(bad("bad header name")),
        Err(httparse::Error::HeaderValue) => return Err(bad("bad header value")),
        Err(_) => return Err(bad("malformed request head")),
    };
    if consumed > limits.max_head_bytes {
        return Err(err(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "head too large",
        ));
    }
    if !lines_are_crlf(&buf[..consumed]) {
        return Err(bad("bare LF or CR in the head"));
    }
    let method = req.method.ok_or_else(|| bad("no method"))?;
    let target = req.path.ok_or_else(|| bad("no target"))?;
    // httparse takes exactly one space between method, target and `HTTP/1.x`.
    let line_len = method.len() + target.len() + 10;
    if line_len + 1 > limits.max_request_line {
        return Err(long_line());
    }
    // httparse skips empty lines before the request line (RFC 9112 §2.2 lets it).
    let line_start = method.as_ptr() as usize - buf.as_ptr() as usize;
    let line = line_start..line_start + line_len;
    let method = Method::from_bytes(method.as_bytes()).map_err(|_| bad("bad method"))?;
    let version = match req.version {
        Some(0) => Version::HTTP_10,
        Some(1) => Version::HTTP_11,
        _ => return Err(bad("bad HTTP version")),
    };
    // Built in place, the body included: the request is not taken apart and put together
    // again on its way to the handler. A head refused from here on leaves the request half
    // built in `slot`, its body with it, for the caller to drop (a body's drop touches
    // nothing of the connection).
    let head = slot.insert(Request::new(body()));
    // From here on what is kept of the last head's target and fields changes: the last head
    // is no longer there to be repeated, until this one is kept in its place.
    reuse.last = None;
    reuse.uri(target, head.uri_mut())?;
    let uri = head.uri();
    // RFC 9112 §3.2: origin-form, absolute-form (of an `http` or `https` URI: a scheme this
    // server could serve), authority-form for CONNECT and only for it, asterisk-form.
    if method == Method::CONNECT {
        if uri.scheme().is_some() || uri.authority().is_none() || uri.path_and_query().is_some() {
            return Err(bad("CONNECT without an authority-form target"));
        }
    } else if let Some(scheme) = uri.scheme_str() {
        if scheme != "http" && scheme != "https" {
            return Err(bad(
                "absolute-form target of another scheme than http or https",
            ));
        }
    } else if uri.authority().is_some() {
        return Err(bad("authority-form target without CONNECT"));
    } else if target != "*" && !target.starts_with('/') {
        return Err(bad("bad request target"));
    }
    if target == "*" && method != Method::OPTIONS {
        return Err(bad("asterisk-form target without OPTIONS"));
    }
    // The target's authority (absolute-form, CONNECT's authority-form) is the request's host,
    // whatever `Host` says (RFC 9112 §3.2.2); it is checked as a `Host` value is (no userinfo,
    // RFC 9110 §4.2.4).
    let authority = uri.authority().cloned();
    if let Some(a) = &authority
        && (a.host().is_empty() || !is_host(a.as_str().as_bytes()))
    {
        return Err(bad("bad authority in the request target"));
    }
    *head.method_mut() = method;
    *head.version_mut() = version;
    // Which of the fields that decide framing and persistence are present, noted on the way
    // so that absent ones cost no look-up.
    let (mut hosts, mut framing_fields, mut connection, mut expect) = (0, false, false, false);
    let mut upgrade = false;
    let map = head.headers_mut();
    fill_with_spare(&mut reuse.spare, map);
    map.reserve(req.headers.len());
    // httparse has checked that names are tokens and values hold no control bytes but HTAB;
    // `HeaderName` and `HeaderValue` check both again, so a byte either would let through is
    // refused here too.
    let mut budget = CACHED_FIELD_BYTES;
    // Room for what is kept of as many fields as this head has, and no more: a client's heads
    // are alike, and an idle connection holds this (72 bytes a field).
    if reuse.fields.capacity() < req.headers.len() {
        reuse
            .fields
            .reserve_exact(req.headers.len() - reuse.fields.len());
    }
    for (i, h) in req.headers.iter().enumerate() {
        match reuse.field(i, h.name, h.value, &mut budget, map)? {
            Field::Host => hosts += 1,
            Field::Framing => framing_fields = true,
            Field::Connection => connection = true,
            Field::Expect => expect = true,
            Field::Upgrade => upgrade = true,
            Field::Other => {}
        }
    }
    reuse.fields.truncate(req.headers.len());
    if hosts > 1 {
        return Err(bad("repeated Host"));
    }
    if hosts == 0 && version == Version::HTTP_11 {
        return Err(bad("missing Host"));
    }
    if let Some(a) = authority {
        // A valid `Host` value: checked above.
        let host = HeaderValue::from_str(a.as_str()).map_err(|_| bad("bad authority"))?;
        map.insert(HOST, host);
    }
    let (length, chunked) = if framing_fields {
        (content_length(map)?, transfer_encoding(map)?)
    } else {
        (None, false)
    };
    if chunked && version == Version::HTTP_10 {
        return Err(bad("Transfer-Encoding on HTTP/1.0"));
    }
    if let (Some(max), Some(n), false) = (limits.max_body, length, chunked)
        && n > max
    {
        return Err(err(StatusCode::PAYLOAD_TOO_LARGE, BODY_TOO_LARGE));
    }
    let mut keep_alive = if connection && has_token(map, &CONNECTION, "close") {
        false
    } else if version == Version::HTTP_10 {
        connection && has_token(map, &CONNECTION, "keep-alive")
    } else {
        true
    };
    let body_framing = if chunked {
        if length.is_some() {
            // RFC 9112 §6.3: Transfer-Encoding overrides; close after the response.
            keep_alive = false;
        }
        Framing::Chunked
    } else {
        match length {
            None | Some(0) => Framing::None,
            Some(n) => Framing::Length(n),
        }
    };
    let expect_continue = expect && expects_continue(map)? && version == Version::HTTP_11;
    // RFC 9110 §7.8: an `Upgrade` goes with the `upgrade` option of `Connection`; a bare one
    // (which a proxy that drops only the fields `Connection` names passes on) is not honoured.
    let upgrade = upgrade
        && version == Version::HTTP_11
        && connection
        && has_token(map, &CONNECTION, "upgrade");
    let parsed = Head {
        body_framing,
        keep_alive,
        expect_continue,
        upgrade,
        line,
        consumed,
        repeated: false,
    };
    reuse.remember(&buf[..consumed], limits, head, &parsed);
    Ok(Some(parsed))
}

/// RFC 9110 `tchar`, one table look-up.
pub(crate) fn is_tchar(b: u8) -> bool {
    const TABLE: [bool; 256] = {
        let mut t = [false; 256];
        let mut i = 0;
        while i < 256 {
            let b = i as u8;
            t[i] = b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                );
            i += 1;
        }
        t
    };
    TABLE[b as usize]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        /// How many heads this thread built from a connection's last one.
        pub(crate) static REPEATS: Cell<usize> = const { Cell::new(0) };
        /// How many times this thread ran httparse on a head.
        pub(crate) static HTTPARSE_CALLS: Cell<usize> = const { Cell::new(0) };
    }

    fn repeats() -> usize {
        REPEATS.with(Cell::get)
    }

    fn parse(raw: &[u8]) -> Result<Status<()>, ParseError> {
        parse_head(raw, &HeadLimits::default(), &mut Reuse::default(), || ())
    }

    fn ok(raw: &[u8]) -> Parsed<()> {
        match parse(raw) {
            Ok(Status::Complete(p)) => p,
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(raw)),
        }
    }

    fn status(raw: &[u8]) -> u16 {
        match parse(raw) {
            Err(e) => e.status.as_u16(),
            other => panic!(
                "{:?} was not refused: {other:?}",
                String::from_utf8_lossy(raw)
            ),
        }
    }

    #[test]
    fn simple_get() {
        let raw = b"GET /a?b=c HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\r\nrest";
        let p = ok(raw);
        assert_eq!(p.head.method(), Method::GET);
        assert_eq!(p.head.uri(), "/a?b=c");
        assert_eq!(p.head.version(), Version::HTTP_11);
        assert_eq!(p.head.headers()["x-a"], "1");
        assert_eq!(p.body_framing, Framing::None);
        assert!(p.keep_alive);
        assert!(!p.expect_continue);
        assert_eq!(p.consumed, raw.len() - 4);
        assert_eq!(&raw[p.line.clone()], b"GET /a?b=c HTTP/1.1");
        // empty lines before the request line are skipped, and not part of it
        let raw = b"\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n";
        let p = ok(raw);
        assert_eq!(&raw[p.line.clone()], b"GET /x HTTP/1.1");
        assert_eq!(p.consumed, raw.len());
    }

    #[test]
    fn a_content_length_over_the_body_limit_is_413() {
        let limits = HeadLimits {
            max_body: Some(10),
            ..HeadLimits::default()
        };
        let head = |cl: &str| format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {cl}\r\n\r\n");
        let parse = |raw: String| parse_head(raw.as_bytes(), &limits, &mut Reuse::default(), || ());
        assert!(matches!(parse(head("10")), Ok(Status::Complete(_))));
        let e = parse(head("11")).unwrap_err();
        assert_eq!(
            (e.status, e.reason),
            (StatusCode::PAYLOAD_TOO_LARGE, BODY_TOO_LARGE)
        );
        // Without a limit, any length that fits in 64 bits.
        assert!(matches!(
            parse_head(
                head("18446744073709551615").as_bytes(),
                &HeadLimits::default(),
                &mut Reuse::default(),
                || ()
            ),
            Ok(Status::Complete(_))
        ));
    }

    #[test]
    fn more_than_a_few_empty_lines_before_the_request_line_are_400() {
        let head = |empty: usize| {
            [
                &b"\r\n".repeat(empty)[..],
                b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            ]
            .concat()
        };
        assert_eq!(ok(&head(8)).head.uri(), "/");
        assert_eq!(status(&head(9)), 400);
        // Refused as soon as they are too many, before any request line comes.
        assert_eq!(status(&b"\r\n".repeat(9)), 400);
        assert!(matches!(parse(&b"\r\n".repeat(8)), Ok(Status::Incomplete)));
    }

    #[test]
    fn incomplete_at_every_prefix() {
        let raw = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n";
        for i in 0..raw.len() {
            assert!(
                matches!(parse(&raw[..i]), Ok(Status::Incomplete)),
                "prefix {i}"
            );
        }
        assert_eq!(ok(raw).body_framing, Framing::Length(3));
    }

    /// Valid heads with a few bytes inserted, deleted or changed.
    fn mutated_heads(n: usize) -> Vec<Vec<u8>> {
        let bases: [&[u8]; 5] = [
            b"GET /a?b HTTP/1.1\r\nHost: x:80\r\nAccept: */*\r\n\r\n",
            b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n",
            b"PUT /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            b"GET http://x/y HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            b"\r\nOPTIONS * HTTP/1.1\r\nHost: [::1]\r\nExpect: 100-continue\r\n\r\n",
        ];
        let pieces: [&[u8]; 16] = [
            b" ",
            b"\t",
            b"\r",
            b"\n",
            b"\r\n",
            b":",
            b",",
            b"0",
            b"a",
            b"\x00",
            b"\x7f",
            b"\x80",
            b"HTTP/1.1",
            b"\r\n\r\n",
            b"Host: y\r\n",
            b"Content-Length: 3\r\n",
        ];
        let mut rng = crate::testing::Rng(0x9e37_79b9_7f4a_7c15);
        (0..n)
            .map(|_| rng.mutate(&bases, &pieces, b" \t\r\n:a0"))
            .collect()
    }

    #[test]
    fn a_head_in_pieces_reads_as_it_does_whole() {
        // What is decided on a complete head must not be decided differently, or earlier, on a
        // part of it: a client's head arrives in as many reads as the network makes of it.
        let (mut complete, mut refused) = (0, 0);
        for raw in mutated_heads(3000) {
            let whole = parse(&raw);
            for i in 0..raw.len() {
                let part = parse(&raw[..i]);
                match (&whole, &part) {
                    // Before its end a head is incomplete, whatever it turns out to be.
                    (Ok(Status::Complete(w)), Ok(Status::Incomplete)) if i < w.consumed => {}
                    (Ok(Status::Incomplete) | Err(_), Ok(Status::Incomplete)) => {}
                    // Past it (what follows is the body), the same head.
                    (Ok(Status::Complete(w)), Ok(Status::Complete(p)))
                        if (p.consumed, p.body_framing, p.head.uri())
                            == (w.consumed, w.body_framing, w.head.uri()) => {}
                    // Refused early: only what the whole head is refused for too.
                    (Err(w), Err(p)) if w.status == p.status => {}
                    _ => panic!(
                        "{:?} is {whole:?}, but its first {i} bytes are {part:?}",
                        String::from_utf8_lossy(&raw)
                    ),
                }
            }
            match whole {
                Ok(Status::Complete(_)) => complete += 1,
                Err(_) => refused += 1,
                Ok(Status::Incomplete) => {}
            }
        }
        // Both outcomes are common enough for the check to mean something.
        assert!(
            complete > 300 && refused > 300,
            "{complete} complete, {refused} refused"
        );
    }

    #[test]
    fn request_line_too_long_is_414() {
        let mut raw = b"GET /".to_vec();
        raw.extend(std::iter::repeat_n(b'a', 9000));
        assert_eq!(status(&raw), 414); // even before the line ends
        raw.extend(b" HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(status(&raw), 414);
        // after empty lines too, before the line ends
        let mut raw = b"\r\n\r\nGET /".to_vec();
        raw.extend(std::iter::repeat_n(b'a', 9000));
        assert_eq!(status(&raw), 414);
        // the limit counts the line with its CR, complete or not
        let line = |len: usize| {
            let mut l = b"GET /".to_vec();
            l.extend(std::iter::repeat_n(b'a', len - 14));
            l.extend(b" HTTP/1.1\r");
            assert_eq!(l.len(), len + 1);
            l
        };
        let max = HeadLimits::default().max_request_line;
        let mut at_limit = line(max - 1);
        assert!(matches!(parse(&at_limit), Ok(Status::Incomplete)));
        at_limit.extend(b"\nHost: x\r\n\r\n");
        ok(&at_limit);
        let mut over = line(max);
        over.push(b'\n');
        assert_eq!(status(&over), 414);
        over.extend(b"Host: x\r\n\r\n");
        assert_eq!(status(&over), 414);
    }

    #[test]
    fn too_many_headers_is_431() {
        let mut raw = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
        for i in 0..100 {
            raw.extend(format!("X-{i}: v\r\n").bytes());
        }
        raw.extend(b"\r\n");
        assert_eq!(status(&raw), 431);
    }

    #[test]
    fn heads_with_more_fields_than_the_stack_holds_are_parsed_whole_up_to_the_limit() {
        let head = |fields: usize| {
            let mut raw = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
            for i in 1..fields {
                raw.extend(format!("X-{i}: v{i}\r\n").bytes());
            }
            raw
        };
        for fields in [STACK_HEADERS, STACK_HEADERS + 1, 100] {
            let mut raw = head(fields);
            // Not complete yet: more fields than the stack holds already, and no error.
            assert!(
                matches!(
                    parse_head(&raw, &HeadLimits::default(), &mut Reuse::default(), || ()),
                    Ok(Status::Incomplete)
                ),
                "{fields} fields, incomplete"
            );
            raw.extend(b"\r\n");
            let p = ok(&raw);
            assert_eq!(p.head.headers().len(), fields);
            assert_eq!(
                p.head.headers()[format!("x-{}", fields - 1)],
                format!("v{}", fields - 1)
            );
            assert_eq!(p.consumed, raw.len());
        }
        // A limit under the stack's room holds, and one over it: its own number passes, one
        // more is 431.
        for max_headers in [2, 30] {
            let limits = HeadLimits {
                max_headers,
                ..HeadLimits::default()
            };
            let mut raw = head(max_headers);
            raw.extend(b"\r\n");
            let got = parse_head(&raw, &limits, &mut Reuse::default(), || ());
            assert!(matches!(got, Ok(Status::Complete(_))), "{max_headers}");
            let mut raw = head(max_headers + 1);
            raw.extend(b"\r\n");
            let e = parse_head(&raw, &limits, &mut Reuse::default(), || ()).unwrap_err();
            assert_eq!(e.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        }
        // A bad field past the stack's room is refused for what it is, not for the count.
        let mut raw = head(STACK_HEADERS + 5);
        raw.extend(b"Bad Name: x\r\n\r\n");
        assert_eq!(status(&raw), 400);
    }

    #[test]
    fn a_connection_whose_heads_are_wide_parses_each_once() {
        let head = |fields: usize, tag: usize| {
            let mut raw = format!("GET /{tag} HTTP/1.1\r\nHost: x\r\n").into_bytes();
            for i in 1..fields {
                raw.extend(format!("X-{i}: v{i}\r\n").bytes());
            }
            raw.extend(b"\r\n");
            raw
        };
        let (limits, mut reuse) = (HeadLimits::default(), Reuse::default());
        // httparse's runs on each of a connection's heads, in turn: of 30 fields, 30, 3, 3.
        let runs: Vec<usize> = [(30, 1), (30, 2), (3, 3), (3, 4)]
            .into_iter()
            .map(|(fields, tag)| {
                let before = HTTPARSE_CALLS.with(Cell::get);
                let raw = head(fields, tag);
                let got = parse_head(&raw, &limits, &mut reuse, || ());
                let Ok(Status::Complete(p)) = got else {
                    panic!("{fields} fields: {got:?}");
                };
                assert_eq!(p.head.headers().len(), fields);
                assert_eq!(p.head.uri().path(), format!("/{tag}"));
                HTTPARSE_CALLS.with(Cell::get) - before
            })
            .collect();
        // The first wide head is tried on the stack first; the next goes to the heap at once;
        // so does the narrow one after it, which sends the one after that back to the stack.
        assert_eq!(runs, [2, 1, 1, 1]);
        assert!(!reuse.wide);
    }

    #[test]
    fn head_too_large_is_431() {
        let mut raw = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
        raw.extend(std::iter::repeat_n(b'a', 70 * 1024));
        assert_eq!(status(&raw), 431); // incomplete, already too large
        raw.extend(b"\r\n\r\n");
        assert_eq!(status(&raw), 431);
    }

    #[test]
    fn host_missing_or_repeated_is_400() {
        assert_eq!(status(b"GET / HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n"), 400);
        ok(b"GET / HTTP/1.0\r\n\r\n");
    }

    #[test]
    fn host_with_an_invalid_value_is_400() {
        for good in [
            "",
            "a",
            "a:80",
            "a:",
            ":80",
            "127.0.0.1:8080",
            "[::1]",
            "[::1]:443",
            "[v1.fe]",
            "[V1F.a:b~]",
            "[::ffff:1.2.3.4]",
            "[fe80::1%25eth0]:8080",
            "[fe80::1%25en%2F1]",
            "xn--bcher-kva.example",
            "a%20b",
            "a_b-c~d!$&'()*+,;=",
        ] {
            let raw = format!("GET / HTTP/1.1\r\nHost: {good}\r\n\r\n");
            assert_eq!(ok(raw.as_bytes()).head.headers()[HOST], good);
        }
        for bad in [
            ":a",
            "a:8o",
            "a b",
            "a@b",
            "u:p@b",
            "a/b",
            "a?b",
            "a#b",
            "a\"b",
            "[::1",
            "::1",
            "a:80:90",
            "[::1]x",
            "[::1]:x",
            "[]",
            "[a]b]",
            "a%2",
            "a%zz",
            "a%",
            "a[b]",
            "é",
            // IP literals that are none: not an address, a zone without an address or a bad
            // one, IPvFuture without its parts
            "[zz]",
            "[:]",
            "[a.b]",
            "[1.2.3.4]",
            "[::1%25]",
            "[%25eth0]",
            "[::1%eth0]",
            "[::1%25a b]",
            "[v1]",
            "[v.x]",
            "[vx.1]",
            "[v1.]",
            "[v1.a/b]",
        ] {
            let raw = format!("GET / HTTP/1.1\r\nHost: {bad}\r\n\r\n");
            assert_eq!(status(raw.as_bytes()), 400, "{bad:?}");
        }
        // A value checked once is not taken on trust when it comes back changed: each head
        // through one connection's cache.
        let mut reuse = Reuse::default();
        let mut parse_on =
            |raw: &[u8]| parse_head(raw, &HeadLimits::default(), &mut reuse, || ()).map(|_| ());
        assert!(parse_on(b"GET / HTTP/1.1\r\nHost: a:1\r\n\r\n").is_ok());
        assert!(parse_on(b"GET / HTTP/1.1\r\nHost: a:1\r\n\r\n").is_ok());
        assert!(parse_on(b"GET / HTTP/1.1\r\nHost: a:x\r\n\r\n").is_err());
        assert!(parse_on(b"GET / HTTP/1.0\r\nHost: a/\r\n\r\n").is_err());
    }

    #[test]
    fn bad_method_target_version_is_400() {
        assert_eq!(status(b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"GET /a\x01 HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"GET a HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"GET * HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.x\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"GET / http/1.1\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.12\r\nHost: x\r\n\r\n"), 400);
        // A fragment (which the URI would drop), bytes past ASCII.
        assert_eq!(status(b"GET /admin#x HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"GET /a?b#c HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status("GET /é HTTP/1.1\r\nHost: x\r\n\r\n".as_bytes()), 400);
        assert_eq!(status(b"GET http://x/# HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
        ok(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n");
        ok(b"GET http://x/y HTTP/1.1\r\nHost: x\r\n\r\n");
        ok(b"CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n");
        // absolute-form of http and https only, in any case; CONNECT with authority-form only
        for good in ["HTTPS://x/y", "hTtP://x", "http://x?q"] {
            let raw = format!("GET {good} HTTP/1.1\r\nHost: x\r\n\r\n");
            assert_eq!(ok(raw.as_bytes()).head.uri().host(), Some("x"), "{good}");
        }
        for bad in ["ftp://x/y", "foo://x", "+http://x/", "x:80"] {
            let raw = format!("GET {bad} HTTP/1.1\r\nHost: x\r\n\r\n");
            assert_eq!(status(raw.as_bytes()), 400, "{bad}");
        }
        for bad in ["/x", "http://x:443/", "*", "x:443/y"] {
            let raw = format!("CONNECT {bad} HTTP/1.1\r\nHost: x:443\r\n\r\n");
            assert_eq!(status(raw.as_bytes()), 400, "{bad}");
        }
    }

    #[test]
    fn the_targets_authority_is_the_host() {
        // Absolute-form and CONNECT's authority-form: the target's authority replaces `Host`
        // (which an HTTP/1.1 request must still send).
        for (raw, host) in [
            (
                &b"GET http://public.example/x HTTP/1.1\r\nHost: admin.internal\r\n\r\n"[..],
                "public.example",
            ),
            (b"GET https://a:8443 HTTP/1.1\r\nHost: b\r\n\r\n", "a:8443"),
            (b"GET http://[::1]:80/ HTTP/1.0\r\n\r\n", "[::1]:80"),
            (b"CONNECT a:443 HTTP/1.1\r\nHost: b:443\r\n\r\n", "a:443"),
        ] {
            let p = ok(raw);
            let all: Vec<_> = p.head.headers().get_all(HOST).iter().collect();
            assert_eq!(all, [host], "{:?}", String::from_utf8_lossy(raw));
        }
        assert_eq!(status(b"GET http://x/ HTTP/1.1\r\n\r\n"), 400);
        // Userinfo, a bad host or port in the target, an empty host (RFC 9110 §4.2.1: an http
        // URI with one is invalid).
        for bad in [
            "http://:80/",
            "http://u:p@a/",
            "http://u@a/",
            "http://a:x/",
            "http://[zz]/",
        ] {
            let raw = format!("GET {bad} HTTP/1.1\r\nHost: a\r\n\r\n");
            assert_eq!(status(raw.as_bytes()), 400, "{bad}");
        }
        assert_eq!(
            status(b"CONNECT u@x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n"),
            400
        );
    }

    #[test]
    fn other_major_version_is_505() {
        assert_eq!(status(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n"), 505);
        assert_eq!(status(b"GET / HTTP/0.9\r\n\r\n"), 505);
        assert_eq!(status(b"GET / HTTP/3.1\r\nHost: x\r\n\r\n"), 505);
        // Decided once the version is there, not on a part of it.
        assert!(matches!(parse(b"GET / HTTP/2"), Ok(Status::Incomplete)));
        assert!(matches!(parse(b"GET / HTTP/2.0"), Ok(Status::Incomplete)));
        assert_eq!(status(b"GET / HTTP/2.0\r"), 505);
        assert_eq!(status(b"GET / HTTP/2.00"), 400);
        assert_eq!(status(b"GET / HTTP/x"), 400);
        // after empty lines too
        assert_eq!(status(b"\r\n\r\nGET / HTTP/2.0\r\nHost: x\r\n\r\n"), 505);
    }

    #[test]
    fn a_later_minor_version_of_http_1_is_read_as_1_1() {
        let raw = b"\r\nPOST /a HTTP/1.2\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi";
        let p = ok(raw);
        assert_eq!(p.head.version(), Version::HTTP_11);
        assert_eq!(p.head.uri(), "/a");
        assert_eq!(p.body_framing, Framing::Length(2));
        assert!(p.keep_alive);
        assert_eq!(&raw[p.line.clone()], b"POST /a HTTP/1.2");
        assert_eq!(p.consumed, raw.len() - 2);
        assert_eq!(
            ok(b"GET / HTTP/1.9\r\nHost: x\r\n\r\n").head.version(),
            Version::HTTP_11
        );
        // As strict as HTTP/1.1 is: its Host is required, bad fields are refused.
        assert_eq!(status(b"GET / HTTP/1.2\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.2\r\nHost: x\r\nA : b\r\n\r\n"), 400);
        // Waited for until the head is whole, and as long as any head may be.
        assert!(matches!(parse(b"GET / HTTP/1.2"), Ok(Status::Incomplete)));
        assert!(matches!(
            parse(b"GET / HTTP/1.2\r\nHost: x\r\n"),
            Ok(Status::Incomplete)
        ));
        let mut long = b"GET / HTTP/1.2\r\nHost: x\r\nX: ".to_vec();
        long.resize(HeadLimits::default().max_head_bytes + 10, b'a');
        assert_eq!(status(&long), 431);
        // A request line longer than the head may be (with limits that allow it): 431, as
        // for HTTP/1.1.
        let limits = HeadLimits {
            max_head_bytes: 64,
            ..HeadLimits::default()
        };
        let mut line = b"\r\nGET /".to_vec();
        line.resize(100, b'a');
        for version in [
            &b" HTTP/1.2\r\nHost: x\r\n\r\n"[..],
            b" HTTP/1.1\r\nHost: x\r\n\r\n",
        ] {
            let raw = [&line[..], version].concat();
            let got = parse_head(&raw, &limits, &mut Reuse::default(), || ());
            assert!(matches!(got, Err(ParseError { status, .. }) if status == 431));
        }
        // Not a version: still 400.
        assert_eq!(status(b"GET / HTTP/1.a\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.23\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.2 \r\nHost: x\r\n\r\n"), 400);
    }

    #[test]
    fn http2_preface_is_505() {
        assert_eq!(status(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 505);
    }

    #[test]
    fn obs_fold_is_400() {
        assert_eq!(
            status(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n"),
            400
        );
        assert_eq!(
            status(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n"),
            400
        );
    }

    #[test]
    fn whitespace_before_colon_is_400() {
        assert_eq!(
            status(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length : 3\r\n\r\n"),
            400
        );
        assert_eq!(
            status(b"GET / HTTP/1.1\r\nHost: x\r\nX-A\t: 3\r\n\r\n"),
            400
        );
        assert_eq!(status(b"GET / HTTP/1.1\r\n Host: x\r\n\r\n"), 400);
    }

    #[test]
    fn non_token_name_is_400() {
        for name in [
            &b"X(A"[..],
            b"X\"A",
            b"X/A",
            b"X@A",
            b"X\x01A",
            b"X\xffA",
            b"",
        ] {
            let mut raw = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
            raw.extend(name);
            raw.extend(b": v\r\n\r\n");
            assert_eq!(status(&raw), 400, "{name:?}");
        }
    }

    #[test]
    fn control_bytes_in_values_are_400() {
        for bad in [b'\0', b'\r', b'\n', 0x01, 0x0b, 0x1f, 0x7f] {
            let mut raw = b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a".to_vec();
            raw.push(bad);
            raw.extend(b"b\r\n\r\n");
            assert_eq!(status(&raw), 400, "{bad:#x}");
        }
        // HTAB and obs-text are allowed
        ok(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\tb\xe9\r\n\r\n");
    }

    #[test]
    fn tchar_table_is_rfc_9110() {
        for b in 0..=255u8 {
            let want = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            assert_eq!(is_tchar(b), want, "{b:#x}");
        }
    }

    #[test]
    fn crlf_check() {
        assert!(lines_are_crlf(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
        assert!(!lines_are_crlf(b"GET / HTTP/1.1\nHost: a\r\n\r\n"));
        assert!(!lines_are_crlf(b"\nGET"));
        assert!(!lines_are_crlf(b"GET /\r HTTP/1.1\r\n"));
        assert!(!lines_are_crlf(b"GET / HTTP/1.1\r"));
    }

    #[test]
    fn bare_lf_is_400() {
        assert_eq!(status(b"GET / HTTP/1.1\nHost: x\n\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost: x\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost: x\n"), 400); // already while incomplete
    }

    fn with_cl(cl: &[u8]) -> Vec<u8> {
        let mut raw = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ".to_vec();
        raw.extend(cl);
        raw.extend(b"\r\n\r\n");
        raw
    }

    #[test]
    fn bad_content_length_is_400() {
        for cl in [
            &b""[..],
            b"+5",
            b"-5",
            b"0x5",
            b"1_0",
            b"1 0",
            b"18446744073709551616",
            b"5,",
        ] {
            assert_eq!(
                status(&with_cl(cl)),
                400,
                "{:?}",
                String::from_utf8_lossy(cl)
            );
        }
        assert_eq!(
            ok(&with_cl(b"18446744073709551615")).body_framing,
            Framing::Length(u64::MAX)
        );
        assert_eq!(ok(&with_cl(b"0")).body_framing, Framing::None);
    }

    #[test]
    fn repeated_content_length() {
        let same = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n";
        assert_eq!(ok(same).body_framing, Framing::Length(5));
        assert_eq!(ok(&with_cl(b"5, 5")).body_framing, Framing::Length(5));
        let differ =
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n";
        assert_eq!(status(differ), 400);
        assert_eq!(status(&with_cl(b"5, 6")), 400);
    }

    #[test]
    fn te_with_cl_is_chunked_and_closes() {
        let raw = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
        let p = ok(raw);
        assert_eq!(p.body_framing, Framing::Chunked);
        assert!(!p.keep_alive);
        let p = ok(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n");
        assert_eq!(p.body_framing, Framing::Chunked);
        assert!(p.keep_alive);
    }

    fn with_te(te: &[u8]) -> Vec<u8> {
        let mut raw = b"POST / HTTP/1.1\r\nHost: x\r\n".to_vec();
        raw.extend(te);
        raw.extend(b"\r\n\r\n");
        raw
    }

    #[test]
    fn bad_transfer_encoding() {
        assert_eq!(status(&with_te(b"Transfer-Encoding: chunked, gzip")), 400);
        assert_eq!(status(&with_te(b"Transfer-Encoding: gzip")), 400);
        assert_eq!(
            status(&with_te(b"Transfer-Encoding: chunked, chunked")),
            400
        );
        assert_eq!(
            status(&with_te(
                b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked"
            )),
            400
        );
        assert_eq!(status(&with_te(b"Transfer-Encoding: ")), 400);
        assert_eq!(status(&with_te(b"Transfer-Encoding: chunked,")), 400);
        assert_eq!(status(&with_te(b"Transfer-Encoding: gzip, chunked")), 501);
        assert_eq!(
            status(&with_te(b"Transfer-Encoding: x-custom, chunked")),
            501
        );
        assert_eq!(status(&with_te(b"Transfer-Encoding: chunked;q=1")), 400);
    }

    #[test]
    fn te_on_http10_is_400() {
        assert_eq!(
            status(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            400
        );
    }

    #[test]
    fn keep_alive_by_version_and_connection() {
        assert!(ok(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").keep_alive);
        assert!(!ok(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Close\r\n\r\n").keep_alive);
        assert!(!ok(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, close\r\n\r\n").keep_alive);
        assert!(!ok(b"GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(ok(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
    }

    #[test]
    fn expect_continue() {
        let raw = b"PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n";
        assert!(ok(raw).expect_continue);
        let raw = b"PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n";
        assert!(!ok(raw).expect_continue);
    }

    #[test]
    fn other_expectations_are_417() {
        let head = |fields: &str, version: &str| {
            format!("PUT / HTTP/1.{version}\r\nHost: x\r\n{fields}Content-Length: 1\r\n\r\n")
        };
        for fields in [
            "Expect: something\r\n",
            "Expect: 100-continue, something\r\n",
            "Expect: 100-continue\r\nExpect: x=1\r\n",
            "Expect: 100-continue=1\r\n",
            "Expect: 100-continued\r\n",
        ] {
            for version in ["0", "1"] {
                let raw = head(fields, version);
                assert_eq!(status(raw.as_bytes()), 417, "{raw:?}");
            }
        }
        // Empty list elements are no expectation; 100-continue may be repeated.
        assert!(!ok(head("Expect:\r\n", "1").as_bytes()).expect_continue);
        assert!(!ok(head("Expect: ,\r\n", "1").as_bytes()).expect_continue);
        let raw = head("Expect: 100-continue,\r\nExpect: 100-CONTINUE\r\n", "1");
        assert!(ok(raw.as_bytes()).expect_continue);
    }

    #[test]
    fn upgrade_is_asked_on_http11_only_with_connection_upgrade() {
        let asked = |raw: &[u8]| ok(raw).upgrade;
        assert!(asked(
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        ));
        assert!(asked(
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, upgrade\r\nUpgrade: h\r\n\r\n"
        ));
        assert!(!asked(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        // A bare Upgrade, or one whose Connection does not name it.
        assert!(!asked(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n"
        ));
        assert!(!asked(
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nUpgrade: h2c\r\n\r\n"
        ));
        assert!(!asked(
            b"GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"
        ));
    }

    #[test]
    fn repeated_fields_and_target_are_reused_changed_ones_parsed_anew() {
        let mut reuse = Reuse::default();
        let mut parse =
            |raw: &[u8]| match parse_head(raw, &HeadLimits::default(), &mut reuse, || ()) {
                Ok(Status::Complete(p)) => Ok(p),
                Ok(Status::Incomplete) => panic!("incomplete"),
                Err(e) => Err(e.status.as_u16()),
            };
        let a = parse(b"GET /a HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\r\n").unwrap();
        let b = parse(b"GET /a HTTP/1.1\r\nhost: x\r\nX-A: 1\r\n\r\n").unwrap();
        assert_eq!(a.head.uri(), b.head.uri());
        assert_eq!(b.head.headers()[HOST], "x");
        // the value is shared with the last request's, not a copy
        assert_eq!(
            a.head.headers()["x-a"].as_bytes().as_ptr(),
            b.head.headers()["x-a"].as_bytes().as_ptr()
        );
        let c = parse(b"GET /b HTTP/1.1\r\nHost: x\r\nX-A: 2\r\nX-B: 3\r\n\r\n").unwrap();
        assert_eq!(c.head.uri(), "/b");
        assert_eq!(c.head.headers()["x-a"], "2");
        assert_eq!(c.head.headers()["x-b"], "3");
        // fields move, are dropped, or turn bad: each is checked and converted again
        let d = parse(b"GET /b HTTP/1.1\r\nX-B: 3\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(d.head.headers().len(), 2);
        assert_eq!(d.head.headers()["x-b"], "3");
        assert_eq!(
            parse(b"GET /b HTTP/1.1\r\nX-B: 3\x01\r\nHost: x\r\n\r\n").unwrap_err(),
            400
        );
        assert_eq!(
            parse(b"GET /b HTTP/1.1\r\nX-B: 3\r\n\r\n").unwrap_err(),
            400
        );
        let e = parse(b"GET http://y/b HTTP/1.1\r\nHost: y\r\n\r\n").unwrap();
        assert_eq!(e.head.uri().host(), Some("y"));
        let f = parse(b"GET /b?q HTTP/1.1\r\nHost: y\r\n\r\n").unwrap();
        assert_eq!(f.head.uri(), "/b?q");
        assert_eq!(f.head.uri().query(), Some("q"));
        // a repeated target is the same URI as a parsed one, query and all
        let g = parse(b"GET /b?q HTTP/1.1\r\nHost: y\r\n\r\n").unwrap();
        assert_eq!(g.head.uri(), f.head.uri());
        // shared with the last one, not parsed again
        assert_eq!(g.head.uri().path().as_ptr(), f.head.uri().path().as_ptr());
        assert_eq!(
            (g.head.uri().path(), g.head.uri().query()),
            ("/b", Some("q"))
        );
        assert_eq!((g.head.uri().scheme(), g.head.uri().host()), (None, None));
    }

    #[test]
    fn the_fields_kept_take_room_for_as_many_as_the_widest_head_had() {
        let mut reuse = Reuse::default();
        let limits = HeadLimits::default();
        for (fields, room) in [(1, 1), (3, 3), (2, 3), (5, 5)] {
            let mut head = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
            for i in 1..fields {
                head.push_str(&format!("X-{i}: v\r\n"));
            }
            head.push_str("\r\n");
            assert!(matches!(
                parse_head(head.as_bytes(), &limits, &mut reuse, || ()),
                Ok(Status::Complete(_))
            ));
            assert_eq!(
                reuse.fields.capacity(),
                room,
                "after a head of {fields} fields"
            );
        }
    }

    #[test]
    fn credentials_and_values_over_the_budget_are_not_kept() {
        let mut reuse = Reuse::default();
        let big = "v".repeat(CACHED_FIELD_BYTES - 40);
        let raw = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: secret\r\nX-Big: {big}\r\nX-Late: 12345678901\r\n\r\n"
        );
        for _ in 0..2 {
            match parse_head(raw.as_bytes(), &HeadLimits::default(), &mut reuse, || ()) {
                Ok(Status::Complete(p)) => {
                    assert_eq!(p.head.headers()[AUTHORIZATION], "secret");
                    assert_eq!(p.head.headers()["x-late"], "12345678901");
                }
                other => panic!("{other:?}"),
            }
            let kept: Vec<_> = reuse
                .fields
                .iter()
                .map(|f| f.as_ref().map(|(n, _)| n.as_str()))
                .collect();
            // Names and values count: Host and X-Big fit (5 and 4,061 bytes, after the 19 of
            // Authorization, which is not kept); X-Late's 17 do not.
            assert_eq!(kept, [Some("host"), None, Some("x-big"), None]);
            let held: usize = reuse
                .fields
                .iter()
                .flatten()
                .map(|(n, v)| n.as_str().len() + v.len())
                .sum();
            assert!(held <= CACHED_FIELD_BYTES);
        }
    }

    #[test]
    fn long_names_and_targets_are_not_kept() {
        // Names of 600 bytes with empty values: six fit in the budget, the rest are not kept;
        // a target over 1 KiB is not kept either (one under it is).
        let mut reuse = Reuse::default();
        let mut raw = format!("GET /{} HTTP/1.1\r\nHost: x\r\n", "t".repeat(2000));
        for i in 0..10 {
            raw.push_str(&format!("X-{i}{}:\r\n", "n".repeat(597)));
        }
        raw.push_str("\r\n");
        assert!(matches!(
            parse_head(raw.as_bytes(), &HeadLimits::default(), &mut reuse, || ()),
            Ok(Status::Complete(_))
        ));
        let kept = reuse.fields.iter().flatten().count();
        assert_eq!(kept, 1 + 6);
        assert!(reuse.target.is_none());
        let raw = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "t".repeat(1000));
        assert!(parse_head(raw.as_bytes(), &HeadLimits::default(), &mut reuse, || ()).is_ok());
        assert!(reuse.target.is_some());
    }

    /// What a parse made of a head, for comparing two parses of it.
    fn outcome(p: &Parsed<()>) -> String {
        format!(
            "{} {} {:?} {:?} {:?} {} {} {} {:?} {}",
            p.head.method(),
            p.head.uri(),
            p.head.version(),
            p.head.headers(),
            p.body_framing,
            p.keep_alive,
            p.expect_continue,
            p.upgrade,
            p.line,
            p.consumed
        )
    }

    fn complete(raw: &[u8], limits: &HeadLimits, reuse: &mut Reuse) -> Result<Parsed<()>, u16> {
        match parse_head(raw, limits, reuse, || ()) {
            Ok(Status::Complete(p)) => Ok(p),
            Ok(Status::Incomplete) => panic!("incomplete"),
            Err(e) => Err(e.status.as_u16()),
        }
    }

    #[test]
    fn a_later_minor_version_is_never_a_repeat_nor_repeated() {
        // Parsed from a copy that says 1.1: neither the copy's bytes nor the client's are kept
        // as the last head, so the request line the logs keep is always the client's.
        let limits = HeadLimits::default();
        let mut reuse = Reuse::default();
        let v11: &[u8] = b"GET /v HTTP/1.1\r\nHost: x\r\n\r\n";
        let v12: &[u8] = b"GET /v HTTP/1.2\r\nHost: x\r\n\r\n";
        for order in [[v11, v12, v11], [v12, v11, v12]] {
            for raw in order {
                let p = complete(raw, &limits, &mut reuse).unwrap();
                assert!(!p.repeated, "{:?}", String::from_utf8_lossy(raw));
                assert_eq!(&raw[p.line.clone()], &raw[..15]);
                assert_eq!(p.head.version(), Version::HTTP_11);
            }
        }
        // The 1.1 head after the 1.1 one is a repeat again.
        complete(v11, &limits, &mut reuse).unwrap();
        let p = complete(v11, &limits, &mut reuse).unwrap();
        assert!(p.repeated);
    }

    #[test]
    fn a_head_that_repeats_the_last_one_byte_for_byte_is_what_parsing_it_makes() {
        let heads: [&[u8]; 5] = [
            b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n",
            b"\r\nPOST /up?x=1 HTTP/1.1\r\nHost: a:80\r\nContent-Length: 5\r\nX-A: 1\r\nx-a: 2\r\n\r\n",
            b"PUT /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n",
            b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            b"BREW /pot HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        ];
        let limits = HeadLimits::default();
        for raw in heads {
            let mut reuse = Reuse::default();
            let first = complete(raw, &limits, &mut reuse).unwrap();
            assert!(
                reuse.last.is_some(),
                "{:?} is kept",
                String::from_utf8_lossy(raw)
            );
            // Alone, and followed by the next pipelined request.
            let mut pipelined = raw.to_vec();
            pipelined.extend_from_slice(b"GET / HTTP/1.1\r\n");
            for buf in [raw, &pipelined[..]] {
                let before = repeats();
                let again = complete(buf, &limits, &mut reuse).unwrap();
                assert_eq!(repeats(), before + 1, "built from what was kept");
                assert_eq!(outcome(&again), outcome(&first));
                // Built from what was kept: the values are shared, not parsed again.
                let (a, b) = (first.head.headers(), again.head.headers());
                for ((_, x), (_, y)) in a.iter().zip(b.iter()) {
                    assert_eq!(x.as_bytes().as_ptr(), y.as_bytes().as_ptr());
                }
                assert!(reuse.last.is_some());
            }
        }
    }

    #[test]
    fn a_head_that_differs_from_the_last_one_by_a_byte_or_in_its_limits_is_parsed_anew() {
        let limits = HeadLimits::default();
        let mut reuse = Reuse::default();
        let good = b"GET /a HTTP/1.1\r\nHost: a\r\nX-B: 1\r\n\r\n";
        let first = complete(good, &limits, &mut reuse).unwrap();
        // One byte changed: a bad one is refused, a good one is what it says.
        assert_eq!(
            complete(
                b"GET /a HTTP/1.1\r\nHost: a\r\nX-B: \x01\r\n\r\n",
                &limits,
                &mut reuse
            )
            .unwrap_err(),
            400
        );
        assert_eq!(
            complete(
                b"GET /a HTTP/1.1\r\nHost: a\nX-B: 1\r\n\r\n",
                &limits,
                &mut reuse
            )
            .unwrap_err(),
            400
        );
        let other = complete(
            b"GET /a HTTP/1.1\r\nHost: a\r\nX-B: 2\r\n\r\n",
            &limits,
            &mut reuse,
        )
        .unwrap();
        assert_eq!(other.head.headers()["x-b"], "2");
        // A head refused half-way through its fields changed what was kept of them: the
        // head before it, sent again, is still what it says.
        let _ = complete(good, &limits, &mut reuse).unwrap();
        assert_eq!(
            complete(
                b"GET /a HTTP/1.1\r\nX-B: 2\r\nHost: [zz]\r\n\r\n",
                &limits,
                &mut reuse
            )
            .unwrap_err(),
            400
        );
        assert!(reuse.last.is_none());
        assert_eq!(
            outcome(&complete(good, &limits, &mut reuse).unwrap()),
            outcome(&first)
        );
        // The same bytes under other limits are judged by those.
        let strict = HeadLimits {
            max_headers: 1,
            ..limits
        };
        assert_eq!(complete(good, &strict, &mut reuse).unwrap_err(), 431);
        let strict = HeadLimits {
            max_body: Some(4),
            ..limits
        };
        let post = b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n";
        assert!(complete(post, &limits, &mut reuse).is_ok());
        assert_eq!(complete(post, &strict, &mut reuse).unwrap_err(), 413);
    }

    #[test]
    fn a_repeat_that_comes_in_pieces_or_in_another_minor_version_is_what_it_says() {
        let limits = HeadLimits::default();
        let mut reuse = Reuse::default();
        let raw = b"GET /a HTTP/1.1\r\nHost: a\r\nX-B: 1\r\n\r\n";
        let first = complete(raw, &limits, &mut reuse).unwrap();
        // Its first half, then all of it: still the last head, repeated.
        assert!(matches!(
            parse_head(&raw[..20], &limits, &mut reuse, || ()),
            Ok(Status::Incomplete)
        ));
        let before = repeats();
        assert_eq!(
            outcome(&complete(raw, &limits, &mut reuse).unwrap()),
            outcome(&first)
        );
        assert_eq!(repeats(), before + 1);
        // HTTP/1.2 is read as 1.1, parsed from a copy that says so: that copy is kept, and a
        // head of those bytes is what it says whichever came first.
        let later = b"GET /a HTTP/1.2\r\nHost: a\r\nX-B: 1\r\n\r\n";
        let mut fresh = Reuse::default();
        let l = complete(later, &limits, &mut fresh).unwrap();
        assert_eq!(outcome(&l), outcome(&first));
        assert_eq!(
            outcome(&complete(raw, &limits, &mut fresh).unwrap()),
            outcome(&first)
        );
        assert_eq!(
            outcome(&complete(later, &limits, &mut fresh).unwrap()),
            outcome(&first)
        );
        // A 1.0 head of otherwise the same bytes is no repeat.
        let old = b"GET /a HTTP/1.0\r\nHost: a\r\nX-B: 1\r\n\r\n";
        let o = complete(old, &limits, &mut fresh).unwrap();
        assert_eq!(o.head.version(), Version::HTTP_10);
        assert!(!o.keep_alive);
    }

    #[test]
    fn heads_not_all_kept_are_not_kept_whole() {
        let limits = HeadLimits::default();
        let long_value = format!(
            "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: {}\r\n\r\n",
            "p".repeat(1000)
        );
        let heads: [&[u8]; 4] = [
            // credentials are never kept
            b"GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Basic eDp5\r\n\r\n",
            // nor a target other than origin-form
            b"GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
            b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
            // nor a head over the limit of a kept one
            long_value.as_bytes(),
        ];
        for raw in heads {
            let mut reuse = Reuse::default();
            let first = complete(raw, &limits, &mut reuse).unwrap();
            assert!(reuse.last.is_none(), "{:?}", String::from_utf8_lossy(raw));
            assert!(reuse.last_bytes.is_empty());
            let again = complete(raw, &limits, &mut reuse).unwrap();
            assert_eq!(outcome(&again), outcome(&first));
        }
    }
}
