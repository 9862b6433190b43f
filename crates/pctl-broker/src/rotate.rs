//! `pctl rotate`: replace an identity's IAM access key without ever leaving
//! the user without a working key.
//!
//! 1. ListAccessKeys: with two keys, stop and name the one to delete (the
//!    one not in 1Password); never delete a key this run did not create,
//!    except the one being rotated.
//! 2. CreateAccessKey, then GetCallerIdentity with the new key, retried
//!    while IAM propagates.
//! 3. Write it into the 1Password item (`op item edit` with the item JSON
//!    on standard input: never in an argv).
//! 4. Read the item back and confirm it holds the new key.
//! 5. Only then DeleteAccessKey the old one (signed with the new key).
//!
//! Whatever fails, 1Password holds a working key: the old one (the new
//! key is deleted, or named if it cannot be), or the new one. When `op`
//! reported the edit done, or was killed at the timeout, but the read-back
//! shows the old key, the edit may still land: the new key is kept too and
//! the answer names which key 1Password holds and what to run. A daemon
//! that dies between steps leaves at most the two keys, and the next
//! `pctl rotate` names the one not in 1Password to delete. Key IDs go to
//! the audit log and the answer; secrets nowhere.

use std::time::Duration;

use pctl_protocol::{ClientEnv, ErrorKind, Rotation};

use crate::aws::{iam, Sdk, Session};
use crate::config::{Config, IdentityConfig};
use crate::failure::Failure;
use crate::source::onepassword::{read_item, resolve_op, write_keys, OpError};

/// Whether a failed `op item edit` may still change the item: it was
/// killed at the timeout (the write may have reached 1Password before).
/// An answer from `op` (not signed in, prompt dismissed, ...) means
/// nothing was written.
fn edit_may_land(e: &OpError) -> bool {
    matches!(e, OpError::Timeout(_))
}

/// GetCallerIdentity attempts with the new key, and the pause between them.
const VERIFY_ATTEMPTS: u32 = 10;
const VERIFY_PAUSE: Duration = Duration::from_secs(2);

/// What a rotation needs from the broker.
pub struct Rotate<'a> {
    pub sdk: &'a Sdk,
    pub cfg: &'a Config,
    pub identity: &'a IdentityConfig,
    pub env: &'a ClientEnv,
    /// The unlocked base session (MFA session or user keys): signs the IAM calls.
    pub base: &'a Session,
    /// The access key ID now in 1Password.
    pub old: &'a str,
    /// Records one step in the audit log (key IDs only).
    pub audit: &'a (dyn Fn(&str, &str) + Sync),
}

fn fail(msg: String) -> Failure {
    tracing::warn!("rotate: {msg}");
    Failure(ErrorKind::Aws, msg)
}

