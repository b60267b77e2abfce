//! Encrypted, verified connections to every database, and credentials that
//! rotate: the PostgreSQL, PgBouncer and Redis sources against real servers
//! with TLS, certificates made here with rcgen.
//!
//! One PostgreSQL 15 cluster (with PgBouncer) for the binary: the first
//! cases run while it has no TLS (`prefer` falls back to plain text,
//! `require` is refused), then it is restarted with `ssl = on` and a
//! `pg_hba.conf` of `hostssl` lines only (one with `cert` authentication),
//! PgBouncer with `client_tls_sslmode = require`. One Redis 7 with
//! `port 0` and a `tls-port` (TLS only), an ACL user and the default user
//! off. `VITALS_CASE=name` picks cases.

mod common;
#[macro_use]
mod support;

use common::{last_error, sample, Daemon};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::source::{pg_config, round};
use support::{block_on, Cluster, Options, MONITOR_PASSWORD, MONITOR_USER};
use vitals::collectors::pgbouncer::PgBouncerSource;
use vitals::collectors::postgres::PostgresSource;
use vitals::collectors::redis::RedisSource;
use vitals::collectors::Source;
use vitals::config::{self, Dsn};
use vitals::metrics::Output;

/// The ACL user's password on the Redis server.
const REDIS_ACL_PASSWORD: &str = "R3dis-Acl-Secret-7q";
/// A value passed as an argument to a password command: never shown.
const COMMAND_ARG_SECRET: &str = "Arg-Secret-Profile-4x";
/// The user that logs in with a client certificate (its CN).
const CERT_USER: &str = "certuser";

/// Everything the cases share.
struct Env {
    cluster: Cluster,
    pki: Pki,
    redis: Option<Redis>,
}

