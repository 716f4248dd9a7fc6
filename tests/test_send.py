"""Sending series with DICOMweb STOW-RS (issue 13): against a real Orthanc, a scripted server, and in parts.

The Orthanc tests start Orthanc with its DICOMweb plugin (Debian packages
orthanc and orthanc-dicomweb, installed by tools/bootstrap.sh) on 127.0.0.1
with a free port and its own storage folder, and stop it by its pid. What
Orthanc stored is checked with QIDO-RS and with Orthanc's own REST API against
what pydicom reads from the files dcmforge wrote.

The scripted server (http.server in a thread of this process) answers what a
real archive might but Orthanc does not: 5xx, 202 and 409 answers, HTML.
"""

import email
import email.policy
import http.server
import io
import json
import os
import ssl
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import dcmforge
from dcmforge.sending import dicomweb
from dcmforge.sending.instances import Instance, meta_group, read_instance
from dcmforge.cli import main
from dcmforge.errors import NotDicomError, SendError

from orthanc import Orthanc, free_port, require_orthanc
from volumes import activity


PET_META = {"PatientName": "Send^Pet", "PatientID": "SEND-PT", "SeriesDescription": "pet sent", "isotope": "F-18",
            "radiopharmaceutical": "Fluorodeoxyglucose", "injected_activity": 3.7e8,
            "injection_datetime": "2025-01-01T09:00:00",
            "acquisition_datetime": "2025-01-01T10:00:00", "frame_duration": [600]}  # fmt: skip
CT_META = {"PatientName": "Send^Ct", "PatientID": "SEND-CT", "SeriesDescription": "ct sent",
           "StudyDate": "20250101", "StudyTime": "100000"}  # fmt: skip
MF_META = {**PET_META, "PatientName": "Send^Enhanced", "PatientID": "SEND-MF", "SeriesDescription": "enhanced sent"}
GEOMETRY = {"spacing": (2.0, 2.0, 3.0), "origin": (-31.0, -31.0, 0.0), "orientation": (1, 0, 0, 0, 1, 0)}


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    """A single-frame PET series, a CT series and one Enhanced PET file, written by dcmforge."""
    root = tmp_path_factory.mktemp("series")
    ct_volume = np.random.default_rng(1).integers(-1000, 2000, (10, 32, 32)).astype(np.int16)
    enhanced = activity((8, 32, 32), seed=2)
    return {
        "PT": dcmforge.write_series(activity((12, 32, 32)), root / "pt", modality="PT", metadata=PET_META, **GEOMETRY),
        "CT": dcmforge.write_series(ct_volume, root / "ct", modality="CT", metadata=CT_META, **GEOMETRY),
        "MF": dcmforge.write_series(enhanced, root / "mf", modality="PT", metadata=MF_META, multiframe=True, **GEOMETRY),
    }


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    require_orthanc()
    server = Orthanc(tmp_path_factory.mktemp("orthanc")).start()
    yield server
    server.stop()


@pytest.fixture
def own_orthanc(tmp_path):
    """An Orthanc of this test alone (it may be stopped and started again over the same storage)."""
    require_orthanc()
    server = Orthanc(tmp_path / "orthanc")
    yield server
    server.stop()


def run_cli(*args, env=None):
    command = [sys.executable, "-m", "dcmforge.cli", *map(str, args)]
    return subprocess.run(command, check=False, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=120)


def instances_of_series(server, series_uid):
    """Orthanc's REST API: the instances it holds for a series, with their main tags."""
    found = server.post("/tools/find", {"Level": "Instance", "Query": {"SeriesInstanceUID": series_uid}, "Expand": True})
    return {item["MainDicomTags"]["SOPInstanceUID"]: item for item in found}


