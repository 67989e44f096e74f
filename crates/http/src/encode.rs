//! Response heads, sans-I/O: status line and header fields into one buffer (hyper's
//! `proto/h1/encode.rs` and `role.rs`). A connection copies its last head for a response
//! written from the same status, fields, framing and second (`LastResponse`).

use http::header::{CONNECTION, CONTENT_LENGTH, DATE, SERVER, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, Method, StatusCode};
use std::cell::RefCell;
use std::ops::Range;
use std::rc::Rc;

/// How the response body is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyFraming {
    /// No body may follow (HEAD, 1xx, 204, 304); a `Content-Length` of the would-be body is
    /// still written for HEAD and 304.
    Empty(Option<u64>),
    Length(u64),
    Chunked,
    /// Streamed to an HTTP/1.0 client: no framing header, the connection closes after it.
    UntilClose,
}

/// What the response says about the connection's future.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Persist {
    /// Kept open; HTTP/1.1's default, nothing to say.
    #[default]
    KeepAlive,
    /// Kept open for an HTTP/1.0 client that asked: `connection: keep-alive`.
    KeepAlive10,
    /// Closed after this response: `connection: close`.
    Close,
}

/// A handler-supplied header that would break the framing of the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EncodeError;

/// Whether a response to `method` with `status` carries no body: nor framing fields for a 2xx
/// to CONNECT (RFC 9110 §9.3.6), whose connection would become a tunnel.
pub(crate) fn bodyless(method: &Method, status: StatusCode) -> bool {
    method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || (method == Method::CONNECT && status.is_success())
}

/// The framing for a body of `len` bytes (`None`: unknown, streamed).
pub(crate) fn framing(method: &Method, status: StatusCode, len: Option<u64>) -> BodyFraming {
    if bodyless(method, status) {
        let keep = (method == Method::HEAD || status == StatusCode::NOT_MODIFIED)
            .then_some(len)
            .flatten();
        BodyFraming::Empty(keep)
    } else {
        match len {
            Some(n) => BodyFraming::Length(n),
            None => BodyFraming::Chunked,
        }
    }
}

/// What a response head is written from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResponseHead<'a> {
    pub(crate) status: StatusCode,
    /// The handler's fields.
    pub(crate) headers: &'a HeaderMap,
    pub(crate) framing: BodyFraming,
    /// What the server would say of the connection's future.
    pub(crate) persist: Persist,
    /// The `Server` field's value, if any.
    pub(crate) server: Option<&'a str>,
    /// Seconds since the epoch, for the `Date` field.
    pub(crate) now: u64,
}

