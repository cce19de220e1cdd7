"""deploy/cluster/: the cluster launcher files and the `ray submit` entry script.

- The AWS and GCP files validate against Ray's own cluster-config JSON Schema (the
  ``ray-schema.json`` inside the installed ray package), pin the Ray image to the Ray version
  crlgen depends on, install crlgen with the extras each node type needs, and spill objects to
  a large disk; their `ray start` commands parse with the installed Ray's own CLI.
- The local-provider file is really used: an OpenSSH server on 127.0.0.1 (in a PID namespace of
  its own, so the `ray stop` that `ray up` and `ray down` run sees no other Ray of this machine)
  stands in for the machine; `ray up` starts the head, `ray submit` runs a small spec through
  ``crlgen_submit.py`` into the loopback S3 store, the store validates, a failing run comes back
  non-zero with its one-line reason, and `ray down` stops it all.
"""

from __future__ import annotations

import copy
import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "deploy" / "cluster"
CLOUD = ("aws.yaml", "gcp.yaml")


def _load(name: str) -> dict:
    return yaml.safe_load((CLUSTER / name).read_text())


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _ray_pin() -> str:
    pins = [d for d in _pyproject()["project"]["dependencies"] if re.match(r"ray\s*==", d)]
    assert len(pins) == 1, pins
    return pins[0].split("==")[1].strip()


@pytest.fixture(scope="module")
def ray_schema() -> dict:
    import ray

    path = Path(ray.__file__).parent / "autoscaler" / "ray-schema.json"
    return json.loads(path.read_text())


# ----- the cloud files, checked against Ray's own schema and crlgen's own facts -----------------
@pytest.mark.parametrize("name", [*CLOUD, "local.yaml"])
def test_cluster_files_validate_against_rays_schema(name, ray_schema):
    import jsonschema

    jsonschema.validate(_load(name), ray_schema)  # raises naming the offending field


def test_the_schema_check_catches_a_mistake(ray_schema):
    """A key Ray does not know (ssh_port, which many examples use) is refused, so the check above has teeth."""
    import jsonschema

    bad = copy.deepcopy(_load("aws.yaml"))
    bad["auth"]["ssh_port"] = 2222
    with pytest.raises(jsonschema.ValidationError, match="ssh_port"):
        jsonschema.validate(bad, ray_schema)


def _images(config: dict) -> dict[str, str]:
    """Node type -> the image its containers run."""
    docker = config["docker"]
    out = {}
    for name, node in config["available_node_types"].items():
        default = docker.get("head_image", docker["image"]) if name == config["head_node_type"] else \
            docker.get("worker_image", docker["image"])
        out[name] = node.get("docker", {}).get("worker_image", default)
    return out


def _gpu(node: dict) -> bool:
    return node["resources"].get("GPU", 0) > 0 or "Accelerators" in json.dumps(node["node_config"]) \
        or "guestAccelerators" in node["node_config"]


@pytest.mark.parametrize("name", CLOUD)
def test_images_are_pinned_to_crlgens_ray(name):
    import ray

    pin = _ray_pin()
    assert pin == ray.__version__  # the installed Ray is the one pyproject pins
    config = _load(name)
    images = _images(config)
    assert images and any(_gpu(n) for n in config["available_node_types"].values())
    for node_type, image in images.items():
        gpu = _gpu(config["available_node_types"][node_type])
        assert image == f"rayproject/ray:{pin}-py311-{'gpu' if gpu else 'cpu'}", (node_type, image)
    text = (CLUSTER / name).read_text()
    assert "latest" not in text and "ray-ml" not in text and "nightly" not in text


def _pip_extras(commands: list[str]) -> set[str]:
    """The extras of `pip install ".../crlgen[...]"` in a list of shell commands."""
    found = [m.group(1) for c in commands for m in re.finditer(r"pip install [^\n]*crlgen\[([a-z0-9_,]+)\]", c)]
    assert len(found) == 1, commands
    return set(found[0].split(","))


@pytest.mark.parametrize("name, store_extra", [("aws.yaml", None), ("gcp.yaml", "gcs")])
def test_each_node_type_installs_the_extras_it_needs(name, store_extra):
    config = _load(name)
    declared = set(_pyproject()["project"]["optional-dependencies"])
    for node_type, node in config["available_node_types"].items():
        head = node_type == config["head_node_type"]
        # Ray's rule (autoscaler._get_node_type_specific_fields): a node type's own list replaces
        # setup_commands + worker_setup_commands
        commands = (config["setup_commands"] + config["head_setup_commands"] if head else
                    node.get("worker_setup_commands", config["setup_commands"] + config["worker_setup_commands"]))
        extras = _pip_extras(commands)
        assert any("apt-get install" in c and "libxrender1" in c for c in commands), node_type  # bpy's X11/GL libraries
        assert extras <= declared, extras - declared
        # the head runs the driver: it validates (re-renders samples) and serves Ray Jobs (the dashboard)
        need = {"blender", "bullet", "cluster"} if head else {"blender"} if _gpu(node) else {"blender", "bullet"}
        if store_extra:
            need.add(store_extra)
        assert need <= extras, (node_type, need - extras)