def check_stored(server, paths):
    """QIDO-RS and the REST API show every instance of the files, with the UIDs and names dcmforge wrote."""
    datasets = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
    first = datasets[0]
    studies = server.get(f"/dicom-web/studies?PatientID={first.PatientID}")
    assert [s["0020000D"]["Value"][0] for s in studies] == [first.StudyInstanceUID]
    assert studies[0]["00100010"]["Value"][0]["Alphabetic"] == str(first.PatientName)
    series = server.get(f"/dicom-web/studies/{first.StudyInstanceUID}/series")
    assert [s["0020000E"]["Value"][0] for s in series] == [first.SeriesInstanceUID]
    assert series[0]["00080060"]["Value"] == [first.Modality]
    assert series[0]["00201209"]["Value"] == [len(paths)]
    stored = instances_of_series(server, first.SeriesInstanceUID)
    assert set(stored) == {d.SOPInstanceUID for d in datasets}
    for dataset in datasets:
        tags = stored[dataset.SOPInstanceUID]["MainDicomTags"]
        assert tags.get("InstanceNumber") == str(dataset.InstanceNumber)
    orthanc_series = server.get(f"/series/{stored[first.SOPInstanceUID]['ParentSeries']}")
    assert orthanc_series["MainDicomTags"].get("SeriesDescription") == first.get("SeriesDescription")
    assert len(orthanc_series["Instances"]) == len(paths)


# -- against a real Orthanc ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["PT", "CT", "MF"])
def test_a_series_sent_is_in_orthanc_with_the_uids_and_names_written(orthanc, series, kind):
    paths = series[kind]
    report = dcmforge.send([paths[0].parent], orthanc.dicomweb, batch_instances=5)
    assert report.ok, report.outcomes
    assert [o.status for o in report.outcomes] == [dicomweb.STORED] * len(paths)
    assert [Path(o.path) for o in report.outcomes] == paths
    assert report.requests == -(-len(paths) // 5)
    check_stored(orthanc, paths)


def test_a_second_send_reports_them_stored_again_and_adds_nothing(orthanc, series):
    paths = series["PT"]
    first = dcmforge.send(paths, orthanc.dicomweb)
    count = len(orthanc.get("/instances"))
    again = dcmforge.send(paths, orthanc.dicomweb, batch_bytes=1)  # one request per file this time
    assert first.ok and again.ok
    assert again.requests == len(paths)
    assert len(orthanc.get("/instances")) == count
    check_stored(orthanc, paths)


def test_the_command_sends_and_exits_0(orthanc, series):
    done = run_cli("send", series["CT"][0].parent, "--url", orthanc.dicomweb, "--batch", "4")
    assert done.returncode == 0, done.stderr
    assert f"10 instances to {orthanc.dicomweb}/studies: 10 stored (3 requests" in done.stdout
    assert done.stderr == ""


def test_convert_sends_each_series_once_committed(orthanc, tmp_path):
    header = dcmforge.write_interfile(tmp_path / "recon.hv", activity((6, 16, 16), seed=5), spacing=(2, 2, 2))
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"PatientName": "Convert^Send", "PatientID": "SEND-CONVERT"}))
    done = run_cli("convert", header, "--out", tmp_path / "dicom", "--meta", meta, "--send", orthanc.dicomweb)
    assert done.returncode == 0, done.stderr
    assert "6 PT files" in done.stdout and "6 stored" in done.stdout
    check_stored(orthanc, sorted((tmp_path / "dicom" / "recon").glob("*.dcm")))


def test_credentials_wrong_fail_cleanly_right_ones_work(own_orthanc, series, tmp_path):
    own_orthanc.users = {"alice": "right horse battery"}
    own_orthanc.start()
    password = tmp_path / "password"
    password.write_text("wrong\n")
    password.chmod(0o600)
    paths = series["CT"][:3]
    for wrong in (["--user", "alice", "--password-file", password], []):
        done = run_cli("send", *paths, "--url", own_orthanc.dicomweb, *wrong)
        assert done.returncode == 1
        assert done.stderr.count("\n") == 1, done.stderr  # one line, no traceback
        assert "401" in done.stderr and "missing or wrong credentials" in done.stderr
    assert own_orthanc.get("/instances") == []
    done = run_cli("send", *paths, "--url", own_orthanc.dicomweb, "--user", "alice", "--password-env", "SEND_PASSWORD",
                   env={"SEND_PASSWORD": "right horse battery"})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "right horse battery" not in done.stdout + done.stderr
    assert len(own_orthanc.get("/instances")) == 3


