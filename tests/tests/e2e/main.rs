#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.
//! End-to-end tests: real nats-server, real PostgreSQL, real HTTP. One binary, one module per
//! area; every test boots its own world (see `aegis_tests::world`).

mod audit;
mod authorization;
mod auto_response;
mod auto_response_runs;
mod broker_gitops;
mod broker_gitops_watch;
mod broker_jobs;
mod broker_keys;
mod broker_projects;
mod broker_requests;
mod broker_rules;
mod broker_secrets;
mod broker_wraps;
mod commands;
mod consistency;
mod controls;
mod dashboard;
mod decision_log;
mod dynamic_mariadb;
mod dynamic_secrets;
mod grants;
mod identity;
mod incidents;
mod leak_organizations;
mod leakage;
mod logins;
mod nats_tenants;
mod openapi;
mod outages;
mod platform_surface;
mod probes;
mod projectors;
mod reactors;
mod reports;
mod seed_examples;
mod siem;
mod streams;
mod subscriptions;
mod tenants;
mod threat_intel;
mod tracing;
mod vault;
mod versioned_secrets;
mod webhooks;
