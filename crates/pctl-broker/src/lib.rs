//! The pctl daemon: reads the IAM user's keys from 1Password once, keeps them
//! only in locked memory, and hands out STS role sessions and EKS tokens to
//! its own user over a Unix socket.
//!
//! Data flows one way: [`server`] decodes a request → [`broker`] (the API:
//! enforces limits, audits) → the role's [`identity`] (one vault, unlocker
//! and issuer per IAM user) → [`unlock`] (reads a [`source`] into the
//! [`vault`]) → [`issue`] (caches, refresh-ahead; reads the [`vault`]
//! epoch); both run their attempts through [`flight`] (single flight, in a
//! task of its own) → [`aws`] → the reply goes back. [`rotate`] (`pctl rotate`) uses
//! [`aws::iam`] and the 1Password source's edit; [`get_token`] maps
//! `aws eks get-token`'s flags to the config for the broker. Nothing below
//! calls back up.
//! [`clock`], [`config`], [`audit`], [`secret`], [`text`] and [`platform`]
//! are leaves any layer may use (they use only each other); [`failure`],
//! [`status`] and [`peer`] (who asked) are used across layers too. No two
//! modules import each other (`tests/layering.rs` reads the sources).

pub mod audit;
pub mod aws;
pub mod broker;
pub mod clock;
pub mod config;
pub mod credserver;
pub mod daemon;
pub mod failure;
pub mod flight;
pub mod get_token;
pub mod guard;
pub mod identity;
pub mod issue;
pub mod logfile;
pub mod oneshot;
pub mod peer;
pub mod platform;
pub mod prompt;
pub mod rotate;
pub mod secret;
pub mod server;
pub mod source;
pub mod status;
pub mod stream;
pub mod text;
pub mod unlock;
pub mod vault;

pub use pctl_protocol::dirs;

/// A boxed future, so the seams tests replace ([`aws::sts::Sts`],
/// [`source::CredentialSource`]) can be trait objects.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
