//! Clients that each send one request and then idle, for the tests that measure what an
//! idle connection costs the server.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

/// Open `n` connections to the server at `addr`, a hundred at a time (the listener's backlog
/// is not unbounded), and [`ask`] `request` on each.
pub(crate) fn open(
    addr: SocketAddr,
    n: usize,
    into: &mut Vec<TcpStream>,
    request: &[u8],
    answered: impl Fn(&[u8]) -> bool,
) {
    for k in (0..n).step_by(100) {
        let batch = (n - k).min(100);
        for _ in 0..batch {
            let c = TcpStream::connect(addr).unwrap();
            c.set_nonblocking(true).unwrap();
            into.push(c);
        }
        ask(&into[into.len() - batch..], request, &answered);
    }
}

/// Send `request` on each of `clients` (non-blocking), then read until `answered` says that
/// what came on each is its whole answer. The server runs in this thread's hub, while it
/// sleeps between polls.
pub(crate) fn ask(clients: &[TcpStream], request: &[u8], answered: impl Fn(&[u8]) -> bool) {
    // Far less than a socket's send buffer: each write is taken whole at once.
    for mut c in clients {
        assert_eq!(c.write(request).unwrap(), request.len());
    }
    let mut pending: Vec<(&TcpStream, Vec<u8>)> = clients.iter().map(|c| (c, Vec::new())).collect();
    while !pending.is_empty() {
        gevent::sleep(std::time::Duration::from_millis(1)).unwrap();
        pending.retain_mut(|(c, got)| {
            let mut buf = [0u8; 1024];
            while let Ok(n @ 1..) = (&**c).read(&mut buf) {
                got.extend_from_slice(&buf[..n]);
            }
            !answered(got)
        });
    }
}
