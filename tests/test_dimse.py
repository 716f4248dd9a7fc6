"""DIMSE C-STORE and C-ECHO (dcmforge.sending.dimse) against real archives and a scripted one.

Real servers started here on 127.0.0.1 and stopped by pid: dcmtk's storescp
(every received file equal to what was sent, also when it accepts Implicit VR
only) and Orthanc's DICOM port with DicomCheckCalledAet on. A scripted SCP in
this process (scripted_scp.py) does what real servers will not on demand:
reject for each reason, abort or hang up mid-transfer, warning statuses, a tiny
maximum PDU, answer garbage. The PDUs, the command set and the Explicit to
Implicit rewriting are checked by round trips and fuzzing (hypothesis).
"""

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from pydicom.filereader import read_dataset

import dcmforge
from dcmforge.cli import main
from dcmforge.errors import SendError
from dcmforge.sending import command, dimse, pdu
from dcmforge.sending.implicit import EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN, explicit_to_implicit
from dcmforge.sending.instances import read_instance
from dcmforge.sending.report import FAILED, NOT_SENT, STORED, WARNING

from orthanc import Orthanc, free_port, require_orthanc
from scripted_scp import ScriptedSCP
from volumes import activity

PET_META = {"PatientName": "Dimse^Pet", "PatientID": "DIMSE-PT", "SeriesDescription": "pet by dimse", "isotope": "F-18",
            "radiopharmaceutical": "Fluorodeoxyglucose", "injected_activity": 3.7e8,
            "injection_datetime": "2025-01-01T09:00:00",
            "acquisition_datetime": "2025-01-01T10:00:00", "frame_duration": [600]}  # fmt: skip
CT_META = {"PatientName": "Dimse^Ct", "PatientID": "DIMSE-CT", "SeriesDescription": "ct by dimse",
           "StudyDate": "20250101", "StudyTime": "100000"}  # fmt: skip
MF_META = {
    **PET_META,
    "PatientName": "Dimse^Enhanced",
    "PatientID": "DIMSE-MF",
    "SeriesDescription": "enhanced by dimse",
}
GEOMETRY = {"spacing": (2.0, 2.0, 3.0), "origin": (-31.0, -31.0, 0.0), "orientation": (1, 0, 0, 0, 1, 0)}
FAST = {"timeout": 10, "backoff": 0.05}


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    """A single-frame PET series, a CT series and one Enhanced PET file, written by dcmforge."""
    root = tmp_path_factory.mktemp("series")
    ct_volume = np.random.default_rng(1).integers(-1000, 2000, (6, 32, 32)).astype(np.int16)
    return {
        "PT": dcmforge.write_series(activity((8, 32, 32)), root / "pt", modality="PT", metadata=PET_META, **GEOMETRY),
        "CT": dcmforge.write_series(ct_volume, root / "ct", modality="CT", metadata=CT_META, **GEOMETRY),
        "MF": dcmforge.write_series(activity((5, 32, 32), seed=2), root / "mf", modality="PT", metadata=MF_META,
                                    multiframe=True, **GEOMETRY),
    }  # fmt: skip


def all_files(series):
    return [path for kind in ("PT", "CT", "MF") for path in series[kind]]


def sent_dataset(path):
    """The data set of a file as pydicom reads it (the meta group left out)."""
    return pydicom.dcmread(path)


def received_dataset(data, syntax):
    return read_dataset(io.BytesIO(data), syntax == IMPLICIT_VR_LITTLE_ENDIAN, True)


def same_dataset(received, sent):
    """Every element of the sent data set is received with the same value (pixel bytes included)."""
    assert received.SOPInstanceUID == sent.SOPInstanceUID
    assert received.PixelData == sent.PixelData
    assert [element.tag for element in received] == [element.tag for element in sent]
    for element in sent:
        if element.VR not in ("SQ", "OB", "OW", "UN"):
            assert received[element.tag].value == element.value, element.tag
    assert received == sent


# -- the protocol's bytes --------------------------------------------------------------

