"""terraform/check-signed.sh with the real gpg and git: a commit that changes
kube/ passes only when signed by a key listed in kube/signing/*.asc that is
neither expired nor revoked; every refused commit gets one line naming it and
the reason, and the user's own GnuPG home is never read or written."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import stack_tools  # noqa: E402

SCRIPT = stack_tools.TERRAFORM_DIR / "check-signed.sh"
# Key generation and signing in the past, for a key that has expired by now.
PAST = "20200101T000000!"


@pytest.fixture(autouse=True, scope="module")
def tools():
    """The real programs (tests/setup.sh installs gnupg and git with apt-get)."""
    for name in ("gpg", "gpgconf", "git"):
        stack_tools.require_tool(name)


@dataclass
class Signer:
    name: str
    home: Path  # the signer's own GnuPG home (never the check's)
    fpr: str
    faked_time: str | None = None

    published: str | None = None  # the public key as listed, when not the plain export

    def public_key(self) -> str:
        return self.published or gpg(self.home, "--armor", "--export", self.fpr).stdout

    def program(self, tmp: Path) -> Path:
        """A gpg.program for git that signs with this signer's home (and, for
        the expired key, in the past)."""
        wrapper = tmp / f"gpg-{self.name}"
        faked = f" --faked-system-time {self.faked_time}" if self.faked_time else ""
        wrapper.write_text(f'#!/bin/sh\nexec gpg --homedir "{self.home}" --batch --pinentry-mode loopback '
                           f'--passphrase ""{faked} "$@"\n')
        wrapper.chmod(0o755)
        return wrapper


def gpg(home: Path, *args: str, faked_time: str | None = None, input_text: str | None = None
        ) -> subprocess.CompletedProcess:
    cmd = ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback", "--passphrase", ""]
    if faked_time:
        cmd += ["--faked-system-time", faked_time]
    proc = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=60, check=False,
                          input=input_text)
    assert proc.returncode == 0, proc.stderr
    return proc


def make_signer(root: Path, name: str, expire: str = "1y", faked_time: str | None = None) -> Signer:
    home = root / f"gnupg-{name}"
    home.mkdir(mode=0o700)
    gpg(home, "--quick-generate-key", f"{name.title()} <{name}@example.com>", "ed25519", "sign", expire,
        faked_time=faked_time)
    colons = gpg(home, "--with-colons", "--list-keys").stdout
    fpr = next(line.split(":")[9] for line in colons.splitlines() if line.startswith("fpr:"))
    return Signer(name, home, fpr, faked_time)


def revoke(signer: Signer, root: Path) -> None:
    """The listed public key carries the revocation certificate gpg wrote at
    key generation, while the signing home (a stolen copy of the key, say)
    still signs."""
    cert = (signer.home / "openpgp-revocs.d" / f"{signer.fpr}.rev").read_text()
    cert = cert.replace(":-----BEGIN PGP PUBLIC KEY BLOCK-----", "-----BEGIN PGP PUBLIC KEY BLOCK-----")
    other = root / f"gnupg-{signer.name}-revoked"
    other.mkdir(mode=0o700)
    gpg(other, "--import", input_text=signer.public_key())
    gpg(other, "--import", input_text=cert)
    signer.published = gpg(other, "--armor", "--export", signer.fpr).stdout
    colons = gpg(other, "--with-colons", "--list-keys", signer.fpr).stdout
    assert "\npub:r:" in "\n" + colons, colons  # validity r: revoked
    kill_agent(other)


def kill_agent(home: Path) -> None:
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True, timeout=30,
                   check=False)


@pytest.fixture(scope="module")
def signers(tmp_path_factory) -> Iterator[dict[str, Signer]]:
    root = tmp_path_factory.mktemp("signers")
    out = {name: make_signer(root, name) for name in ("alice", "bob", "mallory", "carol")}
    out["dave"] = make_signer(root, "dave", expire="1y", faked_time=PAST)  # expired in 2021
    revoke(out["carol"], root)
    yield out
    for signer in out.values():  # the agents gpg started for signing
        kill_agent(signer.home)


class Repo:
    """A work tree with its own git configuration (none of the user's)."""

    def __init__(self, path: Path, tmp: Path):
        self.path, self.tmp = path, tmp
        home = tmp / "home"
        home.mkdir(exist_ok=True)
        self.env = {
            "PATH": os.environ["PATH"], "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": str(home / "gitconfig"),
            "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
        }
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        proc = subprocess.run(["git", *args], cwd=self.path, env=self.env, capture_output=True, text=True,
                              timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    def write(self, rel: str, text: str) -> None:
        path = self.path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def commit(self, message: str, files: dict[str, str], signer: Signer | None = None) -> str:
        for rel, text in files.items():
            if text is None:
                self.git("rm", "-q", rel)
            else:
                self.write(rel, text)
                self.git("add", rel)
        args = ["commit", "-q", "-m", message]
        if signer:
            args = ["-c", f"gpg.program={signer.program(self.tmp)}", "-c", f"user.signingkey={signer.fpr}",
                    *args, "-S"]
        self.git(*args)
        return self.git("rev-parse", "HEAD")

    def check(self, base: str = "base", head: str = "HEAD", **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(SCRIPT), base, head], cwd=self.path, env={**self.env, **env},
                              capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture()
def repo(tmp_path, signers) -> Repo:
    """main with kube/ and the signers alice and bob (and carol, revoked, and
    dave, expired, whose public keys still list them); tag `base` there."""
    (tmp_path / "repo").mkdir()
    r = Repo(tmp_path / "repo", tmp_path)
    keys = {f"kube/signing/{n}.asc": signers[n].public_key() for n in ("alice", "bob", "carol", "dave")}
    r.commit("platform tree", {"kube/clusters/platform/apps.yaml": "kind: Kustomization\n", **keys},
             signers["alice"])
    r.git("tag", "base")
    return r


def refused_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if re.match(r"check-signed: [0-9a-f]{12} ", line)]


def test_commit_signed_by_a_listed_key_passes(repo, signers):
    repo.commit("more replicas", {"kube/apps/platform/x.yaml": "a: 1\n"}, signers["alice"])
    repo.commit("tolerations", {"kube/apps/platform/y.yaml": "b: 2\n"}, signers["bob"])
    proc = repo.check()
    assert proc.returncode == 0, proc.stderr
    assert "2 commit(s) in base..HEAD change kube/, all signed by keys listed in kube/signing" in proc.stdout


@pytest.mark.parametrize(
    "who, reason",
    [
        (None, "not signed"),
        ("mallory", "which kube/signing does not list"),
        ("dave", "which has expired"),
        ("carol", "which is revoked"),
    ],
    ids=["unsigned", "unlisted-key", "expired-key", "revoked-key"],
)
def test_bad_commit_is_refused_with_one_line(repo, signers, who, reason):
    sha = repo.commit("change the cluster", {"kube/apps/platform/x.yaml": "a: 1\n"},
                      signers[who] if who else None)
    proc = repo.check()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = refused_lines(proc)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"check-signed: {sha[:12]} \"change the cluster\": ")
    assert reason in lines[0]


