//! Temporal as in production: the worker and the webhook binaries reach Temporal over TLS with a
//! client certificate (mTLS) or with an API key, through HAProxy terminating TLS in front of the
//! dev server (`make test` installs it). HAProxy verifies client certificates against the test's
//! own CA and turns away calls without the API key.

use activities::config::{ClientIdentity, Secret, TemporalSecurity, TemporalTls};
use integration_tests::{binary, free_port, fresh_payment_id, test_ipn, worker_binary, TestApp};
use payout_starter::{cli::test_ipn as signing, temporal_gateway::TemporalGateway, webhook::SIGNATURE_HEADER};
use rust_decimal_macros::dec;
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use workflows::domain::PayoutStrategy;

const API_KEY: &str = "test-temporal-api-key";

/// A CA, a server certificate for 127.0.0.1 and two client certificates: one the CA signed, one
/// from a stranger's CA.
struct Certificates {
    dir: PathBuf,
}

impl Certificates {
    fn issue() -> Self {
        let dir = std::env::temp_dir().join(format!("payout-tls-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl").args(args).current_dir(&dir).output().expect("openssl must be installed");
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        for ca in ["ca", "stranger-ca"] {
            let subject = format!("/CN={ca}");
            openssl(
                &[
                    &["req", "-x509"][..],
                    &ec,
                    &["-keyout", &format!("{ca}.key"), "-out", &format!("{ca}.pem"), "-days", "2", "-subj", &subject],
                ]
                .concat(),
            );
        }
        std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n").unwrap();
        std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
        for (name, ca, ext) in [("server", "ca", "server.ext"), ("client", "ca", "client.ext"), ("stranger", "stranger-ca", "client.ext")] {
            openssl(
                &[&["req"][..], &ec, &["-keyout", &format!("{name}.key"), "-out", &format!("{name}.csr"), "-subj", &format!("/CN={name}")]]
                    .concat(),
            );
            openssl(&[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                &format!("{ca}.pem"),
                "-CAkey",
                &format!("{ca}.key"),
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                ext,
                "-out",
                &format!("{name}.pem"),
            ]);
        }
        let server = [std::fs::read(dir.join("server.pem")).unwrap(), std::fs::read(dir.join("server.key")).unwrap()].concat();
        std::fs::write(dir.join("server-with-key.pem"), server).unwrap();
        Self { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    fn security(&self, client: Option<&str>, api_key: Option<&str>) -> TemporalSecurity {
        let read = |name: &str| std::fs::read(self.dir.join(name)).unwrap();
        let client_identity = client.map(|name| ClientIdentity {
            cert_pem: read(&format!("{name}.pem")),
            key_pem: Secret::new(String::from_utf8(read(&format!("{name}.key"))).unwrap()),
        });
        TemporalSecurity {
            tls: Some(TemporalTls { server_ca_pem: Some(read("ca.pem")), client_identity, server_name: None }),
            api_key: api_key.map(Secret::new),
        }
    }
}

impl Drop for Certificates {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// HAProxy in front of the stack's Temporal server: TLS with required client certificates on
/// one port, TLS with a required API key on the other; gRPC (HTTP/2) passed through to Temporal.
struct TlsProxy {
    child: Child,
    mtls_port: u16,
    api_key_port: u16,
}

impl TlsProxy {
    fn start(certs: &Certificates, temporal_address: &str) -> Self {
        let (mtls_port, api_key_port) = (free_port(), free_port());
        let server = certs.path("server-with-key.pem");
        let config = format!(
            "global\n  log stderr format raw local0 warning\n\
             defaults\n  mode http\n  log global\n  timeout connect 5s\n  timeout client 10m\n  timeout server 10m\n\
             frontend mtls\n  bind 127.0.0.1:{mtls_port} ssl crt {server} ca-file {ca} verify required alpn h2\n  default_backend temporal\n\
             frontend api_key\n  bind 127.0.0.1:{api_key_port} ssl crt {server} alpn h2\n\
             \x20 http-request deny deny_status 401 unless {{ req.hdr(authorization) -m str \"Bearer {API_KEY}\" }}\n  default_backend temporal\n\
             backend temporal\n  server dev {temporal_address} proto h2\n",
            ca = certs.path("ca.pem"),
        );
        let path = certs.dir.join("haproxy.cfg");
        std::fs::write(&path, config).unwrap();
        // Debian puts it in /usr/sbin, which is not on every user's PATH.
        let haproxy = if Path::new("/usr/sbin/haproxy").exists() { "/usr/sbin/haproxy" } else { "haproxy" };
        let child = Command::new(haproxy)
            .args(["-db", "-f"])
            .arg(&path)
            .stdout(Stdio::null())
            .spawn()
            .expect("haproxy must be installed (make test installs it)");
        let proxy = Self { child, mtls_port, api_key_port };
        for port in [mtls_port, api_key_port] {
            wait_for_port(port);
        }
        proxy
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "haproxy did not open port {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A binary of the project, killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tls_env(certs: &Certificates, address: String) -> Vec<(String, String)> {
    vec![
        ("TEMPORAL_ADDRESS".into(), address),
        ("TEMPORAL_TLS_CA".into(), certs.path("ca.pem")),
        ("TEMPORAL_TLS_CERT".into(), certs.path("client.pem")),
        ("TEMPORAL_TLS_KEY".into(), certs.path("client.key")),
    ]
}

async fn ping(address: &str, namespace: &str, security: TemporalSecurity) -> Result<(), String> {
    let gateway =
        TemporalGateway::new(address, namespace, "unused", workflows::domain::PlatformFee::new(dec!(3)).unwrap()).with_security(security);
    gateway.ping(Duration::from_secs(5)).await.map_err(|e| e.to_string())
}

#[tokio::test]
async fn the_worker_and_the_webhook_process_a_payment_through_mtls_and_strangers_are_turned_away() {
    let certs = Certificates::issue();
    let app = TestApp::spawn_without_worker(integration_tests::config(), "127.0.0.1:1").await;
    let proxy = TlsProxy::start(&certs, &app.config.temporal_address.clone());
    let namespace = app.config.temporal_namespace.clone();
    let mtls = format!("127.0.0.1:{}", proxy.mtls_port);

    // The proxy verifies the client: no certificate, or one from another CA, gets nowhere.
    assert!(ping(&mtls, &namespace, certs.security(None, None)).await.is_err(), "no client certificate");
    assert!(ping(&mtls, &namespace, certs.security(Some("stranger"), None)).await.is_err(), "a stranger's certificate");
    ping(&mtls, &namespace, certs.security(Some("client"), None)).await.expect("our client certificate is let through");

    // The real binaries, configured only through the environment.
    app.add_client("-101701", PayoutStrategy::Threshold).await;
    let _worker = Running(
        Command::new(worker_binary())
            .envs(app.worker_env())
            .envs(tls_env(&certs, mtls.clone()))
            .env("RUST_LOG", "warn")
            .spawn()
            .expect("cannot start the worker binary"),
    );
    let http_port = free_port();
    let _webhook = Running(
        Command::new(binary("starter"))
            .arg("serve")
            .envs(app.worker_env())
            .envs(tls_env(&certs, mtls.clone()))
            .env("HTTP_ADDR", format!("127.0.0.1:{http_port}"))
            .env("RUST_LOG", "warn")
            .spawn()
            .expect("cannot start the starter binary"),
    );
    wait_for_port(http_port);
    let ready = reqwest::get(format!("http://127.0.0.1:{http_port}/ready")).await.unwrap();
    assert_eq!(ready.status().as_u16(), 200, "the webhook reaches Temporal through mTLS: {}", ready.text().await.unwrap_or_default());

    let payment_id = fresh_payment_id();
    let ipn = test_ipn(payment_id, "-101701", dec!(30), dec!(0.015));
    app.nowpayments_knows(&ipn.body()).await;
    let (body, signature) = signing::signed(&ipn, app.secret().expose());
    let answer = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{http_port}/webhooks/nowpayments"))
        .header("content-type", "application/json")
        .header(SIGNATURE_HEADER, signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    assert!(
        app.wait_for_status(payment_id, "accumulated", Duration::from_secs(90)).await,
        "the webhook started the workflow and the worker ran it, both through mTLS"
    );
}

#[tokio::test]
async fn an_api_key_is_sent_on_every_call_and_a_wrong_one_is_refused() {
    let certs = Certificates::issue();
    let app = TestApp::spawn_without_worker(integration_tests::config(), "127.0.0.1:1").await;
    let proxy = TlsProxy::start(&certs, &app.config.temporal_address.clone());
    let address = format!("127.0.0.1:{}", proxy.api_key_port);
    let namespace = &app.config.temporal_namespace;

    ping(&address, namespace, certs.security(None, Some(API_KEY))).await.expect("the right key is let through");
    let wrong = ping(&address, namespace, certs.security(None, Some("not-the-key"))).await;
    assert!(wrong.is_err(), "a wrong key is refused");
    assert!(ping(&address, namespace, certs.security(None, None)).await.is_err(), "no key is refused");

    // The worker binary with only TEMPORAL_API_KEY (and the CA) connects and stays up; with a
    // wrong key it stops at start-up, naming Temporal.
    let run_worker = |key: &str| {
        Command::new(worker_binary())
            .envs(app.worker_env())
            .env("TEMPORAL_ADDRESS", &address)
            .env("TEMPORAL_TLS_CA", certs.path("ca.pem"))
            .env("TEMPORAL_API_KEY", key)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start the worker binary")
    };
    let refused = run_worker("not-the-key").wait_with_output().expect("the worker ends");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && stderr.contains("Temporal"), "a wrong key stops the worker: {stderr}");
    let mut accepted = Running(run_worker(API_KEY));
    std::thread::sleep(Duration::from_secs(5));
    assert!(accepted.0.try_wait().unwrap().is_none(), "the right key keeps the worker running");
}
