"""What parsing in a ParserProcess (time and memory bounds per file, issue #14 route 6)
costs beside parsing in the refresh's own process, on the same files in one run.

    python benchmarks/parser_process.py                    # the bundled sample docs and both handbooks
    python benchmarks/parser_process.py FOLDER [FOLDER...] # any folders

Every supported file of a folder is read once, then parsed in-process with `load_document`
(the baseline) and through one ParserProcess that serves the whole folder, as a refresh
does; the parser process's start (a fresh interpreter importing the parsing libraries) is
counted in its time. Parsing only: chunking and embedding, which dominate a refresh, are the
same either way. Folders that are absent are skipped.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from knowledge.errors import LoaderError  # noqa: E402
from knowledge.limits import ParseLimits  # noqa: E402
from knowledge.loaders import is_supported, load_document  # noqa: E402
from knowledge.loaders.worker import ParserProcess  # noqa: E402

FOLDERS = [
    ROOT / "knowledge" / "sample_docs",
    ROOT.parent / "shared" / "corpora" / "18f-handbook",
    ROOT.parent / "shared" / "corpora" / "sourcegraph-handbook",
]


def _files(folder: Path) -> list[tuple[Path, bytes]]:
    paths = sorted(path for path in folder.rglob("*") if path.is_file() and is_supported(path))
    return [(path.relative_to(folder), path.read_bytes()) for path in paths]


def _time(parse: object, files: list[tuple[Path, bytes]]) -> tuple[float, int]:
    failed = 0
    started = time.perf_counter()
    for path, data in files:
        try:
            parse(path, data)  # type: ignore[operator]
        except LoaderError:
            failed += 1
    return time.perf_counter() - started, failed


def main(folders: list[Path]) -> None:
    print(f"{'folder':<24} {'files':>6} {'MB':>7} {'in-process s':>13} {'parser process s':>17} {'overhead':>9}")
    for folder in folders:
        if not folder.is_dir():
            print(f"{folder.name:<24} absent, skipped")
            continue
        files = _files(folder)
        megabytes = sum(len(data) for _, data in files) / 1e6
        _time(load_document, files[:20])  # warm the libraries' own caches for the baseline
        baseline, failed = _time(load_document, files)
        with ParserProcess(ParseLimits()) as parser:
            isolated, failed_isolated = _time(parser.parse, files)
        assert failed == failed_isolated, (failed, failed_isolated)
        overhead = (isolated - baseline) / baseline if baseline else float("nan")
        print(
            f"{folder.name:<24} {len(files):>6} {megabytes:>7.1f} {baseline:>13.2f} {isolated:>17.2f} {overhead:>+9.0%}"
        )


if __name__ == "__main__":
    main([Path(argument) for argument in sys.argv[1:]] or FOLDERS)
