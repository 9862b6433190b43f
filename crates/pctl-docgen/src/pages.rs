//! What clap cannot generate: the sections of `pctl(1)` beyond its options
//! (FILES, ENVIRONMENT, EXIT STATUS, EXAMPLES, SEE ALSO), the configuration
//! reference `pctl.toml(5)` and the daemon's page `pctl-daemon(8)`.
//!
//! The text is written here, next to the generator, from the same facts as
//! README.md and docs/interface.md; tests/packaging/test_man_sections.py
//! checks that every key the config parser accepts and every option of the
//! built `pctl-daemon` is described.

use clap_mangen::roff::{bold, italic, roman, Inline, Roff};

/// A definition list entry: the term in bold, then its paragraph.
fn item(r: &mut Roff, term: &str, text: &str) {
    r.control("TP", []);
    r.text([bold(term)]);
    r.text([roman(text)]);
}

/// A term made of a bold part and an italic argument (`--log-file FILE`).
fn item2(r: &mut Roff, term: &str, arg: &str, text: &str) {
    r.control("TP", []);
    r.text([bold(term), roman(" "), italic(arg)]);
    r.text([roman(text)]);
}

fn section(r: &mut Roff, name: &str) {
    r.control("SH", [name]);
}

fn para(r: &mut Roff, text: &str) {
    r.control("PP", []);
    r.text([roman(text)]);
}

/// Lines shown as is (examples, config snippets).
fn example(r: &mut Roff, lines: &str) {
    r.control("PP", []);
    r.control("RS", ["4"]);
    r.control("nf", []);
    for line in lines.lines() {
        r.text([roman(line)]);
    }
    r.control("fi", []);
    r.control("RE", []);
}

fn see_also(r: &mut Roff, pages: &[(&str, &str)]) {
    section(r, "SEE ALSO");
    let mut inlines: Vec<Inline> = Vec::new();
    for (i, (name, sect)) in pages.iter().enumerate() {
        if i > 0 {
            inlines.push(roman(", "));
        }
        inlines.push(bold(*name));
        inlines.push(roman(format!("({sect})")));
    }
    r.text(inlines);
}

const FILES: &[(&str, &str)] = &[
    (
        "~/.config/pctl/config.toml",
        "The configuration ($XDG_CONFIG_HOME/pctl/config.toml; PCTL_CONFIG overrides). \
         It and every included file must be yours (or root's) and writable by you only; \
         see pctl.toml(5). Written by pctl init.",
    ),
    (
        "$XDG_RUNTIME_DIR/pctl/pctl.sock",
        "The daemon's socket (directory 0700, socket 0600). Without XDG_RUNTIME_DIR: \
         /tmp/pctl-UID/ on Linux, pctl/ in the per-user temporary directory on macOS. \
         PCTL_SOCK overrides.",
    ),
    (
        "~/.local/state/pctl/daemon.log, audit.log",
        "The daemon's log and the audit trail of every issuance ($XDG_STATE_HOME/pctl/; \
         0600, no secrets).",
    ),
    (
        "~/.config/pctl/kubeconfig",
        "pctl's own kubeconfig (pctl kubeconfig without --write); pctl shell adds it to KUBECONFIG.",
    ),
    (
        "~/.aws/config",
        "Gets one managed block (# BEGIN pctl ... # END pctl) from pctl aws-config and pctl init; \
         AWS_CONFIG_FILE names another file. The previous file is kept as config.pctl-backup.",
    ),
    (
        "~/.kube/config",
        "pctl kubeconfig --write merges its cluster, user and context into it (the first file of \
         KUBECONFIG, if set).",
    ),
    (
        "/usr/share/pctl/",
        "The shell prompt segments (source prompt.bash, prompt.zsh or prompt.fish from your rc \
         file), the starship module (starship.toml), the shell set-up scripts (pctl.bash, pctl.zsh, \
         pctl.fish) and the service units; share/pctl/ of the release tarball, \
         $(brew --prefix)/share/pctl/ with Homebrew.",
    ),
    (
        "/usr/share/doc/pctl/interface.md",
        "The interface reference: commands, paths, the config keys and the wire protocol.",
    ),
];

