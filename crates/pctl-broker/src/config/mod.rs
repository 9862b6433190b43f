//! The TOML configuration: [`model`] is what the rest of the daemon reads,
//! [`parse`] turns the file into it (errors name the file, the key and
//! what is wrong).

mod model;
mod parse;
pub mod trust;

pub use model::*;
pub use parse::INCLUDE_KEYS;