@pytest.mark.parametrize("name", CLOUD)
def test_ray_start_commands_parse_spill_to_the_large_disk_and_use_tokens(name, parse_ray):
    config = _load(name)
    mount = next(o.split()[1].split(":")[1] for o in config["docker"]["run_options"] if o.startswith("-v "))
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        start = [c for c in config[key] if "ray start" in c]
        assert len(start) == 1, config[key]
        argv = shlex.split(start[0].split(";")[-1])
        assignments = [a for a in argv[:argv.index("ray")]]
        assert "RAY_AUTH_MODE=token" in assignments, argv  # every node runs Ray's token authentication
        ctx = parse_ray(argv[argv.index("ray"):])
        assert ctx.params["object_spilling_directory"] == mount, ctx.params
    disks = json.dumps([n["node_config"] for n in config["available_node_types"].values()])
    sizes = [int(s) for s in re.findall(r'"(?:VolumeSize|diskSizeGb)": (\d+)', disks)]
    assert sizes and min(sizes) >= 200, sizes  # spill space on every node
    assert config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"


def test_entry_script_builds_crlgen_run_with_address_auto():
    sys.path.insert(0, str(CLUSTER))
    try:
        import crlgen_submit
    finally:
        sys.path.remove(str(CLUSTER))
    assert crlgen_submit.crlgen_argv(["static/spring", "--out", "s3://b/x.zarr"]) == [
        "run", "static/spring", "--out", "s3://b/x.zarr", "--address", "auto"]
    with pytest.raises(ValueError, match="--address"):
        crlgen_submit.crlgen_argv(["x.yaml", "--address=ray://h:10001"])


# ----- the local provider, for real: ray up / submit / down over SSH on 127.0.0.1 --------------
def _free_ports(n: int) -> list[int]:
    from support.rayhead import free_ports

    return free_ports(n)


@pytest.fixture()
def node(tmp_path_factory, s3):
    """An SSH server on 127.0.0.1 (its own PID namespace) whose login shells find this venv's Python and Ray,
    the loopback S3 store, and `ray start` flags that keep the head on free loopback ports."""
    from support.rayhead import _worker_port_range
    from support.sshserver import LocalSSHD, missing_tools

    missing = missing_tools()
    if missing:
        pytest.skip(f"the ray-up test needs {', '.join(missing)} (Debian: openssh-server, rsync, util-linux; "
                    "`make venv` installs them with apt-get where it can)")
    root = Path(tempfile.mkdtemp(prefix="crlup-", dir="/tmp"))  # short: Ray's unix sockets live below it
    home, tmp, client = root / "node", root / "node-tmp", root / "client"
    for d in (home, tmp, client / ".ray", client / "tmp"):
        d.mkdir(parents=True)
    token = secrets.token_hex(32)
    (client / ".ray" / "auth_token").write_text(token)
    gcs, dashboard, agent, agent_grpc, node_manager, object_manager, metrics, env_agent, client_port = _free_ports(9)
    low, high = _worker_port_range()
    start_args = (f"--node-ip-address=127.0.0.1 --port={gcs} --dashboard-port={dashboard} "
                  f"--dashboard-agent-listen-port={agent} --dashboard-agent-grpc-port={agent_grpc} "
                  f"--node-manager-port={node_manager} --object-manager-port={object_manager} "
                  f"--metrics-export-port={metrics} --runtime-env-agent-port={env_agent} "
                  f"--ray-client-server-port={client_port} --min-worker-port={low} --max-worker-port={high} "
                  f"--num-cpus=2 --temp-dir={tmp / 'ray'}")
    exports = {"PATH": f"{Path(sys.executable).parent}:$PATH", "TMPDIR": str(tmp), "RAY_TMPDIR": str(tmp),
               "RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
               "AWS_EC2_METADATA_DISABLED": "true", "CRLGEN_RAY_START_ARGS": start_args, **s3.env}
    (home / ".bashrc").write_text("".join(f"export {k}={shlex.quote(v) if k != 'PATH' else v}\n"
                                          for k, v in exports.items()))
    server = LocalSSHD(root, home).start()
    yield {"server": server, "root": root, "home": home, "client": client, "tmp": tmp, "token": token,
           "gcs_port": gcs, "dashboard_port": dashboard}
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


