//! The open-file limit: a flood of clients never takes the descriptor the
//! sidecar needs to dial Redis.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;
use redis_health::open_files::RESERVED;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc};

const OPEN_FILES: u64 = 256;
const CLIENTS: usize = 300;
const PROBE: &[u8] = b"GET /health/redis HTTP/1.1\r\nHost: x\r\n\r\n";

/// Reads one answer (head and the small body arrive together).
async fn read_answer(stream: &mut TcpStream) -> String {
    let mut buf = vec![0u8; 4096];
    let n = stream.read(&mut buf).await.unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn is_ok(answer: &str) -> bool {
    answer.starts_with("HTTP/1.1 200") && answer.contains(r#"{"status":"ok""#)
}

/// The binary run by a shell that sets the open-file limit first
/// (`ulimit_args`: `-n 256` sets soft and hard, `-Sn 256` the soft one).
async fn start_limited(ulimit_args: &str, envs: &[(&str, &str)]) -> TestBinary {
    let mut command = Command::new("sh");
    command.args([
        "-c",
        &format!("ulimit {ulimit_args} && exec \"$0\""),
        env!("CARGO_BIN_EXE_redis-health"),
    ]);
    TestBinary::start_command(command, envs).await
}

/// (soft, hard) open-file limits of a process, from /proc.
fn open_file_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .expect("open files line");
    let mut fields = line["Max open files".len()..].split_whitespace();
    let mut next = || fields.next().expect("limit").to_owned();
    (next(), next())
}

#[tokio::test]
async fn the_soft_open_file_limit_is_raised_to_the_hard_limit() {
    let binary = start_limited(&format!("-Sn {OPEN_FILES}"), &[]).await;
    let (soft, hard) = open_file_limits(binary.pid());
    assert_eq!(soft, hard, "soft limit not raised");
    assert_ne!(soft, OPEN_FILES.to_string());
    let logs = binary.stop();
    assert!(!logs.contains("capped"), "{logs}");
}

#[tokio::test]
async fn under_ulimit_256_a_flood_of_clients_leaves_room_to_reach_redis() {
    let redis = TestRedis::start();
    let url = redis.url();
    let binary = start_limited(
        &format!("-n {OPEN_FILES}"),
        &[
            ("REDIS_HEALTH_REDIS__URL", &url),
            ("REDIS_HEALTH_SERVER__HEADER_READ_TIMEOUT", "60s"),
            ("REDIS_HEALTH_CHECKS__MAX_AGE", "10ms"),
        ],
    )
    .await;
    let cap = usize::try_from(OPEN_FILES - RESERVED).expect("small");
    assert_eq!(binary.get("/health/redis").await.0, 200);

    // More clients than the limit, each sending a probe on a kept-alive
    // connection; the sidecar serves `cap` and the rest wait.
    let (answered, mut answers) = mpsc::unbounded_channel();
    let (ask_again, _) = broadcast::channel::<usize>(CLIENTS);
    for index in 0..CLIENTS {
        let mut stream = TcpStream::connect(("127.0.0.1", binary.port))
            .await
            .expect("connect");
        stream.write_all(PROBE).await.expect("send");
        let answered = answered.clone();
        let mut asked = ask_again.subscribe();
        tokio::spawn(async move {
            let answer = read_answer(&mut stream).await;
            let _ = answered.send((index, answer));
            // Holds the connection, and its slot, to the end of the test;
            // probes again on it when asked.
            while let Ok(which) = asked.recv().await {
                if which == index && stream.write_all(PROBE).await.is_ok() {
                    let answer = read_answer(&mut stream).await;
                    let _ = answered.send((index, answer));
                }
            }
        });
    }
    let mut served = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while served.len() < cap {
        let left = deadline.saturating_duration_since(Instant::now());
        let (index, answer) = tokio::time::timeout(left, answers.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {cap} served", served.len()))
            .expect("answers");
        assert!(is_ok(&answer), "client {index}: {answer:?}");
        served.push(index);
    }
    // The sidecar's Redis connection drops, so the next check must dial
    // again while every slot is taken. The descriptor it freed stays free:
    // no waiting client is accepted with it, even after the accept loop's
    // 1 s retry after a failed accept.
    redis.cmd(&["CLIENT", "KILL", "TYPE", "normal"]);
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), answers.recv())
            .await
            .is_err(),
        "more than {cap} clients served at once"
    );
    // A client holding a slot asks again.
    ask_again.send(served[0]).expect("clients listening");
    let again = async {
        loop {
            match answers.recv().await {
                Some((index, answer)) if index == served[0] => return answer,
                Some(_) => {}
                None => return String::new(),
            }
        }
    };
    let answer = tokio::time::timeout(Duration::from_secs(10), again)
        .await
        .expect("answered again");
    assert!(is_ok(&answer), "{answer:?}");
    let logs = binary.stop();
    assert!(!logs.contains("Too many open files"), "{logs}");
    assert!(
        logs.contains("server.max_connections capped below the open-file limit"),
        "{logs}"
    );
}
