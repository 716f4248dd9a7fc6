"""What became of each instance of a send, whatever the protocol: its Outcome and the SendReport of them all."""

from dataclasses import dataclass

STORED = "stored"
WARNING = "stored with a warning"
FAILED = "failed"
NOT_SENT = "not sent"


@dataclass(frozen=True)
class Outcome:
    """What became of one file: STORED, WARNING, FAILED or NOT_SENT, and why when not STORED."""

    path: str
    sop_instance_uid: str
    status: str
    reason: str = ""


@dataclass
class SendReport:
    """Every file's outcome, in the order given, the requests answered (DICOMweb POSTs, DIMSE associations), and the
    bytes of the batches finally answered."""

    url: str
    outcomes: list
    requests: int = 0
    bytes_sent: int = 0
    request_name: str = "request"

    @property
    def ok(self):
        """True only when the server stored every instance without a warning (every answer 200)."""
        return bool(self.outcomes) and all(o.status == STORED for o in self.outcomes)

    def count(self, status):
        return sum(o.status == status for o in self.outcomes)

    def summary(self):
        """One line: how many instances went where, and how each ended."""
        counts = ", ".join(
            f"{self.count(status)} {status}"
            for status in (STORED, WARNING, FAILED, NOT_SENT)
            if self.count(status) or status == STORED
        )
        mib = self.bytes_sent / (1 << 20)
        requests = f"1 {self.request_name}" if self.requests == 1 else f"{self.requests} {self.request_name}s"
        return f"{len(self.outcomes)} instances to {self.url}: {counts} ({requests}, {mib:.1f} MiB)"
