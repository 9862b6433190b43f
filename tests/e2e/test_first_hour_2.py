"""The first hour of a new user (issue 21), continued: hints that point the right way
(item 10), a daemon started with another setup (item 6), and help that describes every
argument (item 13). Every step drives the real binary against moto or a real HTTP peer."""

import os
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import rig

# -- 10. hints that point the right way: AWS's own message stays next to pctl's hint


def test_assume_role_denied_names_policy_trust_policy_and_arn(auth_env):
    """moto refuses AssumeRole on a role whose trust policy names somebody else."""
    auth_env.write_config(text=rig.config_text() + '\n[roles.untrusting]\nname = "untrusting"\n')
    r = auth_env.run("credential-process", "--role", "untrusting")
    err = rig.assert_pctl_error(r, "AccessDenied", "user's policy", "trust policy",
                                "ARN has a typo", f"role/untrusting")
    # AWS's own words, next to the hint
    assert "not authorized" in err, err


def test_signature_mismatch_names_the_clock_first(pctl_env, moto_auth):
    """A wrong secret in the item: moto answers SignatureDoesNotMatch, which is also what
    AWS answers to a skewed clock; the hint names the clock first, then the key."""
    ident = moto_auth.identity
    env = pctl_env(moto_auth.url)
    env.op_store([rig.aws_item(ident["access_key_id"], "not-the-secret-of-this-key")])
    r = env.run("credential-process", "--role", "admin")
    err = rig.assert_pctl_error(r, "SignatureDoesNotMatch", "clock", "pctl doctor", "secret key")
    assert err.index("clock") < err.index("secret key"), err
    assert "signature we calculated does not match" in err.lower(), err


STS_ERROR = ('<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
             '<Type>Sender</Type><Code>SignatureDoesNotMatch</Code><Message>{}</Message>'
             '</Error><RequestId>0f0e0d0c-0b0a-0908-0706-050403020100</RequestId>'
             '</ErrorResponse>')


@pytest.fixture
def skewed_sts():
    """An STS endpoint that answers every call as AWS does when the caller's clock is
    more than 5 minutes off (SignatureDoesNotMatch, "Signature expired")."""
    message = ("Signature expired: 20260101T000000Z is now earlier than 20260101T001000Z "
               "(20260101T002000Z - 15 min.)")

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = STS_ERROR.format(message).encode()
            self.send_response(403)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_signature_expired_names_only_the_clock(pctl_env, skewed_sts):
    env = pctl_env(skewed_sts)
    env.op_store([rig.aws_item("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")])
    r = env.run("credential-process", "--role", "admin")
    err = rig.assert_pctl_error(r, "clock is off", "pctl doctor", "Signature expired: 2026")
    assert "secret key" not in err, err


# -- 6. a daemon started with another setup


def test_daemon_with_another_config_says_which_and_what_to_do(auth_env):
    auth_env.ok("credential-process", "--role", "admin")  # the daemon reads the default file
    other = os.path.join(auth_env.root, "other.toml")
    shutil.copy(auth_env.config_path, other)
    mine = {"PCTL_CONFIG": other}

    r = auth_env.run("credential-process", "--role", "admin", env=mine)
    rig.assert_pctl_error(r, "another setup", auth_env.config_path, other, "PCTL_CONFIG",
                          "run `pctl stop`, then retry")
    r = auth_env.run("env", "--role", "admin", env=mine)
    rig.assert_pctl_error(r, "another setup", "pctl stop")

    r = auth_env.run("doctor", env=mine)
    assert r.returncode == 1, r
    fail = [l for l in r.stdout.splitlines() if l.startswith("FAIL") and "daemon setup" in l]
    assert fail and other in fail[0] and "fix: run `pctl stop`" in fail[0], r.stdout
    assert not [l for l in r.stdout.splitlines() if "daemon setup" in l and l.startswith("OK")]

    r = auth_env.run("status", env=mine)
    assert r.returncode == 0, r
    assert "another setup" in r.stderr and "pctl stop" in r.stderr, r.stderr

    # the same shell as the daemon's: no complaint
    r = auth_env.ok("doctor")
    assert "daemon setup" not in r.stdout, r.stdout
    assert auth_env.ok("status").stderr == ""

    # what the message says to do works: the next daemon reads the shell's file
    auth_env.ok("stop", env=mine)
    auth_env.ok("credential-process", "--role", "admin", env=mine)
    assert auth_env.run("status", "--json", env=mine).stdout.count(other) >= 1
    r = auth_env.run("credential-process", "--role", "admin")  # now the default one differs
    rig.assert_pctl_error(r, "another setup", other, auth_env.config_path)


