//! Different commands in one round trip on one connection, so nothing else
//! (a sidecar's check) can run between them.

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Each command `count` times, in order, all written before any reply is
/// read; the replies as text.
pub fn mixed_pipeline(addr: SocketAddr, commands: &[(&[&str], usize)]) -> Vec<String> {
    let mut stream = TcpStream::connect(addr).expect("connect to test redis");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("set timeout");
    let mut request = String::new();
    for (args, count) in commands {
        let mut one = format!("*{}\r\n", args.len());
        for arg in *args {
            one.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        request.push_str(&one.repeat(*count));
    }
    stream.write_all(request.as_bytes()).expect("send commands");
    let total: usize = commands.iter().map(|(_, count)| count).sum();
    let mut reader = BufReader::new(stream);
    (0..total).map(|_| super::read_reply(&mut reader)).collect()
}