/// Write the head of a response into `out`. Handler headers that the server owns
/// (`Content-Length`, `Transfer-Encoding`, `Connection`, `Date`) are replaced, except that a
/// `101 Switching Protocols` keeps the handler's `Connection` (`upgrade`). A handler's
/// `Connection: close` is kept as the server's own: the head then says `close` whatever
/// `persist` was, and so does what this returns (the connection's future as sent).
pub(crate) fn write_head(
    out: &mut Vec<u8>,
    head: &ResponseHead<'_>,
) -> Result<Persist, EncodeError> {
    let ResponseHead {
        status,
        headers,
        framing,
        persist,
        server,
        now,
    } = *head;
    let start = out.len();
    let mut persist = persist;
    out.reserve(256);
    if status == StatusCode::OK {
        // the common line as one constant
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    } else {
        let reason = status.canonical_reason().unwrap_or("");
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(status.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(reason.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let upgrade = status == StatusCode::SWITCHING_PROTOCOLS;
    for (name, value) in headers {
        if [&CONTENT_LENGTH, &TRANSFER_ENCODING, &DATE].contains(&name) {
            continue;
        }
        if name == CONNECTION && !upgrade {
            let close = value
                .as_bytes()
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
            if close {
                persist = Persist::Close;
            }
            continue;
        }
        if name == SERVER && server.is_some() {
            continue;
        }
        let v = value.as_bytes();
        if breaks_line(v) {
            out.truncate(start);
            return Err(EncodeError);
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    // The builder refuses a `Server` value with CR, LF or NUL; it is not checked per response.
    debug_assert!(!server.is_some_and(|s| breaks_line(s.as_bytes())));
    with_date(now, server, |fields| out.extend_from_slice(fields));
    match framing {
        BodyFraming::Empty(Some(n)) | BodyFraming::Length(n) => {
            out.extend_from_slice(b"content-length: ");
            push_decimal(out, n);
            out.extend_from_slice(b"\r\n");
        }
        BodyFraming::Empty(None) | BodyFraming::UntilClose => {}
        BodyFraming::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    if !upgrade {
        match persist {
            Persist::KeepAlive => {}
            Persist::KeepAlive10 => out.extend_from_slice(b"connection: keep-alive\r\n"),
            Persist::Close => out.extend_from_slice(b"connection: close\r\n"),
        }
    }
    out.extend_from_slice(b"\r\n");
    Ok(persist)
}

/// The last response head a server's connections on one thread wrote, with everything it was written from: a
/// response that repeats it (the same status, fields, framing and persistence, in the same
/// second) is copied rather than written again. [`write_head`] is a function of its
/// arguments alone, and the `Server` and `Date` fields of one second do not change.
#[derive(Debug, Default)]
pub(crate) struct LastResponse {
    /// What the head was written from ([`HeadKey::NONE`] until one is kept).
    from: HeadKey,
    /// The `Server` name it was written with (kept apart: it changes with the server, not
    /// per response, and is not allocated again per head).
    server: Option<Rc<str>>,
    /// The handler's fields, in the order the map gave them: each name, and where its value
    /// is in `values` (copied: a value sharing a large buffer would keep all of it alive).
    fields: Vec<(HeaderName, Range<usize>)>,
    values: Vec<u8>,
    /// The head as written.
    bytes: Vec<u8>,
    /// What [`write_head`] returned for it.
    persist: Persist,
}

/// The status, framing, persistence and second a head was written from, packed into three
/// words: compared per response, where comparing the fields one by one (an enum holding an
/// `Option`) costs several times as much.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HeadKey([u64; 3]);

impl HeadKey {
    /// No head: the first word of every packed key has bit 40 set.
    const NONE: HeadKey = HeadKey([0; 3]);

    fn new(head: &ResponseHead<'_>) -> HeadKey {
        let (tag, n) = match head.framing {
            BodyFraming::Empty(None) => (0, 0),
            BodyFraming::Empty(Some(n)) => (1, n),
            BodyFraming::Length(n) => (2, n),
            BodyFraming::Chunked => (3, 0),
            BodyFraming::UntilClose => (4, 0),
        };
        let persist = match head.persist {
            Persist::KeepAlive => 0,
            Persist::KeepAlive10 => 1,
            Persist::Close => 2,
        };
        let first = u64::from(head.status.as_u16()) | persist << 16 | tag << 24 | 1 << 40;
        HeadKey([first, n, head.now])
    }
}

impl Default for HeadKey {
    fn default() -> HeadKey {
        HeadKey::NONE
    }
}

/// The longest response head a server keeps to copy, and the most fields in it.
const CACHED_HEAD_BYTES: usize = 512;
const CACHED_HEAD_FIELDS: usize = 8;

impl LastResponse {
    /// None kept yet; `server`, the `Server` name the server's heads are written with, is
    /// recognised by its allocation (no comparison of its bytes per response).
    pub(crate) fn new(server: Option<Rc<str>>) -> LastResponse {
        LastResponse {
            server,
            ..LastResponse::default()
        }
    }

    /// Whether `server` is the name kept: the same bytes, known at once when they are the
    /// kept allocation's (which the kept `Rc` keeps alive: no other string is there).
    #[inline(always)]
    fn same_server(&self, server: Option<&str>) -> bool {
        match (&self.server, server) {
            (None, None) => true,
            (Some(kept), Some(s)) => {
                (std::ptr::eq(kept.as_ptr(), s.as_ptr()) && kept.len() == s.len()) || **kept == *s
            }
            _ => false,
        }
    }

    /// [`write_head`], or a copy of the last head it wrote if that was written from the same.
    pub(crate) fn write(
        &mut self,
        out: &mut Vec<u8>,
        head: &ResponseHead<'_>,
    ) -> Result<Persist, EncodeError> {
        let (headers, server) = (head.headers, head.server);
        let key = HeadKey::new(head);
        if self.from == key
            && self.same_server(server)
            && headers.len() == self.fields.len()
            && headers
                .iter()
                .zip(&self.fields)
                .all(|((n, v), (kn, kv))| n == kn && v.as_bytes() == &self.values[kv.clone()])
        {
            #[cfg(test)]
            tests::COPIES.with(|n| n.set(n.get() + 1));
            out.extend_from_slice(&self.bytes);
            return Ok(self.persist);
        }
        let start = out.len();
        let result = write_head(out, head)?;
        let written = &out[start..];
        if written.len() <= CACHED_HEAD_BYTES && headers.len() <= CACHED_HEAD_FIELDS {
            self.from = key;
            if !self.same_server(server) {
                self.server = server.map(Rc::from);
            }
            self.fields.clear();
            self.values.clear();
            for (n, v) in headers {
                let at = self.values.len();
                self.values.extend_from_slice(v.as_bytes());
                self.fields.push((n.clone(), at..self.values.len()));
            }
            self.bytes.clear();
            self.bytes.extend_from_slice(written);
            self.persist = result;
        } else {
            self.from = HeadKey::NONE;
        }
        Ok(result)
    }
}

/// Whether `v` holds CR, LF or NUL, which would end or cut a header line (values that
/// `HeaderValue`'s checked constructors made hold none): eight bytes at a time, each word
/// tested for a zero byte after CR and LF are turned into zeros, without a branch per byte.
pub(crate) fn breaks_line(v: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    const CRS: u64 = u64::from_ne_bytes([b'\r'; 8]);
    const LFS: u64 = u64::from_ne_bytes([b'\n'; 8]);
    // Non-zero if and only if a byte of `x` is zero (a borrow can only mark bytes above a
    // zero byte, never make a word without one look as if it had one).
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let bad = |w: u64| zero_byte(w) | zero_byte(w ^ CRS) | zero_byte(w ^ LFS);
    let mut words = v.chunks_exact(8);
    let mut found = 0;
    for w in &mut words {
        let mut b = [0; 8];
        b.copy_from_slice(w);
        found |= bad(u64::from_ne_bytes(b));
    }
    // The last few bytes, padded with spaces.
    let mut tail = [b' '; 8];
    tail[..words.remainder().len()].copy_from_slice(words.remainder());
    (found | bad(u64::from_ne_bytes(tail))) != 0
}

/// `n` in decimal, without formatting machinery.
pub(crate) fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Byte by byte: a few digits, not worth a call to copy them.
    for &d in &digits[i..] {
        out.push(d);
    }
}

/// `n` in lower-case hexadecimal (a chunk size).
pub(crate) fn push_hex(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 16];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b"0123456789abcdef"[(n & 15) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// A whole response with an empty body, for errors the server answers itself.
pub(crate) fn error_response(
    out: &mut Vec<u8>,
    status: StatusCode,
    server: Option<&str>,
    now: u64,
) {
    let framing = BodyFraming::Length(0);
    let _ = write_head(
        out,
        &ResponseHead {
            status,
            headers: &HeaderMap::new(),
            framing,
            persist: Persist::Close,
            server,
            now,
        },
    );
}

/// Call `f` with the `server` (if any) and `date` fields of a response sent at `now` (seconds
/// since the epoch), each with its CRLF: formatted at most once a second per thread (and again
/// when another server name is asked for), then copied as one piece.
pub(crate) fn with_date<R>(now: u64, server: Option<&str>, f: impl FnOnce(&[u8]) -> R) -> R {
    struct Fields {
        now: u64,
        server: Option<String>,
        text: Vec<u8>,
    }
    thread_local! {
        static CACHE: RefCell<Fields> = const {
            RefCell::new(Fields { now: u64::MAX, server: None, text: Vec::new() })
        };
    }
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.now != now || c.server.as_deref() != server {
            #[cfg(test)]
            tests::FORMATS.with(|n| n.set(n.get() + 1));
            c.now = now;
            c.server = server.map(str::to_owned);
            c.text.clear();
            if let Some(s) = server {
                c.text.extend_from_slice(b"server: ");
                c.text.extend_from_slice(s.as_bytes());
                c.text.extend_from_slice(b"\r\n");
            }
            c.text.extend_from_slice(b"date: ");
            c.text.extend_from_slice(imf_fixdate(now).as_bytes());
            c.text.extend_from_slice(b"\r\n");
        }
        f(&c.text)
    })
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` for `secs` since the epoch.
pub(crate) fn imf_fixdate(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs / 86400;
    let rem = secs % 86400;
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use http::HeaderValue;
    use http::header::CONTENT_TYPE;
    use std::cell::Cell;

    thread_local! {
        /// How many times this thread formatted its `Date` (and `Server`) fields.
        pub(crate) static FORMATS: Cell<usize> = const { Cell::new(0) };
        /// How many response heads this thread copied from a connection's last one.
        pub(crate) static COPIES: Cell<usize> = const { Cell::new(0) };
    }

    fn head(status: u16, headers: &HeaderMap, framing: BodyFraming, keep: bool) -> String {
        let mut out = Vec::new();
        write_head(
            &mut out,
            &ResponseHead {
                status: StatusCode::from_u16(status).unwrap(),
                headers,
                framing,
                persist: if keep {
                    Persist::KeepAlive
                } else {
                    Persist::Close
                },
                server: None,
                now: 0,
            },
        )
        .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn numbers_without_format() {
        for n in [0u64, 7, 10, 13, 999, 1_000_000, u64::MAX] {
            let (mut d, mut h) = (Vec::new(), Vec::new());
            push_decimal(&mut d, n);
            push_hex(&mut h, n);
            assert_eq!(d, n.to_string().into_bytes());
            assert_eq!(h, format!("{n:x}").into_bytes());
        }
    }

    #[test]
    fn date_format() {
        assert_eq!(imf_fixdate(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(imf_fixdate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(imf_fixdate(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let a = with_date(now, None, <[u8]>::to_vec);
        assert_eq!(a, format!("date: {}\r\n", imf_fixdate(now)).as_bytes());
        assert_eq!(a.len(), 8 + 29);
        // another server name, then none again: each formatted anew
        let b = with_date(now, Some("x"), <[u8]>::to_vec);
        assert_eq!(
            b,
            format!("server: x\r\ndate: {}\r\n", imf_fixdate(now)).as_bytes()
        );
        assert_eq!(with_date(now, None, <[u8]>::to_vec), a);
        // another second
        let c = with_date(now + 1, None, <[u8]>::to_vec);
        assert_eq!(c, format!("date: {}\r\n", imf_fixdate(now + 1)).as_bytes());
    }

    #[test]
    fn the_date_is_formatted_once_a_second() {
        let formats = || FORMATS.with(Cell::get);
        let before = formats();
        let mut out = Vec::new();
        for now in [1_000, 1_000, 1_000, 1_001, 1_001] {
            for _ in 0..100 {
                let h = HeaderMap::new();
                let framing = BodyFraming::Length(0);
                write_head(
                    &mut out,
                    &ResponseHead {
                        status: StatusCode::OK,
                        headers: &h,
                        framing,
                        persist: Persist::KeepAlive,
                        server: None,
                        now,
                    },
                )
                .unwrap();
            }
        }
        assert_eq!(formats() - before, 2, "500 heads in two seconds");
    }

    #[test]
    fn status_line_headers_and_length() {
        let mut h = HeaderMap::new();
        h.insert("x-a", HeaderValue::from_static("1"));
        h.insert("content-length", HeaderValue::from_static("999"));
        let s = head(200, &h, BodyFraming::Length(5), true);
        assert!(s.starts_with("HTTP/1.1 200 OK\r\nx-a: 1\r\ndate: "), "{s}");
        assert!(s.ends_with("GMT\r\ncontent-length: 5\r\n\r\n"), "{s}");
        assert!(!s.contains("999"));
        assert!(!s.contains("connection"));
    }

    #[test]
    fn chunked_and_close() {
        let s = head(201, &HeaderMap::new(), BodyFraming::Chunked, false);
        assert!(s.starts_with("HTTP/1.1 201 Created\r\n"));
        assert!(
            s.ends_with("transfer-encoding: chunked\r\nconnection: close\r\n\r\n"),
            "{s}"
        );
    }

    #[test]
    fn server_header_optional() {
        let mut out = Vec::new();
        let (st, h) = (StatusCode::OK, HeaderMap::new());
        write_head(
            &mut out,
            &ResponseHead {
                status: st,
                headers: &h,
                framing: BodyFraming::Length(0),
                persist: Persist::KeepAlive,
                server: Some("gevent"),
                now: 0,
            },
        )
        .unwrap();
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains("\r\nserver: gevent\r\n")
        );
        assert!(!head(200, &h, BodyFraming::Length(0), true).contains("server"));
    }

    #[test]
    fn line_breaking_bytes_found_anywhere() {
        assert!(!breaks_line(b""));
        assert!(!breaks_line(b"text/plain; charset=utf-8\t\x7f\xff"));
        // Every byte value at every place of values of every length over a few words, among
        // neighbours that are harmless or that sit next to CR and LF in the byte order.
        for len in 1..=24 {
            for at in 0..len {
                for byte in 0..=255u8 {
                    for fill in [b'a', 0x0c, 0x0e, 0xff] {
                        let mut v = vec![fill; len];
                        v[at] = byte;
                        let expected = v.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0));
                        assert_eq!(breaks_line(&v), expected, "{v:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_server_name_is_known_by_its_allocation_or_by_its_bytes() {
        let name: Rc<str> = Rc::from("gevent");
        let copy = String::from("gevent");
        let other = String::from("gevenT");
        let h = HeaderMap::new();
        let mut last = LastResponse::new(Some(name.clone()));
        let copies = || COPIES.with(Cell::get);
        let mut write = |server: Option<&str>| {
            let head = ResponseHead {
                status: StatusCode::OK,
                headers: &h,
                framing: BodyFraming::Length(0),
                persist: Persist::KeepAlive,
                server,
                now: 7,
            };
            let (mut fresh, mut kept) = (Vec::new(), Vec::new());
            write_head(&mut fresh, &head).unwrap();
            last.write(&mut kept, &head).unwrap();
            assert_eq!(kept, fresh);
            String::from_utf8(kept).unwrap()
        };
        let before = copies();
        assert!(write(Some(&name)).contains("\r\nserver: gevent\r\n"));
        // The kept allocation, then the same bytes elsewhere: both repeats.
        write(Some(&name));
        write(Some(&copy));
        assert_eq!(copies(), before + 2);
        // Other bytes, or none: written anew.
        assert!(write(Some(&other)).contains("\r\nserver: gevenT\r\n"));
        assert!(!write(None).contains("server"));
        assert_eq!(copies(), before + 2);
    }

    #[test]
    fn head_keys_differ_whenever_what_they_pack_does() {
        let h = HeaderMap::new();
        let framings = [
            BodyFraming::Empty(None),
            BodyFraming::Empty(Some(0)),
            BodyFraming::Empty(Some(7)),
            BodyFraming::Length(0),
            BodyFraming::Length(7),
            BodyFraming::Chunked,
            BodyFraming::UntilClose,
        ];
        let mut keys = Vec::new();
        for status in [
            StatusCode::OK,
            StatusCode::NOT_FOUND,
            StatusCode::NOT_MODIFIED,
        ] {
            for framing in framings {
                for persist in [Persist::KeepAlive, Persist::KeepAlive10, Persist::Close] {
                    for now in [0, 1, u64::MAX] {
                        let head = ResponseHead {
                            status,
                            headers: &h,
                            framing,
                            persist,
                            server: None,
                            now,
                        };
                        keys.push(HeadKey::new(&head));
                    }
                }
            }
        }
        let n = keys.len();
        keys.push(HeadKey::NONE);
        keys.sort_by_key(|k| k.0);
        keys.dedup();
        assert_eq!(keys.len(), n + 1);
    }

    #[test]
    fn crlf_in_handler_values_refused() {
        // HeaderValue refuses CR/LF itself, except through from_maybe_shared_unchecked-like
        // paths; obs-text gets through it, CR/LF never reach the wire.
        assert!(HeaderValue::from_bytes(b"a\r\nb").is_err());
        let mut h = HeaderMap::new();
        h.insert("x-ok", HeaderValue::from_bytes(b"a\tb").unwrap());
        let mut out = b"keep".to_vec();
        write_head(
            &mut out,
            &ResponseHead {
                status: StatusCode::OK,
                headers: &h,
                framing: BodyFraming::Length(0),
                persist: Persist::KeepAlive,
                server: None,
                now: 0,
            },
        )
        .unwrap();
        assert!(out.starts_with(b"keepHTTP/1.1 200 OK\r\nx-ok: a\tb\r\n"));
    }

    #[test]
    fn http10_keep_alive_is_said_and_101_keeps_connection_upgrade() {
        let mut out = Vec::new();
        let h = HeaderMap::new();
        write_head(
            &mut out,
            &ResponseHead {
                status: StatusCode::OK,
                headers: &h,
                framing: BodyFraming::Length(0),
                persist: Persist::KeepAlive10,
                server: None,
                now: 0,
            },
        )
        .unwrap();
        assert!(
            String::from_utf8(out)
                .unwrap()
                .ends_with("connection: keep-alive\r\n\r\n")
        );
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("upgrade"));
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        let s = head(101, &h, BodyFraming::Empty(None), false);
        assert!(s.starts_with("HTTP/1.1 101 Switching Protocols\r\n"), "{s}");
        assert!(
            s.contains("connection: upgrade\r\nupgrade: websocket\r\n"),
            "{s}"
        );
        assert!(!s.contains("close") && !s.contains("content-length"), "{s}");
        // Elsewhere the handler's Connection is the server's to write.
        let s = head(200, &h, BodyFraming::Length(0), true);
        assert!(!s.contains("connection"), "{s}");
    }

    #[test]
    fn a_handlers_connection_close_is_kept_and_said() {
        let write = |value: &'static str, persist: Persist| {
            let mut h = HeaderMap::new();
            h.insert("connection", HeaderValue::from_static(value));
            let mut out = Vec::new();
            let sent = write_head(
                &mut out,
                &ResponseHead {
                    status: StatusCode::OK,
                    headers: &h,
                    framing: BodyFraming::Length(0),
                    persist,
                    server: None,
                    now: 0,
                },
            )
            .unwrap();
            (sent, String::from_utf8(out).unwrap())
        };
        for value in ["close", "Close", "foo, CLOSE ", "close,keep-alive"] {
            for persist in [Persist::KeepAlive, Persist::KeepAlive10, Persist::Close] {
                let (sent, s) = write(value, persist);
                assert_eq!(sent, Persist::Close, "{value:?}");
                assert!(
                    s.ends_with("content-length: 0\r\nconnection: close\r\n\r\n"),
                    "{s}"
                );
                assert_eq!(s.matches("onnection").count(), 1, "{s}");
            }
        }
        // Anything else is not the handler's to decide: what the server chose goes out.
        for (value, persist) in [
            ("keep-alive", Persist::Close),
            ("closed", Persist::KeepAlive),
            ("keep-alive", Persist::KeepAlive10),
        ] {
            let (sent, s) = write(value, persist);
            assert_eq!(sent, persist, "{value:?}");
            assert!(!s.contains(value) || persist == Persist::KeepAlive10, "{s}");
        }
    }

    #[test]
    fn bodyless_responses() {
        let get = Method::GET;
        assert_eq!(
            framing(&Method::HEAD, StatusCode::OK, Some(5)),
            BodyFraming::Empty(Some(5))
        );
        assert_eq!(
            framing(&get, StatusCode::NO_CONTENT, Some(5)),
            BodyFraming::Empty(None)
        );
        assert_eq!(
            framing(&get, StatusCode::NOT_MODIFIED, Some(5)),
            BodyFraming::Empty(Some(5))
        );
        assert_eq!(
            framing(&get, StatusCode::OK, Some(5)),
            BodyFraming::Length(5)
        );
        assert_eq!(framing(&get, StatusCode::OK, None), BodyFraming::Chunked);
        let s = head(204, &HeaderMap::new(), BodyFraming::Empty(None), true);
        assert!(
            !s.contains("content-length") && !s.contains("transfer-encoding"),
            "{s}"
        );
    }

    #[test]
    fn error_response_closes() {
        let mut out = Vec::new();
        error_response(&mut out, StatusCode::BAD_REQUEST, None, 0);
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        assert!(s.ends_with("content-length: 0\r\nconnection: close\r\n\r\n"));
    }

    /// One response's head as `write_head` writes it and as a connection's `LastResponse`
    /// writes it; what they return.
    #[derive(Clone)]
    struct Head {
        status: StatusCode,
        headers: HeaderMap,
        framing: BodyFraming,
        persist: Persist,
        server: Option<&'static str>,
        now: u64,
    }

    fn both(last: &mut LastResponse, h: &Head) -> (Result<Vec<u8>, EncodeError>, Option<Persist>) {
        let head = ResponseHead {
            status: h.status,
            headers: &h.headers,
            framing: h.framing,
            persist: h.persist,
            server: h.server,
            now: h.now,
        };
        let mut fresh = b"before".to_vec();
        let r = write_head(&mut fresh, &head);
        let mut kept = b"before".to_vec();
        let k = last.write(&mut kept, &head);
        assert_eq!(r, k);
        match r {
            Ok(p) => {
                assert_eq!(kept, fresh);
                (Ok(fresh), Some(p))
            }
            Err(e) => (Err(e), None),
        }
    }

    #[test]
    fn a_head_that_repeats_the_last_one_is_what_writing_it_makes_and_any_change_is_written() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        headers.append("x-a", HeaderValue::from_static("1"));
        headers.append("x-a", HeaderValue::from_static("2"));
        let base = Head {
            status: StatusCode::OK,
            headers,
            framing: BodyFraming::Length(13),
            persist: Persist::KeepAlive,
            server: Some("gevent"),
            now: 784_111_777,
        };
        let mut last = LastResponse::default();
        let copies = || COPIES.with(Cell::get);
        let (first, _) = both(&mut last, &base);
        assert_eq!(copies(), 0);
        // Repeated: the same bytes, copied.
        assert_eq!(both(&mut last, &base).0, first);
        assert_eq!(copies(), 1);
        // Each input changed, then the base again: each written as it says.
        fn x(v: &'static str) -> HeaderValue {
            HeaderValue::from_static(v)
        }
        let edits: [fn(&mut Head); 11] = [
            |h| h.status = StatusCode::CREATED,
            |h| h.framing = BodyFraming::Length(14),
            |h| h.framing = BodyFraming::Chunked,
            |h| h.persist = Persist::KeepAlive10,
            |h| h.server = None,
            |h| h.server = Some("other"),
            |h| h.now += 1,
            |h| {
                h.headers.insert(CONTENT_TYPE, x("text/html"));
            },
            // the same values in another order
            |h| {
                h.headers.remove("x-a");
                h.headers.append("x-a", x("2"));
                h.headers.append("x-a", x("1"));
            },
            |h| {
                h.headers.append("x-b", x("1"));
            },
            // as many fields, another name
            |h| {
                h.headers.remove("x-a");
                h.headers.append("x-b", x("1"));
                h.headers.append("x-b", x("2"));
            },
        ];
        let changes = edits.map(|edit| {
            let mut h = base.clone();
            edit(&mut h);
            h
        });
        for h in &changes {
            let before = copies();
            let (changed, _) = both(&mut last, h);
            assert_ne!(changed, first);
            assert_eq!(copies(), before, "a change is written, not copied");
            // and repeated in its turn
            assert_eq!(both(&mut last, h).0, changed);
            assert_eq!(copies(), before + 1);
            assert_eq!(both(&mut last, &base).0, first);
        }
        // Bodyless framings that differ only in the length kept, and a 101's own
        // `Connection`.
        let mut h = base.clone();
        h.framing = BodyFraming::Empty(Some(13));
        let with_length = both(&mut last, &h).0;
        h.framing = BodyFraming::Empty(None);
        assert_ne!(both(&mut last, &h).0, with_length);
        let mut h = base.clone();
        h.status = StatusCode::SWITCHING_PROTOCOLS;
        h.framing = BodyFraming::Empty(None);
        h.headers
            .insert(CONNECTION, HeaderValue::from_static("upgrade"));
        let switching = both(&mut last, &h).0.unwrap();
        assert!(String::from_utf8_lossy(&switching).contains("connection: upgrade\r\n"));
        assert_eq!(both(&mut last, &h).0.unwrap(), switching);
        // A handler's `Connection: close` is what a copy returns too.
        let mut h = base.clone();
        h.headers
            .insert(CONNECTION, HeaderValue::from_static("close"));
        assert_eq!(both(&mut last, &h).1, Some(Persist::Close));
        assert_eq!(both(&mut last, &h).1, Some(Persist::Close));
    }
}