def test_daemon_with_other_endpoints_names_them_never_their_values(auth_env):
    auth_env.ok("credential-process", "--role", "admin")
    proxy = "http://someone:proxy-password-123@127.0.0.1:9"
    r = auth_env.run("credential-process", "--role", "admin",
                     env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "HTTPS_PROXY": proxy})
    err = rig.assert_pctl_error(r, "another setup", "STS endpoint", "AWS_ENDPOINT_URL",
                                "HTTPS proxy", "HTTPS_PROXY", "pctl stop")
    assert "proxy-password-123" not in err and "127.0.0.1:9" not in err, err
    assert auth_env.config_path not in err, "the config is the same: not named"


def test_same_effective_endpoint_set_another_way_is_no_difference(auth_env):
    auth_env.ok("credential-process", "--role", "admin")
    auth_env.ok("credential-process", "--role", "admin",
                env={"AWS_ENDPOINT_URL_STS": auth_env.endpoint_url,
                     "AWS_ENDPOINT_URL_IAM": auth_env.endpoint_url})


# -- 13. help: every argument described; `init --role KEY=ARN`; aws eks get-token's form

SUBCOMMANDS = ["init", "shell", "unlock", "lock", "rotate", "status", "doctor", "prompt",
               "stop", "credential-process", "env", "exec", "roles", "aws-config", "eks token",
               "kubeconfig", "completions", "login", "serve", "daemon", "sso roles"]


def undescribed(help_text):
    """Entries of the Arguments/Options sections of clap's `-h` with no description (on
    their line, or on the more indented line after it)."""
    missing, section = [], None
    lines = help_text.splitlines()
    for i, line in enumerate(lines):
        if line and not line.startswith(" "):
            section = line[:-1] if line.endswith(":") else None
            continue
        entry = line.strip()
        indent = len(line) - len(line.lstrip())
        if section not in ("Arguments", "Options") or indent not in (2, 6) \
                or entry[:1] not in ("-", "<", "["):
            continue
        parts = entry.split("  ", 1)
        if len(parts) == 2 and parts[1].strip():
            continue
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if len(nxt) - len(nxt.lstrip()) > 6 and nxt.strip():
            continue
        missing.append(entry)
    return missing


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_every_argument_has_a_description(pctl_env, sub):
    env = pctl_env("http://127.0.0.1:9")
    r = env.ok(*sub.split(), "-h")
    assert "Options:" in r.stdout, r.stdout
    assert undescribed(r.stdout) == [], r.stdout


def test_init_role_shows_key_equals_arn(pctl_env):
    env = pctl_env("http://127.0.0.1:9")
    out = env.ok("init", "--help").stdout
    assert "--role <[KEY=]NAME_OR_ARN>" in out, out
    assert "--role KEY=ARN" in out, out


def test_eks_token_help_shows_the_aws_eks_get_token_form(pctl_env):
    env = pctl_env("http://127.0.0.1:9")
    out = " ".join(env.ok("eks", "token", "--help").stdout.split())
    assert "aws eks get-token" in out, out
    assert "pctl eks token --region R --cluster-name NAME [--role-arn ARN]" in out, out
    assert "pctl --region R eks get-token --cluster-name NAME" in out, out


# -- 5. a failed unlock leaves a trace: status, doctor and the locked message


def test_failed_unlock_is_kept_and_shown(auth_env):
    ident = auth_env.ident
    # the config names "AWS user key"; 1Password only has another item
    auth_env.op_store([rig.aws_item(ident["access_key_id"], ident["secret_access_key"],
                                    title="Some other key", item_id="zzzzzzzzzzzzzzzzzzzzzzzzzz")])
    r = auth_env.run("unlock")
    err = rig.assert_pctl_error(r)
    why = err[len("pctl: "):]

    out = auth_env.ok("status").stdout
    assert "last unlock failed: " in out, out
    assert "never unlocked" in out, out
    ids = auth_env.status()["identities"]
    assert ids[0]["last_unlock_failure"] and ids[0]["last_unlock_failure"] in why, (ids, why)

    r = auth_env.run("doctor")
    assert r.returncode == 1, r
    fail = [l for l in r.stdout.splitlines() if l.startswith("FAIL") and "last unlock failed" in l]
    assert fail and "fix: " in fail[0], r.stdout

    auth_env.ok("lock")
    r = auth_env.run("credential-process", "--role", "admin")
    rig.assert_pctl_error(r, "locked (by `pctl lock`; last unlock failed: ", "run `pctl unlock`")

    # fixed: the next unlock clears it
    auth_env.op_store([rig.aws_item(ident["access_key_id"], ident["secret_access_key"])])
    auth_env.ok("unlock")
    assert "last unlock failed" not in auth_env.ok("status").stdout
    assert "last_unlock_failure" not in auth_env.status()["identities"][0]
    assert "last unlock failed" not in auth_env.run("doctor").stdout
