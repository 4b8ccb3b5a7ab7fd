"""Ends an engine's processes when the process that started them dies without closing them (SIGKILL, the OOM
killer): vLLM's engine core process does not watch its parent, so an orphaned one (and its worker) would keep its
memory, on a GPU its GPU memory, until someone kills it by hand.

A small watchdog process holds the read end of a pipe whose write end only the guarded process holds: when that
process dies, the pipe closes and the watchdog stops the engine's processes (SIGTERM, then SIGKILL after
``GRACE_S``). A normal shutdown dismisses the watchdog first.
"""

from __future__ import annotations

import json
import subprocess
import sys

import psutil

GRACE_S = 2  # what an orphaned engine process is given after SIGTERM before SIGKILL (vLLM's engine core took over
# 10 s to stop on SIGTERM here; its memory is the kernel's to free either way)

_WATCHDOG = f"""
import json, sys
import psutil
watched = json.loads(sys.argv[1])
if sys.stdin.buffer.read() == b"dismissed":
    sys.exit(0)
found = []
for pid, started in watched:
    try:
        process = psutil.Process(pid)
        if process.create_time() == started:  # the same process, not a later one given its number
            found += [process, *process.children(recursive=True)]
    except psutil.Error:
        pass
for process in found:
    try:
        process.terminate()
    except psutil.Error:
        pass
_, alive = psutil.wait_procs(found, timeout={GRACE_S})
for process in alive:
    try:
        process.kill()
    except psutil.Error:
        pass
"""


class OrphanGuard:
    """A watchdog over the processes started since ``before`` (an engine's), for as long as it is not dismissed."""

    def __init__(self, before: set[int]):
        started = [p for p in psutil.Process().children() if p.pid not in before and not _resource_tracker(p)]
        self.watched = [(p.pid, p.create_time()) for p in started]
        self._watchdog = None
        if self.watched:  # its own session: a signal to this process group does not reach it
            self._watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG, json.dumps(self.watched)],
                                              stdin=subprocess.PIPE, start_new_session=True)

    @staticmethod
    def children() -> set[int]:
        """The process ids of this process's children now (``OrphanGuard(before=...)`` takes this)."""
        return {p.pid for p in psutil.Process().children()}

    def dismiss(self) -> None:
        """The engine's processes were shut down normally: the watchdog leaves without stopping anything."""
        if self._watchdog is not None:
            self._watchdog.communicate(b"dismissed")
            self._watchdog = None


def _resource_tracker(process: psutil.Process) -> bool:
    """Python's multiprocessing resource tracker: it ends by itself once its users are gone, after cleaning up
    what they left (shared memory), so it is left alone."""
    try:
        return any("resource_tracker" in part for part in process.cmdline())
    except psutil.Error:
        return True
