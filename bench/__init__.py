"""`make bench`: throughput and memory of the testbed next to what the bare libraries can do.

Every figure is measured against a *ceiling* built from the same pieces minus the testbed: the same
clients, sockets, request count and concurrency, talking to a bare aiocoap resource (or a bare
DTLS terminator) that answers at once. The ratio figure/ceiling says how much the testbed's own
work (registration policy, SQLite, events, codecs) costs; the issue's targets are on those ratios
and on the memory of 10,000 registered endpoints.

Run as ``python -m bench`` (see ``python -m bench --help``); results are printed as a table and
written to ``bench/results/latest.json`` plus a timestamped copy.
"""
