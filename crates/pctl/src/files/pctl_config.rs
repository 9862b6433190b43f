//! A read-only view of pctl's config file for the client: its region and
//! role table, nothing else. The daemon owns and validates the config;
//! the client reads this much only to import roles without clobbering
//! existing ones (`pctl init`). It never resolves a request with it: the
//! daemon does, against the config and its includes.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, Result};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub struct View {
    /// Checked by `init`'s tests only.
    #[cfg_attr(not(test), allow(dead_code))]
    pub region: Option<String>,
    #[serde(default)]
    pub roles: BTreeMap<String, RoleView>,
    /// Only the names matter to the client (an import skips existing ones).
    #[serde(default)]
    pub identities: BTreeMap<String, toml::Value>,
    /// Further files with roles (relative to the config's directory).
    #[serde(default)]
    pub include: Vec<std::path::PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RoleView {
    pub name: Option<String>,
    pub arn: Option<String>,
    /// An `sso` identity's role (`pctl sso sync` skips the ones configured by hand).
    pub identity: Option<String>,
    pub account_id: Option<String>,
    pub role_name: Option<String>,
}

impl View {
    pub fn parse(text: &str, path: &Path) -> Result<View> {
        toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| {
                    format!(
                        " line {}:",
                        text[..s.start.min(text.len())].lines().count().max(1)
                    )
                })
                .unwrap_or_default();
            anyhow!(
                "cannot read pctl's config {}:{line} {}: fix it and run again",
                path.display(),
                e.message().trim().replace('\n', "; ")
            )
        })
    }
}
