//! TLS and basic auth end to end: the real binary with a web config file in
//! the exporter-toolkit format, a CA and certificates made here with rcgen,
//! bcrypt hashes made here, and a rustls client. Loopback only.

mod common;

use base64::Engine as _;
use common::{run_to_exit, temp_config, Daemon};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::rustls::{self, pki_types};

/// Certificates for one test, as PEM files in a temp dir.
struct Pki {
    dir: tempfile::TempDir,
    ca: String,
    /// (cert PEM, key PEM) of a client certificate from the CA, SAN
    /// `prometheus.example`.
    client: (String, String),
    /// The same from a CA the server does not trust.
    rogue_client: (String, String),
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn leaf(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    sans: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let mut params =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, sans[0]);
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca("vitals test CA");
        let rogue = ca_rogue();
        let (server_cert, server_key) = leaf(
            &ca,
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        std::fs::write(dir.path().join("server.crt"), &server_cert).unwrap();
        std::fs::write(dir.path().join("server.key"), &server_key).unwrap();
        std::fs::write(dir.path().join("ca.crt"), ca.pem()).unwrap();
        Pki {
            client: leaf(
                &ca,
                &["prometheus.example"],
                ExtendedKeyUsagePurpose::ClientAuth,
            ),
            rogue_client: leaf(
                &rogue,
                &["prometheus.example"],
                ExtendedKeyUsagePurpose::ClientAuth,
            ),
            ca: ca.pem(),
            dir,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A web config in this directory, so relative cert paths resolve.
    fn web_config(&self, text: &str) -> PathBuf {
        temp_config(self.path(), "web.yml", text)
    }

    fn client(&self, cert: Option<&(String, String)>) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for c in certs(&self.ca) {
            roots.add(c).unwrap();
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
        Arc::new(match cert {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                use pki_types::pem::PemObject;
                let key = pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
                builder.with_client_auth_cert(certs(cert), key).unwrap()
            }
        })
    }
}

fn ca_rogue() -> CertifiedIssuer<'static, KeyPair> {
    ca("somebody else's CA")
}

fn certs(pem: &str) -> Vec<pki_types::CertificateDer<'static>> {
    use pki_types::pem::PemObject;
    pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap()
}

