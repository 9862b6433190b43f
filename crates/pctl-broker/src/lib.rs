//! The pctl daemon: reads the IAM user's keys from 1Password once, keeps them
//! only in locked memory, and hands out STS role sessions and EKS tokens to
//! its own user over a Unix socket.
//!
//! Data flows one way: [`server`] decodes a request → [`broker`] decides from
//! its state what to fetch ([`onepassword`], [`aws`]) → the reply goes back.

pub mod audit;
pub mod aws;
pub mod broker;
pub mod config;
pub mod daemon;
pub mod onepassword;
pub mod platform;
pub mod secret;
pub mod server;

pub use pctl_protocol::dirs;
