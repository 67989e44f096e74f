//! Request bodies, sans-I/O: a state machine fed the bytes after the head, yielding the body's
//! data and when it ends (hyper's `proto/h1/decode.rs`). Any error means 400 and close.

use crate::parse::is_tchar;
use std::ops::Range;

/// Most hex digits of a chunk size (16 fill a u64).
const MAX_SIZE_DIGITS: u8 = 16;
/// Most bytes of chunk extensions on one chunk-size line.
pub(crate) const MAX_EXTENSION_BYTES: usize = 4096;
/// Most bytes of trailer fields.
pub(crate) const MAX_TRAILER_BYTES: usize = 8192;

/// Why a body could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DecodeError(pub(crate) &'static str);

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Length(u64),
    /// In a chunk-size line: digits seen, value so far.
    Size(u8, u64),
    /// Whitespace after the chunk size (BWS, RFC 9112 §7.1.1), which only a chunk extension
    /// may follow: bytes so far (counted as the extensions'), the size.
    SizeBws(usize, u64),
    /// In chunk extensions: bytes so far, the size.
    Extension(usize, u64),
    /// CR seen after the size line; LF expected. Holds the size.
    SizeLf(u64),
    Data(u64),
    DataCr,
    DataLf,
    /// In the trailer section: the current line, total bytes.
    Trailer(Vec<u8>, usize),
    TrailerLf(Vec<u8>, usize),
    Done,
}

/// A body decoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decoder {
    state: State,
}

impl Decoder {
    /// A body of exactly `n` bytes.
    pub(crate) fn length(n: u64) -> Decoder {
        Decoder {
            state: if n == 0 {
                State::Done
            } else {
                State::Length(n)
            },
        }
    }

    /// A chunked body.
    pub(crate) fn chunked() -> Decoder {
        Decoder {
            state: State::Size(0, 0),
        }
    }

    /// Whether the whole body has been decoded.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decode from the start of `buf`: returns how many bytes were consumed and the range of
    /// `buf` that is body data (possibly empty). Call again with the rest; when nothing is
    /// consumed and the decoder is not done, more bytes are needed.
    pub(crate) fn decode(&mut self, buf: &[u8]) -> Result<(usize, Range<usize>), DecodeError> {
        let mut i = 0;
        while i < buf.len() {
            let b = buf[i];
            match &mut self.state {
                State::Done => break,
                State::Length(left) | State::Data(left) => {
                    let n = (*left).min((buf.len() - i) as u64) as usize;
                    *left -= n as u64;
                    if *left == 0 {
                        self.state = match self.state {
                            State::Length(_) => State::Done,
                            _ => State::DataCr,
                        };
                    }
                    return Ok((i + n, i..i + n));
                }
                State::Size(digits, value) => {
                    if let Some(d) = (b as char).to_digit(16) {
                        if *digits == MAX_SIZE_DIGITS {
                            return Err(DecodeError("chunk size too long"));
                        }
                        *digits += 1;
                        *value = *value << 4 | u64::from(d);
                    } else if *digits == 0 {
                        return Err(DecodeError("bad chunk size"));
                    } else if b == b';' {
                        self.state = State::Extension(0, *value);
                    } else if b == b' ' || b == b'\t' {
                        self.state = State::SizeBws(1, *value);
                    } else if b == b'\r' {
                        self.state = State::SizeLf(*value);
                    } else {
                        return Err(DecodeError("bad chunk size"));
                    }
                }
                State::SizeBws(len, value) => {
                    if b == b';' {
                        self.state = State::Extension(*len, *value);
                    } else if b == b' ' || b == b'\t' {
                        *len += 1;
                        if *len > MAX_EXTENSION_BYTES {
                            return Err(DecodeError("chunk extensions too long"));
                        }
                    } else {
                        // Whitespace that no extension follows (`5 \r\n`) is not a size.
                        return Err(DecodeError("bad chunk size"));
                    }
                }
                State::Extension(len, value) => {
                    if b == b'\r' {
                        self.state = State::SizeLf(*value);
                    } else if (b < 0x20 && b != b'\t') || b == 0x7f {
                        return Err(DecodeError("control byte in a chunk extension"));
                    } else {
                        *len += 1;
                        if *len > MAX_EXTENSION_BYTES {
                            return Err(DecodeError("chunk extensions too long"));
                        }
                    }
                }
                State::SizeLf(value) => {
                    if b != b'\n' {
                        return Err(DecodeError("bare CR after the chunk size"));
                    }
                    self.state = if *value == 0 {
                        State::Trailer(Vec::new(), 0)
                    } else {
                        State::Data(*value)
                    };
                }
                State::DataCr => {
                    if b != b'\r' {
                        return Err(DecodeError("no CRLF after the chunk data"));
                    }
                    self.state = State::DataLf;
                }
                State::DataLf => {
                    if b != b'\n' {
                        return Err(DecodeError("no CRLF after the chunk data"));
                    }
                    self.state = State::Size(0, 0);
                }
                State::Trailer(line, total) => {
                    *total += 1;
                    if *total > MAX_TRAILER_BYTES {
                        return Err(DecodeError("trailers too long"));
                    }
                    if b == b'\r' {
                        self.state = State::TrailerLf(std::mem::take(line), *total);
                    } else if b == b'\n' {
                        return Err(DecodeError("bare LF in the trailers"));
                    } else {
                        line.push(b);
                    }
                }
                State::TrailerLf(line, total) => {
                    if b != b'\n' {
                        return Err(DecodeError("bare CR in the trailers"));
                    }
                    if line.is_empty() {
                        self.state = State::Done;
                    } else {
                        valid_trailer(line)?;
                        self.state = State::Trailer(Vec::new(), *total);
                    }
                }
            }
            i += 1;
        }
        Ok((i, i..i))
    }
}

