//! Integration tests of the Stripe emulator: each test starts its own
//! emulator in-process on 127.0.0.1 (port 0) and calls it with `reqwest`.

mod common;

mod api;
mod customers;
mod events;
mod failures;
mod oauth;
