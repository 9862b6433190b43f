"""The `op` stand-in must be a faithful peer: same shapes, errors and exit codes as op 2.x."""

import base64
import json
import os
import re
import subprocess
import time

import pytest

import rig

OP = os.path.join(rig.FIXTURES, "op")
ERR_RE = re.compile(r"^\[ERROR\] (\d{4}/\d\d/\d\d \d\d:\d\d:\d\d )?(?P<msg>.*)$")


@pytest.fixture
def home(tmp_path):
    h = tmp_path / "home"
    h.mkdir()
    item = rig.aws_item("AKIAEXAMPLEKEY000001", "s3cr3t/value+x", mfa_serial=(
        f"arn:aws:iam::{rig.ACCOUNT_ID}:mfa/operator"), totp_seed=rig.TOTP_SEED)
    rig.write_op_store(str(h), [item])
    return str(h)


def op(home, *args, env=None):
    e = {"HOME": home, "PATH": os.environ["PATH"]}
    e.update(env or {})
    return subprocess.run([OP, *args], env=e, capture_output=True, text=True, timeout=30)


def error_message(r):
    assert r.returncode == 1, r
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    m = ERR_RE.match(lines[0])
    assert m, f"not an op error line: {r.stderr!r}"
    return m.group("msg"), lines[1:]


def test_rfc6238_vector():
    seed = base64.b32encode(b"12345678901234567890").decode()
    assert rig.totp(seed, at=59) == "287082"
    assert rig.totp(seed, at=1111111109) == "081804"


def test_version(home):
    r = op(home, "--version")
    assert r.returncode == 0 and re.fullmatch(r"2\.\d+\.\d+\n", r.stdout)


def test_item_get_json_shape_and_totp(home):
    before = rig.totp(rig.TOTP_SEED)
    r = op(home, "item", "get", rig.ITEM_TITLE, "--vault", rig.VAULT, "--format", "json")
    after = rig.totp(rig.TOTP_SEED)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith('{\n  "id": ')  # pretty, 2-space indent
    item = json.loads(r.stdout)
    assert {"id", "title", "version", "vault", "category", "created_at", "updated_at",
            "sections", "fields"} <= set(item)
    assert item["vault"] == {"id": rig.VAULT_ID, "name": rig.VAULT}
    by_label = {f["label"]: f for f in item["fields"]}
    assert by_label["Access Key ID"]["value"] == "AKIAEXAMPLEKEY000001"
    assert by_label["Secret Access Key"]["type"] == "CONCEALED"
    otp = by_label["One-Time Password"]
    assert otp["type"] == "OTP" and otp["value"].startswith("otpauth://totp/")
    assert otp["totp"] in (before, after)
    assert "value" not in by_label["notesPlain"]  # empty fields carry no value
    for f in item["fields"]:
        assert f["reference"].startswith("op://")
    # by id and by vault id work too, and case-insensitive title
    r2 = op(home, "item", "get", rig.ITEM_ID, "--vault", rig.VAULT_ID, "--format=json")
    assert json.loads(r2.stdout)["id"] == rig.ITEM_ID
    r3 = op(home, "item", "get", rig.ITEM_TITLE.upper(), "--vault", rig.VAULT, "--format", "json")
    assert r3.returncode == 0


def test_not_signed_in(home):
    rig.set_op_state(home, signed_in=False)
    msg, _ = error_message(op(home, "item", "get", rig.ITEM_TITLE, "--vault", rig.VAULT,
                              "--format", "json"))
    assert msg == ("You are not currently signed in. Please run `op signin --help` "
                   "for instructions")
    msg, _ = error_message(op(home, "whoami"))
    assert msg == "account is not signed in"
    # a service account token counts as signed in
    r = op(home, "item", "get", rig.ITEM_TITLE, "--vault", rig.VAULT, "--format", "json",
           env={"OP_SERVICE_ACCOUNT_TOKEN": "ops_x"})
    assert r.returncode == 0


def test_not_found_errors(home):
    msg, _ = error_message(op(home, "item", "get", "Nope", "--vault", rig.VAULT, "--format", "json"))
    assert msg == ('"Nope" isn\'t an item in the "Private" vault. Specify the item with its '
                   "UUID, name, or domain.")
    msg, _ = error_message(op(home, "item", "get", rig.ITEM_TITLE, "--vault", "Work",
                              "--format", "json"))
    assert msg == '"Work" isn\'t a vault in this account. Specify the vault with its ID or name.'
    msg, _ = error_message(op(home, "read", f"op://{rig.VAULT}/{rig.ITEM_TITLE}/Password"))
    assert msg == f"item '{rig.VAULT}/{rig.ITEM_TITLE}' does not have a field 'Password'"


def test_ambiguous_item(home):
    a = rig.aws_item("AKIA1", "s1", item_id="aaaaaaaaaaaaaaaaaaaaaaaaaa")
    b = rig.aws_item("AKIA2", "s2", item_id="bbbbbbbbbbbbbbbbbbbbbbbbbb")
    rig.write_op_store(home, [a, b])
    msg, rest = error_message(op(home, "item", "get", rig.ITEM_TITLE, "--vault", rig.VAULT,
                                 "--format", "json"))
    assert msg == (f'More than one item matches "{rig.ITEM_TITLE}". Try again and specify the '
                   "item by its ID:")
    assert len(rest) == 2 and "aaaaaaaaaaaaaaaaaaaaaaaaaa" in rest[0]


