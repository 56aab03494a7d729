"""The class hub: the z2jh values against the pinned chart, the image's install of llmbook, the Colab install line,
and the checks of ``make hub-smoke`` (scripts/hub_smoke.py), including that it catches the old editable layout.

The test marked ``hub`` starts a JupyterHub (about half a minute); ``make hub-smoke`` runs it, ``make unit`` does not.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import socket
import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy" / "jupyterhub"
HUB_PYTHON = ROOT / ".venv-hub" / "bin" / "python"

#: The Zero to JupyterHub chart the values are written for, and the JupyterHub it deploys (its changelog).
CHART_VERSION, JUPYTERHUB_VERSION = "4.4.0", "5.5.0"
#: Value paths of chart 4.4.0 that a class deployment may set, from the chart's values.schema.yaml (a subset:
#: what an admin of this book would reasonably touch). "*" stands for a free-form name (a map the chart passes on).
CHART_KEYS = {
    "proxy.https.enabled", "proxy.https.type", "proxy.https.hosts", "proxy.https.letsencrypt.contactEmail",
    "proxy.https.letsencrypt.acmeServer", "proxy.https.manual.key", "proxy.https.manual.cert",
    "proxy.https.secret.name", "proxy.https.secret.key", "proxy.https.secret.crt",
    "proxy.service.type", "proxy.service.loadBalancerIP", "proxy.service.loadBalancerSourceRanges",
    "proxy.service.annotations.*", "proxy.service.nodePorts.http", "proxy.service.nodePorts.https",
    "proxy.service.disableHttpPort", "proxy.chp.resources.*",
    "hub.baseUrl", "hub.concurrentSpawnLimit", "hub.activeServerLimit",
    "hub.consecutiveFailureLimit", "hub.allowNamedServers", "hub.redirectToServer", "hub.shutdownOnLogout",
    "hub.resources.*", "hub.extraConfig.*", "hub.loadRoles.*", "hub.services.*", "hub.existingSecret",
    "hub.db.type", "hub.db.pvc.storage", "hub.db.url",
    "singleuser.image.name", "singleuser.image.tag", "singleuser.image.pullPolicy", "singleuser.image.pullSecrets",
    "singleuser.cpu.limit", "singleuser.cpu.guarantee", "singleuser.memory.limit", "singleuser.memory.guarantee",
    "singleuser.extraEnv.*", "singleuser.defaultUrl", "singleuser.startTimeout", "singleuser.cmd",
    "singleuser.uid", "singleuser.fsGid", "singleuser.lifecycleHooks.postStart.*",
    "singleuser.storage.type", "singleuser.storage.capacity", "singleuser.storage.homeMountPath",
    "singleuser.storage.dynamic.storageClass", "singleuser.storage.extraVolumes",
    "singleuser.storage.extraVolumeMounts", "singleuser.networkPolicy.enabled",
    "singleuser.networkPolicy.egressAllowRules.nonPrivateIPs", "singleuser.networkPolicy.egressAllowRules.privateIPs",
    "singleuser.cloudMetadata.blockWithIptables", "singleuser.cloudMetadata.ip", "singleuser.profileList",
    "singleuser.nodeSelector.*", "singleuser.extraTolerations", "singleuser.events",
    "cull.enabled", "cull.users", "cull.adminUsers", "cull.removeNamedServers", "cull.timeout", "cull.every",
    "cull.concurrency", "cull.maxAge",
    "prePuller.hook.enabled", "prePuller.continuous.enabled", "prePuller.pullProfileListImages",
    "scheduling.userScheduler.enabled", "scheduling.podPriority.enabled", "scheduling.userPlaceholder.enabled",
    "scheduling.userPlaceholder.replicas", "scheduling.corePods.nodeAffinity.matchNodePurpose",
    "scheduling.userPods.nodeAffinity.matchNodePurpose",
    "ingress.enabled", "ingress.annotations.*", "ingress.ingressClassName", "ingress.hosts", "ingress.tls",
    "debug.enabled", "rbac.create", "custom.*",
}
#: hub.config's top-level keys must be configurable classes (chart 4.3.0 and later refuse anything else).
HUB_CONFIG_CLASSES = {"JupyterHub", "Authenticator", "DummyAuthenticator", "GitHubOAuthenticator",
                      "GenericOAuthenticator", "OAuthenticator", "KubeSpawner", "Spawner", "ConfigurableHTTPProxy"}
#: Enumerations and types of the chart's schema for the values set here.
CHART_ENUMS = {"proxy.https.type": {None, "", "letsencrypt", "manual", "offload", "secret"},
               "singleuser.image.pullPolicy": {None, "", "IfNotPresent", "Always", "Never"},
               "singleuser.storage.type": {"dynamic", "static", "none"}}
CHART_TYPES = {"singleuser.cpu.limit": (int, float), "singleuser.cpu.guarantee": (int, float),
               "singleuser.memory.limit": (int, float, str), "singleuser.memory.guarantee": (int, float, str),
               "cull.timeout": int, "cull.every": int, "cull.maxAge": int, "cull.enabled": bool, "cull.users": bool,
               "proxy.https.enabled": bool, "proxy.https.hosts": list, "singleuser.image.tag": str}


def load_script(name: str):
    """A script of scripts/, imported as a module from the repository root (its main() is not run)."""
    return importlib.import_module(f"scripts.{name}")


def leaves(values: dict, prefix: str = ""):
    """(dotted path, value) of every leaf; lists are leaves."""
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from leaves(value, path + ".")
        else:
            yield path, value


def known_key(path: str) -> bool:
    """Whether chart 4.4.0 has the value ``path`` (hub.config: a configurable class, then any trait)."""
    parts = path.split(".")
    if parts[:2] == ["hub", "config"]:
        return len(parts) >= 4 and parts[2] in HUB_CONFIG_CLASSES
    for key in CHART_KEYS:
        names = key.split(".")
        if names[-1] == "*" and len(parts) >= len(names):  # a free-form map: any name, anything below it
            names, parts_checked = names[:-1], parts[:len(names) - 1]
        else:
            parts_checked = parts
        if len(names) == len(parts_checked) and all(n in ("*", p) for n, p in zip(names, parts_checked, strict=True)):
            return True
    return False


def unknown_keys(values: dict) -> list[str]:
    """Paths in ``values`` that chart 4.4.0 does not have."""
    return [path for path, _ in leaves(values) if not known_key(path)]


def values(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------------------------------------------
# The image: llmbook as a normal package
# ----------------------------------------------------------------------------------------------------------------

def test_package_data_covers_every_file_the_package_loads():
    """Every file in llmbook/resources goes into the wheel; every data file the code names is shipped by a package."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["llmbook"]
    package = ROOT / "llmbook"
    resources = sorted(p.relative_to(package).as_posix() for p in (package / "resources").rglob("*")
                       if p.is_file() and "__pycache__" not in p.parts)
    assert resources, "llmbook/resources is empty"
    assert [r for r in resources if not any(fnmatch(r, pattern) for pattern in patterns)] == []
    named = set()
    for module in package.glob("*.py"):
        named |= set(re.findall(r"[\"']([\w.-]+\.(?:csv|tsv|txt|json|cor|safetensors))[\"']", module.read_text()))
    from gensim.test.utils import datapath

    shipped = {Path(r).name for r in resources} | {n for n in named if Path(datapath(n)).exists()}
    assert named and named <= shipped, f"loaded but shipped by no package: {sorted(named - shipped)}"