/// PEM files in a directory the servers can read.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
    fn show(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

fn new_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A leaf certificate (PEM cert, PEM key); `expired` puts its validity in
/// 2000.
fn leaf(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    cn: &str,
    sans: &[&str],
    usage: ExtendedKeyUsagePurpose,
    expired: bool,
) -> (String, String) {
    let mut params =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = vec![usage];
    if expired {
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2000, 6, 1);
    }
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// ca.crt (trusted), rogue-ca.crt (another CA), server.{crt,key} for
/// `localhost` only (so `127.0.0.1` is the wrong name), client.{crt,key}
/// and expired.{crt,key} for [`CERT_USER`].
fn make_pki(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let ca = new_ca("vitals db test CA");
    let rogue = new_ca("a CA nobody trusts");
    std::fs::write(dir.join("ca.crt"), ca.pem()).unwrap();
    std::fs::write(dir.join("rogue-ca.crt"), rogue.pem()).unwrap();
    let files = [
        (
            "server",
            leaf(
                &ca,
                "localhost",
                &["localhost"],
                ExtendedKeyUsagePurpose::ServerAuth,
                false,
            ),
        ),
        (
            "client",
            leaf(
                &ca,
                CERT_USER,
                &["vitals.example"],
                ExtendedKeyUsagePurpose::ClientAuth,
                false,
            ),
        ),
        (
            "expired",
            leaf(
                &ca,
                CERT_USER,
                &["vitals.example"],
                ExtendedKeyUsagePurpose::ClientAuth,
                true,
            ),
        ),
    ];
    for (name, (cert, key)) in files {
        std::fs::write(dir.join(format!("{name}.crt")), cert).unwrap();
        let key_path = dir.join(format!("{name}.key"));
        std::fs::write(&key_path, key).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// Turns TLS on: `ssl = on`, `hostssl` lines only, and PgBouncer requiring
/// TLS from its clients (and using it to the server); restarts both.
fn enable_tls(c: &Cluster, pki: &Pki) {
    let conf = c.primary.data.join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str(&format!(
        "\nssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\nssl_ca_file = '{}'\n",
        pki.show("server.crt"),
        pki.show("server.key"),
        pki.show("ca.crt"),
    ));
    std::fs::write(&conf, text).unwrap();
    std::fs::write(
        c.primary.data.join("pg_hba.conf"),
        format!(
            "local all all trust\n\
             hostssl postgres {CERT_USER} 127.0.0.1/32 cert\n\
             hostssl all all 127.0.0.1/32 scram-sha-256\n"
        ),
    )
    .unwrap();
    let ini = c.root().join("pgbouncer.ini");
    let mut text = std::fs::read_to_string(&ini).unwrap();
    text.push_str(&format!(
        "client_tls_sslmode = require\n\
         client_tls_cert_file = {}\n\
         client_tls_key_file = {}\n\
         client_tls_ca_file = {}\n\
         server_tls_sslmode = require\n",
        pki.show("server.crt"),
        pki.show("server.key"),
        pki.show("ca.crt"),
    ));
    std::fs::write(&ini, text).unwrap();
    if c.as_postgres() {
        support::chown_postgres(c.root());
    }
    c.stop_bouncer();
    c.stop_primary();
    c.start_primary();
    c.start_bouncer();
    c.psql(
        c.primary.port,
        &format!("CREATE ROLE {CERT_USER} LOGIN IN ROLE pg_monitor"),
    );
}

/// A redis-server with TLS only, killed on drop.
struct Redis {
    port: u16,
    child: Child,
    password_file: PathBuf,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_redis(dir: &Path, pki: &Pki) -> Redis {
    let port = support::free_port();
    let conf = dir.join("redis.conf");
    std::fs::write(
        &conf,
        format!(
            "port 0\n\
             tls-port {port}\n\
             bind 127.0.0.1\n\
             tls-cert-file {}\n\
             tls-key-file {}\n\
             tls-ca-cert-file {}\n\
             tls-auth-clients optional\n\
             save \"\"\n\
             appendonly no\n\
             dir {}\n\
             user default off\n\
             user vitals on >{REDIS_ACL_PASSWORD} ~* &* +@all\n",
            pki.show("server.crt"),
            pki.show("server.key"),
            pki.show("ca.crt"),
            dir.display(),
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("redis.log")).unwrap();
    let child = Command::new("/usr/bin/redis-server")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("starting redis-server (Debian package redis-server)");
    let password_file = dir.join("redis-acl.pw");
    std::fs::write(&password_file, format!("{REDIS_ACL_PASSWORD}\n")).unwrap();
    let redis = Redis {
        port,
        child,
        password_file,
    };
    let until = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "redis-server did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    redis
}

#[test]
fn db_tls_suite() {
    let cluster = Cluster::start(Options {
        standby: false,
        bouncer: true,
    });
    let pki = Pki {
        dir: cluster.root().join("pki"),
    };
    make_pki(&pki.dir);
    let mut env = Env {
        cluster,
        pki,
        redis: None,
    };
    // Reported at the end: the TLS cases run whatever happened here.
    let plain = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        support::run_cases(
            &env,
            &[
                ("prefer_falls_back_to_plain_text", prefer_falls_back),
                ("require_on_a_server_without_tls", require_without_tls),
            ],
        )
    }));
    enable_tls(&env.cluster, &env.pki);
    env.redis = Some(start_redis(env.cluster.root(), &env.pki));
    support::run_cases(
        &env,
        &[
            ("every_sslmode_on_a_tls_only_server", every_sslmode),
            ("verify_ca_with_the_right_and_a_wrong_ca", verify_ca),
            ("verify_full_checks_the_host_name", verify_full),
            ("client_certificate_and_rotation", client_certificate),
            ("password_command_that_rotates", password_command),
            ("pgbouncer_over_tls", pgbouncer_over_tls),
            ("redis_tls_and_acl_user", redis_tls),
            ("daemon_reports_and_never_leaks", daemon_surfaces),
        ],
    );
    assert!(plain.is_ok(), "a case on the server without TLS failed");
}

/// A PostgreSQL source on the cluster with `extra` DSN keys; its sessions
/// show `app` as application_name.
fn pg_source(env: &Env, app: &str, host: &str, extra: &str) -> PostgresSource {
    let mut config = pg_config(&env.cluster, env.cluster.primary.port, app);
    config.dsn = Dsn::parse(&format!(
        "host={host} port={} user={MONITOR_USER} dbname=postgres application_name={app} {extra}",
        env.cluster.primary.port
    ))
    .unwrap();
    PostgresSource::new(&config)
}

/// Whether the sessions named `app` use TLS, from pg_stat_ssl.
fn uses_tls(env: &Env, app: &str) -> String {
    env.cluster
        .psql(
            env.cluster.primary.port,
            &format!(
                "SELECT string_agg(s.ssl::text, ',') FROM pg_stat_ssl s \
                 JOIN pg_stat_activity a USING (pid) WHERE a.application_name = '{app}'"
            ),
        )
        .trim()
        .to_owned()
}

fn up(out: &Output, family: &str, target: &str) -> f64 {
    support::value(out, family, &[("target", target)])
}

/// One round that must fail; its message.
async fn failed_round<S: Source>(src: &mut S, family: &str, target: &str) -> String {
    let (out, result) = support::round(src).await;
    assert_eq!(up(&out, family, target), 0.0);
    result.expect_err("the round fails").to_string()
}

fn prefer_falls_back(env: &Env) {
    block_on(async {
        let mut src = pg_source(env, "plain_prefer", "127.0.0.1", "");
        let (out, result) = round(&mut src).await;
        result.expect("prefer connects in plain text to a server without TLS");
        assert_eq!(up(&out, "vitals_pg_up", "plain_prefer"), 1.0);
        assert_eq!(uses_tls(env, "plain_prefer"), "false");
    });
}

fn require_without_tls(env: &Env) {
    block_on(async {
        let mut src = pg_source(env, "plain_require", "127.0.0.1", "sslmode=require");
        let e = failed_round(&mut src, "vitals_pg_up", "plain_require").await;
        assert_eq!(
            e,
            format!(
                "postgres target plain_require: TLS: the server does not accept TLS connections (sslmode requires TLS) for 127.0.0.1:{}",
                env.cluster.primary.port
            )
        );
    });
}

fn every_sslmode(env: &Env) {
    block_on(async {
        let mut src = pg_source(env, "mode_disable", "127.0.0.1", "sslmode=disable");
        let e = failed_round(&mut src, "vitals_pg_up", "mode_disable").await;
        assert!(e.contains("no encryption"), "{e}");
        for mode in ["allow", "prefer", "require"] {
            let app = format!("mode_{mode}");
            let mut src = pg_source(env, &app, "127.0.0.1", &format!("sslmode={mode}"));
            let (out, result) = round(&mut src).await;
            result.unwrap_or_else(|e| panic!("sslmode={mode}: {e}"));
            assert_eq!(up(&out, "vitals_pg_up", &app), 1.0);
            assert_eq!(uses_tls(env, &app), "true", "sslmode={mode}");
        }
        // The default is prefer.
        let mut src = pg_source(env, "mode_default", "127.0.0.1", "");
        round(&mut src).await.1.expect("the default mode");
        assert_eq!(uses_tls(env, "mode_default"), "true");
        // One long-lived TLS connection: more rounds, the same session.
        let mut src = pg_source(env, "mode_long", "127.0.0.1", "sslmode=require");
        for _ in 0..3 {
            round(&mut src).await.1.expect("a round");
        }
        assert_eq!(uses_tls(env, "mode_long"), "true");
    });
}

fn verify_ca(env: &Env) {
    block_on(async {
        let port = env.cluster.primary.port;
        let right = format!("sslrootcert={}", env.pki.show("ca.crt"));
        let wrong = format!("sslrootcert={}", env.pki.show("rogue-ca.crt"));
        // verify-ca does not check the name: 127.0.0.1 is not in the
        // certificate.
        let mut src = pg_source(
            env,
            "ca_right",
            "127.0.0.1",
            &format!("sslmode=verify-ca {right}"),
        );
        round(&mut src)
            .await
            .1
            .expect("verify-ca with the right CA");
        let expected = |target: &str| {
            format!(
                "postgres target {target}: TLS: certificate verify failed (unknown issuer) for 127.0.0.1:{port}"
            )
        };
        let mut src = pg_source(
            env,
            "ca_wrong",
            "127.0.0.1",
            &format!("sslmode=verify-ca {wrong}"),
        );
        let e = failed_round(&mut src, "vitals_pg_up", "ca_wrong").await;
        assert_eq!(e, expected("ca_wrong"));
        // libpq: require with a root certificate verifies like verify-ca.
        let mut src = pg_source(
            env,
            "require_ca",
            "127.0.0.1",
            &format!("sslmode=require {wrong}"),
        );
        let e = failed_round(&mut src, "vitals_pg_up", "require_ca").await;
        assert_eq!(e, expected("require_ca"));
    });
}

fn verify_full(env: &Env) {
    block_on(async {
        let ca = format!("sslmode=verify-full sslrootcert={}", env.pki.show("ca.crt"));
        let mut src = pg_source(env, "full_right", "localhost", &ca);
        let (out, result) = round(&mut src).await;
        result.expect("verify-full with the name in the certificate");
        assert_eq!(up(&out, "vitals_pg_up", "full_right"), 1.0);
        assert_eq!(uses_tls(env, "full_right"), "true");
        let mut src = pg_source(env, "full_wrong", "127.0.0.1", &ca);
        let e = failed_round(&mut src, "vitals_pg_up", "full_wrong").await;
        assert_eq!(
            e,
            format!(
                "postgres target full_wrong: TLS: certificate verify failed (the certificate does not name this host) for 127.0.0.1:{}",
                env.cluster.primary.port
            )
        );
    });
}

/// `cert` authentication: the expired certificate is refused, the valid
/// one written over it on disk is used at the next reconnect.
fn client_certificate(env: &Env) {
    block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (crt, key) = (dir.path().join("me.crt"), dir.path().join("me.key"));
        std::fs::copy(env.pki.path("expired.crt"), &crt).unwrap();
        std::fs::copy(env.pki.path("expired.key"), &key).unwrap();
        let mut config = pg_config(&env.cluster, env.cluster.primary.port, "cert");
        config.password_file = None;
        config.dsn = Dsn::parse(&format!(
            "host=localhost port={} user={CERT_USER} dbname=postgres application_name=cert \
             sslmode=verify-full sslrootcert={} sslcert={} sslkey={}",
            env.cluster.primary.port,
            env.pki.show("ca.crt"),
            crt.display(),
            key.display()
        ))
        .unwrap();
        let mut src = PostgresSource::new(&config);
        let e = failed_round(&mut src, "vitals_pg_up", "cert").await;
        assert!(
            e.contains("TLS: the server refused the client certificate (certificate expired)"),
            "{e}"
        );
        // Rotated on disk; the next attempt (after the 1 s backoff) reads it.
        std::fs::copy(env.pki.path("client.crt"), &crt).unwrap();
        std::fs::copy(env.pki.path("client.key"), &key).unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let (out, result) = round(&mut src).await;
        result.expect("the rotated certificate is used");
        assert_eq!(up(&out, "vitals_pg_up", "cert"), 1.0);
        let who = env.cluster.psql(
            env.cluster.primary.port,
            "SELECT a.usename || ' ' || s.client_dn FROM pg_stat_ssl s \
             JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'cert'",
        );
        assert_eq!(who.trim(), format!("{CERT_USER} /CN={CERT_USER}"));
    });
}

