//! IAM Identity Center identities: the device authorization sign-in and
//! `pctl sso roles`.

use pctl_protocol::{ClientEnv, ErrorKind};

use super::{Broker, Failure, Peer};
use crate::config::Config;
use crate::prompt::sign_in::Approval;

impl Broker {
    /// The `sso` identity named, or the only one.
    fn sso_identity<'c>(
        cfg: &'c Config,
        identity: Option<&str>,
    ) -> Result<&'c crate::config::IdentityConfig, Failure> {
        let ssos: Vec<_> = cfg
            .identities
            .values()
            .filter(|i| i.sso.is_some())
            .collect();
        let i = match identity {
            Some(n) => cfg.identity(n)?,
            None if ssos.len() == 1 => ssos[0],
            None if ssos.is_empty() => {
                return Err(Failure(
                    ErrorKind::Config,
                    format!(
                        "no identity in {} signs in with IAM Identity Center: add [identities.NAME] with source = \"sso\", start_url and sso_region",
                        cfg.path.display()
                    ),
                ))
            }
            None => {
                return Err(Failure(
                    ErrorKind::Config,
                    format!(
                        "several sso identities are configured ({}): pass --identity",
                        ssos.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                ))
            }
        };
        if i.sso.is_none() {
            return Err(Failure(
                ErrorKind::Config,
                format!(
                    "identity {} reads 1Password, it does not sign in with IAM Identity Center",
                    i.name
                ),
            ));
        }
        Ok(i)
    }

    /// Starts (or joins) the device authorization of an `sso` identity.
    /// For a client without a terminal (`env`: its display variables;
    /// `opener`: it can open a browser) the daemon shows the sign-in on
    /// the desktop ([`crate::prompt::sign_in`]).
    pub async fn sign_in(
        &self,
        identity: &str,
        env: Option<&ClientEnv>,
        opener: bool,
        peer: &Peer,
    ) -> Result<pctl_protocol::SignInPrompt, Failure> {
        let cfg = self.config()?;
        let ic = Self::sso_identity(&cfg, Some(identity))?;
        let sso = ic.sso.as_ref().expect("checked");
        self.enforce_limits();
        let id = self.identities.get(&ic.name);
        let no_terminal = peer.caller.as_ref().is_some_and(|c| !c.terminal);
        let approval = match no_terminal && id.unlocker.sso.pending().is_none() {
            true => {
                let who = crate::peer::program_behind(peer)
                    .map(|p| p.shown())
                    .unwrap_or_else(|| "a program".into());
                let env = env.cloned().unwrap_or_default();
                Some(Approval::prepare(&cfg, ic, env, opener, who)?)
            }
            false => None,
        };
        let prompt = id
            .unlocker
            .sso
            .start(crate::source::sso::SignInContext {
                identity: &ic.name,
                sso,
                daemon: &cfg.daemon,
                vault: id.vault.clone(),
                clock: self.clock.clone(),
            })
            .await?;
        if let (Some(a), true) = (approval, prompt.started) {
            a.show(ic, &prompt, id.clone());
        }
        Ok(prompt)
    }

    /// Waits for the device authorization `serial` of `identity` to end.
    pub async fn sign_in_wait(
        &self,
        identity: &str,
        serial: u64,
        peer: &Peer,
    ) -> Result<(), Failure> {
        let cfg = self.config()?;
        let ic = Self::sso_identity(&cfg, Some(identity))?;
        let id = self.identities.get(&ic.name);
        // `pctl prompt` and `status` show the wait
        let _waiting = crate::prompt::waiting(&ic.name, "IAM Identity Center sign-in");
        id.unlocker.sso.wait(serial).await?;
        if let Ok(Some(u)) = id.vault.current(self.clock.as_ref()) {
            self.sso_audit(&id, &u, peer);
        }
        Ok(())
    }

    /// `pctl sso roles`: every account x role of an `sso` identity.
    pub async fn sso_roles(
        &self,
        identity: Option<&str>,
        peer: &Peer,
    ) -> Result<Vec<pctl_protocol::SsoRole>, Failure> {
        let cfg = self.config()?;
        let ic = Self::sso_identity(&cfg, identity)?;
        self.enforce_limits();
        let id = self.identities.get(&ic.name);
        let on_fresh = || self.on_unlock(&id, peer);
        let u = id.unlocker.on_demand(&cfg, None, on_fresh).await?;
        self.sso_audit(&id, &u, peer);
        let signed = u.sso.clone().ok_or_else(|| {
            Failure(
                ErrorKind::Locked,
                "the identity was locked meanwhile: retry".into(),
            )
        })?;
        let roles = signed.roles().await?;
        self.sso_audit(&id, &u, peer);
        Ok(roles)
    }
}
