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
mod browser_intake;
mod browser_meta;
mod browser_notes;
mod cli;
mod content;
mod csv;
mod desk;
mod distribution;
mod fields;
mod fuzz;
mod inbox;
mod intake;
mod listing;
mod live;
mod mail;
mod meta;
mod notes;
mod ops;
mod outbox;
mod reports;
mod search;
mod storage;
mod team;
mod teams;
mod timeline;
mod webhooks;
