//! The pctl daemon: reads the IAM user's keys from 1Password once, keeps them
//! only in locked memory, and hands out STS role sessions and EKS tokens to
//! its own user over a Unix socket.
//!
//! Data flows one way: [`server`] decodes a request → [`broker`] (the API)
//! → [`issue`] (caches, single-flight, refresh-ahead) → [`vault`] (locked or
//! unlocked, unlocking through [`source`]) → [`aws`] → the reply goes back.
//! [`clock`], [`config`], [`audit`], [`status`], [`secret`] and [`platform`]
//! are leaves any layer may use.

pub mod audit;
pub mod aws;
pub mod broker;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod failure;
pub mod issue;
pub mod platform;
pub mod secret;
pub mod server;
pub mod source;
pub mod status;
pub mod vault;

pub use pctl_protocol::dirs;