def test_every_bad_commit_gets_its_own_line(repo, signers):
    bad = [repo.commit("unsigned one", {"kube/a.yaml": "a: 1\n"}),
           repo.commit("mallory's", {"kube/b.yaml": "b: 1\n"}, signers["mallory"])]
    repo.commit("good", {"kube/c.yaml": "c: 1\n"}, signers["bob"])
    bad.append(repo.commit("unsigned two", {"kube/d.yaml": "d: 1\n"}))
    proc = repo.check()
    assert proc.returncode == 1
    assert [line.split()[1] for line in refused_lines(proc)] == [sha[:12] for sha in bad]
    assert "3 problem(s)" in proc.stderr and "4 commit(s)" in proc.stderr


def test_commits_outside_kube_are_not_checked(repo, signers):
    repo.commit("docs", {"README.md": "hello\n"})
    repo.commit("stack", {"terraform/x.tf": "# x\n"})
    proc = repo.check()
    assert proc.returncode == 0, proc.stderr
    assert "0 commit(s)" in proc.stdout


def test_a_new_key_cannot_approve_its_own_change(repo, signers):
    mallory = signers["mallory"].public_key()
    repo.commit("add me", {"kube/signing/mallory.asc": mallory}, signers["mallory"])
    proc = repo.check()
    assert proc.returncode == 1
    assert "lists only from HEAD_REF on" in refused_lines(proc)[0]


def test_a_signer_is_added_by_a_commit_an_existing_signer_signs(repo, signers):
    repo.commit("add mallory as a signer", {"kube/signing/mallory.asc": signers["mallory"].public_key()},
                signers["alice"])
    assert repo.check().returncode == 0
    repo.git("tag", "-f", "base")  # merged: from now on mallory's commits count
    repo.commit("mallory's change", {"kube/x.yaml": "x: 1\n"}, signers["mallory"])
    proc = repo.check()
    assert proc.returncode == 0, proc.stderr


def test_a_removed_signer_no_longer_counts(repo, signers):
    repo.commit("remove bob", {"kube/signing/bob.asc": None}, signers["alice"])
    repo.commit("bob's change", {"kube/x.yaml": "x: 1\n"}, signers["bob"])
    proc = repo.check()
    assert proc.returncode == 1
    lines = refused_lines(proc)
    assert len(lines) == 1 and "which HEAD_REF removes from kube/signing" in lines[0]