ae_titles = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="\\"), min_size=1, max_size=16
)
uids = st.from_regex(r"[12](\.[1-9][0-9]{0,8}){1,6}", fullmatch=True)
octets = st.integers(0, 255)


@st.composite
def associate_rqs(draw):
    contexts = draw(st.lists(st.tuples(uids, st.lists(uids, min_size=1, max_size=3)), max_size=5))
    return pdu.AssociateRQ(
        draw(ae_titles), draw(ae_titles),
        tuple(pdu.PresentationContext(2 * n + 1, abstract, tuple(ts)) for n, (abstract, ts) in enumerate(contexts)),
        draw(st.integers(0, 2**32 - 1)), draw(uids), draw(st.sampled_from(["", "DCMFORGE_0_1_0", "X"])), draw(uids),
    )  # fmt: skip


@st.composite
def associate_acs(draw):
    results = draw(st.lists(st.tuples(st.integers(0, 4), uids), max_size=5))
    return pdu.AssociateAC(
        draw(ae_titles), draw(ae_titles),
        tuple(pdu.ContextResult(2 * n + 1, result, ts) for n, (result, ts) in enumerate(results)),
        draw(st.integers(0, 2**32 - 1)), draw(uids), draw(st.sampled_from(["", "OTHER_1"])), draw(uids),
    )  # fmt: skip


pdvs = st.builds(pdu.PDV, octets, st.booleans(), st.booleans(), st.binary(max_size=200))
all_pdus = st.one_of(
    associate_rqs(),
    associate_acs(),
    st.builds(pdu.AssociateRJ, octets, octets, octets),
    st.builds(pdu.PData, st.lists(pdvs, max_size=4).map(tuple)),
    st.just(pdu.ReleaseRQ()),
    st.just(pdu.ReleaseRP()),
    st.builds(pdu.Abort, octets, octets),
)


@given(all_pdus)
def test_every_pdu_decodes_to_what_was_encoded(value):
    data = pdu.encode(value)
    assert int.from_bytes(data[2:6], "big") == len(data) - 6
    assert pdu.decode(data[0], data[6:]) == value


@given(st.integers(1, 255), st.booleans(), st.booleans(), st.binary(max_size=300))
def test_a_fragment_header_is_the_pdata_pdus_own(context_id, is_command, is_last, data):
    whole = pdu.pdata_header(context_id, is_command, is_last, len(data)) + data
    assert whole == pdu.encode(pdu.PData((pdu.PDV(context_id, is_command, is_last, data),)))


@given(st.integers(0, 0xFFFF), uids, uids, st.integers(0, 2))
def test_the_c_store_rq_decodes_to_its_fields(message_id, sop_class, sop_instance, priority):
    data = command.c_store_rq(message_id, sop_class, sop_instance, priority)
    elements = command.decode_command(data)
    assert elements[command.GROUP_LENGTH] == len(data) - 12
    assert elements[command.COMMAND_FIELD] == command.C_STORE_RQ
    assert (elements[command.MESSAGE_ID], elements[command.PRIORITY]) == (message_id, priority)
    assert (elements[command.AFFECTED_SOP_CLASS], elements[command.AFFECTED_SOP_INSTANCE]) == (sop_class, sop_instance)
    assert elements[command.DATA_SET_TYPE] != command.NO_DATA_SET
    dataset = read_dataset(io.BytesIO(data), True, True)  # pydicom agrees: Implicit VR Little Endian, group 0000
    assert dataset.AffectedSOPInstanceUID == sop_instance and dataset.MessageID == message_id


@given(
    st.fixed_dictionaries(
        {command.COMMAND_FIELD: st.integers(0, 0xFFFF), command.RESPONDED_MESSAGE_ID: st.integers(0, 0xFFFF),
         command.STATUS: st.integers(0, 0xFFFF), command.AFFECTED_SOP_CLASS: uids},
        optional={command.ERROR_COMMENT: st.text("ABCabc 019.-", max_size=64).map(str.strip),
                  command.OFFENDING_ELEMENT: st.lists(st.integers(0, 2**32 - 1), max_size=3).map(tuple),
                  command.AFFECTED_SOP_INSTANCE: uids},
    )
)  # fmt: skip
def test_every_command_set_decodes_to_what_was_encoded(elements):
    decoded = command.decode_command(command.encode_command(elements))
    assert decoded.pop(command.GROUP_LENGTH) > 0
    assert decoded == elements


