//! Building a rustls server configuration from the `tls_server_config`
//! section of an exporter-toolkit web config file, with Go's names for
//! versions, cipher suites, curves and client authentication modes.

use std::sync::Arc;
use tokio_rustls::rustls::client::danger::HandshakeSignatureValid;
use tokio_rustls::rustls::crypto::{ring as provider, WebPkiSupportedAlgorithms};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

pub use crate::tls::{parse_certs, parse_key};
use tokio_rustls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{
    self, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
    SupportedCipherSuite, SupportedProtocolVersion,
};

/// Go's `tls.ClientAuthType` names, as exporter-toolkit accepts them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    NoClientCert,
    RequestClientCert,
    RequireAnyClientCert,
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    pub fn parse(name: &str) -> Result<Self, String> {
        Ok(match name {
            "NoClientCert" => ClientAuth::NoClientCert,
            "RequestClientCert" => ClientAuth::RequestClientCert,
            "RequireAnyClientCert" => ClientAuth::RequireAnyClientCert,
            "VerifyClientCertIfGiven" => ClientAuth::VerifyClientCertIfGiven,
            "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerifyClientCert,
            _ => {
                return Err(format!(
                    "invalid client_auth_type {name:?}: use NoClientCert, RequestClientCert, \
                     RequireAnyClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert"
                ))
            }
        })
    }

    fn verifies(self) -> bool {
        matches!(
            self,
            ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert
        )
    }
}

/// TLS versions by Go name. rustls has no TLS 1.0/1.1: asking for them as a
/// minimum gives TLS 1.2 (and a warning), so existing files keep working.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    Tls10,
    Tls11,
    Tls12,
    Tls13,
}

impl Version {
    pub fn parse(name: &str) -> Result<Self, String> {
        Ok(match name {
            "TLS10" => Version::Tls10,
            "TLS11" => Version::Tls11,
            "TLS12" => Version::Tls12,
            "TLS13" => Version::Tls13,
            _ => {
                return Err(format!(
                    "unknown TLS version {name:?}: use TLS10, TLS11, TLS12 or TLS13"
                ))
            }
        })
    }
}

/// Go cipher suite name → rustls suite. `Ok(None)`: a suite Go knows but
/// rustls does not implement (CBC, RC4, 3DES, static RSA): skipped.
pub fn cipher_suite(name: &str) -> Result<Option<SupportedCipherSuite>, String> {
    use provider::cipher_suite as cs;
    Ok(Some(match name {
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"
        | "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => {
            cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        }
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" | "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => {
            cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
        }
        // TLS 1.3 suites: Go does not let them be configured either.
        "TLS_AES_128_GCM_SHA256" | "TLS_AES_256_GCM_SHA384" | "TLS_CHACHA20_POLY1305_SHA256" => {
            return Ok(None)
        }
        _ if name.starts_with("TLS_RSA_")
            || name.starts_with("TLS_ECDHE_")
            || name.starts_with("TLS_FALLBACK") =>
        {
            return Ok(None)
        }
        _ => return Err(format!("unknown cipher suite {name:?}")),
    }))
}

/// Go curve name → rustls key-exchange group; `Ok(None)`: not available
/// with the ring provider (P-521, the hybrid post-quantum group).
pub fn curve(name: &str) -> Result<Option<&'static dyn rustls::crypto::SupportedKxGroup>, String> {
    use provider::kx_group as kx;
    Ok(Some(match name {
        "X25519" => kx::X25519,
        "CurveP256" => kx::SECP256R1,
        "CurveP384" => kx::SECP384R1,
        "CurveP521" | "X25519MLKEM768" => return Ok(None),
        _ => {
            return Err(format!(
                "unknown curve {name:?}: use X25519, CurveP256, CurveP384 or CurveP521"
            ))
        }
    }))
}

/// Everything `build` needs, already read from files.
pub struct TlsSettings {
    pub cert_chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub client_auth: ClientAuth,
    pub client_cas: Vec<CertificateDer<'static>>,
    pub min_version: Version,
    pub max_version: Version,
    /// TLS 1.2 suites in preference order; empty: rustls' defaults.
    pub cipher_suites: Vec<SupportedCipherSuite>,
    /// Empty: rustls' defaults.
    pub curves: Vec<&'static dyn rustls::crypto::SupportedKxGroup>,
    /// Client certificates must carry one of these SANs (DNS, URI or IP).
    pub client_allowed_sans: Vec<String>,
}

