"""End-to-end test of a class hub on this machine, the way Zero to JupyterHub runs the book (``make hub-smoke``).

It follows the image path and checks each step where a real hub would break:

1. **The course repository.** The working tree's files (tracked and new, not ignored) are committed into a
   temporary git repository: what nbgitpuller pulls, and what the image is built from.
2. **The image.** A virtual environment outside the repository stands in for the image's environment: it sees
   the third-party packages of ``.venv`` and ``.venv-hub`` (plain path entries: their ``.pth`` files, such as the
   editable ``llmbook`` of ``.venv``, are not run). A copy of the course repository goes into the image's home,
   as repo2docker copies the repository into ``$HOME``, and ``binder/postBuild`` runs there, as repo2docker
   runs it, so ``llmbook`` is installed exactly as the image installs it.
3. **The single-user server**, for each test user, starts in a private mount namespace (``unshare -m``) that
   hides the repository (a tmpfs over it, with only the two environments bound back) and the image's home (a
   tmpfs over it, as the user's persistent volume hides it on z2jh). Each user's home starts empty. Each kernel
   runs in a network namespace of its own (``unshare -n``: no interface is up, not even loopback), and talks to
   the server over ZeroMQ's ipc sockets, so no code in a notebook can reach any network.
4. **JupyterHub** on 127.0.0.1 (dummy authenticator with a password, local-process spawner, the Python
   configurable-http-proxy, from ``.venv-hub``), with the environment variables of ``deploy/jupyterhub/config.yaml``.
   Each user logs in, starts a server, follows the chapter's nbgitpuller link (as Jupyter Book's launch button
   writes it) and pulls the course repository into the empty home.
5. **The chapter** runs through the kernel API (REST to start a kernel, the websocket channel to run cells),
   after a probe cell that fails unless the network is cut, the repository and the image's home are hidden,
   and after a final cell that loads every resource ``llmbook`` ships from the installed package. The first
   user runs every code cell; the others run the setup cell only.
6. Every process the hub started is stopped by its process id; the temporary folder is removed.

A namespace needs root, or unprivileged user namespaces (``unshare -r``). Without either the test cannot hide the
repository or cut the network, and says so (exit status 0, "SKIPPED"), as ``make site-check`` does without Chromium.

``--postbuild FILE`` builds the image with another install script: tests/test_hub.py builds one with the old
``pip install --no-deps -e .`` and checks that this test then fails, as a real hub did.

Usage: .venv-hub/bin/python scripts/hub_smoke.py [--notebook notebooks/02_history.ipynb] [--users 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

import psutil
import requests
import websocket
import yaml

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "smoke-test-password"
#: What every resource of the installed package is loaded by: run in each kernel after the chapter.
RESOURCES_CELL = """\
from llmbook.catalog import load_model_catalog
from llmbook.data import lee_news_documents
from llmbook.history import load_timeline
from llmbook.pretrained import load_pretrained_gpt

