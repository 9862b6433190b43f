//! Typed replies: `T::try_from(reply)` turns the daemon's [`Reply`] into
//! the one type a request expects, so a client's typed call is one line
//! (`let c: Credentials = reply.try_into()?`) instead of a `match` per
//! method.

use crate::{
    Check, ClusterInfo, ClusterNames, ConsoleLogin, CredentialServer, Credentials, EksToken,
    Profiles, Reply, RoleArns, Rotation, SignInPrompt, SsoRole, Status,
};

/// A reply of another kind than the request expects. It names both kinds
/// only: the reply itself (which may hold a secret) is dropped, never
/// carried in the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the daemon answered {got} where {wanted} was expected")]
pub struct UnexpectedReply {
    /// The reply kind the request expects.
    pub wanted: &'static str,
    /// The reply kind that came.
    pub got: &'static str,
}

impl Reply {
    /// The reply's kind, as on the wire (`eks_token`).
    pub fn name(&self) -> &'static str {
        match self {
            Reply::Pong { .. } => "pong",
            Reply::Done => "done",
            Reply::Rotated(_) => "rotated",
            Reply::Status(_) => "status",
            Reply::Doctor { .. } => "doctor",
            Reply::Credentials(_) => "credentials",
            Reply::EksToken(_) => "eks_token",
            Reply::Cluster(_) => "cluster",
            Reply::Profiles(_) => "profiles",
            Reply::ConsoleLogin(_) => "console_login",
            Reply::CredentialServer(_) => "credential_server",
            Reply::SignIn(_) => "sign_in",
            Reply::SsoRoles { .. } => "sso_roles",
            Reply::ClusterNames(_) => "cluster_names",
            Reply::RoleArns(_) => "role_arns",
        }
    }
}

/// `impl TryFrom<Reply> for T` taking `T` out of the one variant that holds it.
macro_rules! typed_reply {
    ($($ty:ty => $name:literal, $pat:pat => $out:expr;)*) => {$(
        impl TryFrom<Reply> for $ty {
            type Error = UnexpectedReply;

            fn try_from(reply: Reply) -> Result<Self, UnexpectedReply> {
                match reply {
                    $pat => Ok($out),
                    other => Err(UnexpectedReply {
                        wanted: $name,
                        got: other.name(),
                    }),
                }
            }
        }
    )*};
}

typed_reply! {
    () => "done", Reply::Done => ();
    Rotation => "rotated", Reply::Rotated(r) => r;
    Status => "status", Reply::Status(s) => *s;
    Vec<Check> => "doctor", Reply::Doctor { checks } => checks;
    Credentials => "credentials", Reply::Credentials(c) => c;
    EksToken => "eks_token", Reply::EksToken(t) => t;
    ClusterInfo => "cluster", Reply::Cluster(c) => c;
    Profiles => "profiles", Reply::Profiles(p) => p;
    ConsoleLogin => "console_login", Reply::ConsoleLogin(l) => l;
    CredentialServer => "credential_server", Reply::CredentialServer(s) => s;
    SignInPrompt => "sign_in", Reply::SignIn(p) => p;
    Vec<SsoRole> => "sso_roles", Reply::SsoRoles { roles } => roles;
    ClusterNames => "cluster_names", Reply::ClusterNames(c) => c;
    RoleArns => "role_arns", Reply::RoleArns(r) => r;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials() -> Credentials {
        Credentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: "secret-value-never-shown".into(),
            session_token: "session-token-never-shown".into(),
            expiration: "2026-12-03T13:00:00Z".into(),
            region: "us-east-1".into(),
            note: None,
        }
    }

    #[test]
    fn the_expected_variant_converts() {
        let c: Credentials = Reply::Credentials(credentials()).try_into().unwrap();
        assert_eq!(c, credentials());
        let () = Reply::Done.try_into().unwrap();
        let roles: Vec<SsoRole> = Reply::SsoRoles { roles: vec![] }.try_into().unwrap();
        assert!(roles.is_empty());
        let checks: Vec<Check> = Reply::Doctor {
            checks: vec![Check::ok("op", "found")],
        }
        .try_into()
        .unwrap();
        assert_eq!(checks.len(), 1);
    }

    #[test]
    fn another_variant_names_both_kinds_and_no_secret() {
        let e = EksToken::try_from(Reply::Credentials(credentials())).unwrap_err();
        assert_eq!(
            e,
            UnexpectedReply {
                wanted: "eks_token",
                got: "credentials"
            }
        );
        let shown = format!("{e} {e:?}");
        assert!(shown.contains("eks_token") && shown.contains("credentials"));
        assert!(!shown.contains("never-shown"), "{shown}");
        assert!(<()>::try_from(Reply::Pong {
            version: "0".into(),
            pid: 1
        })
        .is_err());
    }

    /// `name()` is the variant's tag on the wire.
    #[test]
    fn names_are_wire_tags() {
        for r in [
            Reply::Done,
            Reply::Credentials(credentials()),
            Reply::SsoRoles { roles: vec![] },
            Reply::ClusterNames(ClusterNames { names: vec![] }),
            Reply::RoleArns(RoleArns { arns: vec![] }),
            Reply::Doctor { checks: vec![] },
            Reply::Pong {
                version: "0".into(),
                pid: 1,
            },
        ] {
            let wire = serde_json::to_value(&r).unwrap();
            assert_eq!(wire["kind"], r.name(), "{r:?}");
        }
    }
}
