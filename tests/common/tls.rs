//! A Kafka broker behind TLS for the security tests: a private CA made with `openssl`, a tansu
//! broker (`$STREAMX_TEST_TANSU_BIN`) on a free port advertising a second free port, on which
//! Debian's `stunnel4` terminates TLS (optionally requiring client certificates). Every process
//! is stopped when its guard drops. A missing tool fails the test with what to install.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn tool(name: &str, package: &str) -> String {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "`{name}` is needed by the Kafka security tests: apt-get install {package} (scripts/test.sh does)"
    );
    name.to_string()
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run openssl");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Certificates in one directory: `ca.pem`/`ca.key` (the private CA), `other-ca.pem` (a CA
/// nobody's certificate is signed by), `server.pem`/`server.key` (SAN IP:127.0.0.1),
/// `wrong-host.pem`/`.key` (SAN DNS:elsewhere.invalid), `client.pem`/`client.key`, and
/// `truststore.p12` (the CA as a PKCS12 truststore, password `trustpw`).
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    pub fn new(dir: &Path) -> Pki {
        let openssl = tool("openssl", "openssl");
        let path = |f: &str| dir.join(f).to_string_lossy().into_owned();
        for ca in ["ca", "other-ca"] {
            run(Command::new(&openssl).args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN=StreamX test {ca}"),
                "-keyout",
                &path(&format!("{ca}.key")),
                "-out",
                &path(&format!("{ca}.pem")),
            ]));
        }
        for (name, san) in [
            ("server", "subjectAltName=IP:127.0.0.1"),
            ("wrong-host", "subjectAltName=DNS:elsewhere.invalid"),
            ("client", "extendedKeyUsage=clientAuth"),
        ] {
            run(Command::new(&openssl).args([
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &format!("/CN={name}"),
                "-keyout",
                &path(&format!("{name}.key")),
                "-out",
                &path(&format!("{name}.csr")),
            ]));
            std::fs::write(dir.join(format!("{name}.ext")), san).unwrap();
            run(Command::new(&openssl).args([
                "x509",
                "-req",
                "-days",
                "2",
                "-in",
                &path(&format!("{name}.csr")),
                "-CA",
                &path("ca.pem"),
                "-CAkey",
                &path("ca.key"),
                "-CAcreateserial",
                "-extfile",
                &path(&format!("{name}.ext")),
                "-out",
                &path(&format!("{name}.pem")),
            ]));
        }
        run(Command::new(&openssl).args([
            "pkcs12",
            "-export",
            "-nokeys",
            "-in",
            &path("ca.pem"),
            "-out",
            &path("truststore.p12"),
            "-passout",
            "pass:trustpw",
        ]));
        Pki {
            dir: dir.to_path_buf(),
        }
    }

    pub fn file(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }
}

/// Kills its process on drop.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A tansu broker listening in plain on `plain_port`, advertising `127.0.0.1:advertised_port`.
pub fn tansu(plain_port: u16, advertised_port: u16, log: &Path, extra: &[&str]) -> Process {
    let bin = std::env::var("STREAMX_TEST_TANSU_BIN").unwrap_or_else(|_| {
        panic!("STREAMX_TEST_TANSU_BIN is not set: start the services (scripts/services.sh up) and load /tmp/streamx-services/env")
    });
    let child = Command::new(bin)
        .args([
            "broker",
            "--listener-url",
            &format!("tcp://127.0.0.1:{plain_port}"),
            "--advertised-listener-url",
            &format!("tcp://127.0.0.1:{advertised_port}"),
            "--storage-engine",
            "memory://tansu/",
        ])
        .args(extra)
        .stdout(Stdio::from(std::fs::File::create(log).unwrap()))
        .stderr(Stdio::null())
        .spawn()
        .expect("start tansu");
    let p = Process(child);
    wait_for_port(plain_port, "tansu");
    p
}

/// stunnel in server mode on `tls_port`, forwarding to `backend_port`, presenting
/// `<cert>.pem`; with `client_ca`, clients must present a certificate that CA signed.
pub fn stunnel(
    pki: &Pki,
    tls_port: u16,
    backend_port: u16,
    cert: &str,
    client_ca: Option<&str>,
) -> Process {
    let bin = tool("stunnel4", "stunnel4");
    let verify = match client_ca {
        Some(ca) => format!("verify = 2\nCAfile = {}\n", pki.file(ca)),
        None => String::new(),
    };
    let conf = pki.dir.join(format!("stunnel-{tls_port}.conf"));
    std::fs::write(
        &conf,
        format!(
            "foreground = yes\npid =\ndebug = 3\noutput = {}\n[kafka]\naccept = 127.0.0.1:{tls_port}\nconnect = 127.0.0.1:{backend_port}\ncert = {}\nkey = {}\n{verify}",
            pki.file(&format!("stunnel-{tls_port}.log")),
            pki.file(&format!("{cert}.pem")),
            pki.file(&format!("{cert}.key")),
        ),
    )
    .unwrap();
    let child = Command::new(bin)
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start stunnel4");
    let p = Process(child);
    wait_for_port(tls_port, "stunnel4");
    p
}

fn wait_for_port(port: u16, what: &str) {
    super::wait_until(
        &format!("{what} on port {port}"),
        Duration::from_secs(20),
        || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
    );
}

/// A tansu broker reachable only over TLS at `servers`.
pub struct TlsBroker {
    pub servers: String,
    _stunnel: Process,
    _tansu: Process,
}

impl TlsBroker {
    /// tansu behind stunnel presenting `cert` (`server` or `wrong-host`), requiring client
    /// certificates signed by `client_ca` when given.
    pub fn start(pki: &Pki, cert: &str, client_ca: Option<&str>) -> TlsBroker {
        Self::start_with(pki, cert, client_ca, &[])
    }

    /// [`TlsBroker::start`] with more tansu arguments (e.g. `--authentication`).
    pub fn start_with(
        pki: &Pki,
        cert: &str,
        client_ca: Option<&str>,
        tansu_args: &[&str],
    ) -> TlsBroker {
        let (plain, tls) = (free_port(), free_port());
        let log = pki.dir.join(format!("tansu-{tls}.log"));
        let tansu = tansu(plain, tls, &log, tansu_args);
        let stunnel = stunnel(pki, tls, plain, cert, client_ca);
        TlsBroker {
            servers: format!("127.0.0.1:{tls}"),
            _stunnel: stunnel,
            _tansu: tansu,
        }
    }
}
