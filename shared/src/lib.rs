//! The library every function of the service uses: configuration, domain types, the store and its
//! DynamoDB and embedded implementations, the Stripe client, token minting, cookie sealing, and the
//! HTTP helpers that give every route the WorkOS error shapes.

pub mod auth;
pub mod config;
pub mod connect;
pub mod cookie;
pub mod entitlements;
pub mod environments;
pub mod error;
pub mod http;
pub mod ids;
pub mod logging;
pub mod organizations;
pub mod sessions;
pub mod state;
pub mod store;
pub mod stripe;
pub mod tokens;
pub mod validate;
pub mod webhooks;