def test_binder_installs_llmbook_as_a_normal_package():
    commands = [line.strip() for line in (ROOT / "binder" / "postBuild").read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    installs = [c for c in commands if re.search(r"\bpip install\b", c)]
    assert len(installs) == 1 and installs[0].split()[-1] == "." and "--no-deps" in installs[0]
    assert not any(flag in installs[0].split() for flag in ("-e", "--editable"))


def test_the_image_gets_nbgitpuller_and_the_charts_jupyterhub():
    """Binder's environment (the hub image) pins what the smoke test's hub environment pins."""
    assert "-r ../deploy/requirements-hub.txt" in (ROOT / "binder" / "requirements.txt").read_text().splitlines()
    pins = (ROOT / "deploy" / "requirements-hub.txt").read_text().splitlines()
    assert f"jupyterhub=={JUPYTERHUB_VERSION}" in pins and "nbgitpuller==1.3.0" in pins


# ----------------------------------------------------------------------------------------------------------------
# The z2jh values
# ----------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["config.yaml", "first-test.yaml"])
def test_values_use_only_keys_of_the_pinned_chart(name):
    config = values(name)
    assert unknown_keys(config) == []
    for path, value in leaves(config):
        if path in CHART_ENUMS:
            assert value in CHART_ENUMS[path], (path, value)
        if path in CHART_TYPES:
            assert isinstance(value, CHART_TYPES[path]) and not (isinstance(value, bool)
                                                                 and CHART_TYPES[path] is not bool), (path, value)


def test_key_check_catches_misspelled_keys_and_unknown_classes():
    bad = {"singleuser": {"memory": {"guarante": "1G"}, "extraEnv": {"ANY_NAME": "1"}},
           "hub": {"config": {"DummyAuth": {"password": "x"}, "JupyterHub": {"authenticator_class": "dummy"}}},
           "cull": {"timeout": 60}, "proxy": {"https": {"letsencrypt": {"email": "a@b"}}}}
    assert unknown_keys(bad) == ["singleuser.memory.guarante", "hub.config.DummyAuth.password",
                                 "proxy.https.letsencrypt.email"]


def shell_commands(text: str) -> list[str]:
    """Commands in ``text`` with their continuation lines (ending in a backslash) joined."""
    return [" ".join(c.split()) for c in re.sub(r"\\\n\s*(#\s*)?", " ", text).splitlines()]


def test_chart_and_jupyterhub_versions_are_pinned_in_every_command():
    readme, config = (DEPLOY / "README.md").read_text(), (DEPLOY / "config.yaml").read_text()
    helm = [c for c in shell_commands(readme + config) if "helm upgrade" in c and "--install" in c]
    assert len(helm) >= 2 and all(f"--version {CHART_VERSION}" in c for c in helm), helm
    assert f"chart version {CHART_VERSION} (JupyterHub {JUPYTERHUB_VERSION})" in config
    build = [c for c in shell_commands(readme) if "jupyter-repo2docker" in c and "pip install" not in c]
    assert build and all("--user-id 1000" in c and "--user-name jovyan" in c for c in build), build


def test_config_is_what_a_careful_admin_deploys():
    config, first = values("config.yaml"), values("first-test.yaml")
    https = config["proxy"]["https"]
    assert https["enabled"] is True and https["type"] == "letsencrypt"
    assert https["hosts"] and https["letsencrypt"]["contactEmail"]
    hub = config["hub"]["config"]
    assert hub["JupyterHub"]["authenticator_class"] == "github"
    assert hub["GitHubOAuthenticator"]["allowed_organizations"]
    assert hub["GitHubOAuthenticator"]["oauth_callback_url"] == f"https://{https['hosts'][0]}/hub/oauth_callback"
    test_hub = first["hub"]["config"]
    assert test_hub["JupyterHub"]["authenticator_class"] == "dummy"
    assert len(test_hub["DummyAuthenticator"]["password"]) >= 16
    assert test_hub["Authenticator"]["allowed_users"] and test_hub["Authenticator"]["admin_users"] == []
    for auth in (hub, test_hub):
        assert "allow_all" not in auth.get("Authenticator", {})  # only listed users, or an organisation's members
    assert config["singleuser"]["storage"]["homeMountPath"] == "/home/jovyan"


def test_culling_is_chosen_and_explained():
    cull = values("config.yaml")["cull"]
    assert cull["enabled"] is True and cull["users"] is False
    chart_defaults = {"timeout": 3600, "every": 600, "maxAge": 0}
    assert all(cull[k] != v for k, v in chart_defaults.items()), "cull settings only restate the chart's defaults"
    text = (DEPLOY / "config.yaml").read_text().split("\ncull:\n")[1]
    for key in ("timeout", "every", "maxAge"):
        line = next(line for line in text.splitlines() if line.strip().startswith(f"{key}:"))
        assert "#" in line, f"cull.{key} has no comment saying why"


def _gigabytes(value) -> float:
    match = re.fullmatch(r"([\d.]+)([GM])", str(value))
    assert match, value
    return float(match[1]) / (1000 if match[2] == "M" else 1)


def _cpus(value) -> str:
    return f"{value:g} CPU" + ("" if value == 1 else "s")


def test_resources_match_the_instructor_guide_and_the_book_budget():
    single = values("config.yaml")["singleuser"]
    memory = {k: _gigabytes(single["memory"][k]) for k in ("guarantee", "limit")}
    cpu = single["cpu"]
    assert memory["guarantee"] <= memory["limit"] and cpu["guarantee"] <= cpu["limit"]
    guarantee = f"guarantee of {memory['guarantee']:g} GB of memory and {_cpus(cpu['guarantee'])}"
    limit = f"limits of {memory['limit']:g} GB and {_cpus(cpu['limit'])}"
    for doc in (ROOT / "book" / "instructor_guide.md", DEPLOY / "README.md"):
        text = " ".join(doc.read_text().split())
        assert guarantee in text and limit in text, f"{doc.name} does not state: {guarantee!r}, {limit!r}"
    budget = re.search(r"^BUDGET_SECONDS, BUDGET_MB, \w+ = [\d.]+, ([\d.]+),",
                       (ROOT / "benchmarks" / "notebooks.py").read_text(), re.MULTILINE)  # what make speed enforces
    assert budget and memory["guarantee"] >= float(budget[1]) / 1000  # a chapter at its budget fits


# ----------------------------------------------------------------------------------------------------------------
# The Colab install line
# ----------------------------------------------------------------------------------------------------------------

def test_release_is_the_tag_of_the_package_version():
    setter = load_script("set_install_line")
    url, release = setter.read_config(ROOT / "_config.yml")
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert release == f"v{version}"
    assert url == yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]


