//! All integration tests, in one binary (builds are slow on two cores).

mod support;

mod access;
mod auth;
mod inbox;
mod storage;
mod team;
