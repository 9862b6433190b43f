//! The TOML configuration: [`model`] is what the rest of the daemon reads,
//! [`parse`] turns the file into it (errors name the file, the key and
//! what is wrong), [`reload`] keeps the loaded config and re-reads it when
//! its files change.

mod model;
mod parse;
mod reload;
pub mod trust;

pub use model::*;
pub use parse::INCLUDE_KEYS;
pub use reload::ConfigCache;