@given(st.binary(max_size=300))
def test_any_bytes_as_a_pdu_or_command_are_decoded_or_our_error(data):
    for pdu_type in range(9):
        try:
            pdu.decode(pdu_type, data)
        except SendError:
            pass
    try:
        command.decode_command(data)
    except SendError:
        pass


@pytest.mark.parametrize(
    "code, words, warning",
    [(0x0000, "success (0x0000)", False), (0xB000, "coercion of data elements (0xB000)", True),
     (0xB006, "elements discarded (0xB006)", True), (0xB007, "data set does not match SOP class (0xB007)", True),
     (0xA701, "out of resources (0xA701)", False), (0xA9FF, "data set does not match SOP class (0xA9FF)", False),
     (0xC123, "cannot understand (0xC123)", False), (0x0122, "SOP class not supported (0x0122)", False),
     (0x1234, "unknown reason (0x1234)", False)],
)  # fmt: skip
def test_statuses_are_named(code, words, warning):
    assert command.status_words(code) == words
    assert command.is_warning(code) is warning


def test_explicit_files_rewritten_as_implicit_read_the_same(series):
    for path in (series["PT"][0], series["CT"][0], series["MF"][0]):
        instance = read_instance(path)
        assert instance.transfer_syntax_uid == EXPLICIT_VR_LITTLE_ENDIAN
        data = Path(path).read_bytes()[instance.dataset_offset :]
        same_dataset(received_dataset(explicit_to_implicit(data), IMPLICIT_VR_LITTLE_ENDIAN), sent_dataset(path))


@given(st.data())
@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_damaged_data_set_is_rewritten_or_our_error(series, data):
    original = Path(series["MF"][0]).read_bytes()[read_instance(series["MF"][0]).dataset_offset :][:4000]
    at = data.draw(st.integers(0, len(original) - 1))
    damaged = (
        original[:at] + data.draw(st.binary(min_size=1, max_size=8)) + original[at + data.draw(st.integers(0, 8)) :]
    )
    try:
        explicit_to_implicit(damaged)
    except SendError:
        pass


# -- a scripted archive ----------------------------------------------------------------


def test_every_file_is_stored_with_its_data_set_as_sent(series):
    with ScriptedSCP() as scp:
        report = dimse.send(all_files(series), scp.url(), **FAST)
    assert report.ok and report.requests == 1 and report.summary().startswith(f"{len(all_files(series))} instances to ")
    assert "(1 association," in report.summary()
    request = scp.associations[0]
    assert (request.called_ae, request.calling_ae) == ("SCRIPTED", "DCMFORGE")
    classes = sorted(context.abstract_syntax for context in request.contexts)
    assert classes == sorted({read_instance(p).sop_class_uid for p in all_files(series)})  # one context per SOP class
    assert {context.transfer_syntaxes for context in request.contexts} == {
        (EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN)
    }
    stored = scp.stored_datasets()
    for path in all_files(series):
        same_dataset(
            received_dataset(stored[read_instance(path).sop_instance_uid], EXPLICIT_VR_LITTLE_ENDIAN),
            sent_dataset(path),
        )
    message_ids = [elements[command.MESSAGE_ID] for elements, _, _ in scp.stores]
    assert message_ids == list(range(1, len(message_ids) + 1))


def test_an_archive_taking_implicit_vr_only_gets_the_files_rewritten(series):
    with ScriptedSCP(implicit_only=True) as scp:
        report = dimse.send(all_files(series), scp.url(), **FAST)
    assert report.ok
    for path in all_files(series):
        elements, data, syntax = next(
            s for s in scp.stores if s[0][command.AFFECTED_SOP_INSTANCE] == read_instance(path).sop_instance_uid
        )
        assert syntax == IMPLICIT_VR_LITTLE_ENDIAN
        same_dataset(received_dataset(data, syntax), sent_dataset(path))


