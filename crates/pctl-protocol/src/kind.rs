//! What kind of work a [`Request`] is, in one place: its name, how long the
//! daemon lets it run ([`TimeLimit`]), whether it may have to read
//! 1Password first and whether its answer depends on the daemon's setup.
//! The daemon's server and the client both ask [`Request::kind`] instead of
//! matching the request's variants each.

use crate::Request;

/// One [`Request`] variant, without its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestKind {
    Ping,
    Unlock,
    Lock,
    Rotate,
    Status,
    Doctor,
    Stop,
    Credentials,
    EksToken,
    DescribeCluster,
    Profiles,
    ConsoleLogin,
    SignIn,
    SignInWait,
    SsoRoles,
    CredentialServer,
    ListClusters,
    AssumableRoles,
}

/// How long the daemon lets a request run once read, as a class; the daemon
/// turns it into a duration from its config (`op_timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeLimit {
    /// Answered from the daemon's memory and config: a fixed bound.
    Short,
    /// May read 1Password (an `op` prompt waits for a person, up to the
    /// config's `op_timeout`) and then call AWS: the broker's request
    /// timeout. For a credential endpoint this bounds its start; the
    /// endpoint itself lives as long as the client's connection.
    Unlock,
    /// Key rotation: three `op` runs, IAM propagation and a fresh unlock
    /// (three times the [`Unlock`](TimeLimit::Unlock) limit).
    Rotate,
    /// Waits for a person to approve a device authorization: bounded by
    /// the authorization's own expiry, not by `op_timeout`.
    SignIn,
}

impl RequestKind {
    /// Every kind, for tests and tables.
    pub const ALL: [RequestKind; 18] = [
        RequestKind::Ping,
        RequestKind::Unlock,
        RequestKind::Lock,
        RequestKind::Rotate,
        RequestKind::Status,
        RequestKind::Doctor,
        RequestKind::Stop,
        RequestKind::Credentials,
        RequestKind::EksToken,
        RequestKind::DescribeCluster,
        RequestKind::Profiles,
        RequestKind::ConsoleLogin,
        RequestKind::SignIn,
        RequestKind::SignInWait,
        RequestKind::SsoRoles,
        RequestKind::CredentialServer,
        RequestKind::ListClusters,
        RequestKind::AssumableRoles,
    ];

