//! PEM material and rustls client configurations, for every TLS client and
//! server in vitals: the HTTPS server (`server/tls.rs` builds its config
//! from [`parse_certs`] and [`parse_key`]), the remote-write client, and the
//! PostgreSQL, PgBouncer and Redis connectors.
//!
//! Client configurations are built from files at each connect, so a
//! certificate or CA bundle rotated on disk is used at the next connection
//! without a reload. Errors name the file and the problem, never its bytes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::crypto::ring as provider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    self, AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore,
    SignatureScheme,
};

/// Every certificate in a PEM file (a chain or a CA bundle).
pub fn parse_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM certificate file: {e}"))?;
    if certs.is_empty() {
        return Err("no PEM certificate found".into());
    }
    Ok(certs)
}

/// The first private key in a PEM file.
pub fn parse_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    // The error names the format problem only: never the key's bytes.
    PrivateKeyDer::from_pem_slice(pem)
        .map_err(|e| format!("no PEM private key found (PKCS#8, PKCS#1 or SEC1): {e}"))
}

/// Reads and parses a certificate file; `what` names the setting in errors.
pub fn read_certs(what: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{what} {}: {e}", path.display()))?;
    parse_certs(&pem).map_err(|e| format!("{what} {}: {e}", path.display()))
}

/// Reads and parses a private key file; `what` names the setting in errors.
pub fn read_key(what: &str, path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{what} {}: {e}", path.display()))?;
    parse_key(&pem).map_err(|e| format!("{what} {}: {e}", path.display()))
}

/// How much of the server's certificate is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verify {
    /// Nothing (libpq `require` without a root certificate,
    /// `insecure_skip_verify`); the handshake signatures still are.
    Nothing,
    /// The chain up to a trusted root, not the host name (libpq
    /// `verify-ca`).
    Chain,
    /// The chain and the host name (libpq `verify-full`, HTTPS).
    Full,
}

/// Where the trusted roots come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Roots {
    File(PathBuf),
    /// The operating system's store.
    System,
}

/// Everything a client configuration is built from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientTls {
    pub verify: Verify,
    /// Ignored with [`Verify::Nothing`]; default: the system's.
    pub roots: Option<Roots>,
    /// Client certificate chain and key, for mutual TLS.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Send the server name (SNI); rustls never sends an IP address.
    pub sni: bool,
    pub alpn: Vec<Vec<u8>>,
}

impl ClientTls {
    /// Every file named, with the setting that names it (for load-time
    /// checks).
    pub fn files(&self) -> Vec<PathBuf> {
        let root = match &self.roots {
            Some(Roots::File(p)) => Some(p.clone()),
            _ => None,
        };
        root.into_iter()
            .chain(self.cert_file.clone())
            .chain(self.key_file.clone())
            .collect()
    }
}

/// Builds a rustls client configuration, reading every file now.
pub fn client_config(tls: &ClientTls) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(provider::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?;
    let builder = if tls.verify == Verify::Nothing {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(SkipVerify))
    } else {
        let mut roots = RootCertStore::empty();
        match tls.roots.as_ref().unwrap_or(&Roots::System) {
            Roots::File(path) => {
                for cert in read_certs("CA file", path)? {
                    roots
                        .add(cert)
                        .map_err(|e| format!("CA file {}: {e}", path.display()))?;
                }
            }
            Roots::System => {
                let native = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(native.certs);
                if roots.is_empty() {
                    return Err("no CA certificates found on the system; name a CA file".into());
                }
            }
        }
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| format!("CA certificates: {e}"))?;
        if tls.verify == Verify::Chain {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly(webpki)))
        } else {
            builder.with_webpki_verifier(webpki)
        }
    };
    let mut config = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            let chain = read_certs("certificate file", cert)?;
            let key = read_key("key file", key)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client certificate and key: {e}"))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err("a client certificate and its key go together".into()),
    };
    config.enable_sni = tls.sni;
    config.alpn_protocols.clone_from(&tls.alpn);
    Ok(Arc::new(config))
}

/// The client side of TLS as `remote_write[].tls` and Redis' `tls` name it.
#[derive(Clone, Debug, Default)]
pub struct TlsFiles<'a> {
    pub ca_file: Option<&'a Path>,
    pub cert_file: Option<&'a Path>,
    pub key_file: Option<&'a Path>,
    pub insecure_skip_verify: bool,
}