def test_a_tiny_maximum_pdu_cuts_command_and_data_set_into_its_fragments(series):
    with ScriptedSCP(max_pdu=64) as scp:
        report = dimse.send(series["PT"][:2] + series["MF"], scp.url(), **FAST)
    assert report.ok
    assert scp.largest_pdv == 64 - 6  # the PDV item header is inside the PDU's maximum length
    for path in series["PT"][:2] + series["MF"]:
        data = scp.stored_datasets()[read_instance(path).sop_instance_uid]
        same_dataset(received_dataset(data, EXPLICIT_VR_LITTLE_ENDIAN), sent_dataset(path))


@pytest.mark.parametrize(
    "result, source, reason, words",
    [(1, 1, 1, "no reason given (rejected permanently)"),
     (1, 1, 2, "application context name not supported"),
     (1, 1, 3, "calling AE title not recognised (rejected permanently) (the archive does not know 'DCMFORGE'"),
     (1, 1, 7, "called AE title not recognised (rejected permanently) (the archive is not 'SCRIPTED'"),
     (1, 2, 2, "protocol version not supported"),
     (2, 3, 1, "temporary congestion (rejected transiently)"),
     (2, 3, 2, "local limit exceeded (rejected transiently)")],
)  # fmt: skip
def test_a_rejection_is_one_line_naming_its_reason(series, result, source, reason, words):
    with ScriptedSCP(reject=(result, source, reason)) as scp:
        with pytest.raises(SendError) as raised:
            dimse.send(series["PT"][:1], scp.url(), retries=1, **FAST)
    message = str(raised.value)
    assert message.startswith(f"{scp.url()}: the archive rejected the association: ") and words in message
    assert "\n" not in message
    assert len(scp.associations) == (2 if result == 2 else 1)  # a transient rejection is tried again
    assert [o.status for o in raised.value.report.outcomes] == [NOT_SENT]


def test_an_abort_mid_transfer_resends_only_what_got_no_answer(series):
    files = series["PT"]
    with ScriptedSCP(abort_at=3) as scp:
        report = dimse.send(files, scp.url(), **FAST)
    assert report.ok and report.requests == 2
    sent = [elements[command.AFFECTED_SOP_INSTANCE] for elements, _, _ in scp.stores]
    uids = [read_instance(p).sop_instance_uid for p in files]
    assert sent == uids[:3] + uids[2:]  # the third went twice, the first two once


def test_a_hang_up_without_retries_is_one_line_with_what_was_stored(series):
    with ScriptedSCP(hang_up_at=4) as scp:
        with pytest.raises(SendError) as raised:
            dimse.send(series["PT"], scp.url(), retries=0, **FAST)
    message = str(raised.value)
    assert "\n" not in message
    assert "the archive closed the connection without answering (tried once); 3 of 8 instances stored" in message
    assert [o.status for o in raised.value.report.outcomes] == [STORED] * 3 + [NOT_SENT] * 5


def test_warning_and_failure_statuses_are_named_per_instance(series):
    with ScriptedSCP(statuses=(0x0000, 0xB000, 0xB007, 0xA700, 0xC001)) as scp:
        report = dimse.send(series["PT"][:5], scp.url(), **FAST)
    assert [o.status for o in report.outcomes] == [STORED, WARNING, WARNING, FAILED, FAILED]
    assert [o.reason for o in report.outcomes] == [
        "", "coercion of data elements (0xB000)", "data set does not match SOP class (0xB007)",
        "out of resources (0xA700)", "cannot understand (0xC001)",
    ]  # fmt: skip
    assert not report.ok