def test_the_first_keys_are_taken_from_head_when_base_has_none(tmp_path, signers):
    (tmp_path / "r").mkdir()
    r = Repo(tmp_path / "r", tmp_path)
    r.commit("stack", {"kube/clusters/platform/apps.yaml": "kind: Kustomization\n"})
    r.git("tag", "base")
    r.commit("first signer", {"kube/signing/alice.asc": signers["alice"].public_key()}, signers["alice"])
    proc = r.check()
    assert proc.returncode == 0, proc.stderr
    assert "BASE_REF lists no key" in proc.stderr


@pytest.mark.parametrize(
    "name, text, reason",
    [
        ("broken.asc", "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot a key\n-----END PGP PUBLIC KEY BLOCK-----\n",
         "no OpenPGP public key gpg can read"),
        ("leak.asc", "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nxx\n-----END PGP PRIVATE KEY BLOCK-----\n",
         "holds a PRIVATE key"),
        ("my key.asc", "{mallory}", "not a valid Secret key"),
        ("two.asc", "{mallory}{bob}", "more than one armored block, and Flux reads only the first"),
    ],
    ids=["unreadable", "private-key", "bad-name", "two-blocks"],
)
def test_bad_key_files_are_refused(repo, signers, name, text, reason):
    text = text.replace("{mallory}", signers["mallory"].public_key()).replace("{bob}", signers["bob"].public_key())
    repo.commit("key file", {f"kube/signing/{name}": text}, signers["alice"])
    proc = repo.check()
    assert proc.returncode == 1
    assert any(line.startswith(f"check-signed: kube/signing/{name} at HEAD_REF: ") and reason in line
               for line in proc.stderr.splitlines()), proc.stderr


def test_ssh_signed_commit_is_refused(repo, tmp_path):
    # Flux 2.8's source-controller verifies OpenPGP signatures only.
    keygen = stack_tools.require_tool("ssh-keygen")
    key = tmp_path / "id_ed25519"
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, capture_output=True,
                   timeout=30)
    repo.write("kube/x.yaml", "x: 1\n")
    repo.git("add", "kube/x.yaml")
    repo.git("-c", "gpg.format=ssh", "-c", f"user.signingkey={key}", "commit", "-q", "-S", "-m", "ssh-signed")
    proc = repo.check()
    assert proc.returncode == 1
    lines = refused_lines(proc)
    assert len(lines) == 1 and "not with OpenPGP" in lines[0], proc.stderr


def test_merge_commits_are_checked_against_their_first_parent(repo, signers):
    repo.git("checkout", "-q", "-b", "topic")
    repo.commit("topic change", {"kube/t.yaml": "t: 1\n"}, signers["bob"])
    repo.git("checkout", "-q", "main")
    repo.commit("docs", {"README.md": "x\n"}, signers["alice"])
    repo.git("merge", "-q", "--no-ff", "--no-edit", "topic")  # unsigned merge bringing kube/ changes
    proc = repo.check()
    assert proc.returncode == 1
    lines = refused_lines(proc)
    assert len(lines) == 1 and "Merge branch" in lines[0] and "not signed" in lines[0]


def test_the_users_gnupg_home_is_never_used(repo, signers, tmp_path):
    # The user's home trusts mallory; the check must not.
    user_home = tmp_path / "user-gnupg"
    shutil.copytree(signers["mallory"].home, user_home, ignore=shutil.ignore_patterns("S.*"))
    before = sorted((p.relative_to(user_home), p.stat().st_mtime_ns) for p in user_home.rglob("*"))
    repo.commit("mallory's change", {"kube/x.yaml": "x: 1\n"}, signers["mallory"])
    proc = repo.check(GNUPGHOME=str(user_home))
    assert proc.returncode == 1 and "does not list" in proc.stderr
    after = sorted((p.relative_to(user_home), p.stat().st_mtime_ns) for p in user_home.rglob("*"))
    assert after == before
    assert 'GNUPGHOME="$work/gnupg"' in SCRIPT.read_text()


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "usage: terraform/check-signed.sh BASE_REF HEAD_REF"),
        (["no-such-ref", "HEAD"], "BASE_REF 'no-such-ref' is not a commit"),
        (["base", "no-such-ref"], "HEAD_REF 'no-such-ref' is not a commit"),
    ],
    ids=["no-args", "bad-base", "bad-head"],
)
def test_usage_errors_are_one_line(repo, args, message):
    proc = subprocess.run(["bash", str(SCRIPT), *args], cwd=repo.path, env=repo.env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