def test_a_server_that_is_down_gives_one_clear_line(series):
    done = run_cli("send", *series["PT"][:2], "--url", f"http://127.0.0.1:{free_port()}/dicom-web", "--retries", "1")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert "cannot connect" in done.stderr and "tried 2 times" in done.stderr


def test_a_server_stopped_mid_send_gives_a_clear_error_and_a_rerun_completes(own_orthanc, series):
    own_orthanc.start()
    paths = series["PT"]

    def kill_in_second_batch(instances, sent_bytes, total_instances, total_bytes):
        if instances == 5:  # the first batch of 4 was answered; the second is on its way
            own_orthanc.stop(sig=9)

    with pytest.raises(SendError, match="tried 2 times.*4 of 12 instances stored; a rerun completes the series") as caught:
        dcmforge.send(paths, own_orthanc.dicomweb, batch_instances=4, retries=1, backoff=0.05,
                      progress=kill_in_second_batch)  # fmt: skip
    statuses = [o.status for o in caught.value.report.outcomes]
    assert statuses == [dicomweb.STORED] * 4 + [dicomweb.NOT_SENT] * 8
    own_orthanc.start()
    assert len(own_orthanc.get("/instances")) == 4
    assert dcmforge.send(paths, own_orthanc.dicomweb, batch_instances=4).ok
    check_stored(own_orthanc, paths)


# -- the files -------------------------------------------------------------------------


def test_a_file_without_dicm_is_refused_before_anything_is_sent(series, tmp_path):
    bad = tmp_path / "notes.dcm"
    bad.write_bytes(b"\0" * 200)
    with pytest.raises(NotDicomError, match="notes.dcm: not a DICOM Part 10 file"):
        dcmforge.send([*series["PT"], bad], f"http://127.0.0.1:{free_port()}/dicom-web")
    done = run_cli("send", series["PT"][0], bad, "--url", "http://127.0.0.1:9/dicom-web")
    assert done.returncode == 2
    assert done.stderr == f"dcmforge send: {bad}: not a DICOM Part 10 file (no 'DICM' at byte 128)\n"


