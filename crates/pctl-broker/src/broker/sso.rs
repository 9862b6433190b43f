//! IAM Identity Center identities: the device authorization sign-in and
//! `pctl sso roles`.

use pctl_protocol::{ClientEnv, ErrorKind};

use super::{Broker, Failure, Peer};
use crate::config::Config;
use crate::peer::Requester;
use crate::prompt::sign_in::{self, Approval};

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
        let who = no_terminal.then(|| Requester::of(peer));
        let approval = match (&who, id.unlocker.sso.pending().is_none()) {
            (Some(who), true) => {
                let env = env.cloned().unwrap_or_default();
                Some(Approval::prepare(&cfg, ic, env, opener, who.clone())?)
            }
            _ => None,
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
        match (approval, prompt.started, &who, env) {
            (Some(a), true, _, _) => a.show(ic, &prompt, id.clone(), |i| &i.unlocker.sso),
            // it joined one another client started
            (_, false, Some(who), Some(env)) => sign_in::joined(&ic.name, &prompt, who, env),
            _ => {}
        }
        Ok(prompt)
    }

    /// [`credentials_with`](Self::credentials_with) for a requester that is
    /// no pctl client (the credential endpoint's SDK): when an `sso`
    /// identity must sign in, nobody else would start the sign-in, so the
    /// daemon starts it (or joins the one under way) itself, shows it on
    /// the desktop as for any client without a terminal (a notification
    /// and, as the daemon opens no browser, a pinentry window with the URL
    /// and the code: [`crate::prompt::sign_in`]), waits for it, then
    /// answers. A cancelled, denied or expired sign-in is its one line.
    pub async fn credentials_signing_in(
        &self,
        role: &str,
        o: &crate::issue::Overrides,
        env: Option<&ClientEnv>,
        peer: &Peer,
    ) -> Result<pctl_protocol::Credentials, Failure> {
        let mut signed_in = false;
        loop {
            match self.credentials_with(role, o, env, peer).await {
                Err(f) if f.0 == ErrorKind::NeedsSignIn && !signed_in => {
                    let Some(identity) = crate::failure::mfa_identity(&f) else {
                        return Err(f);
                    };
                    let prompt = self.sign_in(&identity, env, false, peer).await?;
                    self.sign_in_wait(&identity, prompt.serial, peer).await?;
                    signed_in = true;
                }
                r => return r,
            }
        }
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
