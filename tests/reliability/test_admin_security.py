"""The admin API changes nothing for anyone but its owner: the socket is 0600 in a private
directory, and even with both loosened the kernel's peer credentials refuse another user."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from rollwise.client import AdminClient

from ..conftest import stop_everything
from ..helpers import start_controller

PROBE = """
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except OSError as exc:
    print("refused:", exc.strerror)
    raise SystemExit
body = json.dumps({"version": "6.6.6", "set": []}).encode()
try:
    s.sendall(b"PUT /api/v1/apps HTTP/1.1\\r\\nhost: x\\r\\ncontent-type: application/json\\r\\n"
              b"content-length: %d\\r\\n\\r\\n%s" % (len(body), body))
except BrokenPipeError:
    pass  # the server may answer 403 and close before the request is all sent
print(s.recv(300).decode(errors="replace").splitlines()[0])
"""


def as_nobody(socket_path: Path) -> str:
    # import first: the interpreter's files may not be readable by nobody
    demote = "import json, os, socket, sys; os.setgid(65534); os.setuid(65534); "
    code = demote + "exec(compile(sys.stdin.read(), 'probe', 'exec'))"
    # nobody may write no coverage data either: the probe is not measured
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_PROCESS")}
    out = subprocess.run(
        [sys.executable, "-c", code, str(socket_path)],
        input=PROBE,
        capture_output=True,
        text=True,
        timeout=20,
        env=env,
    )
    return out.stdout.strip() + out.stderr.strip()


def test_another_user_cannot_change_anything() -> None:
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        state = Path(tmp) / "state"
        start_controller(state)
        try:
            sock = state / "admin.sock"
            assert os.stat(sock).st_mode & 0o777 == 0o600
            os.chmod(tmp, 0o711)
            os.chmod(state, 0o711)
            assert as_nobody(sock) == "refused: Permission denied"  # the file mode
            os.chmod(sock, 0o666)  # loosened by mistake: the peer check still refuses
            assert as_nobody(sock) == "HTTP/1.1 403 Forbidden"
            with AdminClient(state) as owner:
                assert owner.request("GET", "/apps") == []  # nothing changed, owner served
        finally:
            stop_everything(state)
