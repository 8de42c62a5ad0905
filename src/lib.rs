//! switchboard: a self-hosted shared inbox for WhatsApp Business numbers.
#![forbid(unsafe_code)]

pub mod app;
pub mod assignment;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod error;
pub mod extract;
pub mod inbox;
pub mod live;
pub mod outbox;
pub mod phone;
pub mod policy;
pub mod reports;
pub mod team;
pub mod timeline;
pub mod ui;
pub mod webhook;
pub mod workspace;