const ENVIRONMENT: &[(&str, &str)] = &[
    ("PCTL_CONFIG", "The configuration file (default ~/.config/pctl/config.toml). A daemon serves the file it was started with: a client with another PCTL_CONFIG is told to run pctl stop."),
    ("PCTL_SOCK", "The daemon's socket (default $XDG_RUNTIME_DIR/pctl/pctl.sock). pctl shell exports it."),
    ("PCTL_ROLE", "The role this shell uses, set by pctl env and pctl exec; read by pctl prompt."),
    ("PCTL_LOG", "The daemon's log level: error, warn, info (default), debug or trace. Dependencies stay at warn, so no HTTP trace is ever written."),
    ("AWS_PROFILE", "pctl exec without a role uses this profile's role (pctl-ROLE); pctl prompt shows it. pctl shell --profile sets it."),
    ("AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN", "Exported keys beat any profile: pctl shell unsets them (saying so), pctl doctor warns while they are set, pctl exec removes them from the command's environment."),
    ("AWS_CONFIG_FILE, KUBECONFIG", "The files pctl aws-config and pctl kubeconfig write (defaults ~/.aws/config, ~/.kube/config)."),
    ("AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL_EKS, ...", "Endpoints the daemon calls AWS through (private endpoints, tests); taken from the shell that started the daemon."),
    ("HTTPS_PROXY, HTTP_PROXY, NO_PROXY", "Proxies for the daemon's AWS calls; taken from the shell that started the daemon."),
    ("XDG_CONFIG_HOME, XDG_STATE_HOME, XDG_RUNTIME_DIR, HOME", "Where the files above live."),
    ("OP_ACCOUNT, OP_CONNECT_HOST, OP_SERVICE_ACCOUNT_TOKEN, ...", "The 1Password CLI's own variables are passed to op; no other variable of your environment is."),
    ("BROWSER", "The program pctl login and the IAM Identity Center sign-in open URLs with (else xdg-open or open)."),
    ("NO_COLOR", "No colour in --diff output."),
];

const EXIT_STATUS: &[(&str, &str)] = &[
    ("0", "Success. pctl aws-config --diff and pctl kubeconfig --diff: nothing would change."),
    ("1", "An error, explained in one line on standard error starting with pctl:. pctl doctor: a check failed. --diff: something would change."),
    ("2", "A usage error (unknown command or option), or pctl without a command."),
    ("3", "pctl prompt: the daemon is locked."),
    ("4", "pctl prompt: no daemon runs (pctl prompt never starts one)."),
    ("126, 127", "pctl exec: the command is not executable, or not found."),
    ("other", "pctl exec: the command's own exit status."),
];

const EXAMPLES: &str = "\
pctl init                                  # pick the 1Password item and roles
eval \"$(pctl shell)\"                       # bash, zsh; fish: pctl shell --shell fish | source
pctl aws-config --diff                     # what would change in ~/.aws/config
aws --profile pctl-admin sts get-caller-identity
pctl exec admin -- terraform plan
pctl exec --server --role admin -- terraform apply
pctl kubeconfig --cluster platform --write
kubectl --context pctl-platform get nodes
pctl login --role admin
pctl status
pctl doctor";

/// The sections appended to `pctl(1)`.
pub fn pctl_extra() -> String {
    let mut r = Roff::new();
    section(&mut r, "FILES");
    for (f, t) in FILES {
        item(&mut r, f, t);
    }
    section(&mut r, "ENVIRONMENT");
    for (v, t) in ENVIRONMENT {
        item(&mut r, v, t);
    }
    section(&mut r, "EXIT STATUS");
    for (c, t) in EXIT_STATUS {
        item(&mut r, c, t);
    }
    section(&mut r, "EXAMPLES");
    example(&mut r, EXAMPLES);
    see_also(
        &mut r,
        &[
            ("pctl.toml", "5"),
            ("pctl-daemon", "8"),
            ("op", "1"),
            ("aws", "1"),
            ("kubectl", "1"),
        ],
    );
    r.to_roff()
}

/// The SEE ALSO section of every subcommand's page.
pub fn subcommand_extra() -> String {
    let mut r = Roff::new();
    para(
        &mut r,
        "Files, environment variables and exit statuses common to every command are in pctl(1).",
    );
    see_also(
        &mut r,
        &[("pctl", "1"), ("pctl.toml", "5"), ("pctl-daemon", "8")],
    );
    r.to_roff()
}

fn title(r: &mut Roff, name: &str, sect: &str) {
    r.control(
        "TH",
        [
            name,
            sect,
            "",
            concat!("pctl ", env!("CARGO_PKG_VERSION")),
            "pctl manual",
        ],
    );
}