/// A script printing the password from a file (its runs counted), as a
/// cloud CLI prints a token.
fn token_script(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (script, token, runs) = (dir.join("token.sh"), dir.join("token"), dir.join("runs"));
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho run >> {runs}\necho \"token for $1\" >&2\ncat {token}\n",
            runs = runs.display(),
            token = token.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, token, runs)
}

fn runs(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |t| t.lines().count())
}

/// The role's password changes: the cached output stops working at the
/// next reconnect, the command runs again and the new one is used.
fn password_command(env: &Env) {
    block_on(async {
        let c = &env.cluster;
        c.psql(
            c.primary.port,
            "CREATE ROLE rotating LOGIN PASSWORD 'Rot-Pass-One-11' IN ROLE pg_monitor",
        );
        let dir = tempfile::tempdir().unwrap();
        let (script, token, runs_file) = token_script(dir.path());
        std::fs::write(&token, "Rot-Pass-One-11\n").unwrap();
        let mut config = pg_config(c, c.primary.port, "rotating");
        config.password_file = None;
        config.password_command = Some(config::Argv(vec![
            script.display().to_string(),
            COMMAND_ARG_SECRET.to_owned(),
        ]));
        config.dsn = Dsn::parse(&format!(
            "host=127.0.0.1 port={} user=rotating dbname=postgres application_name=rotating sslmode=require",
            c.primary.port
        ))
        .unwrap();
        let mut src = PostgresSource::new(&config);
        round(&mut src).await.1.expect("the command's password");
        round(&mut src).await.1.expect("the same connection");
        assert_eq!(runs(&runs_file), 1, "run at connect only");

        c.psql(
            c.primary.port,
            "ALTER ROLE rotating PASSWORD 'Rot-Pass-Two-22'",
        );
        std::fs::write(&token, "Rot-Pass-Two-22\n").unwrap();
        c.psql(
            c.primary.port,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'rotating'",
        );
        // The reconnect uses the cached token (within its ttl) and fails;
        // the next attempt runs the command again.
        let e = eventually!(
            Duration::from_secs(10),
            Duration::from_millis(100),
            "a refused reconnect",
            {
                // The first round may see the terminated session itself.
                let (_, result) = round(&mut src).await;
                result
                    .err()
                    .map(|e| e.to_string())
                    .filter(|e| e.contains("password authentication failed"))
            }
        );
        assert!(!e.contains("Rot-Pass"), "{e}");
        tokio::time::sleep(Duration::from_millis(1100)).await;
        round(&mut src).await.1.expect("the new password");
        assert_eq!(runs(&runs_file), 2);

        // A failing command: a failed round naming its status only.
        std::fs::write(
            &script,
            "#!/bin/sh\necho Leaked-Output-9k\necho Leaked-Err-9k >&2\nexit 7\n",
        )
        .unwrap();
        let mut src = PostgresSource::new(&config);
        let e = failed_round(&mut src, "vitals_pg_up", "rotating").await;
        assert_eq!(
            e,
            format!(
                "postgres target rotating: password_command {}: failed with exit status: 7",
                script.display()
            )
        );
    });
}

