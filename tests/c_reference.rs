//! The C baseline programs build and work: the libev echo server echoes byte-exact.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

#[test]
fn c_echo_server_echoes() {
    let mut server = Command::new(gevent::c_reference::ECHO_SERVER)
        .arg("127.0.0.1:0")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the C echo server");
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .expect(&line)
        .to_string();
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut conns: Vec<TcpStream> = (0..10)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    for c in &mut conns {
        let mut writer = c.try_clone().unwrap();
        let p = payload.clone();
        let t = std::thread::spawn(move || writer.write_all(&p).unwrap());
        let mut got = vec![0u8; payload.len()];
        c.read_exact(&mut got).unwrap();
        t.join().unwrap();
        assert!(got == payload, "echo differs");
    }
    server.kill().unwrap();
    server.wait().unwrap();
}