loaded = (len(load_model_catalog()), len(load_timeline()), len(lee_news_documents()))
model = load_pretrained_gpt()[0]
print("resources of the installed llmbook:", loaded, sum(p.numel() for p in model.parameters()))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def namespace_command(run=subprocess.run) -> list[str] | None:
    """``unshare`` with a mount namespace (and a user namespace when not root) that can also cut the network.

    Returns None when this machine allows neither (no root and no unprivileged user namespaces).
    """
    for command in (["unshare", "-m"], ["unshare", "-r", "-m"]):
        try:
            probe = run([*command, "--", "unshare", "-n", "--", "true"], capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if probe.returncode == 0:
            return command
    return None


def snapshot(root: Path, dest: Path) -> str:
    """Commit the working tree's files (tracked and untracked, not ignored) into a new repository at ``dest``.

    Returns the branch name. The working tree itself is only read.
    """
    listed = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = root / name
        if source.is_file():  # a tracked file deleted in the working tree is left out
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    git = ["git", "-C", str(dest), "-c", "user.name=hub-smoke", "-c", "user.email=hub-smoke@localhost"]
    subprocess.run([*git, "init", "--quiet", "--initial-branch", "main"], check=True)
    subprocess.run([*git, "add", "--all"], check=True)
    subprocess.run([*git, "commit", "--quiet", "--message", "course snapshot"], check=True)
    return "main"


def purelib(prefix: Path) -> Path:
    """The site-packages folder of a virtual environment at ``prefix`` (same Python version as this one)."""
    return prefix / Path(sysconfig.get_paths()["purelib"]).relative_to(sys.prefix)


def kernel_spec(python: Path, isolate: list[str]) -> dict:
    """The image's Python kernel: each kernel in its own network namespace, so it has no network at all."""
    return {"argv": [*isolate, "--", str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (ipykernel)", "language": "python",
            "metadata": {"debugger": True}, "kernel_protocol_version": "5.5"}


def start_script(*, env: Path, hide: Path, keep: list[Path], image_home: Path, stage: Path) -> str:
    """The image's entry point, run by ``unshare -m``: hide the repository and the image's home, start the server.

    ``keep`` are folders inside ``hide`` that stay visible (the environments, which in an image live outside the
    repository); they are bound to ``stage`` first, then back into place over the tmpfs that hides the rest.
    """
    lines = ["#!/bin/sh", "set -eu"]
    for number, folder in enumerate(keep):
        lines += [f"mkdir -p '{stage}/{number}'", f"mount --bind '{folder}' '{stage}/{number}'"]
    lines.append(f"mount -t tmpfs -o size=1m,mode=755 repository-hidden '{hide}'")
    for number, folder in enumerate(keep):
        lines += [f"mkdir -p '{folder}'", f"mount --bind '{stage}/{number}' '{folder}'",
                  f"umount '{stage}/{number}'"]
    lines.append(f"mount -t tmpfs -o size=1m,mode=755 image-home-hidden '{image_home}'")
    shares = [env / "share" / "jupyter", *(folder / "share" / "jupyter" for folder in keep)]
    configs = [folder / "etc" / "jupyter" for folder in keep]
    # A short runtime folder: ipc socket paths must stay under 108 characters.
    lines += ['export JUPYTER_RUNTIME_DIR="$HOME/.r"', f"export JUPYTER_PATH='{':'.join(map(str, shares))}'",
              f"export JUPYTER_CONFIG_PATH='{':'.join(map(str, configs))}'",
              f"exec '{env / 'bin' / 'python'}' -m jupyterhub.singleuser --KernelManager.transport=ipc \"$@\""]
    return "\n".join(lines) + "\n"


def build_image(tmp: Path, course: Path, postbuild: Path, book_env: Path, hub_env: Path) -> dict:
    """A stand-in for the repo2docker image: an environment outside the repository, postBuild run in its home."""
    image = tmp / "image"
    env, home = image / "env", image / "home"
    # No pip of its own (ensurepip takes long): "python -m pip" finds the book environment's pip on the path.
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(env)], check=True)
    pip = env / "bin" / "pip"  # the image's pip command, so that "pip" in postBuild installs into the image
    pip.write_text(f'#!/bin/sh\nexec "{env / "bin" / "python"}" -m pip "$@"\n')
    pip.chmod(0o755)
    site = purelib(env)
    (site / "zz_image_packages.pth").write_text(f"{purelib(book_env)}\n{purelib(hub_env)}\n")
    shutil.copytree(course, home, ignore=shutil.ignore_patterns(".git"))
    script = home / "binder" / "postBuild"
    script.write_text(postbuild.read_text())
    script.chmod(0o755)
    offline = {**os.environ, "PATH": f"{env / 'bin'}:/usr/bin:/bin", "HOME": str(home),
               "PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    for key in ("VIRTUAL_ENV", "PYTHONPATH"):
        offline.pop(key, None)
    built = subprocess.run([str(script)], cwd=home, env=offline, capture_output=True, text=True)
    if built.returncode != 0:
        raise RuntimeError(f"binder/postBuild failed:\n{built.stdout[-2000:]}\n{built.stderr[-2000:]}")
    return {"env": env, "home": home, "python": env / "bin" / "python"}


def write_config(tmp: Path, ports: tuple[int, int], token: str, users: list[str], spawn: list[str],
                 environment: dict) -> Path:
    """The hub's configuration: ``ports`` are the public one and the hub's own; the spawner runs ``spawn``."""
    bin_dir = Path(sys.executable).parent
    args = ["--allow-root"] if os.geteuid() == 0 else []  # CI runs as root
    config = f"""
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {ports[0]}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {ports[1]}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{free_port()}"
c.ConfigurableHTTPProxy.command = [{str(bin_dir / "configurable-http-proxy")!r}]
c.ConfigurableHTTPProxy.pid_file = {str(tmp / "proxy.pid")!r}
c.JupyterHub.db_url = "sqlite:///{tmp / "hub.sqlite"}"
c.JupyterHub.cookie_secret_file = {str(tmp / "cookie_secret")!r}
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {PASSWORD!r}
c.Authenticator.allowed_users = {set(users)!r}
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {str(tmp / "home" / "{username}")!r}
c.Spawner.cmd = {spawn!r}
c.Spawner.environment = {environment!r}
c.Spawner.args = {args!r}
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.JupyterHub.cleanup_servers = True
c.JupyterHub.services = [{{"name": "smoke", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [{{"name": "smoke", "services": ["smoke"],
                             "scopes": ["servers", "access:servers", "read:users"]}}]
"""
    path = tmp / "jupyterhub_config.py"
    path.write_text(config)
    return path


def deployed_environment(config_yaml: Path) -> dict[str, str]:
    """``singleuser.extraEnv`` of the z2jh values: the environment every student's server gets."""
    values = yaml.safe_load(config_yaml.read_text(encoding="utf-8"))
    return {str(k): str(v) for k, v in values["singleuser"].get("extraEnv", {}).items()}


def wait_for(what: str, test, timeout: float = 180, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = test()
            if result:
                return result
        except requests.RequestException:
            pass
        time.sleep(every)
    raise TimeoutError(f"{what}: not ready after {timeout:.0f} s")


def launch_link(hub: str, repo: str, branch: str, repo_dir: str, notebook: str) -> str:
    """The nbgitpuller link as Jupyter Book's JupyterHub launch button writes it."""
    query = urlencode({"repo": repo, "urlpath": f"lab/tree/{repo_dir}/{notebook}", "branch": branch})
    return f"{hub}/hub/user-redirect/git-pull?{query}"


def probe_cell(hub_port: int, hidden: list[Path]) -> str:
    """A cell that fails unless the kernel has no network and the hidden folders are empty (or hold only ``keep``)."""
    return f"""\
import os, socket
try:
    socket.create_connection(("127.0.0.1", {hub_port}), timeout=3).close()
except OSError:
    pass
else:
    raise AssertionError("the kernel reached the hub at 127.0.0.1:{hub_port}: the network is not cut")
for folder, allowed in {[(str(f), sorted(k)) for f, k in hidden]!r}:
    left = sorted(set(os.listdir(folder)) - set(allowed))
    assert not left, f"{{folder}} is not hidden from the kernel: {{left[:5]}}"
"""


def origin_cell(env: Path) -> str:
    """A cell that fails unless ``llmbook`` is imported from the image's environment."""
    return f"""\
import llmbook
assert llmbook.__file__.startswith({str(env) + os.sep!r}), f"llmbook comes from {{llmbook.__file__}}"
"""


def run_cells(base: str, token: str, cells: list[tuple[str, str]], user: str, timeout: float = 600) -> int:
    """Run ``(name, source)`` cells on a new kernel of a user's server; return how many ran. Raises on an error."""
    headers = {"Authorization": f"token {token}"}
    kernel = requests.post(f"{base}/api/kernels", json={"name": "python3"}, headers=headers, timeout=60)
    kernel.raise_for_status()
    kernel_id = kernel.json()["id"]
    ws_url = base.replace("http://", "ws://") + f"/api/kernels/{kernel_id}/channels"
    ws = websocket.create_connection(ws_url, header=[f"Authorization: token {token}"], timeout=timeout)
    session = uuid.uuid4().hex
    try:
        for name, source in cells:
            msg_id, output = uuid.uuid4().hex, []
            ws.send(json.dumps({
                "header": {"msg_id": msg_id, "username": user, "session": session, "msg_type": "execute_request",
                           "version": "5.3", "date": ""},
                "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
                "content": {"code": source, "silent": False, "store_history": True, "user_expressions": {},
                            "allow_stdin": False, "stop_on_error": True}}))
            while True:
                message = json.loads(ws.recv())
                if message.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                if message["msg_type"] == "stream":
                    output.append(message["content"]["text"])
                elif message["msg_type"] == "execute_reply":
                    content = message["content"]
                    if content["status"] != "ok":
                        printed = [line for line in re.sub(r"\x1b\[[0-9;]*m", "", "".join(output)).splitlines()
                                   if re.search(r"error|fatal", line, re.IGNORECASE)][:3]
                        raise RuntimeError(f"{user}: {name} failed: {content.get('ename')}: {content.get('evalue')}"
                                           + "".join(f"\n    | {line}" for line in printed))
                    break
    finally:
        ws.close()
        requests.delete(f"{base}/api/kernels/{kernel_id}", headers=headers, timeout=60)
    return len(cells)


def stop_processes(hub: subprocess.Popen, started: dict[int, str]) -> list[str]:
    """Stop the hub (it stops its servers and proxy), then any process it started that is still alive, by id."""
    stopped = []
    if hub.poll() is None:
        hub.send_signal(signal.SIGTERM)
        try:
            hub.wait(timeout=30)
        except subprocess.TimeoutExpired:
            hub.kill()
            hub.wait()
    for pid, name in started.items():
        try:
            process = psutil.Process(pid)
            if process.name() == name and process.is_running():
                process.terminate()
                process.wait(10)
                stopped.append(f"{pid} ({name})")
        except psutil.NoSuchProcess:
            continue
        except psutil.TimeoutExpired:
            psutil.Process(pid).kill()
            stopped.append(f"{pid} ({name}, killed)")
    return stopped


def log_in_and_spawn(hub_url: str, api: dict, home: Path, user: str) -> requests.Session:
    """Log in through the form and ask for the server (the home must not exist before: z2jh gives an empty volume)."""
    if home.exists():
        raise RuntimeError(f"{user}'s home exists before the first spawn: {home}")
    session = requests.Session()
    session.get(f"{hub_url}/hub/login", timeout=30)
    login = session.post(f"{hub_url}/hub/login?next=", timeout=60,
                         data={"username": user, "password": PASSWORD, "_xsrf": session.cookies.get("_xsrf", "")})
    if not any(c.name.startswith("jupyterhub-session") for c in session.cookies):
        raise RuntimeError(f"{user}: login failed: ended at {login.url} ({login.status_code})")
    session.get(f"{hub_url}/hub/spawn", timeout=180)  # the student starts a server (no options form)
    if not requests.get(f"{hub_url}/hub/api/users/{user}", headers=api, timeout=10).json().get("servers"):
        requests.post(f"{hub_url}/hub/api/users/{user}/server", headers=api, timeout=60)
    return session


def wait_until_ready(hub_url: str, api: dict, home: Path, user: str) -> None:
    """Wait for the user's server; its home must hold nothing but the server's own dot-folders."""
    wait_for(f"{user}'s server", lambda: requests.get(f"{hub_url}/hub/api/users/{user}", headers=api, timeout=10)
             .json().get("servers", {}).get("", {}).get("ready"))
    visible = sorted(p.name for p in home.iterdir() if not p.name.startswith("."))
    if visible:
        raise RuntimeError(f"{user}'s new home is not empty: {visible}")


def pull(hub_url: str, user: str, session: requests.Session, api: dict, course: Path, branch: str,
         notebook: str) -> None:
    """Follow the nbgitpuller link (it must reach nbgitpuller's page), then pull through its API, as the page does."""
    page = session.get(launch_link(hub_url, str(course), branch, course.name, notebook), timeout=120)
    if "git-pull" not in page.url or not page.ok:
        raise RuntimeError(f"{user}: the nbgitpuller link did not reach nbgitpuller: {page.url} ({page.status_code})")
    pulled = requests.get(f"{hub_url}/user/{user}/git-pull/api?" + urlencode({"repo": str(course), "branch": branch}),
                          headers=api, stream=True, timeout=300)
    events = [json.loads(line[5:]) for line in pulled.iter_lines(decode_unicode=True)
              if line and line.startswith("data:")]
    if not events or events[-1].get("phase") != "finished":
        raise RuntimeError(f"{user}: nbgitpuller did not finish: {events[-3:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebook", default="notebooks/02_history.ipynb")
    parser.add_argument("--users", type=int, default=2, help="test users; the first runs the whole chapter")
    parser.add_argument("--postbuild", type=Path, default=None,
                        help="install script for the image (default: binder/postBuild of the working tree)")
    parser.add_argument("--book-env", type=Path, default=ROOT / ".venv")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (its hub.log) to debug")
    args = parser.parse_args(argv)
    if args.users < 1:
        parser.error(f"--users must be at least 1, got {args.users}")
    isolate = namespace_command()
    if isolate is None:
        print("hub-smoke SKIPPED: cannot create mount and network namespaces here (needs root, or unprivileged "
              "user namespaces for 'unshare -r'); without them the test could not hide the repository or cut "
              "the network")
        return 0
    start = time.perf_counter()

    def log(text: str) -> None:
        print(f"[{time.perf_counter() - start:4.0f} s] {text}", flush=True)

    tmp = Path(tempfile.mkdtemp(prefix="hs"))  # short: ipc socket paths must stay under 108 characters
    tmp.chmod(0o755)
    users = [f"student{n}" for n in range(1, args.users + 1)]
    hub = log_file = None
    started: dict[int, str] = {}
    ok = False
    try:
        course = tmp / "course" / "book"
        branch = snapshot(ROOT, course)
        log(f"course repository: a snapshot of the working tree in {course}")
        image = build_image(tmp, course, args.postbuild or ROOT / "binder" / "postBuild",
                            args.book_env.resolve(), Path(sys.prefix).resolve())
        log(f"image environment built in {image['env']} by binder/postBuild run in the image's home")
        spec = image["env"] / "share" / "jupyter" / "kernels" / "python3"
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(json.dumps(kernel_spec(image["python"], ["unshare", "-n"]), indent=1))
        keep = [p for p in (args.book_env.resolve(), Path(sys.prefix).resolve()) if p.is_relative_to(ROOT)]
        entry = tmp / "image" / "start-singleuser"
        entry.write_text(start_script(env=image["env"], hide=ROOT, keep=keep, image_home=image["home"],
                                      stage=tmp / "stage"))
        entry.chmod(0o755)
        port, hub_port, token = free_port(), free_port(), secrets.token_hex(16)
        environment = deployed_environment(ROOT / "deploy" / "jupyterhub" / "config.yaml")
        config = write_config(tmp, (port, hub_port), token, users, [*isolate, "--", str(entry)], environment)
        log_file = open(tmp / "hub.log", "w")  # noqa: SIM115 (closed in finally)
        hub = subprocess.Popen([str(Path(sys.executable).parent / "jupyterhub"), "-f", str(config)], cwd=tmp,
                               stdout=log_file, stderr=subprocess.STDOUT)

        def remember_children():
            try:
                for child in psutil.Process(hub.pid).children(recursive=True):
                    started.setdefault(child.pid, child.name())
            except psutil.NoSuchProcess:
                pass

        hub_url = f"http://127.0.0.1:{port}"
        api = {"Authorization": f"token {token}"}
        wait_for("the hub", lambda: requests.get(f"{hub_url}/hub/api", timeout=5).ok)
        remember_children()
        log(f"hub up on {hub_url} (pid {hub.pid})")
        nb = json.loads((course / args.notebook).read_text(encoding="utf-8"))
        code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
        hidden = [(ROOT, {p.name for p in keep}), (image["home"], set())]
        homes = {user: tmp / "home" / user for user in users}
        sessions = {user: log_in_and_spawn(hub_url, api, homes[user], user) for user in users}
        log(f"{', '.join(users)} logged in (dummy authenticator, password) and asked for their servers")
        for number, user in enumerate(users):
            session = sessions[user]
            wait_until_ready(hub_url, api, homes[user], user)
            remember_children()
            log(f"{user}: server ready, home empty")
            pull(hub_url, user, session, api, course, branch, args.notebook)
            arrived = tmp / "home" / user / course.name / args.notebook
            if not arrived.exists():
                raise RuntimeError(f"{user}: {args.notebook} is not in the home after the pull ({arrived})")
            log(f"{user}: nbgitpuller put {course.name}/{args.notebook} in the home")
            chapter = code if number == 0 else code[:1]
            cells = [("the probe cell", probe_cell(hub_port, hidden)),
                     *((f"code cell {i} of {args.notebook}", source) for i, source in enumerate(chapter)),
                     ("the origin cell", origin_cell(image["env"])), ("the resources cell", RESOURCES_CELL)]
            remember_children()
            run_cells(f"{hub_url}/user/{user}", token, cells, user)
            what = "every code cell" if number == 0 else "the setup cell"
            log(f"{user}: ran {what} of {args.notebook} ({len(chapter)}) with the network cut, llmbook and its "
                "resources from the image's environment")
        ok = True
    except Exception as error:
        print(f"hub-smoke FAILED: {error}", file=sys.stderr)
        if (tmp / "hub.log").exists():
            lines = [line for line in (tmp / "hub.log").read_text().splitlines()
                     if "200 GET /hub/api/users" not in line]
            print("\n".join(lines[-40:]), file=sys.stderr)
    finally:
        stopped = []
        if hub is not None:
            try:
                for child in psutil.Process(hub.pid).children(recursive=True):
                    started.setdefault(child.pid, child.name())
            except psutil.NoSuchProcess:
                pass
            stopped = stop_processes(hub, started)
            log("hub stopped")
        if log_file is not None:
            log_file.close()
        if stopped:
            print(f"stopped leftover processes by id: {', '.join(stopped)}")
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    cpu = sum(getattr(resource.getrusage(who), field) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
              for field in ("ru_utime", "ru_stime"))
    print(f"hub-smoke {'passed' if ok else 'failed'} in {time.perf_counter() - start:.0f} s "
          f"({cpu:.0f} s of CPU time in all its processes)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