def test_fields_object_vs_array_and_otp(home):
    one = op(home, "item", "get", rig.ITEM_TITLE, "--vault", rig.VAULT,
             "--fields", "label=Access Key ID", "--format", "json")
    assert isinstance(json.loads(one.stdout), dict)
    two = op(home, "item", "get", rig.ITEM_TITLE, "--vault", rig.VAULT,
             "--fields", "label=Access Key ID,label=Secret Access Key", "--format", "json")
    assert isinstance(json.loads(two.stdout), list) and len(json.loads(two.stdout)) == 2
    r = op(home, "item", "get", rig.ITEM_TITLE, "--vault", rig.VAULT, "--otp")
    assert re.fullmatch(r"\d{6}\n", r.stdout)
    assert r.stdout.strip() in (rig.totp(rig.TOTP_SEED, time.time() - 30),
                                rig.totp(rig.TOTP_SEED))


def test_read(home):
    r = op(home, "read", f"op://{rig.VAULT}/{rig.ITEM_TITLE}/Secret Access Key")
    assert r.returncode == 0 and r.stdout == "s3cr3t/value+x\n"
    r = op(home, "read", "-n", f"op://{rig.VAULT}/{rig.ITEM_TITLE}/Secret Access Key")
    assert r.stdout == "s3cr3t/value+x"
    r = op(home, "read", f"op://{rig.VAULT}/{rig.ITEM_TITLE}/One-Time Password?attribute=otp")
    assert re.fullmatch(r"\d{6}\n", r.stdout)


@pytest.mark.parametrize("mode,message", [
    ("dismissed", "error initializing client: authorization prompt dismissed, please try again"),
    ("auth-timeout", "error initializing client: authorization timeout"),
    ("desktop-unreachable", "connecting to desktop app: 1Password CLI couldn't connect to the "
                            "1Password desktop app."),
    ("rate-limited", "(429) Too Many Requests"),
    ("ambiguous", "More than one item matches"),
])
def test_failure_modes(home, mode, message):
    rig.set_op_state(home, mode=mode)
    msg, _ = error_message(op(home, "item", "get", rig.ITEM_TITLE, "--vault", rig.VAULT,
                              "--format", "json"))
    assert msg.startswith(message)


def test_malformed_and_hang_modes(home):
    rig.set_op_state(home, mode="malformed")
    r = op(home, "item", "get", rig.ITEM_TITLE, "--vault", rig.VAULT, "--format", "json")
    assert r.returncode == 0
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.stdout)
    rig.set_op_state(home, mode="hang")
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run([OP, "item", "get", rig.ITEM_TITLE, "--vault", rig.VAULT],
                       env={"HOME": home, "PATH": os.environ["PATH"]}, timeout=1.5,
                       capture_output=True)


def test_call_log_records_env_names_only(home):
    op(home, "whoami", env={"OP_SESSION_abc": "very-secret-session", "XDG_CONFIG_HOME": "/x"})
    calls = rig.read_jsonl(os.path.join(home, ".op-fake", "calls.log"))
    assert calls[-1]["argv"] == ["whoami"]
    assert "OP_SESSION_abc" in calls[-1]["env"]
    raw = open(os.path.join(home, ".op-fake", "calls.log")).read()
    assert "very-secret-session" not in raw


def test_item_list_json_shape_categories_and_errors(home):
    login = {"id": "n3wlogin7q2lq4rnyj4cx6ay5e", "title": "Some website", "version": 1,
             "category": "LOGIN", "created_at": "2025-01-01T00:00:00Z",
             "updated_at": "2025-01-01T00:00:00Z", "additional_information": "me@example.com",
             "fields": [{"id": "password", "type": "CONCEALED", "purpose": "PASSWORD",
                         "label": "password", "value": "hunter2"}]}
    note = {"id": "s3curen0te3xd2yrgdm3kwbdyu", "title": "A note", "version": 1,
            "category": "SECURE_NOTE", "fields": []}
    aws = rig.aws_item("AKIAEXAMPLEKEY000001", "s3cr3t/value+x")
    rig.write_op_store(home, [login, aws, note])

    r = op(home, "item", "list", "--categories", "API Credential,Login", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith('[\n  {\n    "id": ')  # pretty, 2-space indent
    items = json.loads(r.stdout)
    assert [i["title"] for i in items] == ["Some website", rig.ITEM_TITLE]
    assert items[1]["category"] == "API_CREDENTIAL"
    assert items[1]["vault"] == {"id": rig.VAULT_ID, "name": rig.VAULT}
    assert all("fields" not in i and "sections" not in i for i in items), "a list has no fields"
    assert "hunter2" not in r.stdout and "s3cr3t" not in r.stdout
    # any case, = form, --vault, the `ls` alias, no --categories = every item
    r = op(home, "item", "ls", "--categories=login", f"--vault={rig.VAULT}", "--format=json")
    assert [i["title"] for i in json.loads(r.stdout)] == ["Some website"]
    r = op(home, "item", "list", "--format", "json")
    assert len(json.loads(r.stdout)) == 3
    r = op(home, "item", "list", "--categories", "Database", "--format", "json")
    assert r.returncode == 0 and json.loads(r.stdout) == []

    msg, _ = error_message(op(home, "item", "list", "--vault", "Nope", "--format", "json"))
    assert msg == '"Nope" isn\'t a vault in this account. Specify the vault with its ID or name.'
    msg, _ = error_message(op(home, "item", "list", "--categories", "Keys", "--format", "json"))
    assert msg.startswith('"Keys" is not a valid item category')
    rig.set_op_state(home, signed_in=False)
    msg, _ = error_message(op(home, "item", "list", "--format", "json"))
    assert msg == ("You are not currently signed in. Please run `op signin --help` for "
                   "instructions")
