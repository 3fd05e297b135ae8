//! The open-file limit. Every client connection holds a file descriptor, and
//! so does the Redis connection: were clients allowed to fill the table, the
//! sidecar could no longer dial Redis and every probe would say
//! `unreachable`. So the soft limit is raised to the hard one at startup, and
//! connections are capped below it with a reserve.

use std::num::NonZeroU32;

use rlimit::Resource;

/// Descriptors kept out of the connection cap: stdio, the listener, the
/// runtime's poller and wakers, the Redis connection and a reconnect beside
/// it, the password and TLS files, DNS lookups; with room to spare.
pub const RESERVED: u64 = 32;

/// Raises the soft limit to the hard limit, as Go's runtime and most servers
/// do (the default soft limit, 1024, equals the default connection cap).
pub fn raise() -> std::io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

/// The soft limit in force, if the system tells.
pub fn soft_limit() -> Option<u64> {
    Resource::NOFILE.get().ok().map(|(soft, _)| soft)
}

/// The connections served at once: the configured number, or fewer when the
/// open-file limit leaves no room for them beside [`RESERVED`].
pub fn connection_cap(configured: NonZeroU32, limit: Option<u64>) -> NonZeroU32 {
    let Some(limit) = limit else {
        return configured;
    };
    let room = u32::try_from(limit.saturating_sub(RESERVED)).unwrap_or(u32::MAX);
    // A limit at or below the reserve: serve one client at a time.
    configured.min(NonZeroU32::new(room).unwrap_or(NonZeroU32::MIN))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(configured: u32, limit: Option<u64>) -> u32 {
        connection_cap(NonZeroU32::new(configured).expect("non-zero"), limit).get()
    }

    #[test]
    fn the_cap_leaves_the_reserve_free() {
        assert_eq!(cap(1024, Some(1024)), 1024 - RESERVED as u32);
        assert_eq!(cap(1024, Some(256)), 256 - RESERVED as u32);
        assert_eq!(cap(100, Some(1024)), 100);
        assert_eq!(cap(1024, None), 1024);
        assert_eq!(cap(1024, Some(RESERVED)), 1);
        assert_eq!(cap(1024, Some(u64::MAX)), 1024);
    }
}
