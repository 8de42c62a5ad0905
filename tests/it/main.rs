//! All integration tests, in one binary (builds are slow on two cores).

mod support;

mod access;
mod assignment;
mod auth;
mod browser;
mod browser_admin;
mod cli;
mod content;
mod csv;
mod fields;
mod inbox;
mod listing;
mod live;
mod outbox;
mod reports;
mod storage;
mod team;
mod teams;
mod timeline;
mod webhooks;
