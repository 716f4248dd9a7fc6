"""Sending to a hostile or unlucky server, with unlucky credentials (issue 19, rows 2, 3 and 9).

The server is scripted at the socket level in a thread of this process on
127.0.0.1 (a free port): it trickles its answer a byte at a time, declares a
2 GiB body, echoes the credentials it was sent. The command runs as a real
process; its subprocess timeout only guards the suite against a hang.
"""

import itertools
import json
import os
import socket
import subprocess
import sys
import threading
import time
import tracemalloc

import pytest

import dcmforge
from dcmforge.errors import SendError
from dcmforge.sending import dicomweb
from dcmforge.sending.instances import read_instance
from dcmforge.sending.report import NOT_SENT

from orthanc import free_port
from volumes import activity

HANG_GUARD = 60  # seconds: far beyond any deadline these tests give


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    paths = dcmforge.write_series(activity((2, 8, 8)), tmp_path_factory.mktemp("hostile") / "pt", spacing=(2, 2, 2),
                                  metadata={"PatientID": "HOSTILE"})  # fmt: skip
    return paths


def run_cli(*args, env=None):
    command = [sys.executable, "-m", "dcmforge.cli", *map(str, args)]
    environment = {**os.environ, **(env or {})}
    return subprocess.run(command, check=False, capture_output=True, text=True, env=environment, timeout=HANG_GUARD)


class RawServer:
    """Accepts connections and gives each, in its own thread, to ``answer(connection, head, body)``: the request's
    head (request line and headers, text) and its body, read whole by its Content-Length."""

    def __init__(self, answer):
        self.answer = answer
        self.heads = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/dicomweb"
        self.stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection):
        with connection, connection.makefile("rb") as reader:
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                line = reader.readline()
                if not line:
                    return
                head += line
            text = head.decode("latin-1")
            length = next(int(line.split(":")[1]) for line in text.splitlines() if line.lower().startswith("content-length"))
            body = reader.read(length)
            self.heads.append(text)
            try:
                self.answer(connection, text, body)
            except OSError:  # the client went away: what the tests want of it
                pass

    def stop(self):
        self.stopped.set()
        self.listener.close()


@pytest.fixture
def serve():
    servers = []

    def start(answer):
        servers.append(RawServer(answer))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def trickle(data, pause=0.5):
    """An answer that sends ``data``, then spaces, one byte every ``pause`` seconds, until the client leaves."""

    def answer(connection, head, body):
        for byte in itertools.chain(data, itertools.repeat(ord(" "))):
            connection.sendall(bytes([byte]))
            time.sleep(pause)

    return answer


@pytest.mark.parametrize("where", ["status line", "body"])
def test_a_server_trickling_its_answer_ends_at_the_deadline_with_one_line(serve, files, where):
    start = b"HTTP/1.1 200 OK\r\nContent-Type: application/dicom+json\r\nContent-Length: 100000\r\n\r\n{"
    server = serve(trickle(b"HTTP/1.1 2") if where == "status line" else _at_once_then_trickle(start))
    done = run_cli("send", *files, "--url", server.url, "--timeout", "2", "--retries", "0")
    assert done.returncode == 1, done.stderr
    assert done.stderr == (f"dcmforge send: {server.url}/studies: no whole answer within the timeout (2 s for the request) "
                           "(tried once); 0 of 2 instances stored; a rerun completes the series (the server keeps one "
                           "copy of what it already has)\n")  # fmt: skip


def _at_once_then_trickle(start):
    def answer(connection, head, body):
        connection.sendall(start)
        trickle(b"")(connection, head, body)

    return answer


