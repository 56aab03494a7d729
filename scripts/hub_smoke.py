"""End-to-end smoke test of a class hub on this machine (``make hub-smoke``; needs ``make hub-env``).

1. Clone the repository (its committed HEAD) into a temporary folder: the "course repository".
2. Start JupyterHub on 127.0.0.1 with the dummy authenticator (one student, one password) and the simple
   local-process spawner (each user's home is a folder under the temporary folder), with the Python
   configurable-http-proxy, all from ``.venv-hub``.
3. Log in as the student through the login form, start the student's server (the hub does not start one
   implicitly), follow the nbgitpuller link that Jupyter Book's JupyterHub launch button makes for a chapter
   (it must reach nbgitpuller's page), and pull the repository through nbgitpuller's API, as that page does.
4. Check that the chapter arrived in the student's home, and execute every code cell of it through the
   single-user server's kernel API (REST to start a kernel, the websocket channel to run cells); fail on an
   error reply.
5. Stop the kernel, the server and the hub, then every process the hub started that is still alive, each by
   its process id. The temporary folder is removed.

Usage: .venv-hub/bin/python scripts/hub_smoke.py [--notebook notebooks/02_history.ipynb]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

import psutil
import requests
import websocket

ROOT = Path(__file__).resolve().parent.parent
USER, PASSWORD = "student", "smoke-test-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(tmp: Path, port: int, token: str) -> Path:
    bin_dir = Path(sys.executable).parent
    env = {k: os.environ.get(k, v) for k, v in {
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PYTHONHASHSEED": "0",
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "JUPYTER_PLATFORM_DIRS": "1"}.items()}
    book_config = ROOT / ".venv" / "etc" / "jupyter"  # JupyterLab's server extension, enabled in the book's env
    if book_config.is_dir():
        env["JUPYTER_CONFIG_PATH"] = str(book_config)
    args = ["--allow-root"] if os.geteuid() == 0 else []  # CI runs as root
    config = f"""
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {free_port()}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{free_port()}"
c.ConfigurableHTTPProxy.command = [{str(bin_dir / "configurable-http-proxy")!r}]
c.ConfigurableHTTPProxy.pid_file = {str(tmp / "proxy.pid")!r}
c.JupyterHub.db_url = "sqlite:///{tmp / "hub.sqlite"}"
c.JupyterHub.cookie_secret_file = {str(tmp / "cookie_secret")!r}
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {PASSWORD!r}
c.Authenticator.allowed_users = {{{USER!r}}}
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {str(tmp / "home" / "{username}")!r}
c.Spawner.cmd = [{str(bin_dir / "jupyterhub-singleuser")!r}]
c.Spawner.environment = {env!r}
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


def wait_for(what: str, test, timeout: float = 180, every: float = 1.0):
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


