"""The transcripts of a log folder as a static site: Inspect's log viewer and the logs.

Made by Inspect's own bundling (`inspect_ai.log.bundle_log_dir`, what `inspect view bundle`
runs). The layout of a bundle DIR:

    DIR/index.html           the viewer (its assets in DIR/assets/)
    DIR/logs/                the logs, at their paths relative to the log folder
    DIR/logs/listing.json    the viewer's list of them

The viewer reads the logs with HTTP requests, so the folder has to be served (any static
host, or `python -m http.server -d DIR`): opened as a file, the page stays empty. A log
opens directly at `index.html#/logs/LOG` (LOG its path under the log folder), its sample
list at `.../samples` and one sample at `.../samples/sample/ID/EPOCH/` (see `log_url`).

Checks need no Inspect import, so a bad path is refused at once.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from urllib.parse import quote

LOGS = "logs"
"""The bundle's folder of logs (Inspect's layout)."""
INDEX = "index.html"
LOG_SUFFIXES = (".eval", ".json")


class BundleError(ValueError):
    """A log folder or output folder a bundle cannot be made from or into. `about_out`: the
    problem is the output folder's (a command line names its option before the message)."""

    def __init__(self, message: str, about_out: bool = False) -> None:
        super().__init__(message)
        self.about_out = about_out

    def shown(self, out_option: str) -> str:
        """The message as a command line whose output folder is `out_option` prints it."""
        return f"{out_option} {self}" if self.about_out else str(self)


def is_bundle(folder: Path) -> bool:
    """Whether `folder` holds a bundle (one this module or `inspect view bundle` wrote)."""
    return (folder / INDEX).is_file() and (folder / LOGS / "listing.json").is_file()


def check_bundle_target(log_dir: str | Path, out: str | Path, logs_made: bool = True) -> None:
    """Refuse, in one line, what the bundle would fail on or destroy.

    `out` may be new, an empty folder, or an earlier bundle (replaced); never a file, a
    folder of other files, the log folder, a folder inside it (Inspect refuses: the bundle
    would be read back as logs) or one that holds it (replacing it would delete the logs).
    `logs_made=False`: the logs are still to be written (a study checks before its run),
    so only `out` is checked.
    """
    log_dir, out = Path(log_dir), Path(out)
    if logs_made:
        if not log_dir.exists():
            raise BundleError(f"{log_dir}: no such log folder")
        if not log_dir.is_dir():
            raise BundleError(f"{log_dir}: not a folder (bundle takes the folder of the logs)")
        if not any(f.is_file() for suffix in LOG_SUFFIXES for f in log_dir.rglob(f"*{suffix}")):
            raise BundleError(f"{log_dir}: folder holds no Inspect logs")
    if out.exists() and not out.is_dir():
        raise BundleError(f"{out} is a file, not a folder", about_out=True)
    logs, site = log_dir.resolve(), out.resolve()
    if site == logs or logs in site.parents:
        raise BundleError(f"{out} is inside the log folder {log_dir}; choose another", True)
    if site in logs.parents:
        raise BundleError(f"{out} holds the log folder {log_dir}; choose another", True)
    if out.is_dir() and any(out.iterdir()) and not is_bundle(out):
        raise BundleError(
            f"{out} holds other files; choose a new or empty folder (an earlier bundle is "
            "replaced)",
            about_out=True,
        )


def write_bundle(log_dir: str | Path, out: str | Path, overwrite: bool = True) -> Path:
    """Bundle the logs under `log_dir` into `out`; returns the site's index.html.

    `overwrite`: replace an earlier bundle at `out` (never other files: see
    `check_bundle_target`).
    """
    check_bundle_target(log_dir, out)
    log_dir, out = Path(log_dir), Path(out)
    if out.exists() and not overwrite and any(out.iterdir()):
        raise BundleError(f"{out} already holds a bundle", about_out=True)
    from inspect_ai.log import bundle_log_dir

    try:
        bundle_log_dir(log_dir=str(log_dir), output_dir=str(out), overwrite=True)
    except Exception as error:  # Inspect's refusals (a PrerequisiteError): one line
        if type(error).__name__ != "PrerequisiteError":
            raise
        raise BundleError(str(getattr(error, "message", error)).strip()) from None
    index = out / INDEX
    _drop_local_path(index)
    return index


def _drop_local_path(index: Path) -> None:
    """Take the log folder's absolute path on this machine out of the page (Inspect writes
    it for a "copy path" button): a published site should not name the author's folders.
    The viewer reads the logs from the relative `log_dir` either way."""
    text = index.read_text(encoding="utf-8")
    pattern = re.compile(r'(<script id="log_dir_context" type="application/json">)(.*?)(</script>)')
    match = pattern.search(text)
    if match is None:
        return
    try:
        context = json.loads(match.group(2))
    except ValueError:
        return
    if not isinstance(context, dict) or "abs_log_dir" not in context:
        return
    context.pop("abs_log_dir")
    replaced = match.group(1) + json.dumps(context) + match.group(3)
    index.write_text(text[: match.start()] + replaced + text[match.end() :], encoding="utf-8")