impl Rotate<'_> {
    /// Runs the steps; on success the new key is in 1Password and works.
    pub async fn run(&self) -> Result<Rotation, Failure> {
        let region = &self.cfg.region;
        let old = self.old;
        let keys = iam::list_keys(self.sdk, region, self.base)
            .await
            .map_err(|e| fail(format!("{e}: nothing was changed")))?;
        if !keys.iter().any(|k| k == old) {
            return Err(fail(format!(
                "the key in 1Password ({old}) is not one of this IAM user's keys ({}): \
                 nothing was changed; check the item",
                keys.join(", ")
            )));
        }
        if let Some(other) = keys.iter().find(|k| k.as_str() != old) {
            if keys.len() >= 2 {
                return Err(fail(format!(
                    "the IAM user already has two access keys: {old} (in 1Password) and {other}; \
                     IAM allows two: delete {other} (`aws iam delete-access-key --access-key-id \
                     {other}`) and run `pctl rotate` again"
                )));
            }
        }
        let new = iam::create_key(self.sdk, region, self.base)
            .await
            .map_err(|e| fail(format!("{e}: nothing was changed; {old} stays in use")))?;
        let new_id = new.access_key_id.clone();
        (self.audit)("rotate_created", &format!("{old} -> {new_id}"));

        // 2. the new key works (IAM is eventually consistent)
        let mut last = None;
        for attempt in 0..VERIFY_ATTEMPTS {
            match iam::caller_arn(self.sdk, region, &new).await {
                Ok(_) => {
                    last = None;
                    break;
                }
                Err(e) => last = Some(e),
            }
            if attempt + 1 < VERIFY_ATTEMPTS {
                tokio::time::sleep(VERIFY_PAUSE).await;
            }
        }
        if let Some(e) = last {
            return Err(self
                .undo(
                    &new_id,
                    &format!("the new key {new_id} does not work ({e})"),
                )
                .await);
        }

        // 3 and 4: into 1Password, and read back
        let op_cfg = &self.identity.onepassword;
        let timeout = self.cfg.daemon.op_timeout;
        let op = match resolve_op(op_cfg, &self.env.0) {
            Ok(op) => op,
            Err(e) => return Err(self.undo(&new_id, &e.to_string()).await),
        };
        let written = write_keys(
            &op,
            op_cfg,
            &self.env.0,
            timeout,
            &new_id,
            new.secret_access_key.expose(),
        )
        .await;
        if let Err(e) = &written {
            tracing::warn!("rotate: writing to 1Password failed: {e}");
        }
        match read_item(&op, op_cfg, &self.env.0, timeout).await {
            Ok(s) if s.access_key_id.expose() == new_id => {}
            Ok(s) if s.access_key_id.expose() == old => {
                return Err(match written {
                    // `op` said no: the edit did not happen, the new key goes.
                    Err(e) if !edit_may_land(&e) => {
                        self.undo(&new_id, &format!("writing to 1Password failed ({e})"))
                            .await
                    }
                    // `op` said yes, or was killed before it answered: the edit
                    // may still land (a slow sync, an edit applied after the
                    // read-back). Deleting the new key then would leave
                    // 1Password holding a dead key: keep both and say which.
                    edit => self.unconfirmed(&new_id, &op_cfg.item, edit.err()),
                });
            }
            Ok(s) => {
                return Err(fail(format!(
                    "1Password item \"{}\" now holds key {}, neither {old} nor the new {new_id}: \
                     nothing was deleted; check the item, keep the key it holds and delete the \
                     others with `aws iam delete-access-key`",
                    op_cfg.item,
                    s.access_key_id.expose()
                )))
            }
            Err(e) => {
                return Err(fail(format!(
                    "could not read 1Password back ({e}): both keys stay active, {old} (old) \
                     and {new_id} (new); open item \"{}\", keep the key it holds and delete the \
                     other with `aws iam delete-access-key --access-key-id ...`",
                    op_cfg.item
                )))
            }
        }
        (self.audit)("rotate_written", &new_id);

        // 5. only now the old key goes (signed with the new one)
        let note = match iam::delete_key(self.sdk, region, &new, old).await {
            Ok(()) => None,
            Err(e) => Some(format!(
                "the new key is in 1Password, but deleting the old key {old} failed ({e}): \
                 delete it with `aws iam delete-access-key --access-key-id {old}`"
            )),
        };
        (self.audit)(
            "rotated",
            &format!(
                "{old} -> {new_id}{}",
                if note.is_some() {
                    " (old key not deleted)"
                } else {
                    ""
                }
            ),
        );
        Ok(Rotation {
            identity: self.identity.name.clone(),
            old_key_id: old.to_string(),
            new_key_id: new_id,
            old_deleted: note.is_none(),
            note,
        })
    }

    /// The edit was reported done (or `op` was killed at the timeout) but the
    /// item still shows the old key: both keys stay active, and the answer
    /// says which one 1Password holds and what to run in each case.
    fn unconfirmed(&self, new_id: &str, item: &str, edit: Option<OpError>) -> Failure {
        let old = self.old;
        (self.audit)("rotate_unconfirmed", &format!("{old} -> {new_id}"));
        let what = match edit {
            Some(e) => format!("`op item edit` did not finish ({e})"),
            None => "`op item edit` reported success".into(),
        };
        fail(format!(
            "{what}, but 1Password item \"{item}\" still holds the old key {old}: both keys stay \
             active, {old} (old, in 1Password, in use) and {new_id} (new, not confirmed in \
             1Password). Open the item: if it shows {old}, run `aws iam delete-access-key \
             --access-key-id {new_id}` and `pctl rotate` again; if it shows {new_id}, run \
             `pctl lock`, `pctl unlock` (reads the new key), then `aws iam delete-access-key \
             --access-key-id {old}`"
        ))
    }

    /// The new key could not be put in use: delete it (signed with the
    /// old session), or name it if that fails.
    async fn undo(&self, new_id: &str, why: &str) -> Failure {
        let region = &self.cfg.region;
        match iam::delete_key(self.sdk, region, self.base, new_id).await {
            Ok(()) => {
                (self.audit)("rotate_undone", new_id);
                fail(format!(
                    "{why}: the new key {new_id} was deleted; {} stays in 1Password and in use",
                    self.old
                ))
            }
            Err(e) => fail(format!(
                "{why}; deleting the new key {new_id} failed too ({e}): {} stays in 1Password \
                 and in use; delete {new_id} with `aws iam delete-access-key --access-key-id {new_id}`",
                self.old
            )),
        }
    }
}