def _cluster_yaml(node: dict) -> Path:
    """deploy/cluster/local.yaml with this machine filled in (head 127.0.0.1, no workers, the test's key)."""
    config = _load("local.yaml")
    server = node["server"]
    config["cluster_name"] = f"crlgen-test-{secrets.token_hex(4)}"
    config["provider"].update(head_ip="127.0.0.1", worker_ips=[])
    config["auth"] = {"ssh_user": server.user, "ssh_private_key": str(server.key), "ssh_proxy_command": server.proxy_command}
    path = node["root"] / "cluster.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _ray(node: dict, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """The `ray` CLI as a user runs it from the repository root, its ~ and temp files in the test folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "AWS_"))}
    env.update(HOME=str(node["client"]), TMPDIR=str(node["client"] / "tmp"), RAY_USAGE_STATS_ENABLED="0",
               PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    return subprocess.run([str(Path(sys.executable).parent / "ray"), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env, stdin=subprocess.DEVNULL)


def _ray_processes(node: dict) -> list[str]:
    return [p for p in node["server"].namespace_processes() if "ray" in p and "sshd" not in p]


@pytest.mark.slow
def test_ray_up_submit_down_on_a_local_cluster(node, s3, tmp_path, monkeypatch, capsys):
    from ray.autoscaler._private.constants import RAY_PROCESSES

    # A process outside the node that `ray stop` kills by its name (Ray's own list): it must outlive
    # `ray up` and `ray down`, which run `ray stop` on the node (in the node's PID namespace).
    assert ["raylet", True] in [list(p) for p in RAY_PROCESSES]
    shutil.copy("/bin/sleep", node["root"] / "raylet")
    sentinel = subprocess.Popen([str(node["root"] / "raylet"), "600"], start_new_session=True)
    try:
        _up_submit_down(node, s3, tmp_path, monkeypatch, capsys)
        assert sentinel.poll() is None, "a Ray-named process outside the node was killed"
    finally:
        sentinel.kill()
        sentinel.wait()


def _up_submit_down(node, s3, tmp_path, monkeypatch, capsys) -> None:
    import urllib.error
    import urllib.request

    from support.cli import run_cli

    cluster = _cluster_yaml(node)
    t0 = time.monotonic()
    r = _ray(node, "up", str(cluster), "-y", "--no-config-cache", "--log-style=record")
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    up = time.monotonic() - t0
    jobs = f"http://127.0.0.1:{node['dashboard_port']}/api/jobs/"
    deadline = time.monotonic() + 60
    while True:  # the dashboard may come up a little after `ray start` returns
        try:
            urllib.request.urlopen(jobs, timeout=10)
            status = 200
        except urllib.error.HTTPError as e:
            status = e.code
        except (urllib.error.URLError, OSError):
            status = None
        if status is not None or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status == 401  # the head runs Ray's token authentication
    req = urllib.request.Request(jobs, headers={"Authorization": f"Bearer {node['token']}"})
    with urllib.request.urlopen(req, timeout=10) as resp:  # ... with the token `ray up` copied from ~/.ray
        assert resp.status == 200
    assert (node["home"] / "crlgen" / "pyproject.toml").is_file()  # the checkout was synced (file_mounts)
    assert not (node["home"] / "crlgen" / ".venv").exists()  # ... without the excluded folders
    assert (node["home"] / ".ray" / "auth_token").read_text() == node["token"]
    assert any("gcs_server" in p for p in _ray_processes(node)), node["server"].namespace_processes()

    from support.stores import latent_spring

    spec = tmp_path / "latent.yaml"
    latent_spring(samples=200).replace(shard_size=100).dump(spec)
    r = _ray(node, "rsync-up", str(cluster), str(spec), "latent.yaml")  # the documented way to bring a spec
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    url = s3.url(f"cluster/{secrets.token_hex(4)}.zarr")
    r = _ray(node, "submit", str(cluster), "deploy/cluster/crlgen_submit.py", "--", "latent.yaml", "--out", url, "--quiet")
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    assert "passed" in r.stdout and "2 / 0" in r.stdout, r.stdout[-3000:]
    for k, v in s3.env.items():
        monkeypatch.setenv(k, v)
    code, report, err = run_cli(capsys, "validate", url, "--json")
    assert code == 0 and json.loads(report)["passed"], err
    import fsspec

    fs = fsspec.filesystem("s3", skip_instance_cache=True, **s3.storage_options)
    run_log = json.loads(fs.cat_file(fs.find(f"{url[5:]}/_crlgen/runs")[0]))
    assert run_log["address"] is True  # the run joined the head's cluster (--address auto), not an embedded Ray

    # a failing run: non-zero (`ray submit` reports any failure as 1) and the run's one-line reason
    r = _ray(node, "submit", str(cluster), "deploy/cluster/crlgen_submit.py", "--", "latent.yaml", "--out",
             "s3://no-such-bucket/x.zarr", "--quiet")
    assert r.returncode != 0
    assert "error: --out: s3://no-such-bucket/x.zarr: the bucket 'no-such-bucket' does not exist; create it first" \
        in r.stdout + r.stderr, (r.stdout + r.stderr)[-3000:]
    assert "Traceback" not in r.stdout + r.stderr

    r = _ray(node, "down", str(cluster), "-y", "--log-style=record")
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    deadline = time.monotonic() + 30
    while _ray_processes(node) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _ray_processes(node) == [], _ray_processes(node)  # `ray down` stopped the head's Ray
    print(f"ray up took {up:.0f} s, all {time.monotonic() - t0:.0f} s")
