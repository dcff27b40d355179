"""What a SharePoint poll costs: requests and seconds for the first sync and for a poll with
nothing changed, of a drive of 1,000 files on the local Graph (tests/cloud/graph_server.py,
HTTPS on loopback, the real msal and httpx), beside a naive full listing in the same run.

    python benchmarks/sharepoint_sync.py                  # 1,000 files, no added latency
    python benchmarks/sharepoint_sync.py --latency-ms 50  # each Graph request takes 50 ms more
    python benchmarks/sharepoint_sync.py --files 5000 --json

Naive full listing: what a source without a saved deltaLink does at every poll, the cheapest
complete listing Graph offers: a fresh delta enumeration of the drive (200 items a page) and
one permissions request per item, since sharing may have changed anywhere. Lore's source
lists from its mirror after following the saved deltaLink: one request when nothing changed,
and for a change of n files one delta page plus a permissions read per reported item. Only
listing is measured (no download, parsing or embedding: those are the sync's, and the sync
skips files whose size and modification time did not change).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from knowledge.config import SharePointSourceSettings  # noqa: E402
from knowledge.sources.sharepoint import SharePointSource  # noqa: E402
from tests.cloud.graph_server import (  # noqa: E402
    CLIENT_ID,
    CLIENT_SECRET,
    TENANT,
    Drive,
    GraphState,
    graph_server,
    group_grant,
)


def listing_cost(graph: GraphState, settings: SharePointSourceSettings, state: Path) -> tuple[int, float, int]:
    """(Graph requests, seconds, files listed) of one `list_files` with the state in `state`."""
    source = SharePointSource(settings, state)
    try:
        before, started = len(graph.requests), time.perf_counter()
        files = len(list(source.list_files()))
        return len(graph.requests) - before, time.perf_counter() - started, files
    finally:
        source.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--changed", type=int, default=10, help="files edited before the last poll")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every Graph request")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, graph_server(Path(folder)) as (graph, ca):
        os.environ["SSL_CERT_FILE"] = str(ca)
        drive: Drive = graph.add_drive("Documents", grants=[group_grant("Staff")])
        for number in range(args.files):
            grants = [group_grant("hr")] if number % 10 == 0 else []
            graph.add(drive, f"Team{number % 20:02}/doc{number:05}.md", b"# Doc\n\ntext\n", grants=grants)
        graph.latency = args.latency_ms / 1000
        settings = SharePointSourceSettings(
            kind="sharepoint",
            name="bench",
            tenant_id=TENANT,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,  # type: ignore[arg-type]  # pydantic turns it into a SecretStr
            drives=[drive.id],
            graph_url=f"{graph.base}/v1.0",
            authority_url=graph.base,
        )
        state = Path(folder) / "state"
        rows = {
            "naive full listing, each poll": listing_cost(graph, settings, Path(folder) / "naive"),
            "lore first sync": listing_cost(graph, settings, state),
            "lore poll, nothing changed": listing_cost(graph, settings, state),
        }
        for number in range(args.changed):
            graph.edit(drive, f"Team{number % 20:02}/doc{number:05}.md", b"# Doc\n\nedited\n")
        rows[f"lore poll, {args.changed} files edited"] = listing_cost(graph, settings, state)
    if args.json:
        print(
            json.dumps({name: {"requests": r, "seconds": round(s, 3), "files": f} for name, (r, s, f) in rows.items()})
        )
        return
    naive_requests, naive_seconds, _ = rows["naive full listing, each poll"]
    print(f"{args.files} files in 20 folders, +{args.latency_ms:g} ms a Graph request")
    print(f"{'':34} {'requests':>9} {'seconds':>9} {'files':>7}   naive listing ÷ this (requests, seconds)")
    for name, (requests, seconds, files) in rows.items():
        ratio = f"{naive_requests / max(requests, 1):>8.0f}× {naive_seconds / max(seconds, 1e-3):>7.0f}×"
        print(f"{name:34} {requests:>9} {seconds:>9.2f} {files:>7}   {ratio}")


if __name__ == "__main__":
    main()