/// `pctl-daemon(8)`: the daemon binary.
pub fn daemon_page() -> String {
    let mut r = Roff::new();
    title(&mut r, "pctl-daemon", "8");
    section(&mut r, "NAME");
    r.text([roman("pctl-daemon - the pctl credential broker daemon")]);
    section(&mut r, "SYNOPSIS");
    r.text([
        bold("pctl-daemon"),
        roman(" ["),
        bold("--log-file"),
        roman(" "),
        italic("FILE"),
        roman("]"),
    ]);
    r.control("br", []);
    r.text([
        bold("pctl daemon"),
        roman(" ["),
        bold("--log-file"),
        roman(" "),
        italic("FILE"),
        roman("]"),
    ]);
    section(&mut r, "DESCRIPTION");
    para(&mut r, "pctl-daemon is the per-user process that holds your AWS keys. On unlock it reads the IAM user's access key, MFA serial and one-time password and the account ID from 1Password with one op item get (or signs in to IAM Identity Center), keeps them only in memory (mlocked pages, wiped on free, no core dumps, not traceable by other processes of the same user), and hands out short-lived STS role sessions and EKS tokens over a Unix socket that only its own user may connect to.");
    para(&mut r, "You rarely start it yourself: every pctl command that needs it starts one (detached, looked up next to pctl, then on PATH) when none answers, and replaces a daemon of another version. pctl daemon runs it in the foreground with its log on standard error; the systemd user unit (pctl.service) and the launchd agent run it as a service.");
    para(&mut r, "A daemon serves one configuration: the file PCTL_CONFIG named in the environment it was started from (else ~/.config/pctl/config.toml), re-read when it changes, and the AWS endpoints and proxies of that environment. It locks after idle_lock without a request and max_unlock after unlocking (pctl.toml(5)), on pctl lock, and stops on pctl stop, SIGTERM or SIGINT, wiping every secret.");
    section(&mut r, "OPTIONS");
    item2(&mut r, "--log-file", "FILE", "Log to FILE (created 0600, its directory 0700; rotated at 10 MiB to FILE.1) instead of standard error. No secret is ever logged.");
    item(&mut r, "-h, --help", "Print help.");
    item(&mut r, "-V, --version", "Print the version.");
    section(&mut r, "ENVIRONMENT");
    for (v, t) in ENVIRONMENT.iter().filter(|(v, _)| {
        [
            "PCTL_CONFIG",
            "PCTL_SOCK",
            "PCTL_LOG",
            "AWS_ENDPOINT_URL",
            "HTTPS_PROXY",
            "XDG_",
            "OP_",
        ]
        .iter()
        .any(|p| v.starts_with(p))
    }) {
        item(&mut r, v, t);
    }
    item(&mut r, "PATH", "Where op is found at unlock (unless op_path is set); an op writable by group or others, or in such a directory, is refused.");
    section(&mut r, "FILES");
    for (f, t) in FILES.iter().take(3) {
        item(&mut r, f, t);
    }
    section(&mut r, "EXIT STATUS");
    item(&mut r, "0", "Stopped by pctl stop or a signal.");
    item(&mut r, "1", "Could not start, e.g. the socket's directory is not private or the log file cannot be opened (the reason is on standard error and in the log).");
    item(&mut r, "2", "A usage error.");
    section(&mut r, "EXAMPLES");
    example(&mut r, "pctl daemon                                # in the foreground, log on stderr\nPCTL_LOG=debug pctl-daemon --log-file /tmp/pctl-debug.log\nsystemctl --user enable --now pctl        # as a systemd user service");
    see_also(
        &mut r,
        &[("pctl", "1"), ("pctl.toml", "5"), ("systemd.service", "5")],
    );
    r.to_roff()
}