pub fn build(s: TlsSettings) -> Result<ServerConfig, String> {
    let mut provider = provider::default_provider();
    if !s.cipher_suites.is_empty() {
        let tls13 = provider
            .cipher_suites
            .iter()
            .filter(|c| matches!(c, SupportedCipherSuite::Tls13(_)))
            .copied();
        provider.cipher_suites = tls13.chain(s.cipher_suites.iter().copied()).collect();
    }
    if !s.curves.is_empty() {
        provider.kx_groups = s.curves.clone();
    }
    let provider = Arc::new(provider);

    let min = s.min_version.max(Version::Tls12);
    if s.max_version < min {
        return Err(
            "max_version is lower than min_version (rustls offers TLS12 and TLS13 only)".into(),
        );
    }
    let mut versions: Vec<&'static SupportedProtocolVersion> = Vec::new();
    if min <= Version::Tls12 && s.max_version >= Version::Tls12 {
        versions.push(&rustls::version::TLS12);
    }
    if s.max_version >= Version::Tls13 {
        versions.push(&rustls::version::TLS13);
    }

    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("TLS settings: {e}"))?;

    let verifier: Option<Arc<dyn ClientCertVerifier>> = match s.client_auth {
        ClientAuth::NoClientCert => None,
        ClientAuth::RequestClientCert | ClientAuth::RequireAnyClientCert => {
            Some(Arc::new(AnyClientCert {
                mandatory: s.client_auth == ClientAuth::RequireAnyClientCert,
                algorithms: provider.signature_verification_algorithms,
            }))
        }
        ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert => {
            let mut roots = RootCertStore::empty();
            for ca in &s.client_cas {
                roots
                    .add(ca.clone())
                    .map_err(|e| format!("client CA certificate: {e}"))?;
            }
            let mut b =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            if s.client_auth == ClientAuth::VerifyClientCertIfGiven {
                b = b.allow_unauthenticated();
            }
            Some(
                b.build()
                    .map_err(|e| format!("client CA certificates: {e}"))?,
            )
        }
    };
    let verifier = match (verifier, s.client_allowed_sans.is_empty()) {
        (Some(inner), false) => Some(Arc::new(AllowedSans {
            inner,
            allowed: s.client_allowed_sans.clone(),
        }) as Arc<dyn ClientCertVerifier>),
        (v, _) => v,
    };
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(s.cert_chain, s.key)
        .map_err(|e| format!("certificate and key: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // Resumption: a client sent away by a turn (see `limits`) comes back
    // with an abbreviated handshake instead of a full one, which under
    // overload costs more CPU than the requests it interleaves with.
    // Stateless tickets (TLS 1.3 and 1.2), under a key the ring ticketer
    // rotates every 6 hours, so they cost no memory per client; the
    // session-ID cache serves TLS 1.2 clients that do not take tickets.
    config.ticketer = provider::Ticketer::new().map_err(|e| format!("session tickets: {e}"))?;
    config.session_storage = rustls::server::ServerSessionMemoryCache::new(SESSION_CACHE);
    Ok(config)
}

/// TLS 1.2 sessions remembered by id (a few hundred bytes each).
const SESSION_CACHE: usize = 1024;

/// RequestClientCert / RequireAnyClientCert: ask for (or require) a client
/// certificate but do not check who issued it, like Go. The handshake
/// signature is still checked, so the client does hold the key.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `client_allowed_sans`: after the inner verifier accepted the chain, the
/// leaf must name one of the allowed DNS names, URIs or IP addresses.
#[derive(Debug)]
struct AllowedSans {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<String>,
}

impl ClientCertVerifier for AllowedSans {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }
    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let cert = webpki::EndEntityCert::try_from(end_entity).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
        })?;
        let names: Vec<&str> = cert
            .valid_dns_names()
            .chain(cert.valid_uri_names())
            .collect();
        let ok = self.allowed.iter().any(|want| {
            names.iter().any(|n| n == want)
                || want.parse::<std::net::IpAddr>().is_ok_and(|ip| {
                    cert.verify_is_valid_for_subject_name(&ServerName::IpAddress(ip.into()))
                        .is_ok()
                })
        });
        if ok {
            Ok(verified)
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName,
            ))
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Whether the mode needs `client_ca_file`.
pub fn needs_ca(auth: ClientAuth) -> bool {
    auth.verifies()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::{ClientConfig, ClientConnection};
    use rustls::{HandshakeKind, ServerConnection};

    /// A server config for a fresh self-signed `localhost` certificate, and
    /// a client config trusting it.
    fn configs(max_version: Version) -> (Arc<ServerConfig>, Arc<ClientConfig>) {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let server = build(TlsSettings {
            cert_chain: vec![cert.cert.der().clone()],
            key: parse_key(cert.signing_key.serialize_pem().as_bytes()).unwrap(),
            client_auth: ClientAuth::NoClientCert,
            client_cas: Vec::new(),
            min_version: Version::Tls12,
            max_version,
            cipher_suites: Vec::new(),
            curves: Vec::new(),
            client_allowed_sans: Vec::new(),
        })
        .unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(cert.cert.der().clone()).unwrap();
        let client = ClientConfig::builder_with_provider(Arc::new(provider::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        (Arc::new(server), Arc::new(client))
    }

    /// One handshake in memory, with the tickets the server sends after
    /// it delivered to the client; how the client saw it.
    fn handshake(server: &Arc<ServerConfig>, client: &Arc<ClientConfig>) -> HandshakeKind {
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut c = ClientConnection::new(client.clone(), name).unwrap();
        let mut s = ServerConnection::new(server.clone()).unwrap();
        // Bounded: a handshake is a few flights.
        for _ in 0..10 {
            let mut buf = Vec::new();
            while c.wants_write() {
                c.write_tls(&mut buf).unwrap();
            }
            let mut rd = buf.as_slice();
            while !rd.is_empty() {
                s.read_tls(&mut rd).unwrap();
                s.process_new_packets().unwrap();
            }
            let mut buf = Vec::new();
            while s.wants_write() {
                s.write_tls(&mut buf).unwrap();
            }
            let mut rd = buf.as_slice();
            while !rd.is_empty() {
                c.read_tls(&mut rd).unwrap();
                c.process_new_packets().unwrap();
            }
            if !c.is_handshaking() && !s.is_handshaking() && !s.wants_write() && !c.wants_write() {
                break;
            }
        }
        assert!(!c.is_handshaking() && !s.is_handshaking());
        c.handshake_kind().unwrap()
    }

    #[test]
    fn a_returning_client_resumes_its_session() {
        for max in [Version::Tls13, Version::Tls12] {
            let (server, client) = configs(max);
            // Stateless tickets: resumption does not depend on a cache
            // that a flood of clients would wash out.
            assert!(server.ticketer.enabled());
            assert_eq!(handshake(&server, &client), HandshakeKind::Full, "{max:?}");
            assert_eq!(
                handshake(&server, &client),
                HandshakeKind::Resumed,
                "{max:?}"
            );
        }
    }
}
