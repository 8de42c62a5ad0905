//! All integration tests, in one binary (builds are slow on two cores).

mod support;

mod auth;
mod inbox;
mod live;
mod storage;
