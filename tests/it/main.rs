//! The integration tests: one binary, a module per subject, real redis-server
//! processes and real HTTP. Shared helpers live in `support`.

mod support;

mod acl;
mod cluster;
mod config;
mod deploy;
mod docs;
mod faults;
mod first_hour;
mod formats;
mod headroom;
mod http;
mod load_balancers;
mod metrics;
mod open_files;
mod primary_sentinel;
mod queues;
mod readiness;
mod reload;
mod replication;
mod routes;
mod sentinel;
mod shutdown;
mod status_page;
mod tls;
mod tls_words;
mod unix_socket;
mod verdicts;
mod versions;
mod writes;
