"""A JupyterLab server for one test session, started the way `make lab` / `make lab-instructor` start it and
stopped without a trace.

The view (learner or instructor) is the committed config folder `jupyter/<view>/` that the Makefile uses, put first
on JUPYTER_CONFIG_PATH. Everything JupyterLab would otherwise read from or write to the user's home is a fresh
folder of its own, so an old workspace, a theme or a disabled plugin on this machine cannot change what the test
sees:

    JUPYTER_CONFIG_DIR          user config (instead of ~/.jupyter)
    JUPYTER_DATA_DIR            user data (instead of ~/.local/share/jupyter)
    JUPYTER_RUNTIME_DIR         connection files of kernels, the server's info file
    JUPYTERLAB_SETTINGS_DIR     user settings: the test's own (`settings` below)
    JUPYTERLAB_WORKSPACES_DIR   saved workspaces: none, so the notebook opens alone

The server runs on a free loopback port with a random token. Its kernels start in sessions of their own (Jupyter
starts them so), so a server that dies would leave them behind: every process of the server carries a marker in its
environment, and `stop` ends whatever still carries it.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from course import ROOT

VIEWS = ROOT / "jupyter"
MARKER = "WORKBOOK_LAB_TEST"

# Settings a learner would pick once and that would otherwise put pop-ups or lazy rendering into every test:
# every cell rendered (JupyterLab 4 leaves off-screen cells empty by default), no news or update toasts.
TEST_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}


def free_port() -> int:
    """A loopback port nothing listens on now (the server is told not to try another if it is taken by then)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterLab:
    """`jupyter lab` in the learner's or the instructor's view, serving `root` (a copy: autosave writes outputs into
    the files), started from `root` so that nbgrader finds the course's nbgrader_config.py there.

    ``env`` is the environment its kernels inherit; ``home`` a scratch folder for its private Jupyter folders.
    """

    def __init__(self, view: str, root: Path, home: Path, env: dict[str, str]):
        self.root = root
        self.home = home
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.marker = secrets.token_hex(8)
        self.log_path = home / "jupyterlab.log"
        self._env = {
            **env,
            # nbgrader runs some of its tools by name (the formgrader's `alembic`): this environment's come first
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", os.defpath)]),
            "JUPYTER_CONFIG_PATH": os.pathsep.join(filter(None, [str(VIEWS / view), env.get("JUPYTER_CONFIG_PATH")])),
            "JUPYTER_CONFIG_DIR": str(home / "config"),
            "JUPYTER_DATA_DIR": str(home / "data"),
            "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
            "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
            MARKER: self.marker,
        }
        self._process: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> None:
        """Start the server and wait until its REST API answers; a server that exits first fails with its log."""
        for name, values in TEST_SETTINGS.items():
            path = self.home / "settings" / f"{name}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        command = [
            sys.executable, "-m", "jupyterlab", "--no-browser",
            f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
        ]  # fmt: skip
        if os.geteuid() == 0:
            command.append("--allow-root")
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen(
                command, cwd=self.root, env=self._env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self._process.returncode}:\n{self.log_tail()}")
            try:
                self.api("GET", "status")
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.5)
        raise TimeoutError(f"JupyterLab did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def api(self, method: str, path: str) -> object:
        """One call to the server's REST API (`/api/<path>`); the decoded JSON answer, or None when it is empty."""
        request = urllib.request.Request(
            f"{self.url}/api/{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def status_of(self, path: str) -> int:
        """The HTTP status of GET <path> on this server, e.g. 404 for an extension that is off."""
        request = urllib.request.Request(f"{self.url}/{path}", headers={"Authorization": f"token {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    def page_url(self, path: str = "", query: str = "") -> str:
        """The address a learner opens (the notebook at `path`, or the bare lab): the token logs the page in, `reset`
        starts from an empty workspace; `query` adds parameters such as "formgrader=true"."""
        return f"{self.url}/lab{'/tree/' + path if path else ''}?{'&'.join(filter(None, ['reset', query]))}&token={self.token}"

    def shut_down_kernels(self) -> None:
        """Shut down every kernel (a closed browser tab leaves its kernel running, and each one holds torch)."""
        for kernel in self.api("GET", "kernels"):
            self.api("DELETE", f"kernels/{kernel['id']}")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the server (SIGTERM: it shuts down its kernels), then end any process still carrying the marker."""
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait()
        for pid in self.leftover_processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def leftover_processes(self) -> list[int]:
        """Processes started by this server (kernels included) that are still alive, found by their marker."""
        needle = f"{MARKER}={self.marker}".encode()
        found = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                if needle in (proc / "environ").read_bytes().split(b"\0"):
                    found.append(int(proc.name))
            except OSError:  # gone, or not ours to read
                continue
        return found
