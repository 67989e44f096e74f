//! The interposed libc functions, by group: `net` (socket and pipe I/O), `fd` (making,
//! copying, changing and closing descriptors: bookkeeping only), `time` (sleeps), `poll`
//! (`poll`, `ppoll`, `select`), `dns` (`getaddrinfo`).

pub(crate) mod dns;
pub(crate) mod fd;
pub(crate) mod net;
pub(crate) mod poll;
pub(crate) mod time;