/// One configuration key: table, key, value, what it does.
type Key = (&'static str, &'static str, &'static str);

const TOP: &[Key] = &[
    ("region", "string, required", "The AWS region of STS calls and clusters, and the region handed to pctl env and exec, e.g. \"us-east-1\"."),
    ("include", "list of paths", "Further files holding [roles.*] and [clusters.*] only, relative to this file. Anything else in them is refused; a key defined in two files is an error naming both."),
    ("console", "table", "How pctl login opens the console: browser = \"default\" ($BROWSER, else the platform's opener), \"firefox-container\" (a container named after the role), \"chromium-profile\" (a profile directory per role) or a command list with the URL appended; browser_command names the browser program."),
];

const DAEMON: &[Key] = &[
    ("idle_lock", "duration, default \"1h\"", "Drop the secrets after this long without a request."),
    ("max_unlock", "duration, default \"12h\"", "Drop them this long after unlocking, whatever happens (time asleep counts). At most mfa_session."),
    ("op_timeout", "duration, default \"2m\"", "Time to answer the 1Password prompt (and for mfa_command)."),
    ("mfa_session", "duration, default \"12h\"", "GetSessionToken duration, 15m to 36h."),
    ("pinentry", "absolute path", "The pinentry program that asks for an MFA code or a confirmation when the requesting program has no terminal (default: the first of pinentry-mac, pinentry-gnome3, pinentry-qt, pinentry on PATH)."),
    ("sso_pinentry", "\"auto\", \"always\" or \"never\", default \"auto\"", "When an IAM Identity Center sign-in for a program without a terminal shows its URL and code in a pinentry window: when no browser can be opened, always, or never (a desktop notification names the program and the code every time)."),
];

const IDENTITY: &[Key] = &[
    ("item", "string", "The 1Password item holding the IAM user's key: its name or ID."),
    ("vault", "string", "The vault holding it."),
    ("account", "string", "The 1Password account (e.g. \"my.1password.com\"), when op is signed in to several."),
    ("op_path", "absolute path", "The op to run (default: the first op on the client's PATH at unlock). Refused when it or its directory is writable by group or others."),
    ("mfa", "\"item\", \"prompt\" or \"process\"", "Where the MFA code comes from when the item has an \"MFA Serial\": the item's one-time password field (item, the default), typed at the terminal of the pctl command that unlocks (prompt), or printed by mfa_command (process)."),
    ("mfa_command", "list of strings", "With mfa = \"process\": the program and arguments printing the code (no shell), e.g. [\"ykman\", \"oath\", \"accounts\", \"code\", \"-s\", \"AWS\"]. The last 6-digit word of its output is used."),
    ("source", "\"onepassword\" or \"sso\"", "sso signs in to IAM Identity Center instead of reading 1Password (default onepassword)."),
    ("start_url", "URL", "source = \"sso\": your AWS access portal, e.g. \"https://example.awsapps.com/start\"."),
    ("sso_region", "string", "source = \"sso\": the region Identity Center runs in."),
    ("registration_scopes", "list of strings", "source = \"sso\": the scopes registered (default [\"sso:account:access\"], which gives a refresh token)."),
];

const FIELDS: &[Key] = &[
    (
        "access_key_id",
        "label, default \"Access Key ID\"",
        "The field holding the access key ID.",
    ),
    (
        "secret_access_key",
        "label, default \"Secret Access Key\"",
        "The field holding its secret.",
    ),
    (
        "account_id",
        "label, default \"Account ID\"",
        "The field holding the 12-digit account ID.",
    ),
    (
        "mfa_serial",
        "label, default \"MFA Serial\"",
        "The field holding the MFA device's ARN; no such field: no MFA.",
    ),
    (
        "totp",
        "label, default \"One-Time Password\"",
        "The one-time password field (mfa = \"item\").",
    ),
];

const ROLE: &[Key] = &[
    ("name", "string", "The role's name (with its path, if any), joined with the account ID read from 1Password."),
    ("arn", "ARN", "Or the full role ARN, used as is (another account)."),
    ("identity", "identity name", "The identity it is assumed from; may be left out when there is one identity, or [onepassword]."),
    ("duration", "duration, default \"1h\"", "The role session's length, 15m to 12h (at most 1h for a chained role)."),
    ("session_name", "string", "The RoleSessionName (2 to 64 of letters, digits and +=,.@-_). Default: your IAM user's name, learnt at unlock, so CloudTrail shows who assumed the role."),
    ("account_id", "12 digits", "A role of an sso identity: the account."),
    ("role_name", "string", "A role of an sso identity: the permission set's role name."),
    ("source_role", "role name", "Assume this role from that role's session (a chain; AWS caps it at one hour)."),
    ("external_id", "string", "Sent as ExternalId."),
    ("source_identity", "string", "Sent as SourceIdentity."),
    ("tags", "table of strings", "Session tags, e.g. { team = \"platform\" }."),
    ("transitive_tags", "list of strings", "Tag keys that pass on to chained roles."),
    ("confirm", "boolean, default false", "A break-glass role: each new session is confirmed by you, at the requesting terminal or through pinentry; cached sessions are not asked again."),
    ("allowed_programs", "list of program names", "Only these programs (the executable's file name or argv[0]; a trailing * matches any rest) may use the role; anything else is refused naming the program. Guards against accidents, not against malware running as you."),
    ("region", "string", "The role's own region, for its STS calls and pctl env / exec (default: the top-level region)."),
];

const CLUSTER: &[Key] = &[
    (
        "role",
        "role name, required",
        "The role whose session mints the cluster's tokens.",
    ),
    (
        "name",
        "string",
        "The EKS cluster name (default: the table key).",
    ),
    (
        "region",
        "string",
        "The cluster's region (default: the top-level region).",
    ),
];

fn keys(r: &mut Roff, keys: &[Key]) {
    for (k, value, text) in keys {
        r.control("TP", []);
        r.text([bold(*k), roman(" ("), italic(*value), roman(")")]);
        r.text([roman(*text)]);
    }
}

/// `pctl.toml(5)`: the configuration reference.
pub fn config_page() -> String {
    let mut r = Roff::new();
    title(&mut r, "pctl.toml", "5");
    section(&mut r, "NAME");
    r.text([roman("pctl.toml - the configuration file of pctl")]);
    section(&mut r, "SYNOPSIS");
    r.text([roman(
        "~/.config/pctl/config.toml ($XDG_CONFIG_HOME/pctl/config.toml; PCTL_CONFIG overrides)",
    )]);
    section(&mut r, "DESCRIPTION");
    para(&mut r, "A TOML file naming the 1Password items (identities) pctl reads AWS keys from, the roles it assumes and the EKS clusters it mints tokens for. pctl init writes a first one. The daemon re-reads it at the next request after it changes. A bad file is refused with one line naming the file, the key and what is wrong; nothing is half applied.");
    para(&mut r, "Durations are strings such as \"90s\", \"15m\", \"1h\", \"1h30m\". Role, cluster and identity names (the table keys) match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$: they become profile names (pctl-NAME) in ~/.aws/config and entry names in kubeconfig files.");
    section(&mut r, "TOP-LEVEL KEYS");
    keys(&mut r, TOP);
    section(&mut r, "[daemon]");
    para(&mut r, "All optional.");
    keys(&mut r, DAEMON);
    section(&mut r, "[onepassword] and [identities.NAME]");
    para(&mut r, "[onepassword] is the identity named default; each [identities.NAME] table is another IAM user (or Identity Center sign-in) with the same keys. Each identity unlocks on first use with one op item get and has its own secrets, MFA session and timers.");
    keys(&mut r, IDENTITY);
    section(&mut r, "[onepassword.fields]");
    para(&mut r, "The labels of the item's fields (matched case-insensitively), when they differ from those of 1Password's own AWS item; also [identities.NAME.fields].");
    keys(&mut r, FIELDS);
    section(&mut r, "[roles.NAME]");
    para(&mut r, "One table per role; name or arn (or, for an sso identity, account_id and role_name) is required. The profile pctl-NAME in ~/.aws/config gets this role's sessions.");
    keys(&mut r, ROLE);
    section(&mut r, "[clusters.NAME]");
    keys(&mut r, CLUSTER);
    section(&mut r, "FILE PERMISSIONS");
    para(&mut r, "Like ssh with its config, pctl reads the file and each included file only when it is owned by you (or root) and writable by its owner only, and so is the directory holding it (symbolic links are followed and the target checked too). Anything else is refused with the command that fixes it.");
    section(&mut r, "EXAMPLES");
    example(&mut r, "region = \"us-east-1\"\n\n[onepassword]\nitem = \"AWS user key\"\nvault = \"Private\"\nmfa = \"prompt\"            # type the code; default: the item's OTP field\n\n[roles.admin]\nname = \"platform-admin\"\nduration = \"1h\"\n\n[roles.prod]\narn = \"arn:aws:iam::444455556666:role/Admin\"\nsession_name = \"ci-deploy\"\n\n[clusters.platform]\nrole = \"admin\"");
    see_also(
        &mut r,
        &[("pctl", "1"), ("pctl-init", "1"), ("pctl-daemon", "8")],
    );
    r.to_roff()
}
