"""Paraphrases of a setting's system prompt, made by a model and kept as versioned data.

`python -m evals paraphrase --setting S --n N --model-role paraphraser=MODEL` renders the
setting's system prompt (`load_scenario(setting, variant)`), splits it into its parts (the
instructions before the worked examples, the examples, the instructions after them), asks
the paraphraser to rewrite each part on its own, checks each rewrite (`rejection`) and draws
again where one fails, then joins the parts in the original order. Each paraphrase is two
files: `NAME.md`, the prompt itself, usable byte for byte as `-T system_prompt=NAME.md`, and
`NAME.yaml`, its provenance. A study re-runs the same files: nothing here writes over a
paraphrase that exists (see docs/paraphrases.md). A run of one records its set's id
(`set_id`, in `prompt_origin` `paraphrase:SETID`), so that the analysis never pools sets.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from evals.errors import ConfigError
from evals.scenario import SCENARIOS_DIR, load_scenario

PARAPHRASES_DIR = SCENARIOS_DIR / "paraphrases"
"""Where paraphrases live: `SETTING/` for the default variant, `SETTING/VARIANT/` else."""
INSTRUCTIONS = PARAPHRASES_DIR / "instructions.md"
"""What the paraphraser is asked, with `{{part}}` and `{{text}}` filled in."""
ROLE = "paraphraser"
ORIGIN = "paraphrase"
"""The `prompt_origin` of a paraphrase condition (`-T prompt_origin=paraphrase`). A run
records it with its set's id, `paraphrase:SETID` (`paraphrase_origin`)."""
SET_ID_LENGTH = 8
"""Hex digits of a set's id (`set_id`)."""
MIN_LENGTH = 0.7
"""A rewrite shorter than this share of its source part (in characters) is rejected: the
paper's rule, against summaries that drop content."""
MAX_REDRAWS = 5
CANONICAL = "default"
"""The name of a study's canonical condition, which its paraphrases are compared with (the
analysis's canonical label, analysis.paraphrases.CANONICAL)."""
SET_KEYS = (
    "setting",
    "variant",
    "paraphraser",
    "seed",
    "source_sha256",
    "instructions_sha256",
    "temperature",
    "max_tokens",
    "min_length",
)
"""What every paraphrase of one set shares: the prompt it rewrites, the paraphraser and every
setting it was asked with. Within a set only the index (and what follows from it: the name,
the seeds, the text, the date) differs. `max_redraws` is left out: raising it to finish a
set changes no paraphrase that passed."""
PROVENANCE_KEYS = (*SET_KEYS, "index", "date", "prompt_sha256", "scratchpad")
"""The provenance fields a paraphrase must have to be run, by a study or as
`-T prompt_origin=paraphrase` (`paraphrase_origin`)."""
SOURCE_LABEL = " (of {variant})"
"""Added to a paraphrase condition's name where the variant it runs with is not the one it
paraphrases (that variant changes prompt text, which the file replaces): the analysis reads
the source variant from it (analysis.paraphrases.source_variants)."""

# An XML-like protocol tag as the prompts write them: <TAG>, </TAG> or <TAG/>.
TAG = re.compile(r"</?[A-Za-z_][A-Za-z0-9_]*\s*/?>")
TIER_TAG = "<is_free_tier_user>"
TIER_VALUES = re.compile(r"\b(True|False)\b")
_REPLY = re.compile(r"<paraphrase>(.*)</paraphrase>", re.DOTALL)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_FIELD = re.compile(r"\{\{(part|text)\}\}")
_MARKUP = re.compile(r"\[/?(?:bold|blue|red|green|yellow|italic|dim)\]")

PART_WORDS = {
    "instructions": "the opening part of the instructions that an AI assistant is given "
    "(its system prompt)",
    "examples": "the worked examples of the instructions that an AI assistant is given: "
    "example conversations, with the assistant's reasoning and its answers",
    "instructions_after": "the closing part of the instructions that an AI assistant is given "
    "(its system prompt), which follows a set of worked examples",
}


