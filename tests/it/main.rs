//! All integration tests, in one binary (builds are slow on two cores).

mod support;

mod access;
mod assignment;
mod auth;
mod browser;
mod browser_admin;
mod cli;
mod inbox;
mod live;
mod outbox;
mod storage;
mod team;
mod timeline;
mod webhooks;
