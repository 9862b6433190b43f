//! The identities the daemon serves: one IAM user each, with its own vault
//! (secrets, epoch, timers), unlocker (one source read at a time, MFA
//! never-twice) and issuer (caches, refresh-ahead). Nothing is shared
//! between two identities but the STS client and the source runner, so one
//! identity's failure or lock never touches another's requests.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::aws::sts::Sts;
use crate::clock::Clock;
use crate::issue::Issuer;
use crate::source::CredentialSource;
use crate::unlock::Unlocker;
use crate::vault::Vault;

/// One identity's state.
pub struct Identity {
    pub name: String,
    pub vault: Arc<Vault>,
    pub unlocker: Unlocker,
    pub issuer: Arc<Issuer>,
}

/// Every identity seen so far, created on first use by name.
pub struct Identities {
    clock: Arc<dyn Clock>,
    source: Arc<dyn CredentialSource>,
    sts: Arc<dyn Sts>,
    map: Mutex<BTreeMap<String, Arc<Identity>>>,
}

impl Identities {
    pub fn new(
        clock: Arc<dyn Clock>,
        source: Arc<dyn CredentialSource>,
        sts: Arc<dyn Sts>,
    ) -> Self {
        Identities {
            clock,
            source,
            sts,
            map: Mutex::new(BTreeMap::new()),
        }
    }

    /// The identity `name` (the caller checked it is configured).
    pub fn get(&self, name: &str) -> Arc<Identity> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        // the name is copied only for a new identity, not at every request
        if let Some(id) = map.get(name) {
            return id.clone();
        }
        map.entry(name.to_string())
            .or_insert_with(|| {
                let vault = Arc::new(Vault::new(self.clock.as_ref()));
                Arc::new(Identity {
                    name: name.to_string(),
                    unlocker: Unlocker::new(
                        name,
                        self.clock.clone(),
                        vault.clone(),
                        self.source.clone(),
                        self.sts.clone(),
                    ),
                    issuer: Arc::new(Issuer::new(
                        self.sts.clone(),
                        self.clock.clone(),
                        vault.clone(),
                    )),
                    vault,
                })
            })
            .clone()
    }

    /// The identity `name` if it was created (configured now or earlier).
    pub fn find(&self, name: &str) -> Option<Arc<Identity>> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(name).cloned()
    }

    /// Every identity created so far, by name.
    pub fn all(&self) -> Vec<Arc<Identity>> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.values().cloned().collect()
    }

    /// `op` runs of the source, all identities together.
    pub fn source_runs(&self) -> u64 {
        self.source.runs()
    }
}
