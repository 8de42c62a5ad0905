//! switchboard: a self-hosted shared inbox for WhatsApp Business numbers.
#![forbid(unsafe_code)]

pub mod agency;
pub mod api;
pub mod apikeys;
pub mod app;
pub mod assignment;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod cli;
pub mod clock;
pub mod config;
pub mod content;
pub mod db;
pub mod distribution;
pub mod error;
pub mod events;
pub mod extract;
pub mod inbox;
pub mod intake;
pub mod live;
pub mod mail;
pub mod media;
pub mod metrics;
pub mod openapi;
pub mod outbox;
pub mod phone;
pub mod policy;
pub mod proxy;
pub mod reports;
pub mod secrets;
pub mod state;
pub mod team;
pub mod timeline;
pub mod ui;
pub mod views;
pub mod webhook;
pub mod workspace;

/// mimalloc instead of the system allocator: the server allocates many short-lived buffers
/// (frames, rows, bodies) from several threads, where glibc's malloc showed up at 15–20 % of
/// the profiles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