class ParaphraseError(ConfigError):
    """A paraphrase could not be made or read; shown as one line."""


class IncompleteSet(ParaphraseError):
    """Some paraphrases of the set were not made (a part hit the cap of redraws, or the
    paraphraser failed); those made are written and kept."""


@dataclass(frozen=True)
class Part:
    """One part of the system prompt, paraphrased on its own: the text between `lead` and
    `trail` (the blank lines around it, kept as they are so the parts join as before)."""

    name: str
    """`instructions`, `examples` or `instructions_after`."""
    lead: str
    text: str
    trail: str


def split_prompt(setting: str, variant: str = "default") -> tuple[str, list[Part]]:
    """The rendered system prompt and its parts, in order; joined, the parts are the prompt.

    The examples are the `examples` section: what dropping that section (variant
    `no_examples`) removes from the rendered prompt. Everything else is instructions.
    """
    full = load_scenario(setting, variant).system_prompt
    without = load_scenario(setting, f"{variant}+no_examples").system_prompt
    start, end = _removed(full, without)
    pieces = [("instructions", full[:start]), ("examples", full[start:end])]
    pieces.append(("instructions_after" if start < end else "instructions", full[end:]))
    parts = [_part(name, text) for name, text in pieces if text.strip()]
    if "".join(p.lead + p.text + p.trail for p in parts) != full:  # never a changed prompt
        raise ParaphraseError(f"setting {setting}, variant {variant}: the prompt did not split")
    return full, parts


def _removed(full: str, without: str) -> tuple[int, int]:
    """Where `full` holds the examples that `without` lacks: (start, end) of the section's
    text, without the blank lines that join it to its neighbours; (n, n) when none."""
    removed = len(full) - len(without)
    if removed == 0:
        return len(full), len(full)
    prefix = next(
        (i for i, (a, b) in enumerate(zip(full, without, strict=False)) if a != b), len(without)
    )
    # The section starts at a section boundary at or before the first difference; where it
    # repeats the text after it, several places match, and the boundary is the right one.
    for start in range(prefix, -1, -1):
        if full[:start] + full[start + removed :] != without:
            continue
        chunk = full[start : start + removed]
        at_boundary = start == 0 or full[:start].endswith("\n\n")
        if at_boundary and chunk.endswith("\n\n") and chunk.strip("\n") == chunk[:-2]:
            return start, start + removed - 2
        if chunk.startswith("\n\n") and full[start + removed :] == "\n":  # the last section
            return start + 2, start + removed
    raise ParaphraseError("cannot find the examples section in the rendered prompt")


def _part(name: str, text: str) -> Part:
    core = text.strip()
    lead = text[: len(text) - len(text.lstrip())]
    return Part(name, lead, core, text[len(lead) + len(core) :])


# What a rewrite must keep --------------------------------------------------------------------


def protocol_tags(text: str) -> Counter[str]:
    """Every `<TAG>`, `</TAG>` and `<TAG/>` of `text`, with how often it occurs."""
    return Counter(TAG.findall(text))


def rejection(source: str, rewrite: str, min_length: float = MIN_LENGTH) -> str | None:
    """Why `rewrite` cannot stand for `source`, in a few words; None when it can.

    A rewrite is rejected when it
    - has fewer of any protocol tag than the source (the multiset of tags, each spelled
      exactly: the source's must all be there, as often; more is allowed, prose may name a
      tag once more);
    - where the source names the `<is_free_tier_user>` tag, writes the values `True` or
      `False` (whole words) fewer times than the source;
    - is shorter than `min_length` of the source, in characters (both stripped);
    - is the source itself (ignoring whitespace): no paraphrase at all.
    """
    have = protocol_tags(rewrite)
    lost = [
        f"{tag} ({count} in the source, {have[tag]} here)"
        for tag, count in protocol_tags(source).items()
        if have[tag] < count
    ]
    if lost:
        return "lost tag " + ", ".join(lost)
    if TIER_TAG in source:
        want, got = Counter(TIER_VALUES.findall(source)), Counter(TIER_VALUES.findall(rewrite))
        lost = [f"{v} ({want[v]} in the source, {got[v]} here)" for v in want if got[v] < want[v]]
        if lost:
            return "lost tier value " + ", ".join(lost)
    if len(rewrite.strip()) < min_length * len(source.strip()):
        return (
            f"too short: {len(rewrite.strip()):,} characters, under {min_length:.0%} of the "
            f"source's {len(source.strip()):,}"
        )
    if " ".join(rewrite.split()) == " ".join(source.split()):
        return "the source unchanged"
    return None


