"""A real Orthanc with the DICOMweb plugin, for tests and benchmarks: its own folder, free ports, stopped by pid.

Orthanc 1.10 has no option for the address it binds: with RemoteAccessAllowed
false it answers only clients on the loopback interface (others get 403), and
the DICOM server is off unless an AE title is given (``dicom_aet``): then it
listens on a free DICOM port too (on every interface: Orthanc 1.10 has no
option for that address either), checking the called AE title. Tests talk to it on 127.0.0.1. Its HTTPS is not
used: the Debian package's (1.10.1) web server crashes in the TLS handshake.
"""

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

ORTHANC_PATHS = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin"
PLUGIN_PACKAGE = "orthanc-dicomweb"


def orthanc_binary():
    return shutil.which("Orthanc", path=ORTHANC_PATHS)


def dicomweb_plugin():
    """The DICOMweb plugin's shared library, from the Debian package's file list; None when not installed."""
    try:
        listing = subprocess.run(["dpkg", "-L", PLUGIN_PACKAGE], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    libraries = [line for line in listing.splitlines() if "libOrthancDicomWeb.so" in line and os.path.isfile(line)]
    return min(libraries, key=len) if libraries else None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Orthanc:
    """One Orthanc process over a storage folder; start() and stop() may alternate (the storage stays)."""

    def __init__(self, folder, users=None, dicom_aet=None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.users = users
        self.dicom_aet = dicom_aet
        self.dicom_port = None
        self.port = None
        self.process = None

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def dicomweb(self):
        return f"{self.base}/dicom-web"

    @property
    def dimse(self):
        """The dicom:// URL of its DICOM port."""
        return f"dicom://{self.dicom_aet}@127.0.0.1:{self.dicom_port}"

    def start(self, timeout=30):
        self.port = free_port()
        config = {
            "Name": "dcmforge-test",
            "StorageDirectory": str(self.folder / "storage"),
            "IndexDirectory": str(self.folder / "storage"),
            "HttpPort": self.port,
            "DicomServerEnabled": bool(self.dicom_aet),
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": bool(self.users),
            "RegisteredUsers": self.users or {},
            "Plugins": [dicomweb_plugin()],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
            "HttpTimeout": 60,
        }
        if self.dicom_aet:
            self.dicom_port = free_port()
            config.update({"DicomAet": self.dicom_aet, "DicomPort": self.dicom_port, "DicomCheckCalledAet": True})
        config_path = self.folder / "orthanc.json"
        config_path.write_text(json.dumps(config, indent=1))
        with open(self.folder / "orthanc.log", "ab") as log:
            self.process = subprocess.Popen([orthanc_binary(), str(config_path)], stdout=log, stderr=log, cwd=self.folder)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited with {self.process.returncode}: see {self.folder / 'orthanc.log'}")
            try:
                self.get("/system")
                if self.dicom_aet:
                    socket.create_connection(("127.0.0.1", self.dicom_port), timeout=1).close()
                return self
            except (OSError, urllib.error.URLError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Orthanc did not answer /system within {timeout} s: see {self.folder / 'orthanc.log'}")

    def stop(self, sig=signal.SIGTERM):
        """Stop the process by its pid (SIGKILL to simulate a crash) and wait for it."""
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def get(self, path, auth=None):
        """GET a path of the server as decoded JSON (QIDO-RS under /dicom-web, or Orthanc's REST API)."""
        return self._json(urllib.request.Request(self.base + path), auth)

    def get_bytes(self, path):
        """GET a path of the server as bytes (an instance's file: /instances/ID/file)."""
        with urllib.request.urlopen(urllib.request.Request(self.base + path), timeout=10) as answer:
            return answer.read()

    def post(self, path, document, auth=None):
        request = urllib.request.Request(self.base + path, data=json.dumps(document).encode(), method="POST")
        return self._json(request, auth)

    def delete_everything(self):
        """Remove every patient (and so every instance) the server holds."""
        for patient in self.get("/patients"):
            self._json(urllib.request.Request(f"{self.base}/patients/{patient}", method="DELETE"), None)

    def _json(self, request, auth):
        auth = auth or (next(iter(self.users.items())) if self.users else None)
        if auth:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())


def require_orthanc():
    """Skip a test without Orthanc and its DICOMweb plugin; in CI (which installs them) fail instead."""
    import pytest  # the benchmarks use this module too, without pytest

    if orthanc_binary() and dicomweb_plugin():
        return
    message = "Orthanc and its DICOMweb plugin are not installed (apt-get install orthanc orthanc-dicomweb)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
