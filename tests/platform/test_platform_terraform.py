"""Offline checks of terraform/: formatting, parsing, and the properties the
platform promises, asserted on the parsed HCL (providers and modules cannot
be downloaded here, so `terraform validate` is out of reach)."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import stack_hcl  # noqa: E402
import stack_tools  # noqa: E402
from stack_hcl import block, blocks  # noqa: E402

TF = stack_tools.TERRAFORM_DIR
TF_FILES = sorted(TF.rglob("*.tf"))
MODULE_META_ARGS = {"source", "version", "providers", "depends_on", "count", "for_each"}


@pytest.fixture(scope="module")
def stack() -> stack_hcl.Stack:
    return stack_hcl.Stack(TF)


@pytest.fixture(scope="module")
def eks(stack):
    return stack.modules["eks"]


def inputs(name: str) -> set[str]:
    path = Path(__file__).resolve().parent / "module_inputs" / name
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


# --------------------------------------------------------------------------
# format and syntax


def test_terraform_fmt_check():
    terraform = stack_tools.require_tool("terraform")
    proc = stack_tools.run([terraform, "fmt", "-check", "-recursive", "-diff", str(TF)])
    assert proc.returncode == 0, f"terraform fmt -check found unformatted files:\n{proc.stdout}{proc.stderr}"


def test_stack_has_the_expected_files():
    names = {p.name for p in TF_FILES}
    assert {"versions.tf", "providers.tf", "variables.tf", "main.tf", "vpc.tf", "eks.tf",
            "karpenter.tf", "cloudtrail.tf", "flux.tf", "outputs.tf"} <= names


@pytest.mark.parametrize("path", TF_FILES, ids=lambda p: str(p.relative_to(TF)))
def test_every_tf_file_parses(path):
    doc = stack_hcl.parse_file(path)
    assert doc, f"{path} parsed to nothing"


# --------------------------------------------------------------------------
# module inputs (the v20 -> v21 renames)


@pytest.mark.parametrize(
    "module, inputs_file",
    [("eks", "eks-v21.txt"), ("vpc", "vpc-v6.txt"), ("karpenter", "eks-karpenter-v21.txt")],
)
def test_module_arguments_are_valid_inputs(stack, module, inputs_file):
    unknown = set(stack.modules[module]) - inputs(inputs_file) - MODULE_META_ARGS
    assert not unknown, f"module {module} has arguments that are not inputs of its pinned version: {unknown}"


def test_node_group_attributes_are_valid(eks):
    valid = inputs("eks-v21-node-group-attrs.txt")
    for name, group in eks["eks_managed_node_groups"].items():
        unknown = set(group) - valid
        assert not unknown, f"node group {name}: unknown attributes {unknown}"


def test_module_versions_are_current_majors(stack):
    assert stack.modules["eks"]["source"] == "terraform-aws-modules/eks/aws"
    assert stack.modules["eks"]["version"].startswith("21.")
    assert stack.modules["karpenter"]["source"] == "terraform-aws-modules/eks/aws//modules/karpenter"
    assert stack.modules["karpenter"]["version"] == stack.modules["eks"]["version"]
    assert stack.modules["vpc"]["source"] == "terraform-aws-modules/vpc/aws"
    assert stack.modules["vpc"]["version"].startswith("6.")


def test_provider_versions(stack):
    required = {}
    for tf in stack.terraform:
        for req in blocks(tf.get("required_providers")):
            required.update(req)
    assert required["aws"]["source"] == "hashicorp/aws"
    assert re.match(r"~> ?6\.", required["aws"]["version"])
    assert required["flux"]["source"] == "fluxcd/flux"
    assert re.match(r"~> ?1\.8", required["flux"]["version"])


# --------------------------------------------------------------------------
# EKS


def test_api_only_authentication(eks):
    assert eks["authentication_mode"] == "API"
    assert eks["enable_cluster_creator_admin_permissions"] is False


def test_public_endpoint_restricted_and_private_on(eks):
    assert eks["endpoint_public_access"] is True
    assert eks["endpoint_public_access_cidrs"] == "${var.operator_cidrs}"
    assert eks["endpoint_private_access"] is True


def test_operator_cidrs_is_required_and_validated(stack):
    var = stack.variables["operator_cidrs"]
    assert "default" not in var, "operator_cidrs must be required (no default)"
    conditions = " ".join(v["condition"] for v in var["validation"])
    assert "cidrhost" in conditions
    assert "length(var.operator_cidrs) > 0" in conditions


def test_addons_v21_no_longer_installs(eks):
    addons = eks["addons"]
    assert {"vpc-cni", "kube-proxy", "coredns", "eks-pod-identity-agent"} <= set(addons)
    assert addons["vpc-cni"]["before_compute"] is True
    assert addons["eks-pod-identity-agent"]["before_compute"] is True


def test_system_node_group_is_spot_arm64_and_tainted(eks):
    groups = eks["eks_managed_node_groups"]
    assert len(groups) == 1
    group = next(iter(groups.values()))
    assert group["ami_type"] == "AL2023_ARM_64_STANDARD"
    assert group["capacity_type"] == "SPOT"
    assert group["min_size"] >= 2, "Karpenter's two replicas need two nodes"
    taints = list(group["taints"].values())
    assert {"key": "CriticalAddonsOnly", "value": "true", "effect": "NO_SCHEDULE"} in taints


# vCPUs and max pods (ENI limit, aws/amazon-vpc-cni-k8s misc/eni-max-pods.txt)
# of the Graviton types the system node group may use.
INSTANCE_FACTS = {
    "t4g.medium": (2, 17), "t4g.large": (2, 35),
    "m6g.medium": (1, 8), "m6g.large": (2, 29),
    "m7g.medium": (1, 8), "m7g.large": (2, 29),
}
# Pods on the system nodes (see the sizing comment in eks.tf).
SYSTEM_DAEMONSETS = ["aws-node", "kube-proxy", "eks-pod-identity-agent"]
SYSTEM_DEPLOYMENT_PODS = {"coredns": 2, "karpenter": 2, "source-controller": 1, "kustomize-controller": 1,
                          "helm-controller": 1, "notification-controller": 1}


def system_pool_problems(instance_types: list[str]) -> list[str]:
    """Each node must hold every system pod alone: spot can reclaim the other."""
    need = len(SYSTEM_DAEMONSETS) + sum(SYSTEM_DEPLOYMENT_PODS.values())
    problems = []
    for itype in instance_types:
        if itype not in INSTANCE_FACTS:
            problems.append(f"{itype}: record its vCPUs and max pods in INSTANCE_FACTS")
            continue
        vcpu, max_pods = INSTANCE_FACTS[itype]
        if vcpu < 2:
            problems.append(f"{itype}: {vcpu} vCPU cannot run Karpenter's 2 x 250m next to the add-ons")
        if max_pods < need:
            problems.append(f"{itype}: max-pods {max_pods} < {need} system pods on one node")
    return problems


def test_system_node_group_holds_the_system_pods(stack, eks):
    types = stack.variables["system_node_instance_types"]["default"]
    assert len(types) >= 3, "several types, for spot capacity"
    assert system_pool_problems(types) == []
    group = eks["eks_managed_node_groups"]["system"]
    assert group["instance_types"] == "${var.system_node_instance_types}"
    assert "2 x 3 + 8 = 14" in (TF / "eks.tf").read_text(), "keep the arithmetic next to the node group"


def test_system_pool_check_rejects_one_vcpu_types():
    problems = system_pool_problems(["t4g.medium", "m6g.medium"])
    assert len(problems) == 2 and all(p.startswith("m6g.medium") for p in problems)


def test_system_instance_types_are_arm64(stack):
    for itype in stack.variables["system_node_instance_types"]["default"]:
        family = itype.split(".")[0]
        assert re.match(r"^[a-z]+\d+g[a-z]*$", family), f"{itype} is not a Graviton (arm64) type"


def test_operator_access_entry_is_cluster_admin(stack, eks):
    entries = eks["access_entries"]
    assert len(entries) == 1
    entry = next(iter(entries.values()))
    assert entry["principal_arn"] == "${local.operator_role_arn}"
    policies = list(entry["policy_associations"].values())
    assert any(
        p["policy_arn"].endswith(":eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy")
        and p["access_scope"] == {"type": "cluster"}
        for p in policies
    )
    # The role ARN of the session (issuer), never the session ARN itself.
    assert stack.locals["operator_role_arn"] == "${data.aws_iam_session_context.current.issuer_arn}"


def test_one_role_for_access_entry_and_provider_tokens(stack):
    # The access entry goes to the role Terraform runs as (aws_profile), and
    # the kubernetes/flux providers mint tokens for the pctl role of that same
    # profile: no second setting that could name another role.
    assert "pctl_role" not in stack.variables, "pctl_role must be derived from aws_profile, not set separately"
    assert stack.locals["pctl_role"] == '${trimprefix(var.aws_profile, "pctl-")}'
    args = stack.locals["pctl_eks_token_args"]
    assert args[args.index("--role") + 1] == "${local.pctl_role}"
    teardown = (TF / "teardown.sh").read_text()
    assert 'pctl_role="${aws_profile#pctl-}"' in teardown and "PCTL_ROLE" not in teardown


# --------------------------------------------------------------------------
# VPC and Karpenter discovery


def test_vpc_three_azs_one_nat(stack):
    vpc = stack.modules["vpc"]
    assert vpc["enable_nat_gateway"] is True
    assert vpc["single_nat_gateway"] is True
    assert vpc["azs"] == "${local.azs}"
    assert "availability_zone_suffixes" not in stack.variables, "zones are chosen by ID (main.tf)"


def discovery_tag_sites(stack) -> set[str]:
    """Where the Karpenter discovery tag (or local.discovery_tags) is used:
    'module.<m>.<argument>', 'provider.<p>', 'resource.<type>.<name>',
    'locals.<name>'. Karpenter selects every security group and subnet that
    carries the tag, so the set of places is the property to check."""
    def mentions(value) -> bool:
        text = json.dumps(value)
        return "discovery_tags" in text or "karpenter.sh/discovery" in text

    sites = set()
    for mname, body in stack.modules.items():
        for arg, value in body.items():
            if mentions(value):
                sites.add(f"module.{mname}.{arg}")
    for pname, bodies in stack.providers.items():
        if any(mentions(b) for b in bodies):
            sites.add(f"provider.{pname}")
    for rtype, by_name in stack.resources.items():
        for rname, body in by_name.items():
            if mentions(body):
                sites.add(f"resource.{rtype}.{rname}")
    for lname, value in stack.locals.items():
        if lname != "discovery_tags" and mentions(value):
            sites.add(f"locals.{lname}")
    return sites


def test_discovery_tag_only_on_private_subnets_and_node_security_group(stack):
    # The EKS module copies `tags` onto the cluster security group and the
    # EKS-created primary one: a discovery tag there makes Karpenter's
    # securityGroupSelectorTerms match three groups (upstream's karpenter
    # example sets it in node_security_group_tags only).
    assert discovery_tag_sites(stack) == {"module.vpc.private_subnet_tags", "module.eks.node_security_group_tags"}


def test_discovery_tag_check_catches_module_wide_tags(stack):
    broken = copy.deepcopy(stack)
    broken.modules["eks"]["tags"] = "${local.discovery_tags}"
    assert "module.eks.tags" in discovery_tag_sites(broken)
    broken = copy.deepcopy(stack)
    block(broken.provider("aws")["default_tags"])["tags"] = "${merge(local.tags, local.discovery_tags)}"
    assert "provider.aws" in discovery_tag_sites(broken)


def test_discovery_tags_on_subnets_and_node_security_group(stack, eks):
    assert stack.locals["discovery_tags"] == {"karpenter.sh/discovery": "${local.name}"}
    assert eks["name"] == "${local.name}"
    vpc = stack.modules["vpc"]
    private = vpc["private_subnet_tags"]
    assert "local.discovery_tags" in private and "kubernetes.io/role/internal-elb" in private
    assert vpc["public_subnet_tags"] == {"kubernetes.io/role/elb": 1}
    assert eks["node_security_group_tags"] == "${local.discovery_tags}"


def test_karpenter_module(stack):
    k = stack.modules["karpenter"]
    assert k["cluster_name"] == "${module.eks.cluster_name}"
    assert k["create_pod_identity_association"] is True
    assert k["namespace"] == "kube-system"
    assert k["service_account"] == "karpenter"
    assert k["node_iam_role_use_name_prefix"] is False, "the EC2NodeClass names the role"
    assert k["queue_name"]


# --------------------------------------------------------------------------
# CloudTrail


def test_cloudtrail_wiring(stack):
    trail = stack.resource("aws_cloudtrail", "this")
    assert trail["s3_bucket_name"] == "${aws_s3_bucket.cloudtrail[0].id}"
    assert "aws_cloudwatch_log_group.cloudtrail[0].arn" in trail["cloud_watch_logs_group_arn"]
    assert trail["cloud_watch_logs_role_arn"] == "${aws_iam_role.cloudtrail[0].arn}"
    assert trail["enable_log_file_validation"] is True
    assert "${aws_s3_bucket_policy.cloudtrail}" in trail["depends_on"]

    selectors = blocks(trail["advanced_event_selector"])
    fields = [{f["field"]: f["equals"] for f in blocks(s["field_selector"])} for s in selectors]
    assert {"eventCategory": ["Management"]} in fields
    sqs = [f for f in fields if f.get("resources.type") == ["AWS::SQS::Queue"]]
    assert sqs and sqs[0]["eventCategory"] == ["Data"]
    assert sqs[0]["resources.ARN"] == ["${module.karpenter.queue_arn}"]


def test_cloudtrail_bucket_is_private_encrypted_and_policed(stack):
    pab = stack.resource("aws_s3_bucket_public_access_block", "cloudtrail")
    for attr in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
        assert pab[attr] is True, attr
    sse = block(stack.resource("aws_s3_bucket_server_side_encryption_configuration", "cloudtrail")["rule"])
    assert block(sse["apply_server_side_encryption_by_default"])["sse_algorithm"] in {"AES256", "aws:kms"}
    policy = stack.resource("aws_s3_bucket_policy", "cloudtrail")
    assert policy["bucket"] == "${aws_s3_bucket.cloudtrail[0].id}"
    doc = stack.data["aws_iam_policy_document"]["cloudtrail_bucket"]
    sids = {s.get("sid") for s in blocks(doc["statement"])}
    assert {"AWSCloudTrailAclCheck", "AWSCloudTrailWrite"} <= sids
    # The bucket name embeds the account ID from the caller, not a literal.
    assert "${local.account_id}" in stack.resource("aws_s3_bucket", "cloudtrail")["bucket"]


CLOUDTRAIL_CWL_DOC = "https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-required-policy-for-cloudwatch-logs.html"


def test_cloudtrail_logs_role_trust_is_the_documented_form(stack):
    # AWS documents this trust policy as principal cloudtrail.amazonaws.com
    # with sts:AssumeRole; an aws:SourceArn condition CloudTrail may not send
    # makes CreateTrail fail. At most an aws:SourceAccount condition.
    doc = stack.data["aws_iam_policy_document"]["cloudtrail_assume"]
    statements = blocks(doc["statement"])
    assert len(statements) == 1
    st = statements[0]
    assert st["actions"] == ["sts:AssumeRole"]
    principal = block(st["principals"])
    assert principal == {"type": "Service", "identifiers": ["cloudtrail.amazonaws.com"]}
    for cond in blocks(st.get("condition")):
        assert cond["variable"] == "aws:SourceAccount", f"undocumented condition {cond['variable']} on the logs role"
    assert stack.resource("aws_iam_role", "cloudtrail")["assume_role_policy"] == (
        "${data.aws_iam_policy_document.cloudtrail_assume[0].json}")
    assert CLOUDTRAIL_CWL_DOC in (TF / "cloudtrail.tf").read_text(), "cite the AWS page next to the policy"


def test_cloudtrail_log_group_has_retention(stack):
    group = stack.resource("aws_cloudwatch_log_group", "cloudtrail")
    assert group["retention_in_days"] == "${var.log_retention_days}"
    assert stack.variables["log_retention_days"]["default"] > 0


# --------------------------------------------------------------------------
# credentials only through pctl


def test_aws_provider_uses_a_pctl_profile(stack):
    aws = stack.provider("aws")
    assert aws["profile"] == "${var.aws_profile}"
    assert stack.variables["aws_profile"]["default"] == "pctl-admin"
    for forbidden in ("access_key", "secret_key", "token", "shared_credentials_files", "assume_role"):
        assert forbidden not in aws, f"provider aws must not set {forbidden}"


def test_eks_token_args(stack):
    args = stack.locals["pctl_eks_token_args"]
    assert args[:2] == ["eks", "token"]
    assert args[args.index("--cluster") + 1] == "${module.eks.cluster_name}"
    assert "--role" in args


def _check_exec(conn: dict, where: str) -> None:
    assert conn["host"] == "${module.eks.cluster_endpoint}", where
    assert conn["cluster_ca_certificate"] == "${base64decode(module.eks.cluster_certificate_authority_data)}", where
    exec_ = block(conn["exec"])
    assert exec_["command"] == "pctl", where
    assert exec_["args"] == "${local.pctl_eks_token_args}", where
    assert exec_["api_version"] == "client.authentication.k8s.io/v1beta1", where
    for forbidden in ("token", "config_path", "config_paths", "client_key", "client_certificate", "password"):
        assert forbidden not in conn, f"{where} must not set {forbidden}"


def test_kubernetes_and_flux_providers_authenticate_with_pctl(stack):
    _check_exec(stack.provider("kubernetes"), "provider kubernetes")
    flux = stack.provider("flux")
    _check_exec(flux["kubernetes"], "provider flux")
    assert flux["git"]["http"]["password"] == "${var.git_token}"
    assert stack.variables["git_token"]["sensitive"] is True
    assert "default" not in stack.variables["git_token"]


def test_no_other_credential_sources_in_terraform():
    text = "\n".join(p.read_text() for p in TF.rglob("*") if p.is_file() and p.suffix in {".tf", ".sh", ".hcl", ".example"})
    for needle in ("get-token", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "aws_access_key", "kubeconfig_path", "~/.kube/config"):
        assert needle not in text, f"{needle!r} found in terraform/: credentials come only from pctl"


# --------------------------------------------------------------------------
# Flux


def test_flux_bootstrap(stack):
    boot = stack.resource("flux_bootstrap_git", "this")
    assert boot["path"] == "${var.flux_path}"
    assert stack.variables["flux_path"]["default"] == "kube/clusters/platform"
    assert (stack_tools.REPO / "kube" / "clusters" / "platform").is_dir()
    assert "CriticalAddonsOnly" in boot["toleration_keys"]
    assert "${kubernetes_config_map_v1.cluster_settings}" in boot["depends_on"]


def test_cluster_settings_come_from_module_outputs(stack):
    data = stack.resource("kubernetes_config_map_v1", "cluster_settings")["data"]
    assert data["cluster_name"] == "${module.eks.cluster_name}"
    assert data["karpenter_queue_name"] == "${module.karpenter.queue_name}"
    assert data["karpenter_node_role_name"] == "${module.karpenter.node_iam_role_name}"


# --------------------------------------------------------------------------
# backend


def test_backend_is_partial_s3_with_lockfile(stack):
    backends = [b for tf in stack.terraform for b in blocks(tf.get("backend"))]
    assert len(backends) == 1 and "s3" in backends[0]
    s3 = backends[0]["s3"]
    assert s3.get("use_lockfile") is True
    for attr in ("bucket", "key", "region", "profile", "access_key", "secret_key"):
        assert attr not in s3, f"backend {attr} belongs in the uncommitted -backend-config file"
    assert (TF / "backend.hcl.example").is_file()
    assert "backend.hcl" in (TF / ".gitignore").read_text().splitlines()


def test_backend_config_is_not_committed():
    proc = stack_tools.run(["git", "ls-files", "terraform"], cwd=stack_tools.REPO)
    tracked = set(proc.stdout.split())
    assert "terraform/backend.hcl" not in tracked
    assert not any(p.endswith(".tfvars") or p.endswith(".tfstate") for p in tracked)


# --------------------------------------------------------------------------
# variable validations, evaluated by terraform itself (variables need no
# provider, so this part of the configuration can be planned offline)


@pytest.fixture(scope="module")
def variables_only(tmp_path_factory):
    terraform = stack_tools.require_tool("terraform")
    work = tmp_path_factory.mktemp("tfvars")
    shutil.copy(TF / "variables.tf", work / "variables.tf")
    proc = stack_tools.run([terraform, "init", "-input=false", "-backend=false"], cwd=work)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return terraform, work


def _plan(variables_only, **overrides):
    terraform, work = variables_only
    values = {
        "operator_cidrs": '["203.0.113.10/32"]',
        "git_url": "https://example.com/org/repo.git",
        "git_token": "not-a-token",
    }
    values.update(overrides)
    args = [terraform, "plan", "-input=false", "-lock=false", "-refresh=false"]
    for key, value in values.items():
        args += ["-var", f"{key}={value}"]
    return stack_tools.run(args, cwd=work)


def test_valid_variables_plan(variables_only):
    proc = _plan(variables_only)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "overrides",
    [
        {"operator_cidrs": '["0.0.0.0/0"]'},
        {"operator_cidrs": "[]"},
        {"operator_cidrs": '["not-a-cidr"]'},
        {"operator_cidrs": '["10.0.0.0/8"]'},
        {"aws_profile": "default"},
        {"git_url": "git@github.com:org/repo.git"},
    ],
    ids=["world", "empty", "garbage", "too-wide", "non-pctl-profile", "ssh-url"],
)
def test_invalid_variables_are_rejected(variables_only, overrides):
    proc = _plan(variables_only, **overrides)
    assert proc.returncode != 0, f"{overrides} was accepted"
    assert "Invalid value for variable" in proc.stderr + proc.stdout


def test_operator_cidrs_is_required(variables_only):
    terraform, work = variables_only
    proc = stack_tools.run(
        [terraform, "plan", "-input=false", "-lock=false", "-var", "git_url=https://example.com/r.git", "-var", "git_token=x"],
        cwd=work,
    )
    assert proc.returncode != 0
    assert "operator_cidrs" in proc.stderr + proc.stdout


# --------------------------------------------------------------------------
# teardown and documentation


TEARDOWN = TF / "teardown.sh"


def test_teardown_script_syntax():
    assert TEARDOWN.is_file() and TEARDOWN.stat().st_mode & 0o111, "terraform/teardown.sh must be executable"
    proc = stack_tools.run(["bash", "-n", str(TEARDOWN)])
    assert proc.returncode == 0, proc.stderr


def test_teardown_order_leaves_no_karpenter_instances():
    lines = [l.strip() for l in TEARDOWN.read_text().splitlines() if l.strip() and not l.strip().startswith("#")]

    def first(pattern: str) -> int:
        for i, line in enumerate(lines):
            if re.search(pattern, line):
                return i
        raise AssertionError(f"teardown.sh never runs {pattern!r}")

    flux = first(r"terraform destroy .*-target=flux_bootstrap_git\.this")
    nodepools = first(r"kubectl delete nodepools --all")
    nodeclasses = first(r"kubectl delete ec2nodeclasses --all")
    leftovers = first(r"aws ec2 describe-instances")
    everything = max(i for i, l in enumerate(lines) if re.search(r"terraform destroy", l) and "-target" not in l)
    assert flux < nodepools < nodeclasses < leftovers < everything
    assert "pctl" in TEARDOWN.read_text() and "eks\", \"token\"" in TEARDOWN.read_text()


def test_readme_covers_bring_up_teardown_costs_and_pctl():
    text = (TF / "README.md").read_text()
    for heading in ("## Bring-up", "## Teardown", "## Costs", "### The 1Password item", "### The pctl config"):
        assert heading in text, f"terraform/README.md lacks {heading}"
    for needle in ("credential_process", "pctl eks token", "-backend-config=backend.hcl", "[clusters.platform]",
                   "Account ID", "teardown.sh"):
        assert needle in text, f"terraform/README.md does not mention {needle}"


# --------------------------------------------------------------------------
# operator_role_name guard, evaluated by terraform itself: the postcondition
# of data.aws_iam_session_context.current, copied verbatim onto a
# terraform_data stand-in whose output plays the session context.


def _session_guard_source() -> tuple[str, str]:
    text = (TF / "main.tf").read_text()
    start = text.index('data "aws_iam_session_context" "current"')
    body = text[start:text.index("\n}\n", start)]
    condition = re.search(r"^\s*condition\s*=\s*(.+)$", body, re.M).group(1)
    message = re.search(r"^\s*error_message\s*=\s*(.+)$", body, re.M).group(1)
    return condition, message


@pytest.fixture(scope="module")
def session_guard(tmp_path_factory):
    terraform = stack_tools.require_tool("terraform")
    stack = stack_hcl.Stack(TF)
    condition, message = _session_guard_source()
    work = tmp_path_factory.mktemp("guard")
    shutil.copy(TF / "variables.tf", work / "variables.tf")
    (work / "guard.tf").write_text(
        'variable "session_issuer_name" {\n  type = string\n}\n\n'
        "locals {\n"
        f"  pctl_role = {stack.locals['pctl_role'][2:-1]}\n"
        "}\n\n"
        'resource "terraform_data" "session" {\n'
        "  input = { issuer_name = var.session_issuer_name }\n"
        "  lifecycle {\n    postcondition {\n"
        f"      condition     = {condition.replace('self.issuer_name', 'self.output.issuer_name')}\n"
        f"      error_message = {message.replace('self.issuer_name', 'self.output.issuer_name')}\n"
        "    }\n  }\n}\n"
    )
    proc = stack_tools.run([terraform, "init", "-input=false", "-backend=false"], cwd=work)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return terraform, work


def _apply_guard(session_guard, issuer: str, **overrides) -> subprocess.CompletedProcess:
    terraform, work = session_guard
    values = {"operator_cidrs": '["203.0.113.10/32"]', "git_url": "https://example.com/r.git",
              "git_token": "x", "session_issuer_name": issuer}
    values.update(overrides)
    args = [terraform, "apply", "-auto-approve", "-input=false", "-lock=false", "-no-color",
            f"-state={work}/{issuer}-{len(overrides)}.tfstate"]
    for key, value in values.items():
        args += ["-var", f"{key}={value}"]
    return stack_tools.run(args, cwd=work)


def test_operator_role_guard_accepts_matching_or_unset_role(session_guard):
    assert _apply_guard(session_guard, "platform-admin").returncode == 0
    proc = _apply_guard(session_guard, "platform-admin", operator_role_name="platform-admin")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_operator_role_guard_rejects_another_role_with_a_clear_message(session_guard):
    proc = _apply_guard(session_guard, "platform-admin", operator_role_name="platform-ops", aws_profile="pctl-admin")
    assert proc.returncode != 0
    out = " ".join((proc.stdout + proc.stderr).split())
    assert 'operator_role_name is "platform-ops" but profile pctl-admin runs as role "platform-admin"' in out, out
    assert "pctl eks token --role admin" in out, out


# --------------------------------------------------------------------------
# flux provider and resource attributes against the provider's own docs
# (fluxcd/terraform-provider-flux v1.8.5 docs/index.md and
# docs/resources/bootstrap_git.md, recorded in provider_schemas/)

META_ARGS = {"depends_on", "lifecycle", "count", "for_each", "provider"}


def _attr_paths(body: dict, prefix: str) -> list[str]:
    paths = []
    for key, value in body.items():
        if key in META_ARGS:
            continue
        path = f"{prefix}.{key}"
        paths.append(path)
        if isinstance(value, dict):
            paths += _attr_paths(value, path)
    return paths


def unknown_flux_attributes(stack) -> list[str]:
    known = set(inputs_from("provider_schemas", "flux-1.8.5.txt"))
    used = _attr_paths(stack.provider("flux"), "provider.flux")
    for name, body in stack.resources.get("flux_bootstrap_git", {}).items():
        used += _attr_paths(body, "resource.flux_bootstrap_git")
    return [p for p in used if p not in known]


def inputs_from(directory: str, name: str) -> list[str]:
    path = Path(__file__).resolve().parent / directory / name
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def test_flux_attributes_exist_in_the_pinned_provider(stack):
    assert unknown_flux_attributes(stack) == []


def test_misspelt_flux_attribute_is_caught(stack):
    broken = copy.deepcopy(stack)
    broken.provider("flux")["git"]["gpg_keyring"] = "${var.git_gpg_key_ring}"
    broken.resources["flux_bootstrap_git"]["this"]["tolerations_keys"] = ["CriticalAddonsOnly"]
    assert sorted(unknown_flux_attributes(broken)) == [
        "provider.flux.git.gpg_keyring", "resource.flux_bootstrap_git.tolerations_keys"]


# --------------------------------------------------------------------------
# optional GPG signing of Flux's bootstrap commits


def test_gpg_signing_is_wired_and_off_by_default(stack):
    git = stack.provider("flux")["git"]
    assert git["gpg_key_ring"] == "${var.git_gpg_key_ring}"
    assert git["gpg_key_id"] == "${var.git_gpg_key_id}"
    assert git["gpg_passphrase"] == "${var.git_gpg_passphrase}"
    for name in ("git_gpg_key_ring", "git_gpg_key_id", "git_gpg_passphrase"):
        assert stack.variables[name]["default"] is None, f"{name}: signing must be off by default"
    assert stack.variables["git_gpg_passphrase"]["sensitive"] is True


@pytest.mark.parametrize(
    "overrides",
    [
        {"git_gpg_key_ring": "/run/user/1000/flux-gpg.asc"},
        {"git_gpg_key_ring": "/run/user/1000/flux-gpg.asc", "git_gpg_key_id": "3AA5C34371567BD2",
         "git_gpg_passphrase": "x"},
        {"git_gpg_key_ring": "k.asc", "git_gpg_key_id": "0x3AA5C34371567BD2"},
    ],
    ids=["ring-only", "ring-id-passphrase", "0x-id"],
)
def test_gpg_settings_accepted(variables_only, overrides):
    proc = _plan(variables_only, **overrides)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"git_gpg_key_id": "3AA5C34371567BD2"}, "git_gpg_key_id needs git_gpg_key_ring"),
        ({"git_gpg_key_ring": "k.asc", "git_gpg_key_id": "3AA5C343"}, "16-hex-digit"),
        ({"git_gpg_passphrase": "x"}, "git_gpg_key_ring is not"),
        ({"git_gpg_key_ring": " "}, "is a file path"),
    ],
    ids=["id-without-ring", "short-id", "passphrase-without-ring", "blank-ring"],
)
def test_gpg_settings_rejected(variables_only, overrides, message):
    proc = _plan(variables_only, **overrides)
    assert proc.returncode != 0, f"{overrides} was accepted"
    assert message in " ".join((proc.stdout + proc.stderr).split())


# --------------------------------------------------------------------------
# aws and kubernetes resource arguments against the providers' schemas
# (argument and block names from the prebuilt CDK for Terraform bindings of
# hashicorp/aws 6.25.0 and hashicorp/kubernetes 2.38.0, see
# provider_schemas/; the stack requires aws ~> 6.28, whose schema only adds
# to 6.25 within the major version)


def _argument_names(body: dict) -> list[str]:
    """Argument and nested-block names; map-valued attributes (tags, data)
    hold user keys and are not descended into. Blocks parse as lists of
    dicts, attributes as plain values or dicts."""
    names = []
    for key, value in body.items():
        if key in META_ARGS:
            continue
        names.append(key)
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for sub in value:
                names += _argument_names(sub)
    return names


def unknown_resource_arguments(stack) -> list[str]:
    known = set(inputs_from("provider_schemas", "aws-6.25.0.txt")) | set(
        inputs_from("provider_schemas", "kubernetes-2.38.0.txt"))
    bad = []
    for kind, table in (("resource", stack.resources), ("data", stack.data)):
        for rtype, by_name in table.items():
            if not rtype.startswith(("aws_", "kubernetes_")):
                continue
            types_known = {k for k in known if k.startswith(f"{kind}.{rtype}.")}
            if not types_known:
                bad.append(f"{kind}.{rtype}: no recorded schema (add it to provider_schemas/)")
                continue
            for rname, body in by_name.items():
                for arg in _argument_names(body):
                    if f"{kind}.{rtype}.{arg}" not in known:
                        bad.append(f"{kind}.{rtype}.{rname}: unknown argument {arg}")
    return bad


def test_resource_arguments_exist_in_the_provider_schemas(stack):
    assert unknown_resource_arguments(stack) == []


def test_misspelt_resource_argument_is_caught(stack):
    broken = copy.deepcopy(stack)
    trail = broken.resources["aws_cloudtrail"]["this"]
    trail["enable_log_file_validations"] = trail.pop("enable_log_file_validation")
    sse = broken.resources["aws_s3_bucket_server_side_encryption_configuration"]["cloudtrail"]
    block(block(sse["rule"])["apply_server_side_encryption_by_default"])["sse_algorythm"] = "AES256"
    assert sorted(unknown_resource_arguments(broken)) == [
        "resource.aws_cloudtrail.this: unknown argument enable_log_file_validations",
        "resource.aws_s3_bucket_server_side_encryption_configuration.cloudtrail: unknown argument sse_algorythm",
    ]


# --------------------------------------------------------------------------
# the stack's shell scripts

SCRIPTS = sorted(TF.glob("*.sh")) + [stack_tools.REPO / ".github" / "ci" / "pctl"]
SIGPIPE_PRONE = re.compile(r"\|\s*(head|tail)\b|\|\s*grep\s+(-[a-zA-Z]*q|--quiet)")


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_is_strict_and_passes_shellcheck(script):
    text = script.read_text()
    assert "set -euo pipefail" in text, f"{script.name}: missing set -euo pipefail"
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.lstrip().startswith("#"):
            assert not SIGPIPE_PRONE.search(line), f"{script.name}:{lineno}: capture output before head/tail/grep -q"
    shellcheck = stack_tools.require_tool("shellcheck")
    proc = stack_tools.run([shellcheck, "-x", str(script)])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_shellcheck_and_sigpipe_checks_can_fail(tmp_path):
    bad = tmp_path / "bad.sh"
    bad.write_text("#!/usr/bin/env bash\nset -euo pipefail\nrm -rf $1/tmp\n")
    proc = stack_tools.run([stack_tools.require_tool("shellcheck"), str(bad)])
    assert proc.returncode != 0 and "SC2086" in proc.stdout
    assert SIGPIPE_PRONE.search("aws s3 ls | head -1") and SIGPIPE_PRONE.search("kubectl get ns | grep -q x")
