"""A DICOM storage SCP in the test process, for what real servers will not do on demand.

It listens on 127.0.0.1 (a free port), serves one association at a time in a
thread, and follows its script: reject every association with a reason,
accept Implicit VR only, announce a tiny maximum PDU length, answer each
C-STORE with the statuses given, abort or hang up at the Nth C-STORE, or
answer the A-ASSOCIATE-RQ with any bytes at all (for fuzzing). It records what
it received: each C-STORE's command and data set, and the largest PDV.
The PDUs are read with dcmforge's own pdu and command modules; real servers
(storescp, Orthanc) check that those agree with the world.
"""

import socket
import struct
import threading

from dcmforge.sending import command, pdu
from dcmforge.sending.implicit import IMPLICIT_VR_LITTLE_ENDIAN


class ScriptedSCP:
    def __init__(self, *, ae="SCRIPTED", reject=None, implicit_only=False, max_pdu=16384, statuses=(0,),
                 abort_at=None, hang_up_at=None, answer=None, refuse=()):  # fmt: skip
        self.ae = ae
        self.reject = reject  # (result, source, reason) of an A-ASSOCIATE-RJ
        self.implicit_only = implicit_only
        self.max_pdu = max_pdu
        self.statuses = statuses  # the status of the Nth C-STORE is statuses[N % len]
        self.abort_at = abort_at  # the Nth C-STORE (from 1, over all associations) gets an A-ABORT
        self.hang_up_at = hang_up_at  # ... or the connection closed without a word
        self.answer = answer  # bytes sent back for any A-ASSOCIATE-RQ, then the connection closed
        self.refuse = refuse  # SOP classes whose presentation contexts are refused (abstract syntax not supported)
        self.stores = []  # (command elements, data set bytes, presentation context's transfer syntax)
        self.echoes = 0
        self.associations = []  # the AssociateRQ of each association
        self.largest_pdv = 0
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def url(self, ae=None):
        return f"dicom://{ae or self.ae}@127.0.0.1:{self.port}"

    def close(self):
        self.server.shutdown(socket.SHUT_RDWR)  # wakes the accept() of the thread (close alone does not)
        self.server.close()
        self.thread.join(timeout=10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _serve(self):
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(10)
                try:
                    self._associate(connection)
                except (OSError, EOFError, ValueError):
                    pass  # the client went away or sent garbage: the next association is served

    def _read_pdu(self, connection):
        header = _read(connection, 6)
        pdu_type, _, length = struct.unpack(">BBI", header)
        return pdu.decode(pdu_type, _read(connection, length))

    def _associate(self, connection):
        request = self._read_pdu(connection)
        self.associations.append(request)
        if self.answer is not None:
            connection.sendall(self.answer)
            return
        if self.reject:
            connection.sendall(pdu.encode(pdu.AssociateRJ(*self.reject)))
            return
        results = []
        for context in request.contexts:
            offered = context.transfer_syntaxes
            if self.implicit_only:
                chosen = IMPLICIT_VR_LITTLE_ENDIAN if IMPLICIT_VR_LITTLE_ENDIAN in offered else None
            else:
                chosen = offered[0] if offered else None
            result = 3 if context.abstract_syntax in self.refuse else 0 if chosen else 4
            results.append(pdu.ContextResult(context.id, result, chosen or "" if result else chosen))
        syntaxes = {result.id: result.transfer_syntax for result in results}
        accepted = pdu.AssociateAC(
            request.called_ae, request.calling_ae, tuple(results), self.max_pdu, "1.2.3.4", "SCRIPTED"
        )
        connection.sendall(pdu.encode(accepted))
        command_bytes, dataset = bytearray(), bytearray()
        while True:
            message = self._read_pdu(connection)
            if isinstance(message, pdu.ReleaseRQ):
                connection.sendall(pdu.encode(pdu.ReleaseRP()))
                return
            if not isinstance(message, pdu.PData):
                return
            for value in message.values:
                self.largest_pdv = max(self.largest_pdv, len(value.data))
                (command_bytes if value.is_command else dataset).extend(value.data)
                if not value.is_last:
                    continue
                elements = command.decode_command(bytes(command_bytes))
                if value.is_command and elements.get(command.DATA_SET_TYPE) != command.NO_DATA_SET:
                    continue  # the data set follows
                if not self._respond(
                    connection, elements, bytes(dataset), syntaxes.get(value.context_id), value.context_id
                ):
                    return
                command_bytes, dataset = bytearray(), bytearray()

    def _respond(self, connection, elements, dataset, syntax, context_id):
        """Answer one message; False when the script ends the association here."""
        message_id = elements[command.MESSAGE_ID]
        if elements[command.COMMAND_FIELD] == command.C_ECHO_RQ:
            self.echoes += 1
            answer = {command.AFFECTED_SOP_CLASS: command.VERIFICATION_SOP_CLASS, command.COMMAND_FIELD: command.C_ECHO_RSP,
                      command.RESPONDED_MESSAGE_ID: message_id, command.DATA_SET_TYPE: command.NO_DATA_SET,
                      command.STATUS: 0}  # fmt: skip
        else:
            number = len(self.stores) + 1
            if number == self.abort_at:
                self.abort_at = None
                self.stores.append((elements, None, syntax))
                connection.sendall(pdu.encode(pdu.Abort(0, 0)))
                return False
            if number == self.hang_up_at:
                self.hang_up_at = None
                self.stores.append((elements, None, syntax))
                return False
            self.stores.append((elements, dataset, syntax))
            answer = {command.AFFECTED_SOP_CLASS: elements[command.AFFECTED_SOP_CLASS],
                      command.COMMAND_FIELD: command.C_STORE_RSP, command.RESPONDED_MESSAGE_ID: message_id,
                      command.DATA_SET_TYPE: command.NO_DATA_SET, command.STATUS: self.statuses[(number - 1) % len(self.statuses)],
                      command.AFFECTED_SOP_INSTANCE: elements[command.AFFECTED_SOP_INSTANCE]}  # fmt: skip
        data = command.encode_command(answer)
        connection.sendall(pdu.encode(pdu.PData((pdu.PDV(context_id, True, True, data),))))
        return True

    def stored_datasets(self):
        """The data sets of the C-STOREs answered, by Affected SOP Instance UID."""
        return {elements[command.AFFECTED_SOP_INSTANCE]: data for elements, data, _ in self.stores if data is not None}


def _read(connection, count):
    data = bytearray()
    while len(data) < count:
        piece = connection.recv(count - len(data))
        if not piece:
            raise EOFError
        data += piece
    return bytes(data)