def request_text(part: Part, instructions: str) -> str:
    """The paraphraser's request for one part: the instruction file, filled in once (a
    `{{...}}` inside the part is never read again)."""
    values = {"part": PART_WORDS[part.name], "text": part.text}
    return _FIELD.sub(lambda m: values[m.group(1)], instructions)


def read_reply(reply: str) -> str | None:
    """The paraphrase between `<paraphrase>` and `</paraphrase>` (the first opening tag to
    the last closing one), stripped; None when the reply has no such block."""
    found = _REPLY.search(reply)
    return found.group(1).strip() if found else None


# Making paraphrases ---------------------------------------------------------------------------


@dataclass
class Request:
    """What to make: `n` paraphrases of one setting and variant's system prompt."""

    setting: str
    n: int
    paraphraser: str
    variant: str = "default"
    seed: int = 0
    out: Path | None = None
    prefix: str = "p"
    force: bool = False
    temperature: float | None = 1.0
    max_tokens: int | None = None
    max_redraws: int = MAX_REDRAWS
    min_length: float = MIN_LENGTH

    @property
    def folder(self) -> Path:
        return self.out if self.out is not None else default_folder(self.setting, self.variant)

    def names(self) -> list[str]:
        width = max(2, len(str(self.n)))
        return [f"{self.prefix}{i:0{width}d}" for i in range(1, self.n + 1)]


@dataclass
class Drawn:
    """One part's accepted rewrite and the draws it took."""

    text: str
    seeds: list[int]
    rejected: list[str] = field(default_factory=list)


class CapReached(Exception):
    def __init__(self, name: str, part: str, draws: int, last: str) -> None:
        drawn = f"{draws} draw{'s' * (draws != 1)}"
        super().__init__(f"{name}, part {part}: {drawn} rejected (last: {last})")


