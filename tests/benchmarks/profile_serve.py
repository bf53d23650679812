"""Run a minica command (`minica serve`, say) under cProfile in every thread, and write
the merged statistics when it exits (SIGTERM included: serve exits 0 on it).

    python tests/benchmarks/profile_serve.py OUT.pstats serve --ca ca ...
    python -c 'import pstats; pstats.Stats("OUT.pstats").sort_stats("cumtime").print_stats(40)'

cProfile sees one thread only; `threading.setprofile` starts a profiler in each thread
made after it (the event loop's worker threads, the ACME validators), and the main
thread has its own. Times are each thread's CPU time (time.thread_time), summed over the
threads: what the service spends, not what it waits for (a lock, the disk, the GIL).
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import threading
import time
from types import FrameType
from typing import Any

PROFILES: list[cProfile.Profile] = []
LOCK = threading.Lock()


def profile_this_thread(frame: FrameType, event: str, arg: Any) -> None:
    """The first profile event of a new thread: hand the thread over to a cProfile."""
    sys.setprofile(None)
    profile = cProfile.Profile(time.thread_time)
    with LOCK:
        PROFILES.append(profile)
    profile.enable()


def main() -> None:
    out, arguments = sys.argv[1], sys.argv[2:]
    sys.argv = ["minica", *arguments]
    threading.setprofile(profile_this_thread)
    from minica.cli import main as minica_main

    main_profile = cProfile.Profile(time.thread_time)
    PROFILES.append(main_profile)
    main_profile.enable()
    try:
        minica_main()
    except SystemExit:
        pass
    finally:
        main_profile.disable()
        with LOCK:
            stats = pstats.Stats(*PROFILES)
        stats.dump_stats(out)


if __name__ == "__main__":
    main()
