"""Reading what a command shows on a pseudo-terminal (the progress bar is drawn only there)."""

import os


def read_until_closed(master):
    """Everything written to the terminal whose master end is ``master``, until the command closes it."""
    received = bytearray()
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the command ended and closed the terminal
            break
        if not chunk:
            break
        received += chunk
    return bytes(received)