def test_every_notebook_installs_the_release_named_in_config():
    """Run `python scripts/set_install_line.py notebooks/*.ipynb` when this fails."""
    notebooks = sorted(str(p) for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert load_script("set_install_line").main(["--check", *notebooks]) == 0


def _book_notebook(setup: list[str]) -> dict:
    cells = [{"cell_type": "markdown", "id": "a1", "metadata": {}, "source": ["# Title é\n"]},
             {"cell_type": "code", "execution_count": 1, "id": "b2", "metadata": {"tags": []},
              "outputs": [{"name": "stdout", "output_type": "stream", "text": ["{'seed': 0}\n"]}], "source": setup},
             {"cell_type": "code", "execution_count": 2, "id": "c3", "metadata": {}, "outputs": [],
              "source": ['x = "llmbook @ git+https://example.org/other"']}]
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


OLD_SETUP = ["# Setup: reproducible runs (seeds, 1 CPU thread); on Colab, first install\n",
             "# the book's helper package.\n", "try:\n", "    import llmbook\n", "except ImportError:\n",
             "    %pip install --quiet \\\n",
             '        "llmbook @ git+https://github.com/large-models-book/large-models-book"\n',
             "    import llmbook\n", "print(llmbook.setup(seed=0))"]


def test_set_install_line_rewrites_only_the_setup_cell(tmp_path):
    setter = load_script("set_install_line")
    path = tmp_path / "01_x.ipynb"
    nb = _book_notebook(OLD_SETUP)
    path.write_text(json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    url = "https://github.com/owner/book"
    assert setter.set_install_line(path, url, "v1.2.3") is True
    new = json.loads(path.read_text(encoding="utf-8"))
    source = new["cells"][1]["source"]
    assert source[7] == '        "llmbook @ git+https://github.com/owner/book@v1.2.3"\n'
    assert "release v1.2.3" in "".join(source[:3]) and "not the latest commit" in "".join(source[:3])
    assert source[3:] == OLD_SETUP[2:6] + [source[7]] + OLD_SETUP[7:]
    new["cells"][1]["source"] = nb["cells"][1]["source"]
    assert new == nb  # nothing else changed
    assert setter.set_install_line(path, url, "v1.2.3") is False  # a second run changes nothing
    assert all(len(line.rstrip("\n")) <= 88 for line in source)


def test_set_install_line_refuses_branches_and_notebooks_it_cannot_read(tmp_path):
    setter = load_script("set_install_line")
    config = tmp_path / "_config.yml"
    config.write_text('repository:\n  url: "https://github.com/owner/book"\nllmbook_release: main\n')
    with pytest.raises(ValueError, match="not a branch"):
        setter.read_config(config)
    path = tmp_path / "x.ipynb"
    path.write_text(json.dumps(_book_notebook(["# Setup: x\n", "import llmbook\n"]), sort_keys=True, indent=1,
                               ensure_ascii=False) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="0 install lines"):
        setter.set_install_line(path, "https://github.com/owner/book", "v1")
    path.write_text(json.dumps(_book_notebook(OLD_SETUP)))  # not the book's format
    with pytest.raises(ValueError, match="not stored in the book's format"):
        setter.set_install_line(path, "https://github.com/owner/book", "v1")


# ----------------------------------------------------------------------------------------------------------------
# PYTHONHASHSEED: Binder, Colab, a hub and a laptop start Python with a random hash seed, and llmbook.setup()
# cannot change the seed of a running interpreter. So no result may depend on it: the chapters' exact outputs were
# compared under hash seeds 0, 1 and 2 (chapters 2, 3 and 5, and 4 under seed 1), and this test runs the package's
# code that touches sets of strings under two seeds.
# ----------------------------------------------------------------------------------------------------------------

HASH_PROBE = """
import json
from llmbook.data import lee_news_text
from llmbook.review_world import hidden_score
from llmbook.tokenizers import BPETokenizer, CharTokenizer

text = lee_news_text()[:6000]
bpe = BPETokenizer.train(text, num_merges=60)
print(json.dumps({"merges": bpe.merges, "tokens": bpe.tokenize(text[:400]), "chars": CharTokenizer(text).vocab,
                  "score": hidden_score("a great great film with a dull plot .")}))
"""


def test_nothing_in_llmbook_depends_on_the_hash_seed():
    outputs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        run = subprocess.run([sys.executable, "-c", HASH_PROBE], capture_output=True, text=True, env=env, timeout=300)
        assert run.returncode == 0, run.stderr[-2000:]
        outputs.add(run.stdout)
    assert len(outputs) == 1
    probe = subprocess.run([sys.executable, "-c", "print(hash('llmbook'))"], capture_output=True, text=True,
                           env={**os.environ, "PYTHONHASHSEED": "1"}).stdout
    assert probe != subprocess.run([sys.executable, "-c", "print(hash('llmbook'))"], capture_output=True, text=True,
                                   env={**os.environ, "PYTHONHASHSEED": "2"}).stdout  # the seeds do differ


# ----------------------------------------------------------------------------------------------------------------
# make hub-smoke: its checks can fail
# ----------------------------------------------------------------------------------------------------------------

def test_probe_cell_fails_when_the_kernel_can_reach_the_network(tmp_path):
    smoke = load_script("hub_smoke")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        with pytest.raises(AssertionError, match="the network is not cut"):
            exec(smoke.probe_cell(port, []), {})
    exec(smoke.probe_cell(port, []), {})  # nothing listens any more: the connection fails, as with no network


def test_probe_cell_fails_when_a_hidden_folder_is_visible(tmp_path):
    smoke = load_script("hub_smoke")
    (tmp_path / ".venv").mkdir()
    exec(smoke.probe_cell(1, [(tmp_path, {".venv"})]), {})
    (tmp_path / "llmbook").mkdir()
    with pytest.raises(AssertionError, match=r"is not hidden from the kernel: \['llmbook'\]"):
        exec(smoke.probe_cell(1, [(tmp_path, {".venv"})]), {})


def test_origin_cell_fails_for_an_llmbook_outside_the_image(tmp_path):
    import llmbook

    smoke = load_script("hub_smoke")
    with pytest.raises(AssertionError, match="llmbook comes from"):
        exec(smoke.origin_cell(tmp_path), {})  # the llmbook of this test run is not under tmp_path
    exec(smoke.origin_cell(Path(llmbook.__file__).parent.parent), {})


def test_kernels_and_servers_start_in_their_namespaces(tmp_path):
    smoke = load_script("hub_smoke")
    python = tmp_path / "env" / "bin" / "python"
    assert smoke.kernel_spec(python, ["unshare", "-n"])["argv"][:4] == ["unshare", "-n", "--", str(python)]
    script = smoke.start_script(env=tmp_path / "env", hide=ROOT, keep=[ROOT / ".venv"],
                                image_home=tmp_path / "image" / "home", stage=tmp_path / "stage")
    lines = script.splitlines()
    hide = lines.index(f"mount -t tmpfs -o size=1m,mode=755 repository-hidden '{ROOT}'")
    bind_back = lines.index(f"mount --bind '{tmp_path / 'stage'}/0' '{ROOT / '.venv'}'")
    home = next(i for i, line in enumerate(lines) if line.endswith(f"'{tmp_path / 'image' / 'home'}'"))
    start = next(i for i, line in enumerate(lines) if line.startswith("exec "))
    assert hide < bind_back < start and home < start and start == len(lines) - 1
    assert "-m jupyterhub.singleuser --KernelManager.transport=ipc" in lines[start]


def test_namespace_check_says_when_namespaces_are_missing():
    smoke = load_script("hub_smoke")

    def refuse(command, **kwargs):
        return subprocess.CompletedProcess(command, 1)

    def allow_user_namespaces(command, **kwargs):
        return subprocess.CompletedProcess(command, 0 if "-r" in command else 1)

    assert smoke.namespace_command(run=refuse) is None
    assert smoke.namespace_command(run=allow_user_namespaces) == ["unshare", "-r", "-m"]


def test_snapshot_commits_the_working_tree(tmp_path):
    smoke = load_script("hub_smoke")
    repo, dest = tmp_path / "repo", tmp_path / "snapshot"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "--quiet"], check=True)
    (repo / ".gitignore").write_text("ignored.txt\n")
    (repo / "tracked.txt").write_text("committed\n")
    subprocess.run([*git, "add", "--all"], check=True)
    subprocess.run([*git, "commit", "--quiet", "-m", "x"], check=True)
    (repo / "tracked.txt").write_text("edited\n")
    (repo / "new.txt").write_text("new\n")
    (repo / "ignored.txt").write_text("no\n")
    assert smoke.snapshot(repo, dest) == "main"
    assert (dest / "tracked.txt").read_text() == "edited\n" and (dest / "new.txt").exists()
    assert not (dest / "ignored.txt").exists()
    status = subprocess.run(["git", "-C", str(dest), "status", "--porcelain"], capture_output=True, text=True)
    assert status.stdout == ""


