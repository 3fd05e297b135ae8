//! The integration tests: one binary, a module per subject, real redis-server
//! processes and real HTTP. Shared helpers live in `support`.

mod support;

mod cli;
mod config_input;
mod connections;
mod daemon;
mod deployments;
mod ecosystem;
mod faults;
mod headroom;
mod health;
mod http;
mod http_edges;
mod judging;
mod load_balancers;
mod open_files;
mod operator;
mod password_rotation;
mod primary_sentinel;
mod readiness;
mod reload;
mod replication;
mod sentinel;
mod shutdown;
mod tls;
mod versions;
mod writes;