/// A trailer field line: `token ":" value` without control bytes.
fn valid_trailer(line: &[u8]) -> Result<(), DecodeError> {
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(DecodeError("bad trailer"))?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Err(DecodeError("bad trailer name"));
    }
    if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(DecodeError("bad trailer value"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `chunks` one after the other (leftovers carried over); the body and the bytes
    /// left after it.
    fn feed(mut d: Decoder, chunks: &[&[u8]]) -> Result<(Vec<u8>, Vec<u8>, bool), DecodeError> {
        let mut body = Vec::new();
        let mut pending = Vec::new();
        for c in chunks {
            pending.extend_from_slice(c);
            loop {
                let (n, data) = d.decode(&pending)?;
                body.extend_from_slice(&pending[data]);
                pending.drain(..n);
                if n == 0 || d.is_done() {
                    break;
                }
            }
        }
        Ok((body, pending, d.is_done()))
    }

    fn chunked(raw: &[u8]) -> Result<(Vec<u8>, Vec<u8>, bool), DecodeError> {
        feed(Decoder::chunked(), &[raw])
    }

    const VALID: &[u8] =
        b"5\r\nhello\r\n1;name=value;x\r\n \r\nA\r\n0123456789\r\n0\r\nX-T: t\r\n\r\nNEXT";

    #[test]
    fn length_body() {
        let (body, rest, done) = feed(Decoder::length(5), &[b"hel", b"loGET"]).unwrap();
        assert_eq!(
            (&body[..], &rest[..], done),
            (&b"hello"[..], &b"GET"[..], true)
        );
        assert!(Decoder::length(0).is_done());
        let (body, _, done) = feed(Decoder::length(5), &[b"hel"]).unwrap();
        assert_eq!((&body[..], done), (&b"hel"[..], false));
    }

    #[test]
    fn chunked_body() {
        let (body, rest, done) = chunked(VALID).unwrap();
        assert_eq!(body, b"hello 0123456789");
        assert_eq!(rest, b"NEXT");
        assert!(done);
    }

    #[test]
    fn chunked_split_at_every_position() {
        for i in 0..=VALID.len() {
            let (body, rest, done) = feed(Decoder::chunked(), &[&VALID[..i], &VALID[i..]]).unwrap();
            assert_eq!(body, b"hello 0123456789", "split at {i}");
            assert_eq!(rest, b"NEXT", "split at {i}");
            assert!(done);
        }
        // and one byte at a time
        let bytes: Vec<&[u8]> = VALID.chunks(1).collect();
        let (body, _, done) = feed(Decoder::chunked(), &bytes).unwrap();
        assert_eq!(body, b"hello 0123456789");
        assert!(done);
    }

    #[test]
    fn a_body_in_two_pieces_decodes_as_it_does_whole() {
        // Valid chunked bodies with a few edits, each split in two at every place: what the
        // decoder makes of the whole (data, where it ends, or an error) it makes of the pieces.
        let bases: [&[u8]; 3] = [
            VALID,
            b"3;a=\"q\"\r\nabc\r\n0\r\n\r\nGET",
            b"000a\r\n0123456789\r\n0;x\r\nA: b\r\nC: d\r\n\r\n",
        ];
        let pieces: [&[u8]; 10] = [
            b"\r",
            b"\n",
            b"\r\n",
            b";",
            b" ",
            b"0",
            b"f",
            b"\x00",
            b"\r\n\r\n",
            b"x: y\r\n",
        ];
        let mut rng = crate::testing::Rng(0x2545_f491_4f6c_dd1d);
        let (mut ok, mut bad) = (0, 0);
        for _ in 0..2000 {
            let raw = rng.mutate(&bases, &pieces, b"\r\n;0a ");
            let whole = chunked(&raw);
            for i in 0..=raw.len() {
                let split = feed(Decoder::chunked(), &[&raw[..i], &raw[i..]]);
                assert_eq!(
                    split,
                    whole,
                    "{:?} split at {i}",
                    String::from_utf8_lossy(&raw)
                );
            }
            match whole {
                Ok((_, _, true)) => ok += 1,
                Err(_) => bad += 1,
                Ok(_) => {}
            }
        }
        assert!(ok > 200 && bad > 200, "{ok} complete, {bad} refused");
    }

    #[test]
    fn chunk_size_digits_bounded() {
        assert!(
            chunked(b"000000000000000A\r\n0123456789\r\n0\r\n\r\n")
                .unwrap()
                .2
        );
        assert!(chunked(b"0000000000000000A\r\n").is_err());
        assert!(chunked(b"FFFFFFFFFFFFFFFFF\r\n").is_err());
        // The largest size that fits: a chunk of u64::MAX bytes, its data taken as it comes.
        let (body, _, done) = chunked(b"FFFFFFFFFFFFFFFF\r\nabc").unwrap();
        assert_eq!((&body[..], done), (&b"abc"[..], false));
    }

    #[test]
    fn chunk_size_prefix_sign_or_junk_rejected() {
        for bad in [
            &b"0x5\r\nhello\r\n0\r\n\r\n"[..],
            b"+5\r\nhello\r\n0\r\n\r\n",
            b"-5\r\nhello\r\n0\r\n\r\n",
            b" 5\r\nhello\r\n0\r\n\r\n",
            b"5 \r\nhello\r\n0\r\n\r\n",
            b"\r\nhello\r\n0\r\n\r\n",
            b"5_0\r\n",
            b"g\r\n",
        ] {
            assert!(chunked(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn extensions_bounded_and_validated() {
        let mut raw = b"1;".to_vec();
        raw.extend(std::iter::repeat_n(b'a', MAX_EXTENSION_BYTES));
        raw.extend(b"\r\nx\r\n0\r\n\r\n");
        assert!(chunked(&raw).unwrap().2);
        let mut raw = b"1;".to_vec();
        raw.extend(std::iter::repeat_n(b'a', MAX_EXTENSION_BYTES + 1));
        assert!(chunked(&raw).is_err());
        assert!(chunked(b"1;a\0b\r\nx\r\n0\r\n\r\n").is_err());
        assert!(chunked(b"1;a\nb\r\nx\r\n0\r\n\r\n").is_err());
    }

    #[test]
    fn whitespace_before_an_extension_allowed() {
        // RFC 9112 §7.1.1: BWS before the `;` of an extension.
        let (body, _, done) = chunked(b"5 ;a=1\r\nhello\r\n0\t; b\r\n\r\n").unwrap();
        assert_eq!((&body[..], done), (&b"hello"[..], true));
        let (body, _, done) = chunked(b"3 \t ;x\r\nabc\r\n0\r\n\r\n").unwrap();
        assert_eq!((&body[..], done), (&b"abc"[..], true));
        // Whitespace with no extension after it, or before anything else, is refused.
        for bad in [
            &b"5 \r\nhello\r\n0\r\n\r\n"[..],
            b"5 \t\r\nhello\r\n0\r\n\r\n",
            b"5 x\r\nhello\r\n0\r\n\r\n",
            b"5 \n",
        ] {
            assert!(chunked(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        // The whitespace counts against the extensions' limit.
        let mut raw = b"1".to_vec();
        raw.extend(std::iter::repeat_n(b' ', MAX_EXTENSION_BYTES + 1));
        assert!(chunked(&raw).is_err());
    }

    #[test]
    fn crlf_after_data_required() {
        assert!(chunked(b"5\r\nhelloX\r\n0\r\n\r\n").is_err());
        assert!(chunked(b"5\r\nhello\n0\r\n\r\n").is_err());
        assert!(chunked(b"5\r\nhello\rX0\r\n\r\n").is_err());
    }

    #[test]
    fn bare_lf_or_cr_rejected() {
        assert!(chunked(b"5\nhello\r\n0\r\n\r\n").is_err());
        assert!(chunked(b"5\rhello\r\n0\r\n\r\n").is_err());
        assert!(chunked(b"0\r\n\n").is_err());
        assert!(chunked(b"0\r\n\rX").is_err());
        assert!(chunked(b"0\r\nX-T: t\n\r\n").is_err());
    }

    #[test]
    fn trailers_bounded_and_validated() {
        assert!(chunked(b"0\r\nA: 1\r\nB: 2\r\n\r\n").unwrap().2);
        assert!(chunked(b"0\r\nA 1\r\n\r\n").is_err());
        assert!(chunked(b"0\r\nA : 1\r\n\r\n").is_err());
        assert!(chunked(b"0\r\n: 1\r\n\r\n").is_err());
        assert!(chunked(b"0\r\nA: 1\x01\r\n\r\n").is_err());
        let mut raw = b"0\r\nA: ".to_vec();
        raw.extend(std::iter::repeat_n(b'a', MAX_TRAILER_BYTES));
        assert!(chunked(&raw).is_err());
    }

    #[test]
    fn incomplete_is_not_done() {
        let (body, _, done) = chunked(b"5\r\nhel").unwrap();
        assert_eq!((&body[..], done), (&b"hel"[..], false));
        assert!(!chunked(b"0\r\n").unwrap().2);
    }
}
