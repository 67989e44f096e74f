//! HTTPS (feature `tls`): TLS with [`rustls`] over each cooperative connection — gevent's
//! `ssl` module's role. Give [`Builder::tls`](crate::Builder::tls) a `rustls::ServerConfig`
//! (or make one from PEM files with [`server_config_from_pem`]); handlers see the same
//! requests as over plain TCP.
//!
//! ```
//! use std::io::{Read, Write};
//!
//! // A certificate for "localhost", made on the spot.
//! let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
//! let (cert_pem, key_pem) = (cert.cert.pem(), cert.key_pair.serialize_pem());
//!
//! let config = gevent_http::tls::server_config_from_pem(cert_pem.as_bytes(), key_pem.as_bytes()).unwrap();
//! let server = gevent_http::Server::builder()
//!     .addr("127.0.0.1:0")
//!     .tls(config)
//!     .serve(|_req| http::Response::new("secret\n"))
//!     .unwrap();
//!
//! // A TLS client is rustls over the cooperative stream, like over any Read + Write; this one
//! // trusts the server's own certificate.
//! let client = gevent_http::tls::client_config_from_pem(cert_pem.as_bytes()).unwrap();
//! let session = rustls::ClientConnection::new(client, "localhost".try_into().unwrap()).unwrap();
//! let tcp = gevent_io::net::TcpStream::connect(server.local_addr().unwrap()).unwrap();
//! let mut tls = rustls::StreamOwned::new(session, tcp);
//! tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
//! let mut answer = String::new();
//! tls.read_to_string(&mut answer).unwrap();
//! assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"));
//! assert!(answer.ends_with("\r\n\r\nsecret\n"));
//! server.stop(None);
//! ```

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io;
use std::sync::Arc;

pub use rustls;

/// A server configuration from a PEM certificate chain (leaf first) and a PEM private key:
/// rustls's safe defaults (TLS 1.2 and 1.3) with the `ring` provider, no client
/// certificates, ALPN `http/1.1`.
///
/// # Errors
/// `InvalidData` when the PEM does not parse, holds no certificate, or the key does not fit
/// the certificate.
///
/// ```
/// let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
/// let config = gevent_http::tls::server_config_from_pem(
///     cert.cert.pem().as_bytes(),
///     cert.key_pair.serialize_pem().as_bytes(),
/// )
/// .unwrap();
/// assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);
/// assert!(gevent_http::tls::server_config_from_pem(b"", b"").is_err());
/// ```
pub fn server_config_from_pem(
    cert_chain_pem: &[u8],
    key_pem: &[u8],
) -> io::Result<Arc<rustls::ServerConfig>> {
    let certs = certificates(cert_chain_pem)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| invalid("private key PEM", &e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| invalid("TLS versions", &e))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| invalid("certificate and key", &e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A client configuration that trusts the certificates of a PEM bundle (a private CA's, or a
/// self-signed server's own): rustls's safe defaults (TLS 1.2 and 1.3) with the `ring`
/// provider, no client certificate, ALPN `http/1.1`. For a client of this server's HTTPS, as
/// in the [module's example](self), or of any other.
///
/// # Errors
/// `InvalidData` when the PEM does not parse, holds no certificate, or one it holds is not a
/// valid trust anchor.
///
/// ```
/// let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
/// let config = gevent_http::tls::client_config_from_pem(cert.cert.pem().as_bytes()).unwrap();
/// assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);
/// assert!(gevent_http::tls::client_config_from_pem(b"").is_err());
/// ```
pub fn client_config_from_pem(ca_pem: &[u8]) -> io::Result<Arc<rustls::ClientConfig>> {
    let certs = certificates(ca_pem)?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| invalid("trust anchor", &e))?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| invalid("TLS versions", &e))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// An `InvalidData` error: `what` failed, for `e`.
fn invalid(what: &str, e: &dyn std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{what}: {e}"))
}

/// The certificates of a PEM bundle, at least one.
fn certificates(pem: &[u8]) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid("certificate PEM", &e))?;
    if certs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "no certificate in the PEM",
        ));
    }
    Ok(certs)
}