def run_cells(base: str, token: str, cells: list[str], timeout: float = 600) -> int:
    """Run code cells on a new kernel of the single-user server; return how many ran. Raises on an error."""
    headers = {"Authorization": f"token {token}"}
    kernel = requests.post(f"{base}/api/kernels", json={"name": "python3"}, headers=headers, timeout=60)
    kernel.raise_for_status()
    kernel_id = kernel.json()["id"]
    ws_url = base.replace("http://", "ws://") + f"/api/kernels/{kernel_id}/channels"
    ws = websocket.create_connection(ws_url, header=[f"Authorization: token {token}"], timeout=timeout)
    session = uuid.uuid4().hex
    try:
        for number, source in enumerate(cells, 1):
            msg_id = uuid.uuid4().hex
            ws.send(json.dumps({
                "header": {"msg_id": msg_id, "username": USER, "session": session, "msg_type": "execute_request",
                           "version": "5.3", "date": ""},
                "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
                "content": {"code": source, "silent": False, "store_history": True, "user_expressions": {},
                            "allow_stdin": False, "stop_on_error": True}}))
            while True:
                message = json.loads(ws.recv())
                if message.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                if message["msg_type"] == "execute_reply":
                    content = message["content"]
                    if content["status"] != "ok":
                        raise RuntimeError(f"cell {number} failed: {content.get('ename')}: "
                                           f"{content.get('evalue')}")
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebook", default="notebooks/02_history.ipynb")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="hub_smoke_"))
    start = time.perf_counter()
    clone = tmp / "course" / "book"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    branch = subprocess.run(["git", "-C", str(clone), "branch", "--show-current"], check=True,
                            capture_output=True, text=True).stdout.strip()
    port, token = free_port(), secrets.token_hex(16)
    config = write_config(tmp, port, token)
    log = open(tmp / "hub.log", "w")  # noqa: SIM115 (closed in finally)
    hub = subprocess.Popen([str(Path(sys.executable).parent / "jupyterhub"), "-f", str(config)], cwd=tmp,
                           stdout=log, stderr=subprocess.STDOUT)
    started: dict[int, str] = {}

    def remember_children():
        try:
            for child in psutil.Process(hub.pid).children(recursive=True):
                started.setdefault(child.pid, child.name())
        except psutil.NoSuchProcess:
            pass

    hub_url = f"http://127.0.0.1:{port}"
    api = {"Authorization": f"token {token}"}
    ok = False
    try:
        wait_for("the hub", lambda: requests.get(f"{hub_url}/hub/api", timeout=5).ok)
        remember_children()
        print(f"hub up on {hub_url} (pid {hub.pid})")
        student = requests.Session()
        student.get(f"{hub_url}/hub/login", timeout=30)
        login = student.post(f"{hub_url}/hub/login?next=", timeout=60,
                             data={"username": USER, "password": PASSWORD,
                                   "_xsrf": student.cookies.get("_xsrf", "")})
        if USER not in login.url and not any(c.name.startswith("jupyterhub-session") for c in student.cookies):
            raise RuntimeError(f"login failed: ended at {login.url} ({login.status_code})")
        print(f"logged in as {USER}")
        link = launch_link(hub_url, str(clone), branch, clone.name, args.notebook)
        student.get(f"{hub_url}/hub/spawn", timeout=180)  # the student starts a server (no options form)
        if not requests.get(f"{hub_url}/hub/api/users/{USER}", headers=api, timeout=10).json().get("servers"):
            requests.post(f"{hub_url}/hub/api/users/{USER}/server", headers=api, timeout=60)
        remember_children()
        user_base = f"{hub_url}/user/{USER}"
        wait_for("the student's server",
                 lambda: requests.get(f"{hub_url}/hub/api/users/{USER}", headers=api, timeout=10)
                 .json().get("servers", {}).get("", {}).get("ready"))
        remember_children()
        page = student.get(link, timeout=120)
        if "git-pull" not in page.url or not page.ok:
            raise RuntimeError(f"the nbgitpuller link did not reach nbgitpuller: {page.url} ({page.status_code})")
        pull = requests.get(f"{user_base}/git-pull/api?" + urlencode({"repo": str(clone), "branch": branch}),
                            headers=api, stream=True, timeout=300)
        events = [json.loads(line[5:]) for line in pull.iter_lines(decode_unicode=True)
                  if line and line.startswith("data:")]
        if not events or events[-1].get("phase") != "finished":
            raise RuntimeError(f"nbgitpuller did not finish: {events[-3:]}")
        arrived = tmp / "home" / USER / clone.name / args.notebook
        if not arrived.exists():
            raise RuntimeError(f"{args.notebook} is not in the student's home ({arrived})")
        print(f"nbgitpuller put {clone.name}/{args.notebook} in the student's home")
        nb = json.loads(arrived.read_text(encoding="utf-8"))
        cells = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
        remember_children()
        ran = run_cells(user_base, token, cells)
        print(f"executed {ran} code cells of {args.notebook} through the kernel API")
        requests.delete(f"{hub_url}/hub/api/users/{USER}/server", headers=api, timeout=60)
        ok = True
    except Exception as error:
        print(f"hub-smoke FAILED: {error}", file=sys.stderr)
        lines = [line for line in (tmp / "hub.log").read_text().splitlines() if "200 GET /hub/api/users" not in line]
        print("\n".join(lines[-40:]), file=sys.stderr)
    finally:
        remember_children()
        stopped = stop_processes(hub, started)
        log.close()
        if stopped:
            print(f"stopped leftover processes by id: {', '.join(stopped)}")
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"hub-smoke {'passed' if ok else 'failed'} in {time.perf_counter() - start:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
