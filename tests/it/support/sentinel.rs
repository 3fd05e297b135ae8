//! Sentinel processes for the tests: one, or a group watching one primary
//! as `mymaster`, each stoppable and signalable on its own.

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Server, free_port, resp_pipeline, send_signal};

/// One Sentinel process on its own free port and directory, killed on drop.
pub struct SentinelNode {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl SentinelNode {
    /// A Sentinel watching 127.0.0.1:`primary` as `mymaster` with `quorum`,
    /// quick to act: down after 1 s.
    pub fn start(primary: u16, quorum: u32) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let config = dir.path().join("sentinel.conf");
        // Sentinel rewrites its config file, so it must be its own, writable.
        std::fs::write(
            &config,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {dir}\nlogfile sentinel.log\n\
                 sentinel monitor mymaster 127.0.0.1 {primary} {quorum}\n\
                 sentinel down-after-milliseconds mymaster 1000\n\
                 sentinel failover-timeout mymaster 5000\n",
                dir = dir.path().display(),
            ),
        )
        .expect("write sentinel.conf");
        let child = Command::new(Server::Redis7.binary())
            .arg(&config)
            .arg("--sentinel")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sentinel");
        let node = Self {
            port,
            dir,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(node.addr()).is_err() {
            assert!(Instant::now() < deadline, "sentinel did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        node
    }

    /// `count` Sentinels on the same primary with the same quorum.
    pub fn group(primary: u16, count: usize, quorum: u32) -> Vec<Self> {
        (0..count).map(|_| Self::start(primary, quorum)).collect()
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// One command on a new connection; the reply as text.
    pub fn cmd(&self, args: &[&str]) -> String {
        resp_pipeline(self.addr(), args, 1)
            .pop()
            .unwrap_or_default()
    }

    /// The port Sentinel names as the primary of `mymaster` now.
    pub fn primary_port(&self) -> Option<u16> {
        self.cmd(&["SENTINEL", "get-master-addr-by-name", "mymaster"])
            .lines()
            .nth(1)
            .and_then(|port| port.parse().ok())
    }

    /// The `master0:` line of INFO, e.g. `name=mymaster,status=ok,...`.
    pub fn master0(&self) -> String {
        self.cmd(&["INFO", "sentinel"])
            .lines()
            .find_map(|line| line.strip_prefix("master0:"))
            .unwrap_or_default()
            .to_owned()
    }

    /// Sends a signal by name, e.g. "STOP".
    pub fn signal(&self, signal: &str) {
        let pid = self
            .child
            .as_ref()
            .map(Child::id)
            .expect("running sentinel");
        send_signal(pid, signal);
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The Sentinel's own log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sentinel.log")).unwrap_or_default()
    }
}

impl Drop for SentinelNode {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A primary, its replica with the link up, and three Sentinels (quorum 2)
/// that see both and each other.
pub async fn watched_pair() -> (super::TestRedis, super::TestRedis, Vec<SentinelNode>) {
    let primary = super::TestRedis::start();
    let replica = primary.replica(&[]);
    super::eventually("replica link up", Duration::from_secs(10), || {
        replica.info_field("master_link_status").as_deref() == Some("up")
    })
    .await;
    let sentinels = SentinelNode::group(primary.port, 3, 2);
    super::eventually(
        "sentinels see the replica and each other",
        Duration::from_secs(15),
        || {
            sentinels.iter().all(|s| {
                let master = s.master0();
                master.contains("slaves=1") && master.contains("sentinels=3")
            })
        },
    )
    .await;
    (primary, replica, sentinels)
}