def log_url(
    log: str | Path,
    log_dir: str | Path,
    sample_id: str | int | None = None,
    epoch: int = 1,
) -> str:
    """The link, relative to the bundle's folder, that opens `log` (a log under `log_dir`,
    the folder the bundle was made from) in its bundle: its sample list, or one sample.

    E.g. `index.html#/logs/2026-...eval/samples`; from a report in another folder, prefix
    the relative path to the bundle (`../transcripts/` + this).
    """
    location = str(log).removeprefix("file://")
    try:
        relative = Path(location).resolve().relative_to(Path(log_dir).resolve())
    except ValueError:
        raise BundleError(f"{log} is not under the log folder {log_dir}") from None
    path = "/".join(quote(part) for part in relative.parts)
    url = f"{INDEX}#/{LOGS}/{path}/samples"
    if sample_id is not None:
        url += f"/sample/{quote(str(sample_id), safe='')}/{epoch}/"
    return url


def bundle_href(
    log: str | Path,
    log_dir: str | Path,
    bundle: str | Path,
    page_dir: str | Path,
    sample_id: str | int | None = None,
    epoch: int = 1,
) -> str:
    """The link from a page in `page_dir` (a report's folder) to `log` in the bundle at
    `bundle` made from `log_dir`, e.g. `../transcripts/index.html#/logs/X.eval/samples`."""
    prefix = Path(os.path.relpath(Path(bundle).resolve(), Path(page_dir).resolve())).as_posix()
    return f"{prefix}/{log_url(log, log_dir, sample_id, epoch)}"


def report_link(bundle: str, report_dir: str | Path) -> str:
    """How a report in `report_dir` names a bundle: a URL as it is, a folder (or its
    index.html) as the path from the report to it. A folder that holds no bundle is
    refused."""
    if re.match(r"^[a-z][a-z0-9+.-]*://", bundle, re.IGNORECASE):
        return bundle.rstrip("/")
    folder = Path(bundle)
    if folder.name == INDEX:
        folder = folder.parent
    if not is_bundle(folder):
        raise BundleError(
            f"{bundle}: not a transcript bundle (make one with python -m analysis bundle "
            f"LOG_DIR --out {bundle})"
        )
    return Path(os.path.relpath(folder.resolve(), Path(report_dir).resolve())).as_posix()


def links_by_log(bundle: str | Path, logs: Iterable[str | Path]) -> dict[str, str]:
    """For each log location (as the analysis records it: `file://` or a path), the link,
    relative to the bundle's folder, to its sample list there.

    A bundle holds each log at its path under the folder it was made from, which the report
    does not know; so a log is matched to the listed path that its own path ends with, the
    longest such, and only if the bundle's copy is the same file (`_same_file`). A log with
    no match, or one whose match another log also claims (two `log.eval` in different
    folders), gets no link: a reader is sent to the list of logs, never to the wrong
    transcripts.
    """
    listed = json.loads((Path(bundle) / LOGS / "listing.json").read_text(encoding="utf-8"))
    entries = [PurePosixPath(name) for name in listed]
    matched: dict[str, PurePosixPath] = {}
    for log in map(str, logs):
        parts = Path(log.removeprefix("file://")).parts
        ends = [
            e for e in entries if len(e.parts) <= len(parts) and parts[-len(e.parts) :] == e.parts
        ]
        best = max(ends, key=lambda e: len(e.parts), default=None)
        if best is not None and _same_file(Path(*parts), Path(bundle) / LOGS / best):
            matched[log] = best
    claims = Counter(matched.values())
    return {
        log: f"{INDEX}#/{LOGS}/{'/'.join(quote(part) for part in entry.parts)}/samples"
        for log, entry in matched.items()
        if claims[entry] == 1
    }


def _same_file(log: Path, copy: Path, edge: int = 65_536) -> bool:
    """Whether the bundle's `copy` is `log` (Inspect's bundling copies logs byte for byte):
    the same size and the same first and last 64 KiB, where an `.eval` zip keeps its
    directory with every entry's checksum. Cheap for logs of any size."""
    try:
        size = log.stat().st_size
        if size != copy.stat().st_size:
            return False
        with log.open("rb") as a, copy.open("rb") as b:
            if a.read(edge) != b.read(edge):
                return False
            a.seek(max(size - edge, 0))
            b.seek(max(size - edge, 0))
            return a.read() == b.read()
    except OSError:
        return False


def bundle_logs(out: str | Path) -> list[Path]:
    """The log files a bundle holds (its listing's entries), as paths under `out`."""
    listing = json.loads((Path(out) / LOGS / "listing.json").read_text(encoding="utf-8"))
    return [Path(out) / LOGS / name for name in listing]