fn pgbouncer_config(env: &Env, name: &str, extra: &str) -> config::PgBouncerConfig {
    config::PgBouncerConfig {
        name: name.to_owned(),
        dsn: Dsn::parse(&format!(
            "host=localhost port={} user={MONITOR_USER} dbname=pgbouncer {extra}",
            env.cluster.bouncer().port
        ))
        .unwrap(),
        password_file: Some(env.cluster.password_file.clone()),
        password_env: None,
        password_command: None,
        password_command_ttl: config::Duration::from_secs(600),
        interval: None,
        timeout: config::Duration::from_secs(2),
    }
}

fn pgbouncer_over_tls(env: &Env) {
    block_on(async {
        let ca = format!("sslmode=verify-full sslrootcert={}", env.pki.show("ca.crt"));
        let mut src = PgBouncerSource::new(&pgbouncer_config(env, "bouncer", &ca));
        let (out, result) = support::round(&mut src).await;
        result.expect("PgBouncer over verified TLS");
        assert_eq!(up(&out, "vitals_pgbouncer_up", "bouncer"), 1.0);
        assert!(
            out.value(
                "vitals_pgbouncer_pool_size",
                &[("target", "bouncer"), ("database", "app")]
            )
            .is_some(),
            "pools read over TLS"
        );
        let mut src = PgBouncerSource::new(&pgbouncer_config(env, "plain", "sslmode=disable"));
        let e = failed_round(&mut src, "vitals_pgbouncer_up", "plain").await;
        assert!(e.contains("SSL required"), "{e}");
        let wrong = format!(
            "sslmode=verify-ca sslrootcert={}",
            env.pki.show("rogue-ca.crt")
        );
        let mut src = PgBouncerSource::new(&pgbouncer_config(env, "wrong", &wrong));
        let e = failed_round(&mut src, "vitals_pgbouncer_up", "wrong").await;
        assert!(
            e.contains("TLS: certificate verify failed (unknown issuer) for localhost:"),
            "{e}"
        );
    });
}