impl TlsFiles<'_> {
    /// Full verification against the CA file (or the system's roots)
    /// unless `insecure_skip_verify`.
    pub fn client_tls(&self, alpn: &[&[u8]]) -> ClientTls {
        ClientTls {
            verify: if self.insecure_skip_verify {
                Verify::Nothing
            } else {
                Verify::Full
            },
            roots: Some(match self.ca_file {
                Some(p) => Roots::File(p.to_owned()),
                None => Roots::System,
            }),
            cert_file: self.cert_file.map(Path::to_owned),
            key_file: self.key_file.map(Path::to_owned),
            sni: true,
            alpn: alpn.iter().map(|p| p.to_vec()).collect(),
        }
    }
}

/// A TLS failure, in words a person can act on. `rustls::Error`'s own
/// Display ("invalid peer certificate: UnknownIssuer") names the type, not
/// the cause.
pub fn describe_error(e: &rustls::Error) -> String {
    use CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => {
            let why = match c {
                C::UnknownIssuer => "unknown issuer".to_owned(),
                C::NotValidForName | C::NotValidForNameContext { .. } => {
                    "the certificate does not name this host".to_owned()
                }
                C::Expired | C::ExpiredContext { .. } => "certificate expired".to_owned(),
                C::NotValidYet | C::NotValidYetContext { .. } => {
                    "certificate not valid yet".to_owned()
                }
                C::Revoked => "certificate revoked".to_owned(),
                C::BadSignature => "bad signature".to_owned(),
                C::BadEncoding => "malformed certificate".to_owned(),
                other => format!("{other:?}"),
            };
            format!("certificate verify failed ({why})")
        }
        rustls::Error::AlertReceived(alert) => {
            let why = match alert {
                AlertDescription::CertificateExpired => Some("certificate expired"),
                AlertDescription::CertificateRequired => Some("a client certificate is required"),
                AlertDescription::BadCertificate => Some("bad certificate"),
                AlertDescription::UnknownCA => Some("unknown issuer"),
                AlertDescription::CertificateRevoked => Some("certificate revoked"),
                AlertDescription::CertificateUnknown => Some("certificate not accepted"),
                AlertDescription::AccessDenied => Some("access denied"),
                _ => None,
            };
            match why {
                Some(why) => format!("the server refused the client certificate ({why})"),
                None => format!("the server ended the handshake ({alert:?})"),
            }
        }
        rustls::Error::NoCertificatesPresented => "the server sent no certificate".into(),
        other => other.to_string(),
    }
}

/// Finds a rustls error in `e`'s source chain (an I/O error wraps it when
/// the server refuses the client certificate after the handshake, in TLS
/// 1.3) and describes it.
pub fn find_error(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut at: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = at {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(describe_error(r));
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if let Some(r) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return Some(describe_error(r));
            }
        }
        at = err.source();
    }
    None
}

/// libpq `verify-ca`: the chain must lead to a trusted root; the host name
/// is not checked (webpki checks the chain first, so a name mismatch means
/// the chain was good).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// No certificate check; signatures are still checked so the handshake
/// itself is sound.
#[derive(Debug)]
struct SkipVerify;

impl ServerCertVerifier for SkipVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &provider::default_provider().signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &provider::default_provider().signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_what_went_wrong() {
        let e = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        assert_eq!(
            describe_error(&e),
            "certificate verify failed (unknown issuer)"
        );
        let e = rustls::Error::AlertReceived(AlertDescription::CertificateExpired);
        assert_eq!(
            describe_error(&e),
            "the server refused the client certificate (certificate expired)"
        );
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::NotValidForName),
        );
        assert_eq!(
            find_error(&io).as_deref(),
            Some("certificate verify failed (the certificate does not name this host)")
        );
    }

    #[test]
    fn missing_files_are_named_without_their_content() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("client.key");
        std::fs::write(&key, "not a key hunter2hunter2").unwrap();
        let tls = ClientTls {
            verify: Verify::Full,
            roots: Some(Roots::File(dir.path().join("nope.crt"))),
            cert_file: None,
            key_file: None,
            sni: true,
            alpn: vec![],
        };
        let e = client_config(&tls).unwrap_err();
        assert!(e.starts_with("CA file ") && e.contains("nope.crt"), "{e}");
        let e = read_key("key file", &key).unwrap_err();
        assert!(e.contains("client.key") && !e.contains("hunter2"), "{e}");
    }
}
