"""Nothing that identifies the operator is committed: no AWS account ID
anywhere in the repository, and no IP address, e-mail address or key in the
platform stack. They come from variables, 1Password or pctl at run time."""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import stack_tools  # noqa: E402

# Twelve digits standing alone (not inside a longer number, hash or word).
ACCOUNT_ID = re.compile(r"(?<![0-9A-Za-z_.-])\d{12}(?![0-9A-Za-z_])")
# Documentation placeholders (AWS docs, moto's default account), never real.
PLACEHOLDER_ACCOUNTS = {"123456789012", "111122223333", "444455556666", "777788889999"}


def is_placeholder(account: str) -> bool:
    """AWS's documentation placeholders, or one digit twelve times (moto's
    default 123456789012 aside, the tests' fake accounts): never real."""
    return account in PLACEHOLDER_ACCOUNTS or len(set(account)) == 1
SKIP_SUFFIXES = {".lock", ".png", ".jpg", ".gif", ".ico", ".pdf", ".zip", ".gz"}

IPV4 = re.compile(r"(?<![\d.])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?![\d.])")
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
AWS_KEY = re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b")
PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
GITHUB_TOKEN = re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b")


def tracked_files() -> list[Path]:
    proc = stack_tools.run(["git", "ls-files", "-z"], cwd=stack_tools.REPO)
    assert proc.returncode == 0, proc.stderr
    files = [stack_tools.REPO / p for p in proc.stdout.split("\0") if p]
    return [p for p in files if p.is_file() and p.suffix not in SKIP_SUFFIXES]


def platform_files() -> list[Path]:
    files = []
    for root in (stack_tools.TERRAFORM_DIR, stack_tools.KUBE_DIR):
        files += [p for p in root.rglob("*") if p.is_file() and ".terraform" not in p.parts]
    return files


def read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (UnicodeDecodeError, OSError):
        return None


def find_account_ids(text: str) -> list[str]:
    return [m for m in ACCOUNT_ID.findall(text) if not is_placeholder(m)]


def test_account_id_pattern():
    # The scanner itself: catches an ARN's account, ignores longer numbers and hashes.
    fake = "4" * 3 + "9" * 9  # built, so this file holds no 12-digit literal
    assert find_account_ids("arn:aws:iam::" + fake + ":role/x") == [fake]
    assert find_account_ids("ts=1700000000000 sha=ab12345678901234cd") == []
    assert find_account_ids("arn:aws:iam::123456789012:role/example") == []


def test_no_account_ids_in_the_repository():
    hits = []
    for path in tracked_files() + platform_files():
        text = read(path)
        if text is None:
            continue
        for found in find_account_ids(text):
            hits.append(f"{path.relative_to(stack_tools.REPO)}: {found}")
    assert not hits, "literal 12-digit account IDs committed:\n" + "\n".join(sorted(set(hits)))


def _allowed_ip(octets: tuple[int, ...]) -> bool:
    a, b, c, _ = octets
    return (
        a == 10                                   # VPC ranges
        or (a == 172 and 16 <= b <= 31)
        or (a == 192 and b == 168)
        or (a, b, c) in {(192, 0, 2), (198, 51, 100), (203, 0, 113)}  # RFC 5737 documentation
        or octets == (0, 0, 0, 0)
        or a == 127
        or (a == 169 and b == 254)                # instance metadata
    )


def test_no_public_ips_emails_or_keys_in_the_stack():
    hits = []
    for path in platform_files():
        text = read(path)
        if text is None:
            continue
        rel = path.relative_to(stack_tools.REPO)
        for match in IPV4.finditer(text):
            octets = tuple(int(x) for x in match.groups())
            if all(o <= 255 for o in octets) and not _allowed_ip(octets):
                hits.append(f"{rel}: IP {match.group(0)}")
        for match in EMAIL.finditer(text):
            if not match.group(0).endswith(("@example.com", "@example.org")):
                hits.append(f"{rel}: e-mail {match.group(0)}")
        for rx, what in ((AWS_KEY, "AWS key"), (PRIVATE_KEY, "private key"), (GITHUB_TOKEN, "GitHub token")):
            if rx.search(text):
                hits.append(f"{rel}: {what}")
    assert not hits, "identifying data in terraform/ or kube/:\n" + "\n".join(hits)


def test_no_paths_of_a_workstation_in_the_stack():
    for path in platform_files():
        text = read(path) or ""
        for needle in ("/home/", "/Users/", "/root/", "/work/"):
            assert needle not in text, f"{path}: machine-specific path {needle}"