fn redis_config(env: &Env, name: &str, tls: &str) -> config::RedisConfig {
    let redis = env.redis.as_ref().expect("redis started");
    let yaml = format!(
        "sources:\n  redis:\n    - name: {name}\n      address: \"127.0.0.1:{}\"\n      username: vitals\n      password_file: {}\n{tls}",
        redis.port,
        redis.password_file.display()
    );
    let mut c = config::parse_str(&yaml, "redis.yaml").unwrap_or_else(|e| panic!("{e}"));
    c.sources.redis.remove(0)
}

fn redis_tls(env: &Env) {
    block_on(async {
        let port = env.redis.as_ref().unwrap().port;
        let right = format!(
            "      tls: {{ca_file: {}, server_name: localhost}}\n",
            env.pki.show("ca.crt")
        );
        let mut src = RedisSource::new(&redis_config(env, "tls", &right));
        let (out, result) = support::round(&mut src).await;
        result.expect("Redis over TLS as the ACL user");
        assert_eq!(up(&out, "vitals_redis_up", "tls"), 1.0);
        // With a client certificate too (tls-auth-clients optional).
        let mutual = format!(
            "      tls: {{ca_file: {}, server_name: localhost, cert_file: {}, key_file: {}}}\n",
            env.pki.show("ca.crt"),
            env.pki.show("client.crt"),
            env.pki.show("client.key"),
        );
        let mut src = RedisSource::new(&redis_config(env, "mutual", &mutual));
        support::round(&mut src).await.1.expect("mutual TLS");

        // The ACL password from a command instead of the file.
        let mut config = redis_config(env, "command", &right);
        config.password_file = None;
        config.password_command = Some(config::Argv(vec![
            "cat".into(),
            env.redis
                .as_ref()
                .unwrap()
                .password_file
                .display()
                .to_string(),
        ]));
        let mut src = RedisSource::new(&config);
        support::round(&mut src)
            .await
            .1
            .expect("password_command for Redis");

        let wrong = format!(
            "      tls: {{ca_file: {}, server_name: localhost}}\n",
            env.pki.show("rogue-ca.crt")
        );
        let mut src = RedisSource::new(&redis_config(env, "wrong", &wrong));
        let e = failed_round(&mut src, "vitals_redis_up", "wrong").await;
        assert_eq!(
            e,
            format!("redis target wrong: TLS: certificate verify failed (unknown issuer) for 127.0.0.1:{port}")
        );
        // The name is checked: 127.0.0.1 is not in the certificate.
        let no_name = format!("      tls: {{ca_file: {}}}\n", env.pki.show("ca.crt"));
        let mut src = RedisSource::new(&redis_config(env, "no_name", &no_name));
        let e = failed_round(&mut src, "vitals_redis_up", "no_name").await;
        assert!(e.contains("does not name this host"), "{e}");
        let skip = "      tls: {insecure_skip_verify: true}\n";
        let mut src = RedisSource::new(&redis_config(env, "skip", skip));
        support::round(&mut src)
            .await
            .1
            .expect("insecure_skip_verify");
        // Plain text to a TLS-only port: refused.
        let mut src = RedisSource::new(&redis_config(env, "plain", ""));
        failed_round(&mut src, "vitals_redis_up", "plain").await;
    });
}