def test_a_refused_sop_class_or_syntax_is_named_and_skipped(series, tmp_path):
    ct_class = read_instance(series["CT"][0]).sop_class_uid
    big_endian = tmp_path / "big-endian.dcm"  # its meta group says Explicit VR Big Endian: no context takes it
    big_endian.write_bytes(
        Path(series["PT"][0]).read_bytes().replace(b"1.2.840.10008.1.2.1\0", b"1.2.840.10008.1.2.2\0", 1)
    )
    with ScriptedSCP(refuse={ct_class}, implicit_only=True) as scp:
        report = dimse.send([series["PT"][1], series["CT"][0], big_endian], scp.url(), **FAST)
    assert [o.status for o in report.outcomes] == [STORED, FAILED, FAILED]
    assert report.outcomes[1].reason == (
        f"not sent: the archive refused its SOP class {ct_class} in Explicit VR Little Endian (abstract syntax not supported)"
    )
    assert report.outcomes[2].reason.endswith("in 1.2.840.10008.1.2.2 (transfer syntaxes not supported)")
    assert len(scp.stores) == 1 and not report.ok


def test_echo_answers_success():
    with ScriptedSCP() as scp:
        assert dimse.echo(scp.url(), timeout=10) == "success (0x0000)"
        assert scp.echoes == 1


@given(
    st.one_of(
        st.binary(max_size=120),
        all_pdus.map(pdu.encode),
        st.tuples(associate_acs(), st.binary(max_size=80)).map(lambda p: pdu.encode(p[0]) + p[1]),
    )
)
@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_fuzzed_answer_gives_a_report_or_our_error(series, scripted_garbage, answer):
    scripted_garbage.answer = answer
    for run in (
        lambda: dimse.echo(scripted_garbage.url(), timeout=5),
        lambda: dimse.send(series["PT"][:1], scripted_garbage.url(), retries=0, timeout=5),
    ):
        try:
            run()
        except SendError as exc:
            assert "\n" not in str(exc)


@pytest.fixture(scope="module")
def scripted_garbage():
    with ScriptedSCP() as scp:
        yield scp


def test_nothing_listening_is_one_line():
    port = free_port()
    with pytest.raises(SendError) as raised:
        dimse.echo(f"dicom://ANY@127.0.0.1:{port}", timeout=5)
    assert (
        str(raised.value)
        == f"dicom://ANY@127.0.0.1:{port}: cannot connect: nothing answers at 127.0.0.1 port {port} (connection refused)"
    )


def test_a_silent_archive_is_one_line_within_the_deadline(series):
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts connections (the backlog) and never answers
        url = f"dicom://SILENT@127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(SendError) as raised:
            dimse.send(series["PT"], url, timeout=30, deadline=0.5, retries=0)
    assert (
        str(raised.value) == f"{url}: the association took longer than the deadline of 0.5 s; 0 of 8 instances stored"
    )


@pytest.mark.parametrize(
    "url, words",
    [("dicom://127.0.0.1:104", "a DIMSE URL is dicom://CALLED_AE@HOST:PORT"),
     ("dicom://A@127.0.0.1:104/x", "has nothing but"),
     ("dicom://ABCDEFGHIJKLMNOPQ@127.0.0.1:104", "the called AE title 'ABCDEFGHIJKLMNOPQ' is not an AE title"),
     ("dicom://A%5CB@127.0.0.1:104", "is not an AE title"),
     ("dicom://A@127.0.0.1:99999", "the port is not a number")],
)  # fmt: skip
def test_a_bad_url_is_named(url, words):
    with pytest.raises(SendError, match=words):
        dimse.target_of(url)


# -- dcmtk's storescp ------------------------------------------------------------------


def _require(tool):
    if shutil.which(tool):
        return
    if os.environ.get("CI"):
        pytest.fail(f"{tool} is not installed (apt-get install dcmtk)")
    pytest.skip(f"{tool} is not installed (apt-get install dcmtk)")


