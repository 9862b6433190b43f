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
    auth_env.write_config(text=rig.CONFIG_TEMPLATE.format(
        region=rig.REGION, op_timeout="20s", item=rig.ITEM_TITLE, vault=rig.VAULT,
        role=rig.ROLE_NAME, cluster=rig.CLUSTER) + '\n[roles.untrusting]\nname = "untrusting"\n')
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
