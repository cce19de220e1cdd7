"""deploy/k8s/: every manifest against the schema the cluster would check it with, and against the project.

No Kubernetes cluster runs on these machines. What a cluster would check is checked here:

- RayJob, RayCronJob and RayCluster objects (the RayJob template inside the CronJob's ConfigMap
  too) against the openAPIV3Schema of KubeRay's CRDs (../shared/schemas-external/, copied to
  tests/data/schemas-external/), with a JSON
  Schema validator. The OpenAPI extensions are honoured, not dropped: ``nullable`` admits null;
  an object that lists its properties admits no others (the API server prunes unknown fields and
  kubectl's default strict field validation refuses them); ``int32``/``int64`` formats bound
  integers; ``x-kubernetes-list-type: map``/``set`` lists have unique keys/items. CEL rules
  (``x-kubernetes-validations``) cannot be evaluated by a JSON Schema validator: the test fails if
  a manifest sets any field that carries one, so none goes unchecked. Then KubeRay's own semantic
  checks the manifests could trip (ray-operator/controllers/ray/utils/validation.go: name lengths,
  replica bounds, resource and label fields, token authentication's Ray version, cron schedule).
- Plain objects (CronJob, ServiceAccount, Role, RoleBinding, ConfigMap): apiVersion, kind, required
  fields and field types of the Kubernetes API, with the pod template checked against the
  core/v1 PodTemplateSpec schema that KubeRay's CRD embeds; references between them resolve.
- Against the project: images are crlgen's version (the GPU image exactly where a GPU is
  requested), the Ray version is the one crlgen pins and runs; every ``crlgen`` and ``ray start``
  command line parses with the real CLIs; the datasets each job runs resolve, and for each of
  them a worker group of its engine offers what its world declares a task takes.
"""

from __future__ import annotations

import copy
import gzip
import datetime as dt
import json
import re
import shlex
import subprocess
import sys
import zoneinfo
from functools import cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
CRDS = ROOT / "tests" / "data" / "schemas-external"  # copies of ../shared/schemas-external, gzipped
CRD_FILES = {"RayJob": "ray.io_rayjobs.yaml", "RayCluster": "ray.io_rayclusters.yaml", "RayCronJob": "ray.io_raycronjobs.yaml"}
NAMESPACE = "crlgen"
# KubeRay's limits (ray-operator/controllers/ray/utils/constant.go): a RayCluster's name leaves room for
# its service suffixes; a RayJob's for the 6 characters of its cluster's name; a RayCronJob's for the
# 6 characters ("-" and 5 random) of the RayJobs it creates
MAX_NAME = {"RayCluster": 53, "RayJob": 47, "RayCronJob": 41}
DNS1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
INT_BOUNDS = {"int32": (-2**31, 2**31 - 1), "int64": (-2**63, 2**63 - 1)}


# ----- the manifests --------------------------------------------------------------------------------
def _documents() -> list[tuple[str, dict]]:
    """(where, object) for every YAML document under deploy/k8s/, and every manifest a ConfigMap carries."""
    out = []
    for path in sorted(K8S.glob("*.yaml")):
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            assert isinstance(doc, dict), f"{path.name}: document {i} is not a mapping"
            out.append((f"{path.name}[{i}]", doc))
            if doc.get("kind") == "ConfigMap":
                for key, text in (doc.get("data") or {}).items():
                    if key.endswith((".yaml", ".yml")):
                        out.append((f"{path.name}[{i}].data.{key}", yaml.safe_load(text)))
    return out


DOCS = _documents()


def _of_kind(*kinds: str) -> list[tuple[str, dict]]:
    return [(w, d) for w, d in DOCS if d.get("kind") in kinds]


def _job_specs() -> list[tuple[str, dict]]:
    """(where, RayJob spec) of every RayJob, RayCronJob's template included."""
    return [(w, d["spec"]) for w, d in _of_kind("RayJob")] + [(w, d["spec"]["jobTemplate"]) for w, d in _of_kind("RayCronJob")]


