//! SIGTERM and SIGINT against the real binary: stop accepting, finish the
//! probe in flight, exit 0.

use std::time::{Duration, Instant};

use crate::support::*;

#[tokio::test]
async fn a_signal_stops_accepting_finishes_the_probe_in_flight_and_exits_0() {
    for signal in ["TERM", "INT"] {
        let redis = TestRedis::start();
        let url = redis.url();
        let mut binary = TestBinary::start(&[
            ("REDIS_HEALTH_REDIS__URL", &url),
            ("REDIS_HEALTH_REDIS__TIMEOUT", "2s"),
            ("REDIS_HEALTH_CHECKS__MAX_AGE", "10ms"),
            ("REDIS_HEALTH_CHECKS__SAMPLE_INTERVAL", "1h"),
        ])
        .await;
        assert_eq!(binary.get("/health/redis").await.0, 200);

        // Freeze Redis and start a probe: its check waits on the frozen
        // server until redis.timeout.
        redis.signal("STOP");
        tokio::time::sleep(Duration::from_millis(20)).await; // max_age: the cached ok expires
        let in_flight = tokio::spawn({
            let url = binary.url("/health/redis");
            async move {
                let response = reqwest::get(url).await.expect("in-flight probe answered");
                let status = response.status().as_u16();
                (status, response.text().await.unwrap_or_default())
            }
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        while unread_bytes_at(redis.port) == 0 {
            assert!(
                Instant::now() < deadline,
                "the probe's PING never reached Redis"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        let signalled = Instant::now();
        binary.signal(signal);
        let addr = ("127.0.0.1", binary.port);
        while tokio::net::TcpStream::connect(addr).await.is_ok() {
            assert!(
                signalled.elapsed() < Duration::from_secs(1),
                "SIG{signal}: still accepting"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            !in_flight.is_finished(),
            "SIG{signal}: refusal seen only after the probe ended"
        );

        let (status, body) = in_flight.await.expect("probe task");
        assert_eq!(status, 503, "SIG{signal}: {body}");
        assert!(body.contains(r#""reason":"timeout""#), "{body}");
        let exit = binary
            .wait_for_exit(Duration::from_secs(4))
            .await
            .unwrap_or_else(|| panic!("SIG{signal}: still running after 4 s"));
        assert_eq!(exit.code(), Some(0), "SIG{signal}: {}", binary.logs());
        assert!(
            signalled.elapsed() < Duration::from_secs(3),
            "SIG{signal}: exited {:?} after the signal",
            signalled.elapsed()
        );
        redis.signal("CONT");
    }
}

#[tokio::test]
async fn a_signal_closes_idle_kept_alive_connections_at_once() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    // Neither bound would end an idle connection within this test; Redis is
    // a closed port, as only HTTP matters here.
    let url = format!("redis://127.0.0.1:{}", crate::support::free_port());
    let mut binary = TestBinary::start(&[
        ("REDIS_HEALTH_REDIS__URL", &url),
        ("REDIS_HEALTH_SERVER__HEADER_READ_TIMEOUT", "30s"),
        ("REDIS_HEALTH_SERVER__SHUTDOWN_TIMEOUT", "30s"),
    ])
    .await;
    let mut idle = tokio::net::TcpStream::connect(("127.0.0.1", binary.port))
        .await
        .expect("connect");
    idle.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("send");
    let mut buf = [0u8; 512];
    let n = idle.read(&mut buf).await.expect("answer");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));

    let signalled = Instant::now();
    binary.signal("TERM");
    let read = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the idle connection stayed open: {read:?}"
    );
    let exit = binary
        .wait_for_exit(Duration::from_secs(5))
        .await
        .expect("still running 5 s after SIGTERM");
    assert_eq!(exit.code(), Some(0), "{}", binary.logs());
    assert!(
        signalled.elapsed() < Duration::from_secs(2),
        "exited {:?} after the signal",
        signalled.elapsed()
    );
}