struct Resp {
    status: u16,
    head: String,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

fn parse(raw: &[u8]) -> Result<Resp, String> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no complete response: {text:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line: {head:?}"))?;
    Ok(Resp {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    })
}

fn request_text(path: &str, headers: &[(&str, &str)]) -> String {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req
}

/// One request over TLS; Err when the handshake or the exchange fails.
fn tls_get(
    addr: &str,
    client: Arc<rustls::ClientConfig>,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Resp, String> {
    let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let name = pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(client, name).map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(request_text(path, headers).as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        match tls.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            // The server may close without close_notify after a full answer.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => break,
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    parse(&raw)
}

/// One plain-HTTP request; Err when the server closes without an answer.
fn plain_get(addr: &str, path: &str, headers: &[(&str, &str)]) -> Result<Resp, String> {
    let mut tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(request_text(path, headers).as_bytes())
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    let _ = tcp.read_to_end(&mut raw);
    parse(&raw)
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// A config with only the host source on this machine's /proc, polled
/// rarely, plus `extra` YAML.
fn vitals_config(extra: &str) -> String {
    format!(
        "interval: 1h\ndefault_checks: false\nlog: {{level: debug}}\nsources:\n  host: {{enabled: true}}\n  cgroup: {{enabled: false}}\n{extra}"
    )
}

/// vitals on [`vitals_config`] with `extra`, serving with the web config
/// `web`; not waited for (its listener may speak only TLS).
fn start(web: &Path, extra: &str) -> Daemon {
    Daemon::spawn_in(
        tempfile::tempdir().unwrap(),
        &vitals_config(extra),
        &["--web.config.file", web.to_str().unwrap()],
        &[],
    )
}

#[test]
fn tls_scrape_works_and_plain_http_gets_no_metrics() {
    let pki = Pki::new();
    let web = pki.web_config(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS12\n",
    );
    let d = start(&web, "");
    let client = pki.client(None);
    d.wait_until("a TLS scrape", |_| {
        tls_get(&d.addr, client.clone(), "/metrics", &[]).is_ok_and(|r| r.status == 200)
    });
    let r = tls_get(&d.addr, client.clone(), "/metrics", &[]).unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body.contains("vitals_build_info"), "{}", r.body);

    // Plain HTTP to the TLS port: no HTTP answer at all, so no metrics.
    let plain = plain_get(&d.addr, "/metrics", &[]);
    assert!(
        plain.is_err(),
        "plain HTTP got an answer: {}",
        plain.unwrap().head
    );

    // A client that does not trust the server's CA cannot connect.
    let untrusting = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    assert!(tls_get(&d.addr, Arc::new(untrusting), "/metrics", &[]).is_err());
}

#[test]
fn mutual_tls_requires_a_certificate_from_the_client_ca() {
    let pki = Pki::new();
    let web = pki.web_config(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n",
    );
    let d = start(&web, "");
    let with_cert = pki.client(Some(&pki.client));
    d.wait_until("an mTLS scrape", |_| {
        tls_get(&d.addr, with_cert.clone(), "/metrics", &[]).is_ok_and(|r| r.status == 200)
    });
    let r = tls_get(&d.addr, with_cert, "/metrics", &[]).unwrap();
    assert!(r.body.contains("vitals_build_info"));

    let without = tls_get(&d.addr, pki.client(None), "/metrics", &[]);
    assert!(
        without.is_err(),
        "no client certificate, yet: {}",
        without.unwrap().head
    );
    let rogue = tls_get(
        &d.addr,
        pki.client(Some(&pki.rogue_client)),
        "/metrics",
        &[],
    );
    assert!(rogue.is_err(), "untrusted client CA, yet an answer");
}

#[test]
fn client_allowed_sans_limits_which_client_certificates_pass() {
    let pki = Pki::new();
    let web = pki.web_config(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_ca_file: ca.crt\n  client_allowed_sans: [grafana.example]\n",
    );
    let d = start(&web, "");
    // A valid client certificate from the right CA, but for another name.
    let r = tls_get(&d.addr, pki.client(Some(&pki.client)), "/metrics", &[]);
    assert!(r.is_err(), "SAN not allowed, yet: {}", r.unwrap().head);

    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_ca_file: ca.crt\n  client_allowed_sans: [grafana.example, prometheus.example]\n",
    )
    .unwrap();
    d.signal("HUP");
    let client = pki.client(Some(&pki.client));
    d.wait_until("the allowed SAN to pass after reload", |_| {
        tls_get(&d.addr, client.clone(), "/metrics", &[]).is_ok_and(|r| r.status == 200)
    });
}

#[test]
fn basic_auth_401_without_or_with_wrong_credentials_200_with_right_ones() {
    let dir = tempfile::tempdir().unwrap();
    let password = "correct horse battery staple";
    // Cost 4 keeps the test quick; the server accepts any cost.
    let hash = bcrypt::hash(password, 4).unwrap();
    let web = temp_config(
        dir.path(),
        "web.yml",
        &format!("basic_auth_users:\n  prometheus: {hash}\n"),
    );
    let d = start(&web, "");

    let none = plain_get(&d.addr, "/metrics", &[]).unwrap();
    assert_eq!(none.status, 401);
    assert_eq!(
        none.header("WWW-Authenticate").as_deref(),
        Some("Basic realm=\"vitals\"")
    );
    assert!(!none.body.contains("vitals_"));

    let wrong_pw = basic("prometheus", "Correct horse battery staple");
    let wrong = plain_get(&d.addr, "/metrics", &[("Authorization", &wrong_pw)]).unwrap();
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("WWW-Authenticate").is_some());
    let wrong_user = basic("grafana", password);
    let r = plain_get(&d.addr, "/metrics", &[("Authorization", &wrong_user)]).unwrap();
    assert_eq!(r.status, 401);

    let right = basic("prometheus", password);
    for _ in 0..3 {
        // The second and third are answered from the credential cache.
        let ok = plain_get(&d.addr, "/metrics", &[("Authorization", &right)]).unwrap();
        assert_eq!(ok.status, 200);
        assert!(ok.body.contains("vitals_build_info"));
    }

    // Health endpoints need credentials too, by default.
    assert_eq!(plain_get(&d.addr, "/health/live", &[]).unwrap().status, 401);
    assert_eq!(
        plain_get(&d.addr, "/health/live", &[("Authorization", &right)])
            .unwrap()
            .status,
        200
    );

    let log = d.log();
    assert!(log.contains("web settings in effect"), "{log}");
    for secret in [password, hash.as_str(), &right, &wrong_pw, &right[6..]] {
        assert!(!log.contains(secret), "log shows a credential:\n{log}");
    }
}

#[test]
fn health_endpoints_can_be_exempt_from_auth() {
    let dir = tempfile::tempdir().unwrap();
    let hash = bcrypt::hash("pw", 4).unwrap();
    let web = temp_config(
        dir.path(),
        "web.yml",
        &format!("basic_auth_users:\n  prometheus: {hash}\n"),
    );
    let d = start(&web, "web:\n  health_without_auth: true\n");
    assert_eq!(plain_get(&d.addr, "/health/live", &[]).unwrap().status, 200);
    let ready = plain_get(&d.addr, "/health/ready", &[]).unwrap().status;
    assert!(ready == 200 || ready == 503, "{ready}");
    // Everything else still needs them.
    assert_eq!(plain_get(&d.addr, "/metrics", &[]).unwrap().status, 401);
    assert_eq!(plain_get(&d.addr, "/status", &[]).unwrap().status, 401);
}

#[test]
fn a_bad_web_config_on_reload_keeps_the_old_one_and_a_change_is_picked_up() {
    let dir = tempfile::tempdir().unwrap();
    let old_hash = bcrypt::hash("old-password", 4).unwrap();
    let web = temp_config(
        dir.path(),
        "web.yml",
        &format!("basic_auth_users:\n  alice: {old_hash}\n"),
    );
    let d = start(&web, "");
    let old = basic("alice", "old-password");
    assert_eq!(
        plain_get(&d.addr, "/metrics", &[("Authorization", &old)])
            .unwrap()
            .status,
        200
    );

    // A plaintext password where a hash belongs: refused, old one stays.
    std::fs::write(&web, "basic_auth_users:\n  alice: new-plaintext-password\n").unwrap();
    let mut post = TcpStream::connect(&d.addr).unwrap();
    post.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        post,
        "POST /-/reload HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\nAuthorization: {old}\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    let _ = post.read_to_end(&mut raw);
    let reload = parse(&raw).unwrap();
    assert_eq!(reload.status, 400, "{}", reload.body);
    assert!(reload.body.contains("web.yml:2:"), "{}", reload.body);
    assert!(reload.body.contains("bcrypt"), "{}", reload.body);
    assert_eq!(
        plain_get(&d.addr, "/metrics", &[("Authorization", &old)])
            .unwrap()
            .status,
        200
    );
    assert_eq!(plain_get(&d.addr, "/metrics", &[]).unwrap().status, 401);

    // A good new file, with no signal: picked up by the change check.
    let new_hash = bcrypt::hash("new-password", 4).unwrap();
    std::fs::write(&web, format!("basic_auth_users:\n  alice: {new_hash}\n")).unwrap();
    let new = basic("alice", "new-password");
    d.wait_until("the changed web config to apply", |_| {
        plain_get(&d.addr, "/metrics", &[("Authorization", &new)]).is_ok_and(|r| r.status == 200)
    });
    assert_eq!(
        plain_get(&d.addr, "/metrics", &[("Authorization", &old)])
            .unwrap()
            .status,
        401
    );

    let log = d.log();
    assert!(log.contains("web config"), "{log}");
    for secret in [
        "old-password",
        "new-password",
        "new-plaintext-password",
        old_hash.as_str(),
        new_hash.as_str(),
        &old[6..],
        &new[6..],
    ] {
        assert!(!log.contains(secret), "log shows {secret:?}:\n{log}");
    }
}

#[test]
fn a_bad_web_config_at_start_exits_64_with_a_position() {
    let dir = tempfile::tempdir().unwrap();
    let web = temp_config(
        dir.path(),
        "web.yml",
        "tls_server_config:\n  cert_file: nowhere.crt\n  key_file: nowhere.key\n",
    );
    let config = temp_config(dir.path(), "vitals.yaml", &vitals_config(""));
    let (status, _, stderr) = run_to_exit(&[
        "--config",
        config.to_str().unwrap(),
        "--web.config.file",
        web.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(status.code(), Some(64), "{stderr}");
    let want = format!(
        "{}:2:14: tls_server_config.cert_file: cannot read",
        web.display()
    );
    assert!(stderr.contains(&want), "{stderr}");
}
