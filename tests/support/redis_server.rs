//! Private `redis-server` processes for tests: a single node (optionally persistent, to
//! survive restarts) and a 3-master cluster, each on free loopback ports, killed on drop.
//! Never the machine's own server.
#![allow(dead_code)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::tools::{self, free_port};

/// `redis-server`'s path, or `None` (after saying so loudly) when it is not installed.
/// Under `CI=true` a missing binary is a failure, not a skip.
pub(crate) fn redis_server_binary() -> Option<PathBuf> {
    tools::required(
        tools::on_path("redis-server"),
        "redis-server",
        "apt-get install -y redis-server redis-tools",
    )
}

fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tja-redis-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a command through redis-cli on `port` (test inspection only).
pub(crate) fn cli_port(port: u16, args: &[&str]) -> String {
    cli(port, args)
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli (apt-get install redis-tools)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn spawn(binary: &Path, port: u16, dir: &Path, extra: &[&str]) -> Child {
    let child = Command::new(binary)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--protected-mode",
            "no",
        ])
        .arg("--dir")
        .arg(dir)
        .args(["--save", "", "--logfile", "redis.log", "--daemonize", "no"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start redis-server");
    wait_until(
        &format!("redis-server on port {port}"),
        Duration::from_secs(10),
        || TcpStream::connect(("127.0.0.1", port)).is_ok() && cli(port, &["PING"]).trim() == "PONG",
    );
    child
}

/// Kills `pid` once this test process has exited: servers shared through a `static` are never
/// dropped. Only for processes nothing else kills (a reused pid would be hit otherwise).
fn kill_when_we_exit(pid: u32) {
    let script = format!(
        "while kill -0 {} 2>/dev/null; do sleep 1; done; kill -9 {pid} 2>/dev/null",
        std::process::id()
    );
    let _ = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}

/// One `redis-server` on a free loopback port.
pub(crate) struct RedisServer {
    binary: PathBuf,
    port: u16,
    dir: PathBuf,
    persistent: bool,
    child: Option<Child>,
    /// With TLS: its port, and the CA (DER) that signed its certificate.
    tls: Option<(u16, Vec<u8>)>,
}

/// A throwaway CA and a certificate for 127.0.0.1 it signed, written as PEM files into
/// `dir`; the CA's DER.
fn make_certs(dir: &Path) -> Vec<u8> {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
    ca.der().to_vec()
}

impl RedisServer {
    /// A throwaway server (nothing on disk), or `None` when redis-server is missing.
    pub(crate) fn start() -> Option<RedisServer> {
        Self::launch(false)
    }

    /// One throwaway server shared by every test of this test binary (each test uses its own
    /// users), or `None` when redis-server is missing. It lives until the process exits.
    pub(crate) fn shared() -> Option<&'static RedisServer> {
        static SHARED: std::sync::OnceLock<Option<RedisServer>> = std::sync::OnceLock::new();
        SHARED
            .get_or_init(|| {
                let server = Self::start()?;
                if let Some(child) = &server.child {
                    kill_when_we_exit(child.id());
                }
                Some(server)
            })
            .as_ref()
    }

    /// [`RedisServer::start_tls`], shared like [`RedisServer::shared`].
    pub(crate) fn shared_tls() -> Option<&'static RedisServer> {
        static SHARED: std::sync::OnceLock<Option<RedisServer>> = std::sync::OnceLock::new();
        SHARED
            .get_or_init(|| {
                let server = Self::start_tls()?;
                if let Some(child) = &server.child {
                    kill_when_we_exit(child.id());
                }
                Some(server)
            })
            .as_ref()
    }

    /// A server with an fsync-always append-only file, so a restart keeps everything.
    pub(crate) fn start_persistent() -> Option<RedisServer> {
        Self::launch(true)
    }

    /// A server that also speaks TLS on a port of its own, with a certificate for 127.0.0.1
    /// from a throwaway CA made here ([`RedisServer::tls_url`], [`RedisServer::ca_der`]).
    pub(crate) fn start_tls() -> Option<RedisServer> {
        let mut server = Self::new(false)?;
        let ca = make_certs(&server.dir);
        server.tls = Some((free_port(), ca));
        server.boot();
        Some(server)
    }

    fn launch(persistent: bool) -> Option<RedisServer> {
        let mut server = Self::new(persistent)?;
        server.boot();
        Some(server)
    }

    fn new(persistent: bool) -> Option<RedisServer> {
        Some(RedisServer {
            binary: redis_server_binary()?,
            port: free_port(),
            dir: temp_dir("node"),
            persistent,
            child: None,
            tls: None,
        })
    }

    fn boot(&mut self) {
        let mut args: Vec<String> = if self.persistent {
            vec![
                "--appendonly".into(),
                "yes".into(),
                "--appendfsync".into(),
                "always".into(),
            ]
        } else {
            vec!["--appendonly".into(), "no".into()]
        };
        if let Some((tls_port, _)) = &self.tls {
            let file = |name: &str| self.dir.join(name).display().to_string();
            args.extend([
                "--tls-port".into(),
                tls_port.to_string(),
                "--tls-cert-file".into(),
                file("server.pem"),
                "--tls-key-file".into(),
                file("server.key"),
                "--tls-ca-cert-file".into(),
                file("ca.pem"),
                "--tls-auth-clients".into(),
                "no".into(),
            ]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.child = Some(spawn(&self.binary, self.port, &self.dir, &args));
    }

    /// `rediss://127.0.0.1:<tls port>` (a server from [`RedisServer::start_tls`]).
    pub(crate) fn tls_url(&self) -> String {
        format!(
            "rediss://127.0.0.1:{}",
            self.tls.as_ref().expect("a TLS server").0
        )
    }

    /// The DER of the CA that signed the TLS certificate.
    pub(crate) fn ca_der(&self) -> &[u8] {
        &self.tls.as_ref().expect("a TLS server").1
    }

    /// `redis://127.0.0.1:<port>`.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Kills it (SIGKILL: no chance to save anything beyond what is already on disk).
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and directory.
    pub(crate) fn restart(&mut self) {
        self.kill();
        self.boot();
    }

    /// Runs a command through redis-cli (test inspection only).
    pub(crate) fn cli(&self, args: &[&str]) -> String {
        cli(self.port, args)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis Cluster of three masters (no replicas) on free loopback ports.
pub(crate) struct RedisCluster {
    nodes: Vec<(u16, Child)>,
    dir: PathBuf,
}

impl RedisCluster {
    /// Starts and forms the cluster, or `None` when redis-server is missing.
    pub(crate) fn start() -> Option<RedisCluster> {
        let binary = redis_server_binary()?;
        let dir = temp_dir("cluster");
        let mut nodes = Vec::new();
        for i in 0..3 {
            let port = free_port();
            let node_dir = dir.join(format!("n{i}"));
            std::fs::create_dir_all(&node_dir).unwrap();
            let child = spawn(
                &binary,
                port,
                &node_dir,
                &[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--appendonly",
                    "no",
                ],
            );
            nodes.push((port, child));
        }
        let addrs: Vec<String> = nodes.iter().map(|(p, _)| format!("127.0.0.1:{p}")).collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create");
        assert!(
            out.status.success(),
            "cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = RedisCluster { nodes, dir };
        for (port, _) in &cluster.nodes {
            wait_until("cluster_state:ok", Duration::from_secs(20), || {
                cli(*port, &["CLUSTER", "INFO"]).contains("cluster_state:ok")
            });
        }
        Some(cluster)
    }

    /// One cluster shared by every test of this test binary, as [`RedisServer::shared`].
    pub(crate) fn shared() -> Option<&'static RedisCluster> {
        static SHARED: std::sync::OnceLock<Option<RedisCluster>> = std::sync::OnceLock::new();
        SHARED
            .get_or_init(|| {
                let cluster = Self::start()?;
                for (_, child) in &cluster.nodes {
                    kill_when_we_exit(child.id());
                }
                Some(cluster)
            })
            .as_ref()
    }

    /// `redis-cluster://127.0.0.1:<p1>?node=127.0.0.1:<p2>&node=…`.
    pub(crate) fn url(&self) -> String {
        let mut url = format!("redis-cluster://127.0.0.1:{}", self.nodes[0].0);
        for (i, (port, _)) in self.nodes.iter().enumerate().skip(1) {
            url.push(if i == 1 { '?' } else { '&' });
            url.push_str(&format!("node=127.0.0.1:{port}"));
        }
        url
    }

    /// The node ports.
    pub(crate) fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|(p, _)| *p).collect()
    }

    /// Runs a command on one node through redis-cli.
    pub(crate) fn cli(port: u16, args: &[&str]) -> String {
        cli(port, args)
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for (_, child) in &mut self.nodes {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A primary, one replica and three Sentinels (`redis-server --sentinel`) monitoring them
/// as `tja`, all on free loopback ports.
pub(crate) struct RedisSentinel {
    primary: Option<(u16, Child)>,
    replica: (u16, Child),
    sentinels: Vec<(u16, Child)>,
    dir: PathBuf,
}

impl RedisSentinel {
    /// Starts everything and waits until the replica is in sync and the Sentinels agree.
    pub(crate) fn start() -> Option<RedisSentinel> {
        let binary = redis_server_binary()?;
        let dir = temp_dir("sentinel");
        let (p, r) = (free_port(), free_port());
        std::fs::create_dir_all(dir.join("p")).unwrap();
        std::fs::create_dir_all(dir.join("r")).unwrap();
        let primary = spawn(&binary, p, &dir.join("p"), &["--appendonly", "no"]);
        let replica = spawn(
            &binary,
            r,
            &dir.join("r"),
            &["--appendonly", "no", "--replicaof", "127.0.0.1", &p.to_string()],
        );
        wait_until("the replica in sync", Duration::from_secs(20), || {
            cli(r, &["INFO", "replication"]).contains("master_link_status:up")
        });
        let mut sentinels = Vec::new();
        for i in 0..3 {
            let port = free_port();
            let conf = dir.join(format!("sentinel-{i}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {}\n\
                     sentinel monitor tja 127.0.0.1 {p} 2\n\
                     sentinel down-after-milliseconds tja 1000\n\
                     sentinel failover-timeout tja 5000\n\
                     sentinel parallel-syncs tja 1\n",
                    dir.display()
                ),
            )
            .unwrap();
            let child = Command::new(&binary)
                .arg(&conf)
                .arg("--sentinel")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start redis-server --sentinel");
            wait_until(&format!("sentinel on {port}"), Duration::from_secs(10), || {
                TcpStream::connect(("127.0.0.1", port)).is_ok() && cli(port, &["PING"]).trim() == "PONG"
            });
            sentinels.push((port, child));
        }
        let setup = RedisSentinel {
            primary: Some((p, primary)),
            replica: (r, replica),
            sentinels,
            dir,
        };
        wait_until(
            "the sentinels to see each other and the replica",
            Duration::from_secs(30),
            || {
                let master = cli(setup.sentinels[0].0, &["SENTINEL", "MASTER", "tja"]);
                let field = |name: &str| {
                    let lines: Vec<&str> = master.lines().collect();
                    lines
                        .iter()
                        .position(|l| l.trim() == name)
                        .and_then(|i| lines.get(i + 1))
                        .map(|v| v.trim().to_owned())
                };
                field("num-other-sentinels").as_deref() == Some("2")
                    && field("num-slaves").as_deref() == Some("1")
            },
        );
        Some(setup)
    }

    /// `redis-sentinel://…` naming the three Sentinels and the service.
    pub(crate) fn url(&self) -> String {
        let mut url = format!("redis-sentinel://127.0.0.1:{}", self.sentinels[0].0);
        for (i, (port, _)) in self.sentinels.iter().enumerate().skip(1) {
            url.push(if i == 1 { '?' } else { '&' });
            url.push_str(&format!("node=127.0.0.1:{port}"));
        }
        url.push_str("&sentinelServiceName=tja");
        url
    }

    /// The port Sentinel currently names as the primary.
    pub(crate) fn primary_port(&self) -> Option<u16> {
        cli(
            self.sentinels[0].0,
            &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "tja"],
        )
        .lines()
        .nth(1)
        .and_then(|p| p.trim().parse().ok())
    }

    /// The replica's port.
    pub(crate) fn replica_port(&self) -> u16 {
        self.replica.0
    }

    /// Kills the primary (SIGKILL: nothing more is replicated or saved).
    pub(crate) fn kill_primary(&mut self) {
        if let Some((_, mut child)) = self.primary.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisSentinel {
    fn drop(&mut self) {
        self.kill_primary();
        for (_, child) in self
            .sentinels
            .iter_mut()
            .chain(std::iter::once(&mut self.replica))
        {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