def test_smoke_uses_the_deployed_environment_and_make_runs_the_failure_test():
    smoke = load_script("hub_smoke")
    env = smoke.deployed_environment(DEPLOY / "config.yaml")
    assert env == {k: str(v) for k, v in values("config.yaml")["singleuser"]["extraEnv"].items()}
    assert env["OMP_NUM_THREADS"] == "1"
    recipe = (ROOT / "Makefile").read_text().split("\nhub-smoke:")[1].split("\n\n")[0]
    assert "scripts/hub_smoke.py" in recipe and "-m hub tests/test_hub.py" in recipe


#: binder/postBuild before the fix: an editable install from the image's home, which a hub then hides.
OLD_POSTBUILD = """#!/usr/bin/env bash
set -euo pipefail
pip install --no-deps -e .
python scripts/make_student_version.py notebooks student
"""


@pytest.mark.hub
def test_hub_smoke_fails_on_an_editable_install_from_a_hidden_home(tmp_path):
    """The layout the book shipped before: the smoke test must fail the way a real hub did."""
    if not HUB_PYTHON.exists():
        pytest.skip("no .venv-hub (make hub-env)")
    if load_script("hub_smoke").namespace_command() is None:
        pytest.skip("no mount or network namespaces here (needs root or unprivileged user namespaces)")
    postbuild = tmp_path / "postBuild"
    postbuild.write_text(OLD_POSTBUILD)
    run = subprocess.run([str(HUB_PYTHON), str(ROOT / "scripts" / "hub_smoke.py"), "--users", "1",
                          "--postbuild", str(postbuild)], capture_output=True, text=True, timeout=900,
                         env={**os.environ, "PYTHONPATH": ""})
    print(run.stdout)
    assert run.returncode == 1, run.stdout + run.stderr[-3000:]
    assert "code cell 0 of notebooks/02_history.ipynb failed: ModuleNotFoundError: No module named 'llmbook'" \
        in run.stderr, run.stderr[-3000:]
    assert "Could not resolve host" in run.stderr  # the fallback %pip install tried the network, and it was cut
