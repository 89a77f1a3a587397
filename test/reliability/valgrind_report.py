"""Summarise the Valgrind logs of a memcheck run.

Usage: valgrind_report.py LOG_DIRECTORY SOURCE_DIRECTORY

Reads every valgrind.*.log in LOG_DIRECTORY (one per server process) and
splits the logs into error reports. Each distinct report whose stack passes
through haematite (a frame in haematite.so or in a C file of
SOURCE_DIRECTORY) is printed in full, with the number of times it occurred.
Reports from PostgreSQL alone are counted and listed by their first frames,
because Debian's server is not built with Valgrind support and some of them
are false positives. Exits with status 1 when any report involves
haematite.
"""

import collections
import glob
import os
import re
import sys

FRAME = re.compile(r"^\s+(?:at|by) 0x[0-9A-Fa-f]+: (.*)$")


def read_reports(path):
    """Yield (kind, frames, text) for each error report in one log."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        lines = [re.sub(r"^==\d+== ?", "", line.rstrip("\n"))
                 for line in handle]
    block = []
    for line in lines + [""]:
        if line.strip():
            block.append(line)
            continue
        if block and not block[0].startswith((" ", "Memcheck", "Copyright",
                                              "Using", "Command", "Parent",
                                              "HEAP", "LEAK", "ERROR SUMMARY",
                                              "For ", "Use --", "All heap",
                                              "in use", "total heap",
                                              "Rerun", "Warning")):
            frames = [m.group(1) for m in map(FRAME.match, block) if m]
            if frames:
                yield block[0], frames, "\n".join(block)
        block = []


def is_haematite_frame(frame, source_files):
    if "haematite.so" in frame:
        return True
    match = re.search(r"\(([\w.]+\.c):\d+\)$", frame)
    return bool(match and match.group(1) in source_files)


def main():
    log_directory, source_directory = sys.argv[1], sys.argv[2]
    source_files = {os.path.basename(p)
                    for p in glob.glob(os.path.join(source_directory, "*.c"))}
    logs = sorted(glob.glob(os.path.join(log_directory, "valgrind.*.log")))

    ours = collections.OrderedDict()
    theirs = collections.Counter()
    for path in logs:
        for kind, frames, text in read_reports(path):
            if any(is_haematite_frame(f, source_files) for f in frames):
                key = (kind, tuple(frames))
                if key not in ours:
                    ours[key] = [0, text, path]
                ours[key][0] += 1
            else:
                named = [f.split(" (")[0] for f in frames if "???" not in f]
                theirs[(kind, " < ".join(named[:4]))] += 1

    print(f"Valgrind logs read: {len(logs)} server processes")
    print(f"Reports involving haematite: {sum(v[0] for v in ours.values())} "
          f"({len(ours)} distinct)")
    for count, text, path in ours.values():
        print(f"--- {count} time(s), first in {os.path.basename(path)}:")
        print(text)
    print(f"Reports from PostgreSQL alone (not suppressed): "
          f"{sum(theirs.values())}")
    for (kind, stack), count in theirs.most_common():
        print(f"  {count:5d}  {kind}  [{stack}]")
    return 1 if ours else 0


if __name__ == "__main__":
    sys.exit(main())
