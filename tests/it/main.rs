//! All integration tests, in one binary (builds are slow on two cores).

mod smtp_sink;
mod support;

mod access;
mod assignment;
mod auth;
mod browser;
mod browser_admin;
mod cli;
mod csv;
mod distribution;
mod inbox;
mod intake;
mod listing;
mod live;
mod mail;
mod outbox;
mod reports;
mod storage;
mod team;
mod timeline;
mod webhooks;