def test_in_a_folder_files_without_dicm_are_skipped_with_a_warning(scripted, series, tmp_path):
    folder = tmp_path / "out"
    (folder / "pt").mkdir(parents=True)
    for path in series["PT"][:2]:
        (folder / "pt" / path.name).write_bytes(path.read_bytes())
    (folder / "pt.preview.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    (folder / ".dcmforge-manifest.jsonl").write_text("{}\n")
    scripted.script = [(200, "application/dicom+json", all_stored)]
    done = run_cli("send", folder, "--url", scripted.url)
    assert done.returncode == 0, done.stderr
    assert done.stderr == f"dcmforge: {folder / 'pt.preview.png'}: skipped, not a DICOM file (no 'DICM' at byte 128)\n"
    assert "2 instances" in done.stdout and "2 stored" in done.stdout
    (folder / "pt" / "PT_0001.dcm").unlink()
    (folder / "pt" / "PT_0002.dcm").unlink()
    with pytest.raises(NotDicomError, match=r"out: no DICOM files in this folder \(1 other files\)"):
        dcmforge.send(folder, scripted.url)


def test_the_meta_group_names_the_instance_pydicom_reads(series):
    for path in [*series["PT"][:2], *series["MF"]]:
        instance = read_instance(path)
        dataset = pydicom.dcmread(path, stop_before_pixels=True)
        assert instance.sop_instance_uid == dataset.SOPInstanceUID
        assert instance.sop_class_uid == dataset.SOPClassUID
        assert instance.size == path.stat().st_size


def test_a_part10_file_dcmforge_did_not_write_is_sendable(tmp_path):
    dataset = pydicom.Dataset()
    dataset.SOPClassUID, dataset.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.7", "1.2.3.4.5"
    dataset.file_meta = pydicom.dataset.FileMetaDataset()
    dataset.file_meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    dataset.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    path = tmp_path / "other.dcm"
    dataset.save_as(path, enforce_file_format=True)
    assert read_instance(path).sop_instance_uid == "1.2.3.4.5"


@given(st.binary(max_size=300))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_bytes_give_an_instance_or_not_dicom(tmp_path, tail):
    path = tmp_path / "any.dcm"
    path.write_bytes(bytes(128) + b"DICM" + tail)
    try:
        instance = read_instance(path)
    except NotDicomError as exc:
        assert str(exc).startswith(str(path))
    else:
        assert instance.sop_instance_uid


@given(st.lists(st.integers(1, 100), max_size=30), st.integers(1, 7), st.integers(1, 300))
def test_batches_keep_order_and_bounds(sizes, most, budget):
    instances = [Instance(str(n), size, "", str(n)) for n, size in enumerate(sizes)]
    batches = dicomweb.plan_batches(instances, most, budget)
    assert [i for batch in batches for i in batch] == instances
    for batch in batches:
        assert len(batch) <= most
        assert len(batch) == 1 or sum(i.size for i in batch) <= budget


# -- the multipart body ----------------------------------------------------------------


def test_the_multipart_body_holds_each_file_as_it_is(series):
    batch = [read_instance(p) for p in series["CT"][:3]]
    boundary = dicomweb.new_boundary()
    body = b"".join(dicomweb.body_pieces(batch, boundary))
    assert len(body) == dicomweb.body_length(batch, boundary)
    head = f"Content-Type: {dicomweb.content_type(boundary)}\r\n\r\n".encode()
    message = email.message_from_bytes(head + body, policy=email.policy.HTTP)
    assert message.get_content_type() == "multipart/related"
    assert message.get_param("type") == "application/dicom"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["application/dicom"] * 3
    assert [p.get_payload(decode=True) for p in parts] == [Path(i.path).read_bytes() for i in batch]
    assert dicomweb.new_boundary() != boundary


# -- the answer ------------------------------------------------------------------------

BATCH = [Instance(f"/f{n}.dcm", 10, "1.2", f"1.2.3.{n}") for n in range(3)]


def _item(uid, reason_tag=None, code=None):
    item = {"00081150": {"vr": "UI", "Value": ["1.2"]}, "00081155": {"vr": "UI", "Value": [uid]}}
    if reason_tag:
        item[reason_tag] = {"vr": "US", "Value": [code]}
    return item


def test_a_202_answer_names_what_failed_and_why():
    answer = {"00081199": {"vr": "SQ", "Value": [_item("1.2.3.0"), _item("1.2.3.2", "00081196", 0xB000)]},
              "00081198": {"vr": "SQ", "Value": [_item("1.2.3.1", "00081197", 0xA700)]}}  # fmt: skip
    outcomes = dicomweb.outcomes_from_answer(202, answer, BATCH)
    assert [(o.status, o.reason) for o in outcomes] == [
        (dicomweb.STORED, ""),
        (dicomweb.FAILED, "out of resources (0xA700)"),
        (dicomweb.WARNING, "coercion of data elements (0xB000)"),
    ]


def test_instances_the_answer_does_not_name_are_not_stored():
    answer = {"00081199": {"vr": "SQ", "Value": [_item("1.2.3.0")]}}
    outcomes = dicomweb.outcomes_from_answer(200, answer, BATCH)
    assert [o.status for o in outcomes] == [dicomweb.STORED, dicomweb.FAILED, dicomweb.FAILED]
    quiet = dicomweb.outcomes_from_answer(202, {"00081199": {"vr": "SQ", "Value": [_item(i.sop_instance_uid) for i in BATCH]}}, BATCH)
    assert {o.status for o in quiet} == {dicomweb.WARNING}  # a 202 is never success


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
    | st.sampled_from(["1.2.3.0", "00081155", "Value", "vr"]),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(["00081199", "00081198", "00081155", "00081197", "00081196", "Value", "vr", "x"]), inner, max_size=5),
    max_leaves=25,
)  # fmt: skip


