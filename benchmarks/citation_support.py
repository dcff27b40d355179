"""How strict may the citation check be (bot/core/citations.py, `MIN_CITED_SHARE`)?

The check keeps a citation [n] only when passage n holds at least a share of the content words
of the sentence citing it. Measuring it on the model's own answers needs the model to write
every answer (minutes per question set on 2 cores); this is the cheap stand-in, on a question
set's tuning half (answerable questions only), without any model:

- a correct citation: the chunk of the question's source page that holds the expected fact
  (`must_contain`), cited by (a) the sentence of that chunk holding the fact, as a model that
  copies writes it, and (b) the question's own words followed by the fact ("how much do we get
  for setting up a home office $2,000"), as a model that echoes the asker writes it: the harder
  case, since the asker's words are often not the page's;
- a wrong citation: the same two sentences citing one of the `DISTRACTORS` chunks of other
  pages (not the source, not `also_ok`) sharing most words with the question: the passages a
  keyword retriever would put beside the answer in the prompt.

For each threshold: the share of correct citations kept, and of wrong ones dropped (over all
distractors, and for the one sharing most of the sentence's words).

    python benchmarks/citation_support.py --corpus sourcegraph --half tune
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.core.citations import MIN_CITED_SHARE, claimed_terms  # noqa: E402
from bot.core.text import content_terms, split_sentences  # noqa: E402
from knowledge.chunking import Chunker  # noqa: E402
from knowledge.embeddings import Embedder  # noqa: E402
from knowledge.loaders import is_supported, load_document  # noqa: E402

CORPORA = ROOT.parent / "shared" / "corpora"
SETS = {
    "sourcegraph": (
        CORPORA / "sourcegraph-handbook" / "content",
        ROOT / "benchmarks" / "questions" / "sourcegraph_employees.jsonl",
    ),
    "18f": (CORPORA / "18f-handbook" / "pages", ROOT / "benchmarks" / "questions" / "18f_handbook.jsonl"),
}
THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
DISTRACTORS = 9  # the agent's prompt holds up to ten passages (retrieval.k)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", choices=sorted(SETS), default="sourcegraph")
    parser.add_argument("--half", choices=("tune", "report"), default="tune")
    args = parser.parse_args()
    folder, questions_file = SETS[args.corpus]
    if not folder.is_dir():
        sys.exit(f"{folder} is missing: the corpora live in ../shared/corpora/")

    chunker = Chunker(Embedder().count_tokens)
    chunks: dict[str, list[str]] = {}  # page → its chunks (title, heading path, text)
    for path in sorted(folder.rglob("*")):
        if path.is_file() and is_supported(path):
            document = load_document(path, path.read_bytes())
            page = path.relative_to(folder).as_posix()
            chunks[page] = [
                " ".join([chunk.title, *chunk.heading_path, chunk.text]) for chunk in chunker.chunk(document)
            ]
    terms = {page: [set(content_terms(text)) for text in texts] for page, texts in chunks.items()}

    cases: list[tuple[str, float, list[float]]] = []  # (kind, share in the right chunk, in each distractor)
    for line in questions_file.read_text().splitlines():
        item = json.loads(line)
        if item.get("half") != args.half or not item.get("source") or not item.get("must_contain"):
            continue
        fact = item["must_contain"][0]
        right = next((n for n, text in enumerate(chunks.get(item["source"], [])) if _holds(text, fact)), None)
        if right is None:
            continue
        chunk_text = chunks[item["source"]][right]
        sentence = next((s for s in split_sentences(chunk_text) if _holds(s, fact)), chunk_text)
        excluded = {item["source"], *item.get("also_ok", [])}
        question = set(content_terms(item["question"]))
        distractors = sorted(
            (found for page, found_list in terms.items() if page not in excluded for found in found_list),
            key=lambda found: len(question & found),
            reverse=True,
        )[:DISTRACTORS]
        for kind, cited in (("copied", sentence), ("asker's words", f"{item['question']} {fact}")):
            for rule, said in (
                ("all", set(content_terms(cited))),
                ("beyond q", claimed_terms(cited, item["question"])),
            ):
                if not said:
                    continue
                in_right = len(said & terms[item["source"]][right]) / len(said)
                in_wrong = [len(said & found) / len(said) for found in distractors]
                cases.append((f"{kind}, {rule}", in_right, in_wrong))

    print(f"{args.corpus} {args.half} half: {len(cases) // 4} questions (answerable, fact found in the source page)")
    print(f"{'threshold':>10} {'kind':>24} {'right kept':>11} {'wrong dropped':>14} {'closest wrong dropped':>22}")
    for threshold in THRESHOLDS:
        for kind in dict.fromkeys(k for k, _, _ in cases):
            mine = [(r, w) for k, r, w in cases if k == kind]
            kept = sum(r >= threshold for r, _ in mine) / len(mine)
            wrong = [share for _, shares in mine for share in shares]
            dropped = sum(share < threshold for share in wrong) / len(wrong)
            closest = sum(max(shares) < threshold for _, shares in mine) / len(mine)
            mark = "  <- MIN_CITED_SHARE" if abs(threshold - MIN_CITED_SHARE) < 1e-9 else ""
            print(f"{threshold:>10.1f} {kind:>24} {kept:>11.2f} {dropped:>14.2f} {closest:>22.2f}{mark}")


def _holds(text: str, needle: str) -> bool:
    return " ".join(needle.lower().split()) in " ".join(text.lower().split())


if __name__ == "__main__":
    main()
