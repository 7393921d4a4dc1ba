//! oxidot: an OAuth 2.0 authorization server and OpenID Connect provider in one binary.
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod accounts;
pub mod applications;
pub mod backups;
pub mod cleanup;
pub mod clock;
pub mod commands;
pub mod config;
pub mod control;
pub mod files;
pub mod fixtures;
pub mod metrics;
pub mod oauth;
pub mod oidc;
pub mod params;
pub mod passwords;
pub mod permissions;
pub mod random;
pub mod rules;
pub mod scheduler;
pub mod server;
pub mod status;
pub mod store;
pub mod throttle;
pub mod web;