def test_manifests_are_the_ones_the_deployment_needs():
    kinds = sorted(d["kind"] for _, d in DOCS)
    assert kinds == ["ConfigMap", "CronJob", "RayCronJob", "RayJob", "RayJob", "Role", "RoleBinding", "ServiceAccount"]
    assert {d["metadata"].get("namespace") for _, d in DOCS} == {NAMESPACE}


# ----- KubeRay CRDs as JSON Schema ------------------------------------------------------------------
def _to_json_schema(node):
    """An OpenAPI v3 structural schema as a JSON Schema, its Kubernetes extensions kept in force."""
    if isinstance(node, list):
        return [_to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _to_json_schema(v) for k, v in node.items()}
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    if "properties" in out and "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False  # pruned by the API server, refused by kubectl's strict validation
    if out.get("type") == "integer" and out.get("format") in INT_BOUNDS:
        out["minimum"], out["maximum"] = INT_BOUNDS[out["format"]]
    return out


@cache
def _crd_schema(kind: str, version: str = "v1") -> dict:
    crd = yaml.load(gzip.decompress((CRDS / f"{CRD_FILES[kind]}.gz").read_bytes()).decode(),
                    Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    assert crd["spec"]["names"]["kind"] == kind
    served = {v["name"]: v for v in crd["spec"]["versions"] if v.get("served")}
    assert version in served, f"{kind}: version {version} is not served (served: {sorted(served)})"
    return served[version]["schema"]["openAPIV3Schema"]


@cache
def _crd_validator(kind: str, version: str):
    import jsonschema

    return jsonschema.Draft7Validator(_to_json_schema(_crd_schema(kind, version)))


def _walk(schema: dict, value, path: str, rules: list, problems: list) -> None:
    """What a JSON Schema validator leaves out: CEL rules reached, list-map keys and set items unique."""
    if value is None:
        return
    if "x-kubernetes-validations" in schema:
        rules.append((path, [r["rule"] for r in schema["x-kubernetes-validations"]]))
    if isinstance(value, dict):
        props, extra = schema.get("properties", {}), schema.get("additionalProperties")
        for k, v in value.items():
            sub = props.get(k, extra if isinstance(extra, dict) else None)
            if sub is not None:
                _walk(sub, v, f"{path}.{k}", rules, problems)
    elif isinstance(value, list) and "items" in schema:
        kind = schema.get("x-kubernetes-list-type")
        if kind == "map":
            keys = [tuple(item.get(k) for k in schema["x-kubernetes-list-map-keys"]) for item in value]
            if len(keys) != len(set(keys)):
                problems.append(f"{path}: duplicate {schema['x-kubernetes-list-map-keys']} in {keys}")
        elif kind == "set":
            items = [json.dumps(v, sort_keys=True) for v in value]
            if len(items) != len(set(items)):
                problems.append(f"{path}: duplicate items")
        for i, v in enumerate(value):
            _walk(schema["items"], v, f"{path}[{i}]", rules, problems)


def _crd_problems(doc: dict) -> list[str]:
    """Every way ``doc`` breaks its CRD's schema (see the module docstring)."""
    group, _, version = doc["apiVersion"].partition("/")
    if group != "ray.io":
        return [f"apiVersion {doc['apiVersion']}: expected ray.io/<version>"]
    raw = _crd_schema(doc["kind"], version)
    validator = _crd_validator(doc["kind"], version)
    problems = [f"{'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(doc)]
    rules: list = []
    _walk(raw, doc, doc["kind"], rules, problems)
    problems += [f"{path}: sets a field with CEL rules this test does not evaluate: {r}" for path, r in rules]
    return problems


@pytest.mark.parametrize("where", [w for w, _ in _of_kind("RayJob", "RayCronJob", "RayCluster")])
def test_kuberay_objects_validate_against_the_crd_schemas(where):
    doc = dict(DOCS)[where]
    assert _crd_problems(doc) == []


def test_the_crd_validation_catches_what_the_cluster_would_refuse():
    """The checks above are not vacuous: each kind of mistake is reported."""
    job = copy.deepcopy(dict(_of_kind("RayJob"))["rayjob.yaml[0]"])
    cases = {
        "unknown field (typo)": lambda j: j["spec"].update(shutdownAfterJobFinish=True),
        "unknown field, deep": lambda j: j["spec"]["rayClusterSpec"]["workerGroupSpecs"][0].update(replica=3),
        "wrong type": lambda j: j["spec"].update(backoffLimit="2"),
        "enum": lambda j: j["spec"]["rayClusterSpec"]["authOptions"].update(mode="password"),
        "missing required": lambda j: j["spec"]["rayClusterSpec"]["workerGroupSpecs"][0].pop("groupName"),
        "int32 bound": lambda j: j["spec"].update(ttlSecondsAfterFinished=2**31),
        "list-map duplicate": lambda j: j["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"]
                                         .append(copy.deepcopy(j["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0])),
        "field with a CEL rule": lambda j: j["spec"].update(deletionStrategy={"onSuccess": {"policy": "DeleteCluster"}}),
    }
    for name, breaks in cases.items():
        broken = copy.deepcopy(job)
        breaks(broken)
        assert _crd_problems(broken), name


# ----- KubeRay's semantic checks (validation.go) ------------------------------------------------------
def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split("."))


def _cluster_problems(spec: dict) -> list[str]:
    import ray

    out = []
    if not spec["headGroupSpec"]["template"]["spec"].get("containers"):
        out.append("headGroupSpec should have at least one container")
    groups = [("head", spec["headGroupSpec"])] + [(g["groupName"], g) for g in spec.get("workerGroupSpecs", [])]
    names = [n for n, _ in groups[1:]]
    if len(names) != len(set(names)):
        out.append(f"worker group names repeat: {names}")
    autoscaling = spec.get("enableInTreeAutoscaling", False)
    for name, g in groups:
        params = g.get("rayStartParams") or {}
        if any(params.get(k) for k in ("num-cpus", "num-gpus", "memory", "resources")) and g.get("resources"):
            out.append(f"{name}: resources in both rayStartParams and resources")
        if "labels" in params:
            out.append(f"{name}: rayStartParams['labels'] is not supported; use labels")
        for k, v in (g.get("labels") or {}).items():
            prefix, _, label = k.rpartition("/")
            if not LABEL_NAME.fullmatch(label) or len(label) > 63 or (prefix and not DNS1123_SUBDOMAIN.fullmatch(prefix)):
                out.append(f"{name}: label key {k!r} is not a qualified name")
            if v and (not LABEL_NAME.fullmatch(v) or len(v) > 63):
                out.append(f"{name}: label value {v!r} is not a valid label value")
        if name == "head":
            continue
        if not DNS1123_LABEL.fullmatch(name):
            out.append(f"worker group name {name!r} is not a DNS-1123 label")
        if not g["template"]["spec"].get("containers"):
            out.append(f"{name}: workerGroupSpec should have at least one container")
        lo, hi, n = g.get("minReplicas"), g.get("maxReplicas"), g.get("replicas", 0)
        if not autoscaling and (lo is None or hi is None):
            out.append(f"{name}: set both minReplicas and maxReplicas when autoscaling is disabled")
        elif not (0 <= lo <= n <= hi):
            out.append(f"{name}: replicas {n} outside [minReplicas {lo}, maxReplicas {hi}]")
    if (spec.get("authOptions") or {}).get("mode") == "token":
        version = spec.get("rayVersion")
        if not version or _version_tuple(version) < (2, 52, 0):
            out.append(f"authOptions.mode is 'token' but rayVersion is {version!r} (needs 2.52.0 or later)")
    if spec.get("rayVersion") != ray.__version__:
        out.append(f"rayVersion {spec.get('rayVersion')!r} is not the Ray crlgen runs ({ray.__version__})")
    return out


_CRON_FIELD = re.compile(r"(\*|\d+(-\d+)?)(/\d+)?")
_CRON_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]


def _cron_problems(schedule: str) -> list[str]:
    """robfig/cron's standard parser (what KubeRay and Kubernetes use): 5 fields or a @descriptor."""
    if "TZ" in schedule:
        return ["schedule: use timeZone, not TZ= or CRON_TZ= in the schedule"]
    if schedule in ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"):
        return []
    fields = schedule.split()
    if len(fields) != 5:
        return [f"schedule {schedule!r}: expected 5 fields"]
    out = []
    for text, (lo, hi) in zip(fields, _CRON_RANGES):
        for part in text.split(","):
            if not _CRON_FIELD.fullmatch(part) or any(not lo <= int(n) <= hi for n in re.findall(r"(?<!/)\b\d+", part)):
                out.append(f"schedule field {text!r}: expected numbers in {lo}-{hi}, ranges, steps or *")
    return out


def _meta_problems(kind: str, meta: dict) -> list[str]:
    name = meta.get("name", "")
    out = []
    if kind in MAX_NAME:
        if not DNS1035.fullmatch(name) or len(name) > MAX_NAME[kind]:
            out.append(f"{kind} name {name!r}: a DNS-1035 label of at most {MAX_NAME[kind]} characters")
    elif not DNS1123_SUBDOMAIN.fullmatch(name) or len(name) > 253:
        out.append(f"{kind} name {name!r}: a DNS-1123 subdomain")
    if kind == "CronJob" and len(name) > 52:
        out.append(f"CronJob name {name!r}: at most 52 characters (its Jobs add 11)")
    for k, v in (meta.get("labels") or {}).items():
        prefix, _, label = k.rpartition("/")
        if not LABEL_NAME.fullmatch(label) or (prefix and not DNS1123_SUBDOMAIN.fullmatch(prefix)):
            out.append(f"label key {k!r}")
        if not isinstance(v, str) or (v and not LABEL_NAME.fullmatch(v)):
            out.append(f"label value {v!r} (a string)")
    return out


def test_kuberay_objects_pass_kuberays_own_checks():
    problems = []
    for where, doc in _of_kind("RayJob", "RayCronJob", "RayCluster"):
        problems += [f"{where}: {p}" for p in _meta_problems(doc["kind"], doc["metadata"])]
        spec = doc["spec"]
        if doc["kind"] == "RayCronJob":
            problems += [f"{where}: {p}" for p in _cron_problems(spec["schedule"])]
            if "timeZone" in spec:
                zoneinfo.ZoneInfo(spec["timeZone"])  # raises for a zone Go's time.LoadLocation would not know
            spec = spec["jobTemplate"]
        if doc["kind"] in ("RayJob", "RayCronJob"):
            if spec.get("suspend") and not spec.get("shutdownAfterJobFinishes"):
                problems.append(f"{where}: a suspended RayJob needs shutdownAfterJobFinishes")
            if spec.get("backoffLimit", 0) < 0 or spec.get("ttlSecondsAfterFinished", 0) < 0:
                problems.append(f"{where}: negative backoffLimit or ttlSecondsAfterFinished")
            if (spec["rayClusterSpec"].get("authOptions") or {}).get("enableK8sTokenAuth"):
                problems.append(f"{where}: K8s token auth is not supported for RayJob")
            spec = spec["rayClusterSpec"]
        problems += [f"{where}: {p}" for p in _cluster_problems(spec)]
    assert problems == []


# ----- plain Kubernetes objects -----------------------------------------------------------------------
def _obj(properties: dict, required: tuple[str, ...] = ()) -> dict:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


_STR, _INT, _BOOL = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
_STRMAP = {"type": "object", "additionalProperties": _STR}
_STRS = {"type": "array", "items": _STR}
_META = _obj({"name": _STR, "namespace": _STR, "labels": _STRMAP, "annotations": _STRMAP}, ("name",))


@cache
def _pod_template_schema() -> dict:
    """core/v1 PodTemplateSpec, as KubeRay's RayJob CRD embeds it (spec.submitterPodTemplate)."""
    return _to_json_schema(_crd_schema("RayJob")["properties"]["spec"]["properties"]["submitterPodTemplate"])


def _plain_schema(kind: str) -> dict:
    """The fields of each kind in the Kubernetes API reference (v1.33), with their types and required ones."""
    job_spec = _obj({
        "activeDeadlineSeconds": _INT, "backoffLimit": _INT, "backoffLimitPerIndex": _INT, "completionMode": _STR,
        "completions": _INT, "managedBy": _STR, "manualSelector": _BOOL, "maxFailedIndexes": _INT, "parallelism": _INT,
        "podFailurePolicy": {"type": "object"}, "podReplacementPolicy": _STR, "selector": {"type": "object"},
        "successPolicy": {"type": "object"}, "suspend": _BOOL, "template": _pod_template_schema(),
        "ttlSecondsAfterFinished": _INT}, ("template",))
    return {
        "CronJob": _obj({"apiVersion": {"const": "batch/v1"}, "kind": _STR, "metadata": _META, "spec": _obj({
            "schedule": _STR, "timeZone": _STR, "startingDeadlineSeconds": _INT, "suspend": _BOOL,
            "concurrencyPolicy": {"enum": ["Allow", "Forbid", "Replace"]},
            "successfulJobsHistoryLimit": _INT, "failedJobsHistoryLimit": _INT,
            "jobTemplate": _obj({"metadata": _META, "spec": job_spec}, ("spec",))}, ("schedule", "jobTemplate"))},
            ("apiVersion", "kind", "metadata", "spec")),
        "ServiceAccount": _obj({"apiVersion": {"const": "v1"}, "kind": _STR, "metadata": _META,
                                "automountServiceAccountToken": _BOOL, "imagePullSecrets": {"type": "array"},
                                "secrets": {"type": "array"}}, ("apiVersion", "kind", "metadata")),
        "Role": _obj({"apiVersion": {"const": "rbac.authorization.k8s.io/v1"}, "kind": _STR, "metadata": _META,
                      "rules": {"type": "array", "items": _obj({"apiGroups": _STRS, "resources": _STRS, "verbs": _STRS,
                                                                "resourceNames": _STRS, "nonResourceURLs": _STRS}, ("verbs",))}},
                     ("apiVersion", "kind", "metadata")),
        "RoleBinding": _obj({"apiVersion": {"const": "rbac.authorization.k8s.io/v1"}, "kind": _STR, "metadata": _META,
                             "roleRef": _obj({"apiGroup": _STR, "kind": {"enum": ["Role", "ClusterRole"]}, "name": _STR},
                                             ("apiGroup", "kind", "name")),
                             "subjects": {"type": "array", "items": _obj({"kind": _STR, "name": _STR, "apiGroup": _STR,
                                                                          "namespace": _STR}, ("kind", "name"))}},
                            ("apiVersion", "kind", "metadata", "roleRef")),
        "ConfigMap": _obj({"apiVersion": {"const": "v1"}, "kind": _STR, "metadata": _META, "data": _STRMAP,
                           "binaryData": _STRMAP, "immutable": _BOOL}, ("apiVersion", "kind", "metadata")),
    }[kind]


@pytest.mark.parametrize("where", [w for w, _ in _of_kind("CronJob", "ServiceAccount", "Role", "RoleBinding", "ConfigMap")])
def test_plain_objects_have_the_kubernetes_api_shape(where):
    import jsonschema

    doc = dict(DOCS)[where]
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
              for e in jsonschema.Draft7Validator(_plain_schema(doc["kind"])).iter_errors(doc)]
    errors += _meta_problems(doc["kind"], doc["metadata"])
    if doc["kind"] == "CronJob":
        errors += _cron_problems(doc["spec"]["schedule"])
        zoneinfo.ZoneInfo(doc["spec"]["timeZone"])
        pod = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        if pod.get("restartPolicy") not in ("Never", "OnFailure"):
            errors.append("a Job's pods need restartPolicy Never or OnFailure")
    if doc["kind"] == "RoleBinding":
        errors += [f"subject {s['name']}: a ServiceAccount subject needs its namespace"
                   for s in doc.get("subjects", []) if s["kind"] == "ServiceAccount" and not s.get("namespace")]
    assert errors == []


def test_the_nightly_cronjob_objects_reference_each_other():
    by = {(d["kind"], d["metadata"]["name"]): d for _, d in _of_kind("CronJob", "ServiceAccount", "Role", "RoleBinding", "ConfigMap")}
    (cron,) = [d for (k, _), d in by.items() if k == "CronJob"]
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert ("ServiceAccount", pod["serviceAccountName"]) in by
    binding = next(d for (k, _), d in by.items() if k == "RoleBinding")
    assert ("Role", binding["roleRef"]["name"]) in by
    assert [(s["kind"], s["name"], s["namespace"]) for s in binding["subjects"]] == \
        [("ServiceAccount", pod["serviceAccountName"], NAMESPACE)]
    for vol in pod["volumes"]:
        if "configMap" in vol:
            assert ("ConfigMap", vol["configMap"]["name"]) in by
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"


# ----- the nightly CronJob's script ---------------------------------------------------------------------
def _script() -> str:
    (cron,) = [d for _, d in _of_kind("CronJob")]
    container = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["/bin/sh", "-c"]
    return container["args"][0]


def _template() -> tuple[str, dict]:
    (cm,) = [d for _, d in _of_kind("ConfigMap")]
    return cm["data"]["rayjob.yaml"], cm


def test_the_cronjob_script_is_valid_shell_and_its_role_grants_exactly_what_it_does():
    r = subprocess.run(["/bin/sh", "-n", "-c", _script()], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    script = _script()
    verbs = set()
    for m in re.finditer(r"kubectl (\w+) (rayjobs\b[^\n]*|-f -)", script):
        verb, rest = m[1], m[2]
        verbs.add("list" if verb == "get" and " -l " in f" {rest}" else verb)
    (role,) = [d for _, d in _of_kind("Role")]
    assert role["rules"] == [{"apiGroups": ["ray.io"], "resources": ["rayjobs"], "verbs": sorted(verbs)}]
    # the script finds earlier nightly RayJobs by the label its template gives them
    text, _ = _template()
    selector = re.search(r"-l ([\w./-]+)=(\w+)", script)
    assert yaml.safe_load(text)["metadata"]["labels"][selector[1]] == selector[2]
    # the ConfigMap is mounted where the script reads it
    (cron,) = [d for _, d in _of_kind("CronJob")]
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    cm_volume = next(v["name"] for v in pod["volumes"] if "configMap" in v)
    mount = next(m["mountPath"] for m in pod["containers"][0]["volumeMounts"] if m["name"] == cm_volume)
    assert f"{mount}/rayjob.yaml" in script
    image = pod["containers"][0]["image"]
    assert re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+", image), f"{image}: pin kubectl's image to a version"


def test_the_cronjob_script_stamps_the_rayjob_with_the_date(tmp_path):
    """The script's own name-stamping line, run here on the ConfigMap's template: the RayJob it would
    create is the template renamed crlgen-nightly-YYYYMMDD, nothing else changed, and still valid."""
    text, _ = _template()
    (tmp_path / "rayjob.yaml").write_text(text)
    script = _script()
    stamp = next(line for line in script.splitlines() if line.startswith("sed ") and "rayjob.yaml" in line)
    stamp = stamp.split(" | kubectl")[0].replace("/etc/crlgen/rayjob.yaml", str(tmp_path / "rayjob.yaml"))
    naming = next(line for line in script.splitlines() if line.startswith("name="))
    r = subprocess.run(["/bin/sh", "-c", f"set -eu\n{naming}\n{stamp}"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    created, template = yaml.safe_load(r.stdout), yaml.safe_load(text)
    today = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d")
    assert created["metadata"]["name"] in (f"crlgen-nightly-{today}",
                                           "crlgen-nightly-" + (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)).strftime("%Y%m%d"))
    created["metadata"]["name"] = template["metadata"]["name"]
    assert created == template
    renamed = yaml.safe_load(r.stdout)
    assert _crd_problems(renamed) == [] and _meta_problems("RayJob", renamed["metadata"]) == []


# ----- agreement with the project ------------------------------------------------------------------------
def _pyproject() -> dict:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _groups(spec: dict) -> list[dict]:
    """The worker groups of a RayJob spec, each with what Ray counts on its pods: CPUs (the container's
    CPU limit, as KubeRay passes it, or rayStartParams num-cpus) and GPUs (nvidia.com/gpu)."""
    out = []
    for g in spec["rayClusterSpec"]["workerGroupSpecs"]:
        (c,) = g["template"]["spec"]["containers"]
        limits, requests = c["resources"]["limits"], c["resources"]["requests"]
        params = g.get("rayStartParams") or {}
        out.append({**g, "image": c["image"], "limits": limits, "requests": requests,
                    "cpus": float(params.get("num-cpus", limits["cpu"])),
                    "gpus": float(params.get("num-gpus", limits.get("nvidia.com/gpu", 0)))})
    return out


def _ray_pods(spec: dict) -> list[tuple[str, dict]]:
    cluster = spec["rayClusterSpec"]
    return [("head", cluster["headGroupSpec"])] + [(g["groupName"], g) for g in cluster["workerGroupSpecs"]]


def test_images_and_ray_version_agree_with_the_project():
    import ray

    assert _pyproject()["dependencies"].count(f"ray=={ray.__version__}") == 1
    version = _pyproject()["version"]
    for where, spec in _job_specs():
        assert spec["rayClusterSpec"]["rayVersion"] == ray.__version__, where
        for name, group in _ray_pods(spec):
            for c in group["template"]["spec"]["containers"]:
                gpu = "nvidia.com/gpu" in c["resources"].get("limits", {})
                assert c["image"] == f"crlgen:{version}" + ("-gpu" if gpu else ""), (where, name, c["image"])
    # ... the images docker/ builds: Ray's image of that version, for Python 3.11
    for dockerfile, suffix in (("Dockerfile", ""), ("Dockerfile.gpu", "-gpu")):
        text = (ROOT / "docker" / dockerfile).read_text()
        assert f"FROM rayproject/ray:{ray.__version__}-py{sys.version_info.major}{sys.version_info.minor}{suffix}\n" in text
        assert f"crlgen:{version}{suffix} ." in text  # its build line tags the image the manifests run


def test_ray_pods_run_as_the_images_user_with_guaranteed_resources(parse_ray):
    for where, spec in _job_specs():
        for name, group in _ray_pods(spec):
            pod = group["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 1000, (where, name)
            (c,) = pod["containers"]
            res = c["resources"]
            # requests == limits (Guaranteed QoS): Ray counts the limit's CPUs as its own
            assert res["requests"] == res["limits"] and float(res["limits"]["cpu"]).is_integer(), (where, name)
            assert {"name": "shm", "mountPath": "/dev/shm"} in c["volumeMounts"], (where, name)
            assert {"name": "shm", "emptyDir": {"medium": "Memory"}} in pod["volumes"], (where, name)
            env = {e["name"]: e.get("value") for e in c["env"]}
            assert env["RAY_task_oom_retries"] == "2" and env["CRLGEN_PIN_CPU"] == "0", (where, name)
            assert c["envFrom"] == [{"secretRef": {"name": "crlgen-s3"}}], (where, name)
            # KubeRay starts each pod with `ray start --<key>=<value>` for its rayStartParams
            params = [f"--{k}={v}" for k, v in (group.get("rayStartParams") or {}).items()]
            parse_ray(["ray", "start"] + (["--head"] if name == "head" else ["--address=head:6379"]) + params)
        head = spec["rayClusterSpec"]["headGroupSpec"]
        assert head["rayStartParams"]["num-cpus"] == "0", where  # no rendering on the head


def test_entrypoints_parse_with_crlgens_cli_and_their_datasets_resolve(parse_crlgen):
    commands = set()
    for where, spec in _job_specs():
        ctx = parse_crlgen(shlex.split(spec["entrypoint"]))
        commands.add(ctx.info_name)
        assert ctx.params["address"] == "auto", where  # the job's driver joins the RayJob's cluster
        if ctx.info_name == "crlgen run":
            assert ctx.params["out_url"].startswith("s3://"), where
        else:
            assert ctx.info_name == "crlgen regenerate" and ctx.params["root"].startswith("s3://"), where
            assert ctx.params["keep"] >= 1
        assert _datasets(spec["entrypoint"], parse_crlgen), where  # the spec checks / the sources resolve
    assert commands == {"crlgen run", "crlgen regenerate"}
    # the plain CronJob creates the same job as the RayCronJob
    (cron,) = [d for _, d in _of_kind("RayCronJob")]
    text, _ = _template()
    assert yaml.safe_load(text)["spec"] == cron["spec"]["jobTemplate"]


_DATASETS: dict[str, list] = {}


def _datasets(entrypoint, parse_crlgen) -> list:
    """The checked specs of the datasets an entrypoint runs (`crlgen run SPEC` or `crlgen regenerate SOURCES`)."""
    from crlgen.pipeline import check_spec, load_spec
    from crlgen.pipeline._regenerate import resolve_sources

    if entrypoint not in _DATASETS:
        ctx = parse_crlgen(shlex.split(entrypoint))
        _DATASETS[entrypoint] = ([check_spec(load_spec(ctx.params["spec"]))] if ctx.info_name == "crlgen run"
                                 else [d.spec for d in resolve_sources(list(ctx.params["sources"]))])
    return _DATASETS[entrypoint]


def _engine(spec) -> str:
    """The engine a dataset's tasks need on their worker: Blender wherever Cycles renders, else the world's."""
    from crlgen.scenes.registry import world_class

    info = world_class(spec.world).info
    return "blender" if (spec.render.engine or info.engines[0]) == "cycles" else info.engine


def _offering_group(groups: list[dict], spec, need: dict) -> dict | None:
    device = "gpu" if need["num_gpus"] else None
    for g in groups:
        labels = g.get("labels") or {}
        if labels.get("crlgen.io/engine") == _engine(spec) and labels.get("crlgen.io/device") == device \
                and g["cpus"] >= need["num_cpus"] and g["gpus"] >= need["num_gpus"] and not need.get("resources"):
            return g
    return None


def test_worker_groups_offer_what_the_worlds_declare_for_every_dataset_they_run(parse_crlgen):
    """For each dataset a job runs, a group of its engine offers one task's resources (as the world
    declares them) and runs at least one pod, since crlgen refuses a cluster that cannot offer them."""
    from crlgen.scenes.registry import world_class

    for where, spec in _job_specs():
        groups = _groups(spec)
        datasets = _datasets(spec["entrypoint"], parse_crlgen)
        assert datasets, where
        for ds in datasets:
            need = world_class(ds.world).resources(ds).ray_options()
            group = _offering_group(groups, ds, need)
            assert group is not None, f"{where}: no worker group of engine {_engine(ds)} offers {need} ({ds.name})"
            assert group["replicas"] >= 1, f"{where}: group {group['groupName']} runs no pod, but {ds.name} needs it"
        # one group per engine the catalogue's worlds use, and Cycles on a GPU
        assert {(g["labels"]["crlgen.io/engine"], g["labels"].get("crlgen.io/device")) for g in groups} == \
            {("blender", None), ("blender", "gpu"), ("pybullet", None)}


def test_the_gpu_group_offers_what_cycles_on_a_gpu_takes():
    """`render.device: gpu` makes a task take a GPU (the worlds' resources()); the GPU group offers it,
    with the GPU image, for the spring and for a physics world rendered by Cycles."""
    from crlgen.pipeline import load_spec
    from crlgen.scenes.registry import world_class

    version = _pyproject()["version"]
    for where, spec in _job_specs():
        groups = _groups(spec)
        for name, render in (("static/spring", {"device": "gpu"}), ("physics/falling_simple", {"engine": "cycles", "device": "gpu"})):
            base = load_spec(name)
            ds = base.replace(render={**base.render.model_dump(), **render})
            need = world_class(ds.world).resources(ds).ray_options()
            assert need["num_gpus"] == 1, need
            group = _offering_group(groups, ds, need)
            assert group is not None and group["groupName"] == "blender-gpu", (where, name)
            assert group["image"] == f"crlgen:{version}-gpu"
            assert group["limits"]["nvidia.com/gpu"] == group["requests"]["nvidia.com/gpu"] == "1"
        # and no CPU-only group is given a GPU image, or the other way round
        for g in groups:
            assert (g["gpus"] > 0) == g["image"].endswith("-gpu"), g["groupName"]