class Storescp:
    """dcmtk's storescp on a free port, writing what it receives into a folder; stopped by pid."""

    def __init__(self, folder, *options):
        _require("storescp")
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        log = open(self.folder.parent / f"{self.folder.name}.log", "wb")
        self.process = subprocess.Popen(["storescp", "--aetitle", "STORESCP", "-od", str(self.folder), *options, str(self.port)],
                                        stdout=log, stderr=log)  # fmt: skip
        log.close()
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"storescp did not start: see {self.folder.parent / f'{self.folder.name}.log'}")
                time.sleep(0.05)

    @property
    def url(self):
        return f"dicom://STORESCP@127.0.0.1:{self.port}"

    def stop(self):
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)

    def received(self):
        return {ds.SOPInstanceUID: ds for ds in map(pydicom.dcmread, sorted(self.folder.iterdir()))}


@pytest.mark.parametrize("options, syntax", [((), EXPLICIT_VR_LITTLE_ENDIAN), (("+xi",), IMPLICIT_VR_LITTLE_ENDIAN)])
def test_storescp_receives_every_file_as_sent(series, tmp_path, options, syntax):
    scp = Storescp(tmp_path / "received", *options)
    try:
        report = dimse.send(all_files(series), scp.url, **FAST)
    finally:
        scp.stop()
    assert report.ok, report.outcomes
    received = scp.received()
    assert len(received) == len(all_files(series))
    for path in all_files(series):
        got = received[read_instance(path).sop_instance_uid]
        assert got.file_meta.TransferSyntaxUID == syntax
        got.file_meta = pydicom.dataset.FileMetaDataset()
        sent = sent_dataset(path)
        sent.file_meta = pydicom.dataset.FileMetaDataset()
        same_dataset(got, sent)


def test_the_send_command_and_echo_reach_storescp(series, tmp_path):
    scp = Storescp(tmp_path / "received")
    try:
        echo = run_cli("echo", scp.url)
        done = run_cli("send", Path(series["PT"][0]).parent, "--url", scp.url, "--calling-ae", "FORGE")
    finally:
        scp.stop()
    assert (echo.returncode, echo.stdout, echo.stderr) == (0, f"echo {scp.url}: success (0x0000)\n", "")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"sent 8 instances to {scp.url}: 8 stored (1 association, ")
    assert len(scp.received()) == 8


def run_cli(*args):
    command = [sys.executable, "-m", "dcmforge.cli", *map(str, args)]
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)


def test_options_of_the_other_protocol_are_refused(series, capsys):
    assert main(["send", str(series["PT"][0]), "--url", "dicom://A@127.0.0.1:1", "--batch", "3"]) == 2
    assert capsys.readouterr().err == "dcmforge send: --batch: not for a dicom:// URL (dicom://A@127.0.0.1:1)\n"
    assert main(["send", str(series["PT"][0]), "--url", "http://127.0.0.1:1/x", "--calling-ae", "ME"]) == 2
    assert capsys.readouterr().err == "dcmforge send: --calling-ae: not for a http(s):// URL (http://127.0.0.1:1/x)\n"
    assert main(["echo", "http://127.0.0.1:1/x"]) == 2
    assert "echo speaks DIMSE" in capsys.readouterr().err


# -- Orthanc's DICOM port --------------------------------------------------------------


@pytest.fixture
def orthanc(tmp_path):
    """An Orthanc of this test alone, its DICOM port checking the called AE title (it may be stopped and started again)."""
    require_orthanc()
    server = Orthanc(tmp_path / "orthanc", dicom_aet="FORGETEST")
    yield server
    server.stop()


def test_orthanc_stores_pet_ct_and_enhanced_pet_and_echoes(series, orthanc):
    orthanc.start()
    assert dimse.echo(orthanc.dimse, timeout=30) == "success (0x0000)"
    report = dimse.send(all_files(series), orthanc.dimse, timeout=30)
    assert report.ok, report.outcomes
    held = {orthanc.get(f"/instances/{i}/simplified-tags")["SOPInstanceUID"] for i in orthanc.get("/instances")}
    assert held == {read_instance(path).sop_instance_uid for path in all_files(series)}
    for path in (series["CT"][0], series["MF"][0]):
        instance = next(
            i
            for i in orthanc.get("/instances")
            if orthanc.get(f"/instances/{i}/simplified-tags")["SOPInstanceUID"] == read_instance(path).sop_instance_uid
        )
        stored = pydicom.dcmread(io.BytesIO(orthanc.get_bytes(f"/instances/{instance}/file")))
        assert stored.PixelData == sent_dataset(path).PixelData