@given(JSON, st.sampled_from([200, 202, 409]))
def test_any_json_answer_gives_outcomes_or_a_send_error(answer, status):
    try:
        outcomes = dicomweb.outcomes_from_answer(status, answer, BATCH)
    except SendError:
        return
    assert [o.path for o in outcomes] == [i.path for i in BATCH]
    assert all(o.status in (dicomweb.STORED, dicomweb.WARNING, dicomweb.FAILED) for o in outcomes)


@given(st.binary(max_size=200), st.sampled_from(["application/dicom+json", "text/html", ""]))
def test_any_body_decodes_or_gives_a_send_error(body, media_type):
    try:
        dicomweb.decode_answer(200, "OK", media_type, body)
    except SendError as exc:
        assert "\n" not in str(exc)


# -- a scripted server -----------------------------------------------------------------


class Scripted(http.server.BaseHTTPRequestHandler):
    """Answers each POST with the next (status, content type, body or a function of the UIDs sent[, headers]),
    or None: silence."""

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
        parts = email.message_from_bytes(head + body, policy=email.policy.HTTP).iter_parts()
        uids = [meta_group(p.get_payload(decode=True)[132:], "part")[0][0x00020003] for p in parts]
        self.server.requests.append((dict(self.headers), uids))
        step = self.server.script.pop(0)
        if step is None:  # a server that takes the request and never answers in time
            time.sleep(1.5)
            return
        status, media_type, answer, *headers = step
        data = answer(uids) if callable(answer) else answer
        self.send_response(status)
        self.send_header("Content-Type", media_type)
        for name, value in (headers[0] if headers else {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def all_stored(uids):
    return json.dumps({"00081199": {"vr": "SQ", "Value": [_item(uid) for uid in uids]}}).encode()


@pytest.fixture
def scripted():
    yield from _scripted_server()


def _scripted_server(tls=None):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    if tls:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    server.requests, server.script = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}/dicomweb"
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def certificate(tmp_path):
    """A self-signed certificate for 127.0.0.1 (openssl), and the server's TLS context holding it."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return cert, context


def test_https_trusts_the_system_certificates_or_a_cafile(certificate, series):
    cert, context = certificate
    for server in _scripted_server(context):
        paths = series["CT"][:2]
        done = run_cli("send", *paths, "--url", server.url)
        assert done.returncode == 1 and done.stderr.count("\n") == 1
        assert "the server's certificate is not trusted" in done.stderr and "use --cafile" in done.stderr
        assert server.requests == []
        server.script = [(200, "application/dicom+json", all_stored)]
        done = run_cli("send", *paths, "--url", server.url, "--cafile", cert)
        assert done.returncode == 0, done.stderr
        assert len(server.requests) == 1


def test_a_5xx_is_retried_resending_only_the_batch_without_an_answer(scripted, series):
    ok = (200, "application/dicom+json", all_stored)
    scripted.script = [ok, (503, "text/plain", b"busy\n"), ok, ok]
    paths = series["PT"][:6]
    report = dcmforge.send(paths, scripted.url, batch_instances=2, backoff=0.01, auth=("bob", "pw"))
    assert report.ok and report.requests == 4
    sent = [uids for _, uids in scripted.requests]
    assert sent[1] == sent[2] and [u for batch in sent[:1] + sent[2:] for u in batch] == [o.sop_instance_uid for o in report.outcomes]
    headers = scripted.requests[0][0]
    assert headers["Accept"] == "application/dicom+json"
    assert headers["Authorization"] == "Basic Ym9iOnB3"
    assert headers["Content-Type"].startswith('multipart/related; type="application/dicom"; boundary=dcmforge-')


def test_a_4xx_is_not_retried_and_is_explained(scripted, series):
    scripted.script = [(415, "text/plain", b"\nnot a media type I take\nmore\n")]
    with pytest.raises(SendError, match=r"answered 415 Unsupported Media Type: not a media type I take$"):
        dcmforge.send(series["PT"][:2], scripted.url, backoff=0.01)
    assert len(scripted.requests) == 1


def test_a_batch_refused_whole_goes_again_one_file_at_a_time(scripted, series):
    ok = (200, "application/dicom+json", all_stored)
    scripted.script = [(400, "application/dicom+json", b'{"00081198": {"vr": "SQ"}}'), ok,
                       (413, "text/plain", b"too big"), ok]  # fmt: skip
    progress = []
    report = dcmforge.send(series["PT"][:3], scripted.url, progress=lambda *counts: progress.append(counts[0]))
    assert [uids for _, uids in scripted.requests[1:]] == [[o.sop_instance_uid] for o in report.outcomes]
    assert [(o.status, o.reason) for o in report.outcomes] == [
        (dicomweb.STORED, ""),
        (dicomweb.FAILED, "the server refused it (413 Request Entity Too Large: too big)"),
        (dicomweb.STORED, ""),
    ]
    assert progress == [1, 2, 3, 1, 2, 3]  # counted again from the batch's start as the files go alone


def test_orthanc_names_the_file_it_cannot_parse(own_orthanc, tmp_path):
    paths = dcmforge.write_series(activity((3, 8, 8)), tmp_path / "cut", spacing=(2, 2, 2), metadata={"PatientID": "CUT"})
    paths[1].write_bytes(paths[1].read_bytes()[:400])  # its meta group whole, its dataset cut short
    own_orthanc.start()
    report = dcmforge.send(paths, own_orthanc.dicomweb)
    assert [o.status for o in report.outcomes] == [dicomweb.STORED, dicomweb.FAILED, dicomweb.STORED]
    assert report.outcomes[1].reason.startswith("the server refused it (400 Bad Request")
    assert len(own_orthanc.get("/instances")) == 2


def test_a_server_that_does_not_answer_in_time(scripted, series):
    scripted.script = [None, None]
    done = run_cli("send", series["PT"][0], "--url", scripted.url, "--timeout", "0.3", "--retries", "1")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert "no whole answer within the timeout (0.3 s for the request) (tried 2 times)" in done.stderr
    assert len(scripted.requests) == 2


def test_a_409_or_202_is_not_success(scripted, series, tmp_path):
    def failed_all(uids):
        return json.dumps({"00081198": {"vr": "SQ", "Value": [_item(u, "00081197", 0x0122) for u in uids]}}).encode()

    scripted.script = [(409, "application/dicom+json", failed_all)]
    report = dcmforge.send(series["PT"][:2], scripted.url)
    assert not report.ok and report.count(dicomweb.FAILED) == 2
    token = tmp_path / "token"
    token.write_text("abc.def\n")
    scripted.script = [(202, "application/dicom+json", all_stored)]
    done = run_cli("send", *series["PT"][:2], "--url", scripted.url, "--token-file", token)
    assert done.returncode == 1
    assert "stored with a warning: the server answered 202 without a reason" in done.stderr
    assert scripted.requests[-1][0]["Authorization"] == "Bearer abc.def"


def test_a_server_answering_html_gives_one_line(scripted, series):
    scripted.script = [(200, "text/html", b"<!DOCTYPE html>\n<html><body>Login</body></html>")]
    done = run_cli("send", series["PT"][0], "--url", scripted.url)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert "with HTML, not DICOM JSON (is the URL the DICOMweb base?): <!DOCTYPE html>" in done.stderr


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_a_progress_bar_of_instances_and_bytes_on_a_terminal(scripted, series, monkeypatch):
    scripted.script = [(200, "application/dicom+json", all_stored)] * 2
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    paths = series["PT"][:4]
    assert main(["send", *map(str, paths), "--url", scripted.url, "--batch", "2"]) == 0
    total = sum(p.stat().st_size for p in paths) / (1 << 20)
    assert f"[{'#' * 30}] 4/4 instances, {total:.1f}/{total:.1f} MiB" in terminal.getvalue()
    assert "2/4 instances" in terminal.getvalue()


def test_convert_checks_the_credentials_before_converting(tmp_path):
    header = dcmforge.write_interfile(tmp_path / "recon.hv", activity((2, 4, 4)), spacing=(2, 2, 2))
    done = run_cli("convert", header, "--out", tmp_path / "dicom", "--send", "http://127.0.0.1:9/dicom-web",
                   "--user", "bob", "--password-file", tmp_path / "missing")  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == f"dcmforge convert: {tmp_path / 'missing'}: the password file cannot be read (No such file or directory)\n"
    assert not (tmp_path / "dicom").exists()


def test_the_body_is_streamed_not_held_in_memory(orthanc, tmp_path):
    paths = dcmforge.write_series(activity((64, 256, 256), seed=9), tmp_path / "big", spacing=(2, 2, 2),
                                  metadata={"PatientID": "SEND-STREAM"})  # fmt: skip
    total = sum(p.stat().st_size for p in paths)
    assert total > 8 << 20
    tracemalloc.start()
    try:
        report = dcmforge.send(paths, orthanc.dicomweb, batch_bytes=64 << 20)  # one request of every file
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report.ok and report.requests == 1
    assert peak < total / 4, (peak, total)  # a body held whole would be more than total


def test_a_convert_rerun_with_resume_sends_what_a_failed_send_left(orthanc, tmp_path):
    header = dcmforge.write_interfile(tmp_path / "resumed.hv", activity((5, 16, 16), seed=6), spacing=(2, 2, 2))
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"PatientName": "Resume^Send", "PatientID": "SEND-RESUME"}))
    out = tmp_path / "dicom"
    down = f"http://127.0.0.1:{free_port()}/dicom-web"
    done = run_cli("convert", header, "--out", out, "--meta", meta, "--send", down, "--retries", "0")
    assert done.returncode == 1
    assert "5 PT files" in done.stderr and "not sent:" in done.stderr and "cannot connect" in done.stderr
    done = run_cli("convert", header, "--out", out, "--meta", meta, "--send", orthanc.dicomweb, "--resume")
    assert done.returncode == 0, done.stderr
    assert "already converted" in done.stdout and "5 stored" in done.stdout
    check_stored(orthanc, sorted((out / "resumed").glob("*.dcm")))


def test_a_redirection_says_where_to(scripted, series):
    scripted.script = [(301, "text/html", b"<html>moved</html>", {"Location": "https://pacs.example/dicom-web/studies"})]
    done = run_cli("send", series["PT"][0], "--url", scripted.url)
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert "answered 301 Moved Permanently (to https://pacs.example/dicom-web/studies: give the URL it points to)" in done.stderr


def test_credentials_in_the_url_are_refused_and_not_echoed(series):
    done = run_cli("send", series["PT"][0], "--url", "http://bob:hunter2@127.0.0.1:9/dicom-web")
    assert done.returncode == 1
    assert "hunter2" not in done.stderr and "the URL holds credentials" in done.stderr


@pytest.mark.parametrize(("code", "words"), [
    (0xC122, "transfer syntax not supported (0xC122)"), (0xC005, "cannot understand (0xC005)"),
    (0xA7FF, "out of resources (0xA7FF)"), (0x0122, "SOP class not supported (0x0122)"),
    (0x1234, "unknown reason (0x1234)"),
])  # fmt: skip
def test_a_failure_reason_in_words(code, words):
    answer = {"00081198": {"vr": "SQ", "Value": [_item("1.2.3.0", "00081197", code)]}}
    assert dicomweb.outcomes_from_answer(409, answer, BATCH[:1])[0].reason == words