    /// The request's name in messages (`eks token`).
    pub fn name(self) -> &'static str {
        match self {
            RequestKind::Ping => "ping",
            RequestKind::Unlock => "unlock",
            RequestKind::Lock => "lock",
            RequestKind::Rotate => "rotate",
            RequestKind::Status => "status",
            RequestKind::Doctor => "doctor",
            RequestKind::Stop => "stop",
            RequestKind::Credentials => "credentials",
            RequestKind::EksToken => "eks token",
            RequestKind::DescribeCluster => "describe cluster",
            RequestKind::Profiles => "profiles",
            RequestKind::ConsoleLogin => "console login",
            RequestKind::CredentialServer => "credential server",
            RequestKind::SignIn => "sign in",
            RequestKind::SignInWait => "sign-in wait",
            RequestKind::SsoRoles => "sso roles",
            RequestKind::ListClusters => "list clusters",
            RequestKind::AssumableRoles => "assumable roles",
        }
    }

    /// How long the daemon lets it run.
    pub fn time_limit(self) -> TimeLimit {
        match self {
            RequestKind::Unlock
            | RequestKind::Credentials
            | RequestKind::EksToken
            | RequestKind::DescribeCluster
            | RequestKind::ConsoleLogin
            | RequestKind::SignIn
            | RequestKind::SsoRoles
            | RequestKind::CredentialServer
            | RequestKind::ListClusters
            | RequestKind::AssumableRoles => TimeLimit::Unlock,
            RequestKind::SignInWait => TimeLimit::SignIn,
            RequestKind::Rotate => TimeLimit::Rotate,
            RequestKind::Ping
            | RequestKind::Lock
            | RequestKind::Status
            | RequestKind::Doctor
            | RequestKind::Stop
            | RequestKind::Profiles => TimeLimit::Short,
        }
    }

    /// Whether a locked daemon reads 1Password to answer it, so the answer
    /// may wait for a person approving `op` (the client then says it is
    /// waiting).
    pub fn may_unlock(self) -> bool {
        matches!(
            self,
            RequestKind::Unlock
                | RequestKind::Credentials
                | RequestKind::EksToken
                | RequestKind::DescribeCluster
                | RequestKind::ConsoleLogin
                | RequestKind::ListClusters
                | RequestKind::AssumableRoles
        )
    }

    /// Whether the request lives as long as its connection after the answer
    /// (a credential endpoint stops when its client's connection closes).
    /// For every other request the client shuts its sending side once the
    /// request is sent: the daemon then finds the client's end right after
    /// its answer, with no wait for the close.
    pub fn holds_connection(self) -> bool {
        self == RequestKind::CredentialServer
    }

    /// Whether the answer comes from the daemon's config file and endpoint
    /// settings ([`crate::Setup`]): a daemon refuses it to a client whose
    /// setup differs, as it would answer from the wrong file or account.
    /// The rest (ping, stop, lock, status, doctor) still work, so such a
    /// client can see why (status and doctor say so) and stop the daemon.
    pub fn depends_on_setup(self) -> bool {
        !matches!(
            self,
            RequestKind::Ping
                | RequestKind::Stop
                | RequestKind::Lock
                | RequestKind::Status
                | RequestKind::Doctor
        )
    }
}