def test_orthanc_refuses_a_wrong_called_ae_in_one_line(series, orthanc):
    orthanc.start()
    wrong = orthanc.dimse.replace("FORGETEST@", "NOTORTHANC@")
    done = run_cli("send", Path(series["PT"][0]).parent, "--url", wrong)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (
        f"dcmforge send: {wrong}: the archive rejected the association: called AE title not recognised "
        "(rejected permanently) (the archive is not 'NOTORTHANC': check CALLED_AE in the URL)\n"
    )
    assert orthanc.get("/instances") == []


def test_orthanc_killed_mid_association_then_a_rerun_completes_the_series(series, orthanc):
    orthanc.start()
    files = series["PT"]

    def kill_at_the_fourth(instances, sent_bytes, total_instances, total_bytes):
        if instances == 3:  # three answered; the fourth is never answered
            orthanc.stop(signal.SIGKILL)

    with pytest.raises(SendError) as raised:
        dimse.send(files, orthanc.dimse, timeout=30, retries=1, backoff=0.05, progress=kill_at_the_fourth)
    assert "\n" not in str(raised.value) and "3 of 8 instances stored" in str(raised.value)
    assert [o.status for o in raised.value.report.outcomes] == [STORED] * 3 + [NOT_SENT] * 5
    orthanc.start()  # the same storage, new ports
    report = dimse.send(files, orthanc.dimse, timeout=30)
    assert report.ok
    assert len(orthanc.get("/instances")) == len(files)


@pytest.mark.parametrize("parallel", [("--jobs", "2"), pytest.param(("--dask", "local:1"), marks=pytest.mark.slow)])
def test_convert_sends_each_series_by_dimse(tmp_path, parallel):
    headers = [dcmforge.write_interfile(tmp_path / f"recon{n}.hv", activity((4, 16, 16), seed=n), spacing=(2, 2, 2))
               for n in (1, 2)]  # fmt: skip
    scp = Storescp(tmp_path / "received")
    try:
        done = run_cli(
            "convert", *headers, "--out", tmp_path / "dicom", *parallel, "--send", scp.url, "--calling-ae", "CONVERTER"
        )
    finally:
        scp.stop()
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(f"sent 4 instances to {scp.url}: 4 stored (1 association") == 2
    written = {read_instance(p).sop_instance_uid for p in (tmp_path / "dicom").rglob("*.dcm")}
    assert set(scp.received()) == written and len(written) == 8


@pytest.fixture
def certificate(tmp_path):
    """A self-signed certificate for 127.0.0.1 (openssl): its key and certificate files."""
    _require("openssl")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)  # fmt: skip
    return key, cert


def test_dicom_over_tls_trusts_a_cafile_and_refuses_an_unknown_certificate(series, tmp_path, certificate):
    key, cert = certificate
    scp = Storescp(tmp_path / "received", "+tls", key, cert, "--ignore-peer-cert")
    url = scp.url.replace("dicom://", "dicoms://")
    try:
        with pytest.raises(SendError) as raised:
            dimse.echo(url, timeout=10)
        echoed = run_cli("echo", url, "--cafile", cert)
        report = dimse.send(all_files(series), url, cafile=cert, **FAST)
    finally:
        scp.stop()
    assert str(raised.value).startswith(f"{url}: the archive's certificate is not trusted (")
    assert str(raised.value).endswith("; use --cafile")
    assert (echoed.returncode, echoed.stdout) == (0, f"echo {url}: success (0x0000)\n")
    assert report.ok and len(scp.received()) == len(all_files(series))
    with pytest.raises(SendError, match="a certificate file is for dicoms:// URLs"):
        dimse.echo(scp.url, cafile=cert)
