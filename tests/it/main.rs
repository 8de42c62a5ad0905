//! All integration tests, in one binary (builds are slow on two cores).

mod smtp_sink;
mod support;

mod access;
mod assignment;
mod auth;
mod browser;
mod browser_admin;
mod browser_desk;
mod browser_inbox;
mod browser_notes;
mod browser_meta;
mod cli;
mod content;
mod csv;
mod desk;
mod fields;
mod fuzz;
mod distribution;
mod inbox;
mod intake;
mod listing;
mod live;
mod notes;
mod meta;
mod ops;
mod mail;
mod outbox;
mod reports;
mod search;
mod storage;
mod team;
mod teams;
mod timeline;
mod webhooks;