def test_an_endless_answer_is_not_read_into_memory_and_the_message_names_the_cap(serve, files):
    def endless(connection, head, body):
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/dicom+json\r\nContent-Length: 2147483648\r\n\r\n")
        zeros = bytes(1 << 20)
        for _ in range(64):  # 64 MiB of its 2 GiB, enough to show the reading stops at the cap
            connection.sendall(zeros)

    server = serve(endless)
    tracemalloc.start()
    try:
        with pytest.raises(SendError) as caught:
            dcmforge.send(files, server.url, retries=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(caught.value) == (f"{server.url}/studies: the server's 200 answer is longer than 16 MiB, "
                                 "the most dcmforge reads of an answer (not read further)")  # fmt: skip
    assert caught.value.report.count(NOT_SENT) == 2
    assert peak < 2 * dicomweb.ANSWER_LIMIT + (8 << 20), peak


SECRET_LINES = {
    "token file, a second line": ("--token-file", "abc.def\nX-Injected: yes\n"),
    "token variable, CRLF inside": ("--token-env", "abc.def\r\nX-Injected: yes"),
    "password file, a second line": ("--password-file", "hunter2\nsecond\n"),
    "password variable, CRLF inside": ("--password-env", "hunter2\r\nsecond"),
}


@pytest.mark.parametrize("case", SECRET_LINES)
def test_a_secret_with_a_line_break_is_refused_in_one_line_that_does_not_show_it(files, tmp_path, case):
    option, secret = SECRET_LINES[case]
    user = ["--user", "bob"] if "password" in option else []
    if option.endswith("-file"):
        holder = tmp_path / "secret"
        holder.write_text(secret)
        holder.chmod(0o600)
        done = run_cli("send", files[0], "--url", f"http://127.0.0.1:{free_port()}/dicom-web", *user, option, holder)
        source = f"{holder}: the {option[2:-5]} file"
    else:
        done = run_cli("send", files[0], "--url", f"http://127.0.0.1:{free_port()}/dicom-web", *user, option, "SECRET",
                       env={"SECRET": secret})  # fmt: skip
        source = "the environment variable SECRET"
    assert done.returncode == 2
    what = "token" if "token" in option else "password"
    assert done.stderr == f"dcmforge send: {source} holds more than one line: a {what} is one line (it is not shown)\n"
    for part in ("abc.def", "hunter2", "second", "Injected"):
        assert part not in done.stderr


def test_no_exception_text_carries_a_header_value(files):
    for token in ("abc.def\r\nX-Injected: yes", "abc.def\x00"):
        with pytest.raises(SendError) as caught:
            dcmforge.send(files, f"http://127.0.0.1:{free_port()}/dicom-web", auth=token, retries=0)
        assert "abc.def" not in str(caught.value) and "not shown" in str(caught.value)


def test_query_secrets_and_echoed_credentials_are_masked_in_every_line(serve, files, tmp_path):
    uids = [read_instance(path).sop_instance_uid for path in files]

    def echo(connection, head, body):
        """Echoes the request line and the Authorization header in its reason phrase and body."""
        request_line = head.splitlines()[0]
        authorization = next(line for line in head.splitlines() if line.startswith("Authorization"))
        if "/first" in request_line:  # 503: retried once, then the error line carries the body
            words = json.dumps({"error": f"{authorization} refused for {request_line}"}).encode()
            status = f"503 {authorization}"
        else:  # 202: each instance failed, its FailureReason a string that echoes the credentials
            item = {"00081155": {"vr": "UI", "Value": [uids[0]]}, "00081197": {"vr": "US", "Value": [authorization]}}
            words = json.dumps({"00081198": {"vr": "SQ", "Value": [item]},
                                "00081199": {"vr": "SQ", "Value": [{"00081155": {"vr": "UI", "Value": [uids[1]]}}]}}).encode()
            status = "202 Accepted"
        connection.sendall(f"HTTP/1.1 {status}\r\nContent-Type: application/dicom+json\r\n"
                           f"Content-Length: {len(words)}\r\n\r\n".encode() + words)  # fmt: skip

    server = serve(echo)
    password = tmp_path / "password"
    password.write_text("hunter2-horse\n")
    password.chmod(0o600)
    outputs = []
    for where in ("first", "second"):
        url = f"{server.url}/{where}?access_token=qs-secret-1&sig=qs%2Fsecret%2B2&plain"
        done = run_cli("send", *files, "--url", url, "--user", "bob", "--password-file", password, "--retries", "1")
        assert done.returncode == 1
        outputs.append(done.stdout + done.stderr)
    assert "refused for POST /dicomweb/first/studies?access_token=***&sig=***&*** HTTP/1.1" in outputs[0]
    assert "reason 'Authorization: Basic ***'" in outputs[1]
    assert "instances to http://127.0.0.1" in outputs[1] and "/studies?access_token=***&sig=***&***: 1 stored" in outputs[1]
    basic = "Ym9iOmh1bnRlcjItaG9yc2U="  # bob:hunter2-horse
    assert "access_token=qs-secret-1" in server.heads[0] and basic in server.heads[0]  # what was sent is whole
    for output in outputs:
        for secret in ("qs-secret-1", "qs%2Fsecret%2B2", "qs/secret+2", "plain", "hunter2", basic):
            assert secret not in output, (secret, output)


def test_a_redirection_to_a_url_with_a_query_is_masked(serve, files):
    def moved(connection, head, body):
        connection.sendall(b"HTTP/1.1 301 Moved\r\nLocation: https://pacs.example/dicom-web/studies?token=t0ps3cret\r\n"
                           b"Content-Length: 0\r\n\r\n")  # fmt: skip

    with pytest.raises(SendError, match=r"\(to https://pacs.example/dicom-web/studies\?token=\*\*\*: give the URL"):
        dcmforge.send(files, serve(moved).url)


def test_a_secret_file_every_user_may_read_gives_a_warning(files, tmp_path):
    token = tmp_path / "token"
    token.write_text("abc.def\n")
    url = f"http://127.0.0.1:{free_port()}/dicom-web"
    for mode, warned in ((0o644, True), (0o640, False), (0o600, False)):
        token.chmod(mode)
        done = run_cli("send", files[0], "--url", url, "--token-file", token, "--retries", "0")
        assert done.returncode == 1
        warning = f"dcmforge: {token}: the token file can be read by every user of this machine (chmod 600 it)\n"
        assert done.stderr.startswith(warning) == warned, done.stderr
        assert done.stderr.count("\n") == 1 + warned