impl std::fmt::Display for RequestKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Request {
    /// What kind of request this is.
    pub fn kind(&self) -> RequestKind {
        match self {
            Request::Ping => RequestKind::Ping,
            Request::Unlock { .. } => RequestKind::Unlock,
            Request::Lock { .. } => RequestKind::Lock,
            Request::Rotate { .. } => RequestKind::Rotate,
            Request::Status => RequestKind::Status,
            Request::Doctor { .. } => RequestKind::Doctor,
            Request::Stop => RequestKind::Stop,
            Request::Credentials { .. } => RequestKind::Credentials,
            Request::EksToken { .. } => RequestKind::EksToken,
            Request::DescribeCluster { .. } => RequestKind::DescribeCluster,
            Request::Profiles => RequestKind::Profiles,
            Request::ConsoleLogin { .. } => RequestKind::ConsoleLogin,
            Request::SignIn { .. } => RequestKind::SignIn,
            Request::SignInWait { .. } => RequestKind::SignInWait,
            Request::SsoRoles { .. } => RequestKind::SsoRoles,
            Request::CredentialServer { .. } => RequestKind::CredentialServer,
            Request::ListClusters { .. } => RequestKind::ListClusters,
            Request::AssumableRoles { .. } => RequestKind::AssumableRoles,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClientEnv, GetTokenFlags, MfaCode};

    /// One request of every kind (the match in `kind()` is exhaustive, so
    /// a new variant cannot be missed there; this list is checked against
    /// [`RequestKind::ALL`] below).
    fn one_of_each() -> Vec<Request> {
        let env = ClientEnv::default;
        vec![
            Request::Ping,
            Request::Unlock {
                env: env(),
                identity: None,
                mfa_code: Some(MfaCode("123456".into())),
            },
            Request::Lock { identity: None },
            Request::Rotate {
                env: env(),
                identity: None,
            },
            Request::Status,
            Request::Doctor { env: env() },
            Request::Stop,
            Request::Credentials {
                role: "admin".into(),
                env: None,
                duration: None,
                region: None,
            },
            Request::EksToken {
                cluster: String::new(),
                role: None,
                env: None,
                get_token: Some(GetTokenFlags::default()),
            },
            Request::DescribeCluster {
                cluster: "c".into(),
                role: None,
                env: None,
            },
            Request::Profiles,
            Request::ConsoleLogin {
                role: "admin".into(),
                region: None,
                path: None,
                destination: None,
                redirect: true,
                env: None,
                duration: None,
            },
            Request::SignIn {
                identity: "sso".into(),
                env: None,
                opener: false,
            },
            Request::SignInWait {
                identity: "sso".into(),
                serial: 1,
            },
            Request::SsoRoles { identity: None },
            Request::CredentialServer {
                role: "admin".into(),
                port: None,
                env: None,
                duration: None,
                region: None,
            },
            Request::ListClusters {
                role: "admin".into(),
                region: "eu-west-1".into(),
                env: None,
            },
            Request::AssumableRoles {
                identity: None,
                env: None,
            },
        ]
    }

    #[test]
    fn every_kind_is_one_request_and_matches_its_wire_tag() {
        let requests = one_of_each();
        let kinds: Vec<RequestKind> = requests.iter().map(Request::kind).collect();
        assert_eq!(kinds, RequestKind::ALL);
        for r in &requests {
            let wire = serde_json::to_value(r).unwrap();
            let tag = wire["kind"].as_str().unwrap().replace('_', " ");
            let name = r.kind().name().replace('-', " ");
            assert_eq!(tag, name, "{r:?}");
        }
    }

    /// The limits the daemon applied before they had one home: the
    /// requests that may read 1Password (or sign in) get the broker's
    /// request timeout, rotation three of them, waiting for a person the
    /// device authorization's expiry, the rest a short fixed bound.
    #[test]
    fn time_limits() {
        use RequestKind as K;
        for (kind, want) in [
            (K::Ping, TimeLimit::Short),
            (K::Lock, TimeLimit::Short),
            (K::Status, TimeLimit::Short),
            (K::Doctor, TimeLimit::Short),
            (K::Stop, TimeLimit::Short),
            (K::Profiles, TimeLimit::Short),
            (K::Unlock, TimeLimit::Unlock),
            (K::Credentials, TimeLimit::Unlock),
            (K::EksToken, TimeLimit::Unlock),
            (K::DescribeCluster, TimeLimit::Unlock),
            (K::ConsoleLogin, TimeLimit::Unlock),
            (K::SignIn, TimeLimit::Unlock),
            (K::SsoRoles, TimeLimit::Unlock),
            (K::CredentialServer, TimeLimit::Unlock),
            (K::Rotate, TimeLimit::Rotate),
            (K::SignInWait, TimeLimit::SignIn),
        ] {
            assert_eq!(kind.time_limit(), want, "{kind}");
        }
    }

    /// What a daemon of another setup still answers: what tells the user
    /// why and lets them stop it; everything else would read the wrong
    /// config or account. Every request that may unlock depends on it.
    #[test]
    fn what_depends_on_the_setup() {
        use RequestKind as K;
        let free: Vec<K> = K::ALL
            .into_iter()
            .filter(|k| !k.depends_on_setup())
            .collect();
        assert_eq!(free, [K::Ping, K::Lock, K::Status, K::Doctor, K::Stop]);
        for k in K::ALL {
            if k.may_unlock() || k.time_limit() != TimeLimit::Short {
                assert!(k.depends_on_setup(), "{k}");
            }
        }
    }

    /// Every request that may read 1Password is also given the time an
    /// `op` prompt may take.
    #[test]
    fn what_may_unlock_gets_the_unlock_limit() {
        for k in RequestKind::ALL {
            if k.may_unlock() {
                assert_eq!(k.time_limit(), TimeLimit::Unlock, "{k}");
            }
        }
        assert!(RequestKind::EksToken.may_unlock());
        assert!(!RequestKind::Status.may_unlock());
        assert!(!RequestKind::SignInWait.may_unlock());
    }
}
