//! Integration and end-to-end tests, in one binary (each file in tests/ would be linked
//! separately, which is slow on two cores).

mod admin;
mod authorize;
mod browser;
mod cleanup;
mod cli;
mod crash;
mod device;
mod e2e;
mod first_run;
mod fixtures;
mod flow;
mod instances;
mod login;
mod oauth;
mod oidc;
mod operations;
mod pages;
mod postgres;
mod scheduler;
mod security;
mod support;