/// The daemon with a password-command target, a wrong-CA target and the
/// Redis TLS target: `up`, one warning line, the reason in `/status`, and
/// no password, command output or argument anywhere.
fn daemon_surfaces(env: &Env) {
    let c = &env.cluster;
    let dir = tempfile::tempdir().unwrap();
    let (script, token, _) = token_script(dir.path());
    std::fs::write(&token, format!("{MONITOR_PASSWORD}\n")).unwrap();
    let redis = env.redis.as_ref().unwrap();
    let config = format!(
        "listen: 127.0.0.1:{listen}\n\
         interval: 1s\n\
         sources:\n\
         \x20 host: {{enabled: false}}\n\
         \x20 cgroup: {{enabled: false}}\n\
         \x20 postgres:\n\
         \x20   - name: iam\n\
         \x20     dsn: \"host=localhost port={port} user={MONITOR_USER} dbname=postgres sslmode=verify-full sslrootcert={ca}\"\n\
         \x20     password_command: [{script}, {COMMAND_ARG_SECRET}]\n\
         \x20   - name: primary\n\
         \x20     dsn: \"host=127.0.0.1 port={port} user={MONITOR_USER} dbname=postgres sslmode=verify-ca sslrootcert={rogue}\"\n\
         \x20     password_file: {pw}\n\
         \x20 redis:\n\
         \x20   - name: cache\n\
         \x20     address: \"127.0.0.1:{redis_port}\"\n\
         \x20     username: vitals\n\
         \x20     password_file: {redis_pw}\n\
         \x20     tls: {{ca_file: {ca}, server_name: localhost}}\n",
        listen = support::free_port(),
        port = c.primary.port,
        ca = env.pki.show("ca.crt"),
        rogue = env.pki.show("rogue-ca.crt"),
        script = script.display(),
        pw = c.password_file.display(),
        redis_port = redis.port,
        redis_pw = redis.password_file.display(),
    );
    let d = Daemon::run_in(dir, &config, &[], &[("RUST_LOG", "debug")]);
    d.wait_until("every target reported", |d| {
        let text = d.get("/metrics").text();
        sample(&text, "vitals_pg_up", &[("target", "iam")]) == Some(1.0)
            && sample(&text, "vitals_pg_up", &[("target", "primary")]) == Some(0.0)
            && sample(&text, "vitals_redis_up", &[("target", "cache")]) == Some(1.0)
    });
    let seen = d.surfaces();
    let expected = format!(
        "postgres target primary: TLS: certificate verify failed (unknown issuer) for 127.0.0.1:{}",
        c.primary.port
    );
    let error = last_error(&seen.status, "postgres/primary").expect("an error in /status");
    assert!(error.starts_with(&expected), "{error}");
    let warnings: Vec<&str> = seen
        .log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("postgres target primary: cannot connect"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning per outage: {}", seen.log);
    assert!(
        warnings[0].contains("TLS: certificate verify failed (unknown issuer) for 127.0.0.1:"),
        "{}",
        warnings[0]
    );
    seen.assert_no_secret(&[
        MONITOR_PASSWORD,
        REDIS_ACL_PASSWORD,
        COMMAND_ARG_SECRET,
        "token for",
    ]);
    d.stop();
}