def shown(path: Path) -> str:
    """A path as a message shows it: from the working directory where it lies under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def default_folder(setting: str, variant: str = "default") -> Path:
    return (
        PARAPHRASES_DIR / setting if variant == "default" else PARAPHRASES_DIR / setting / variant
    )


def make_paraphrases(
    request: Request, progress: Callable[[str], None] = lambda line: None
) -> list[Path]:
    """Write the request's paraphrases that are not there yet; return every `.md` of the set.

    Refused before any request (one line, `ParaphraseError`): a paraphrase of the set that
    exists from another source prompt, paraphraser or seed, or without its provenance,
    unless `force`. One that exists from the same ones is kept. A paraphrase whose part
    hits the cap of redraws is not written; the others are, and the error then names them.
    """
    variant = _check_request(request)
    source, parts = split_prompt(request.setting, variant)
    digest = sha256(source)
    folder = request.folder
    instructions = INSTRUCTIONS.read_text(encoding="utf-8")
    wanted = {
        "setting": request.setting,
        "variant": variant,
        "paraphraser": request.paraphraser,
        "seed": request.seed,
        "source_sha256": digest,
        "instructions_sha256": sha256(instructions),
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
        "min_length": request.min_length,
    }
    todo, kept = [], []
    for index, name in enumerate(request.names(), start=1):
        if _existing(folder / f"{name}.md", request, wanted, index):
            kept.append(name)
        else:
            todo.append((index, name))
    _check_folder(folder, request, wanted)
    for name in kept:
        progress(f"kept {shown(folder / name)}.md (made before with the same settings)")
    if not todo:
        return [folder / f"{name}.md" for name in request.names()]

    from inspect_ai.model import GenerateConfig, get_model

    config = GenerateConfig(temperature=request.temperature, max_tokens=request.max_tokens)
    try:
        model = get_model(request.paraphraser, config=config)
    except Exception as error:  # a missing key or package, said by the provider
        raise ParaphraseError(_failed(request, error)) from error
    scratchpad = load_scenario(request.setting, variant).scratchpad
    written: list[str] = []

    async def one(index: int, name: str) -> None:
        drawn = await asyncio.gather(
            *(_draw(model, request, index, name, k, p, instructions) for k, p in enumerate(parts))
        )
        text = "".join(p.lead + d.text + p.trail for p, d in zip(parts, drawn, strict=True))
        provenance = _provenance(
            request, variant, scratchpad, index, name, digest, text, parts, drawn
        )
        _write(folder, name, text, provenance)
        written.append(name)
        redraws = provenance["redraws"]
        progress(f"wrote {shown(folder / name)}.md ({redraws} redraw{'s' * (redraws != 1)})")

    async def every() -> list[BaseException | None]:
        return await asyncio.gather(*(one(i, n) for i, n in todo), return_exceptions=True)

    failures = [error for error in asyncio.run(every()) if error is not None]
    if failures:
        first = failures[0]
        if not isinstance(first, CapReached | ParaphraseError):
            raise first
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        done = sorted(written + kept)
        verb = "is" if len(done) == 1 else "are"
        have = (
            f"{', '.join(done)} {verb} in {shown(folder)}"
            if done
            else f"nothing was written to {shown(folder)}"
        )
        again = " (or raise --max-redraws)" if isinstance(first, CapReached) else ""
        raise IncompleteSet(
            f"{first}{more}; {have}; run the same command again to make the rest{again}"
        )
    return [folder / f"{name}.md" for name in request.names()]


def _check_request(request: Request) -> str:
    """The request's variant, checked: refused in one line where a paraphrase would not be
    the same condition run with another system prompt."""
    from evals.preflight import model_problem
    from evals.scenario import list_settings, list_variants

    _known("--setting", request.setting, list(list_settings()), "setting")
    variant = "+".join(v.strip() for v in (request.variant or "default").split("+"))
    for name in variant.split("+"):
        _known("--variant", name, list(list_variants()), "variant")
    if (problem := model_problem(request.paraphraser, f"--model-role {ROLE}=")) is not None:
        raise ParaphraseError(problem)
    if not _NAME.fullmatch(request.prefix):
        raise ParaphraseError(
            f"--prefix {request.prefix!r}: use letters, digits, '-' and '_' (a file name)"
        )
    source = load_scenario(request.setting, variant)
    run = load_scenario(request.setting, run_variant(source.scratchpad))
    if source.facts.get("trained_tier") not in (None, "free-tier"):
        raise ParaphraseError(
            f"--variant {variant} trains the paid tier; a prompt file cannot tell the analysis "
            "so (it takes the free tier as trained): paraphrase a variant that trains the free "
            "tier"
        )
    # A paraphrase runs as a prompt file with the plain variant: the rest must not differ.
    for attribute in ("user_turn_template", "framings", "contrasts", "prefill"):
        if getattr(source, attribute, None) != getattr(run, attribute, None):
            raise ParaphraseError(
                f"--variant {variant} changes more than the system prompt ({attribute}), which "
                "a paraphrase, run as a prompt file, cannot carry: paraphrase a variant that "
                "changes only the system prompt"
            )
    return variant


def run_variant(scratchpad: bool) -> str:
    """The variant a paraphrase runs with: its prompt file replaces all the prompt text, so
    only the scratchpad mode of its source is left to set."""
    return "default" if scratchpad else "scratchpad_off"


def _known(option: str, value: str, known: list[str], what: str) -> None:
    if value in known:
        return
    import difflib

    close = difflib.get_close_matches(value, known, n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    raise ParaphraseError(f"{option} {value}: unknown {what}{hint} ({what}s: {', '.join(known)})")


NEW_SET = "a folder holds one set: make a new set in a new folder (--out DIR)"


def _existing(md: Path, request: Request, wanted: dict[str, Any], index: int) -> bool:
    """Whether `md` is there already from the same request (kept); False when it is not
    there or is to be replaced (`force`). Any other file of its name is refused: one made
    with any other setting of `SET_KEYS`, or as another paraphrase of the set."""
    sidecar = md.with_suffix(".yaml")
    if request.force or not (md.exists() or sidecar.exists()):
        return False
    refuse = f"; paraphrases are versioned data: {NEW_SET}, or pass --force to replace it"
    if not (md.is_file() and sidecar.is_file()):
        missing = sidecar if md.exists() else md
        raise ParaphraseError(f"{md.with_suffix('')}: {missing.name} is missing{refuse}")
    made = read_provenance(md)
    differ = differences(made, wanted | {"index": index})
    if differ:
        raise ParaphraseError(
            f"{md} exists, made with another {', '.join(differ)} ({made.get('paraphraser')}, "
            f"{made.get('date')}){refuse}"
        )
    return True


def _check_folder(folder: Path, request: Request, wanted: dict[str, Any]) -> None:
    """Refuse, before any request, to add to a folder whose other paraphrases (those the
    request does not name) are of another set, or are already the request's paraphrases
    under other names: a study runs a folder as one set."""
    if not folder.is_dir():
        return
    names = request.names()
    mine = set(range(1, len(names) + 1))
    others = [md for md in sorted(folder.glob("*.md")) if md.stem not in names]
    foreign: dict[str, list[str]] = {}
    twice = []
    for md in others:
        try:
            made = read_provenance(md)
        except ParaphraseError as error:
            raise ParaphraseError(f"{error}; {NEW_SET}") from None
        differ = differences(made, wanted)
        if differ:
            foreign.setdefault(", ".join(differ), []).append(md.name)
        elif made.get("index") in mine:
            twice.append(f"{md.name} (paraphrase {made['index']}, as {names[made['index'] - 1]})")
    replaced = f" (--force replaces only {_span(names)})" if request.force else ""
    if foreign:
        how, files = next(iter(foreign.items()))
        more = sum(len(f) for f in foreign.values()) - len(files)
        listed = ", ".join(files) + (f" and {more} more" if more else "")
        raise ParaphraseError(
            f"{folder} holds paraphrases of another set ({listed}: made with another {how})"
            f"{replaced}; {NEW_SET}"
        )
    if twice:
        raise ParaphraseError(
            f"{folder} holds this set's paraphrases under other names ({', '.join(twice)}); "
            f"{NEW_SET}"
        )


def _span(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{names[0]} to {names[-1]}"


def differences(made: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """How the provenance `made` differs from `wanted`, one phrase per field: `seed (0, not
    7)`, or `instructions file` for a digest."""
    found = []
    for key, value in wanted.items():
        have = made.get(key)
        if have == value:
            continue
        if key.endswith("_sha256"):
            found.append({"source_sha256": "source prompt"}.get(key, "instructions file"))
        else:
            found.append(f"{key.replace('_', ' ')} ({_plain(have)}, not {_plain(value)})")
    return found


def _plain(value: Any) -> str:
    return "unset" if value is None else str(value)


async def _draw(
    model: Any, request: Request, index: int, name: str, k: int, part: Part, instructions: str
) -> Drawn:
    """Draw rewrites of one part until one passes, up to 1 + `max_redraws` draws."""
    from inspect_ai.model import ChatMessageUser, GenerateConfig

    drawn = Drawn("", [])
    message = ChatMessageUser(content=request_text(part, instructions))
    for draw in range(request.max_redraws + 1):
        seed = _request_seed(request.seed, index, k, draw)
        drawn.seeds.append(seed)
        try:
            output = await model.generate([message], config=GenerateConfig(seed=seed))
        except Exception as error:  # an API error Inspect did not retry away
            raise ParaphraseError(_failed(request, error)) from error
        text = read_reply(output.completion)
        if output.stop_reason == "max_tokens":
            reason = "cut off at the token limit (raise --max-tokens)"
        elif text is None:
            reason = "no <paraphrase>...</paraphrase> block in the reply"
        else:
            reason = rejection(part.text, text, request.min_length)
        if reason is None and text is not None:
            drawn.text = text
            return drawn
        drawn.rejected.append(f"draw {draw + 1}: {reason}")
    raise CapReached(name, part.name, request.max_redraws + 1, drawn.rejected[-1].split(": ", 1)[1])


def _failed(request: Request, error: Exception) -> str:
    """The paraphraser's error in one line: its lines joined, without Inspect's rich markup."""
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    text = _MARKUP.sub("", text).removeprefix("ERROR: ")
    kind = "" if type(error).__name__ == "PrerequisiteError" else f"{type(error).__name__}: "
    return f"--model-role {ROLE}={request.paraphraser}: {kind}{text}".rstrip(": ")


def _request_seed(seed: int, index: int, part: int, draw: int) -> int:
    """Each request's seed, from --seed, the paraphrase's number, the part and the draw: the
    same command asks the same (where the provider honours seeds)."""
    key = f"{seed}:{index}:{part}:{draw}".encode()
    return int(hashlib.sha256(key).hexdigest()[:7], 16)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _provenance(
    request: Request,
    variant: str,
    scratchpad: bool,
    index: int,
    name: str,
    digest: str,
    text: str,
    parts: Sequence[Part],
    drawn: Sequence[Drawn],
) -> dict[str, Any]:
    return {
        "name": name,
        "setting": request.setting,
        "variant": variant,
        "paraphraser": request.paraphraser,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": request.seed,
        "index": index,
        "source_sha256": digest,
        "prompt_sha256": sha256(text),
        "instructions_sha256": sha256(INSTRUCTIONS.read_text(encoding="utf-8")),
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
        "redraws": sum(len(d.seeds) - 1 for d in drawn),
        "max_redraws": request.max_redraws,
        "min_length": request.min_length,
        "scratchpad": scratchpad,
        "parts": [
            {
                "part": part.name,
                "source_chars": len(part.text),
                "chars": len(d.text),
                "redraws": len(d.seeds) - 1,
                "seeds": d.seeds,
                "rejected": d.rejected,
            }
            for part, d in zip(parts, drawn, strict=True)
        ],
    }


def _write(folder: Path, name: str, text: str, provenance: dict[str, Any]) -> None:
    """The prompt's exact bytes, then its provenance, each written whole (a temporary file
    renamed), so an interruption never leaves half a file."""
    folder.mkdir(parents=True, exist_ok=True)
    header = (
        f"# Provenance of {name}.md, written by `python -m evals paraphrase`. The .md is the "
        "prompt, byte for byte.\n"
    )
    for path, data in (
        (folder / f"{name}.md", text.encode("utf-8")),
        (folder / f"{name}.yaml", (header + yaml.safe_dump(provenance, sort_keys=False)).encode()),
    ):
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_bytes(data)
        os.replace(temporary, path)


# Reading paraphrases ------------------------------------------------------------------------------


def read_provenance(md: Path) -> dict[str, Any]:
    """The provenance of the paraphrase `md` (its `.yaml` beside it), checked: every field
    of `PROVENANCE_KEYS` present, and the `.md` still the text it records."""
    sidecar = md.with_suffix(".yaml")
    try:
        made = yaml.safe_load(sidecar.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParaphraseError(f"{md}: no provenance file {sidecar.name} beside it") from None
    except (OSError, yaml.YAMLError) as error:
        first = str(error).splitlines()[0]
        raise ParaphraseError(f"{sidecar}: cannot be read ({first})") from None
    if not isinstance(made, dict):
        raise ParaphraseError(f"{sidecar}: expected a mapping of provenance fields")
    missing = [key for key in PROVENANCE_KEYS if key not in made]
    if missing:
        raise ParaphraseError(f"{sidecar}: missing provenance field(s) {', '.join(missing)}")
    if md.is_file() and sha256(_read_text(md)) != made["prompt_sha256"]:
        raise ParaphraseError(
            f"{md}: its text is not the one {sidecar.name} records (edited after it was "
            "made?); a paraphrase runs only as it was made: restore it, or make a new set"
        )
    return made


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise ParaphraseError(f"{path} is not UTF-8: {error}") from None


def resolve_folder(value: str | Path) -> Path:
    """A study's paraphrase folder: an absolute path as it is, else one under
    scenarios/paraphrases/."""
    path = Path(value)
    return path if path.is_absolute() else PARAPHRASES_DIR / path


def paraphrase_files(folder: Path) -> list[Path]:
    """The paraphrases of `folder` (its `*.md`, by name), each with checked provenance, and
    all of one set (`check_one_set`)."""
    if not folder.is_dir():
        return []
    files = sorted(folder.glob("*.md"))
    check_one_set(files, str(folder))
    return files


def check_one_set(files: Sequence[Path], where: str) -> None:
    """Refuse, in one line naming the files, paraphrases that are not one set: made from
    another prompt, by another paraphraser or with another setting (`SET_KEYS`), or two of
    the same paraphrase (one index). Their spread would pool unlike things."""
    sets: dict[tuple[str, ...], list[tuple[Path, dict[str, Any]]]] = {}
    for md in files:
        made = read_provenance(md)
        sets.setdefault(_set_values(made), []).append((md, made))
    if len(sets) > 1:
        (first, *_), (second, *_) = list(sets.values())[:2]
        how = ", ".join(differences(second[1], {k: first[1][k] for k in SET_KEYS}))
        groups = [", ".join(_name(md, where) for md, _ in group) for group in sets.values()]
        raise ParaphraseError(
            f"{where} mixes {len(sets)} sets of paraphrases ({'; '.join(groups)}), made with "
            f"another {how}; a study runs one set, never several pooled: keep each set in its "
            "own folder (python -m evals paraphrase --out DIR) and run one"
        )
    indices: dict[Any, list[Path]] = {}
    for md, made in next(iter(sets.values()), []):
        indices.setdefault(made["index"], []).append(md)
    twice = [mds for mds in indices.values() if len(mds) > 1]
    if twice:
        listed = " and ".join(_name(md, where) for md in twice[0])
        raise ParaphraseError(
            f"{where} holds the same paraphrase twice ({listed}: both paraphrase "
            f"{read_provenance(twice[0][0])['index']} of one set); run each paraphrase once"
        )


def _set_values(made: dict[str, Any]) -> tuple[str, ...]:
    """What makes a paraphrase's set: its `SET_KEYS` values, each as Python writes it (so
    that `1` and `1.0` differ, as the provenance does)."""
    return tuple(repr(made[key]) for key in SET_KEYS)


def set_id(made: dict[str, Any]) -> str:
    """A set's id: the first `SET_ID_LENGTH` hex digits of the sha256 of its `SET_KEYS`
    values, the fields `check_one_set` compares, so two paraphrases have one id exactly
    when they are of one set. A run records it (`paraphrase:SETID`), and the analysis
    gives each set its own spread: logs of several sets are never pooled."""
    text = "\n".join(
        f"{key}={value}" for key, value in zip(SET_KEYS, _set_values(made), strict=True)
    )
    return sha256(text)[:SET_ID_LENGTH]


def set_origin(made: dict[str, Any]) -> str:
    """The `prompt_origin` a run of a paraphrase of this provenance records:
    `paraphrase:SETID`."""
    return f"{ORIGIN}:{set_id(made)}"


def named_set(prompt_origin: object) -> str | None:
    """The set id a `prompt_origin` names: `SETID` of `paraphrase:SETID`, `""` for a plain
    `paraphrase`, None for any other origin (not a paraphrase)."""
    if not isinstance(prompt_origin, str):
        return None
    kind, colon, named = prompt_origin.partition(":")
    if kind != ORIGIN:
        return None
    return named.strip() if colon else ""


def check_paraphrase_file(path: str | Path) -> dict[str, Any]:
    """The provenance of the paraphrase file `path`, checked as a study checks it: the file
    there, its `.yaml` beside it with every field of `PROVENANCE_KEYS`, and its text the one
    that `.yaml`'s `prompt_sha256` records (`read_provenance`). ParaphraseError, one line,
    else."""
    md = Path(path)
    if not md.is_file():
        raise ParaphraseError(f"{md}: no such paraphrase file")
    return read_provenance(md)


def paraphrase_origin(
    prompt_origin: str | None, system_prompt: str | Path | None, setting: str | None = None
) -> str | None:
    """`-T prompt_origin` as a run records it, checked where it says the prompt is a
    paraphrase; every other origin (or none) is returned as it is.

    `paraphrase` (as docs/paraphrases.md runs one by hand) or `paraphrase:SETID` (as a
    study passes it) needs `system_prompt`, a paraphrase as it was made
    (`check_paraphrase_file`: with its provenance, unedited), of `setting` where given and
    of set SETID where named. It is recorded as `paraphrase:SETID`, with the file's own set
    id, which the analysis groups by. ParaphraseError, one line naming the option, else:
    an edited or hand-written file never counts as a paraphrase.
    """
    named = named_set(prompt_origin)
    if prompt_origin is None or named is None:
        return prompt_origin
    option = f"-T prompt_origin={prompt_origin}"
    if system_prompt is None:
        raise ParaphraseError(
            f"{option}: give the paraphrase file, -T system_prompt=FILE.md (made by python -m "
            "evals paraphrase; docs/paraphrases.md)"
        )
    try:
        made = check_paraphrase_file(system_prompt)
    except ParaphraseError as error:
        raise ParaphraseError(f"{option}: {error}") from None
    if setting is not None and made["setting"] != setting:
        raise ParaphraseError(
            f"{option}: {system_prompt} paraphrases setting {made['setting']}, not "
            f"-T setting={setting}: run it with -T setting={made['setting']}"
        )
    mine = set_id(made)
    if named and named != mine:
        raise ParaphraseError(
            f"{option}: {system_prompt} is of set {mine}, not {named} (give -T "
            f"prompt_origin={ORIGIN}: the run records the file's own set)"
        )
    return f"{ORIGIN}:{mine}"


def _name(md: Path, where: str) -> str:
    """A file as a message about `where` names it: by name where `where` is its folder."""
    return md.name if str(md.parent) == where else str(md)


def variant_key(variant: str) -> str:
    """A variant as a comparison reads it: its parts in order of name, `default` only when
    there is no other (`default+no_examples` is `no_examples`)."""
    parts = {p.strip() for p in str(variant or "default").split("+")} - {"default", ""}
    return "+".join(sorted(parts)) or "default"


def runs_with(made: dict[str, Any], md: Path) -> tuple[str, str]:
    """(the variant a paraphrase runs with, what its condition's name adds). Its source
    variant where that changes no prompt text (the file replaces all of it): the run then
    names the variant (`VARIANT@FILE#DIGEST`). Else the plain variant of its scratchpad mode
    (`run_variant`), and the name adds `SOURCE_LABEL`, from which the analysis reads the
    variant it paraphrases."""
    from evals.scenario import ScenarioError

    source = str(made["variant"])
    plain = run_variant(bool(made.get("scratchpad", True)))
    try:
        scenario = load_scenario(str(made["setting"]), source, system_prompt_file=md)
    except ScenarioError:
        scenario = None
    if scenario is not None and scenario.scratchpad == bool(made.get("scratchpad", True)):
        return source, ""
    return plain, SOURCE_LABEL.format(variant=source)
