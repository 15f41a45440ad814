"""pairchat benchmarks: ``python -m bench`` (or ``just bench``).

Every figure is compared with a baseline measured in the same run against the
same server process (the trivial ``GET /healthz``, or the same server with no
load), because the machines this runs on are noisy: the ratios are what count.
The server runs as a real ``pairchat-server`` subprocess (granian) over a
temporary data folder, reached on 127.0.0.1 only, and is killed by PID at the end.
"""
