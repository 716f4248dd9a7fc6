"""The command's pool for --jobs: spawned worker processes that an interrupt stops.

A module of its own so that a short run of the command, one input in this
process, does not import multiprocessing.
"""

import contextlib
import logging
import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor

from .convert import STOP_SIGNALS, ignore_stop_signals, interrupt_once


class InterruptiblePool(ProcessPoolExecutor):
    """Spawned worker processes that stop on an interrupt: pending inputs cancelled, running ones interrupted.

    Workers ignore SIGINT and SIGTERM but while they run a task: Ctrl-C on a terminal
    reaches every process of the group, and an idle worker must not die of it
    with a traceback. An interrupted conversion removes its temporary folder,
    as in one process. Leaving the block with KeyboardInterrupt (the command
    alone was signalled, or a worker passed its interrupt up) interrupts the
    workers until they have exited.
    """

    def __init__(self, workers):
        context = multiprocessing.get_context("spawn")
        _start_resource_tracker()
        super().__init__(max_workers=workers, mp_context=context, initializer=_start_worker)

    def submit(self, fn, /, *args, **kwargs):
        return super().submit(_interruptible, fn, *args, **kwargs)

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):  # convert.Terminated too
            processes = list((self._processes or {}).values())
            self.shutdown(wait=False, cancel_futures=True)
            while any(process.is_alive() for process in processes):
                for process in processes:  # again and again: a worker may start a queued input after the first
                    if process.is_alive():
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(process.pid, signal.SIGINT)
                for process in processes:
                    process.join(0.1)
        self.shutdown(wait=True, cancel_futures=exc_type is not None)
        return False


def _start_resource_tracker():
    """Start multiprocessing's resource tracker with our stop signals blocked, which it inherits.

    It ignores SIGINT and SIGTERM itself; any other stop signal to the process group (SIGHUP: the
    terminal closed) would kill it, and the pool would print its tracebacks and warnings.
    """
    from multiprocessing import resource_tracker

    others = set(STOP_SIGNALS) - {signal.SIGINT, signal.SIGTERM}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, others)
    try:
        resource_tracker.ensure_running()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _start_worker():
    """A worker ignores the stop signals while idle, and prints no warning itself: each comes back in its
    input's result (ConversionResult.warnings), which the command prints naming the input."""
    ignore_stop_signals()
    logging.getLogger("dcmforge").addHandler(logging.NullHandler())


def _interruptible(fn, *args, **kwargs):
    """fn in a worker, interruptible (SIGINT, SIGTERM) while it runs; the parent gets the KeyboardInterrupt.

    An idle worker ignores both: the pool ends it when the parent stops.
    """
    for number in STOP_SIGNALS:
        signal.signal(number, interrupt_once)
    try:
        return fn(*args, **kwargs)
    finally:
        ignore_stop_signals()
