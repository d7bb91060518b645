"""Give NLTK a WordNet 3.0 corpus built from Debian's `wordnet-base` + `wordnet-sense-index`.

NLTK's WordNet reader wants `<nltk_data>/corpora/wordnet/` holding the WordNet 3.0 dict files
(Debian puts them in /usr/share/wordnet) plus a `lexnames` file that Debian does not ship.
`ensure_wordnet()` builds that folder (copies, 36 MB: NLTK refuses symlinks that leave its root
and hard links; plus the standard 45-line lexnames), puts it on
`nltk.data.path`, and is idempotent. No network: nothing is downloaded.

    python -m ctbench.evaluation.wordnet_setup      # prints the nltk_data folder it made
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from ctbench.errors import CtbenchError

DEBIAN_WORDNET = Path("/usr/share/wordnet")
REQUIRED = ("data.noun", "index.noun", "data.verb", "index.verb", "data.adj", "index.adj",
            "data.adv", "index.adv", "noun.exc", "verb.exc", "adj.exc", "adv.exc", "index.sense")

# WordNet 3.0's lexicographer files, in order (lexnames is "NN\tname\tpos-number")
LEXNAMES = ["adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact", "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event", "noun.feeling", "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object", "noun.person", "noun.phenomenon", "noun.plant", "noun.possession", "noun.process", "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time", "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition", "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion", "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather", "adj.ppl"]
_POS_NUMBER = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}


class WordNetMissing(CtbenchError):
    code = "FAILED_PRECONDITION"


def lexnames_text() -> str:
    lines = []
    for i, name in enumerate(LEXNAMES):
        pos = name.split(".")[0]
        lines.append(f"{i:02d}\t{name}\t{_POS_NUMBER[pos]}")
    return "\n".join(lines) + "\n"


def default_nltk_data() -> Path:
    base = os.environ.get("CTBENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ctbench")
    return Path(base) / "nltk_data"


def ensure_wordnet(nltk_data: str | Path | None = None, source: str | Path = DEBIAN_WORDNET) -> Path:
    """Build `<nltk_data>/corpora/wordnet` from `source` if needed; returns the nltk_data folder."""
    import nltk

    nltk_data = Path(nltk_data) if nltk_data else default_nltk_data()
    source = Path(source)
    missing = [name for name in REQUIRED if not (source / name).is_file()]
    if missing:
        raise WordNetMissing(
            f"WordNet files missing from {source}: {', '.join(missing)}. Install them with "
            "`apt-get install -y wordnet-base wordnet-sense-index` (scripts/install-wordnet.sh)."
        )
    corpus = nltk_data / "corpora" / "wordnet"
    corpus.mkdir(parents=True, exist_ok=True)
    for entry in source.iterdir():
        if entry.is_file():
            target = corpus / entry.name
            if target.is_symlink() or (target.exists() and target.stat().st_nlink > 1):
                target.unlink()
            if target.exists() and target.stat().st_size == entry.stat().st_size:
                continue
            shutil.copyfile(entry, target)
    lexnames = corpus / "lexnames"
    if not lexnames.is_file() or lexnames.read_text() != lexnames_text():
        lexnames.write_text(lexnames_text())
    if str(nltk_data) not in nltk.data.path:
        nltk.data.path.insert(0, str(nltk_data))
    return nltk_data


if __name__ == "__main__":
    print(ensure_wordnet())
