"""The ``fal-assets`` command line. Other tools call these commands exactly.

A user error prints one line per problem (file or endpoint, field, what is allowed)
and exits 2; a traceback is for bugs only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from typer.core import TyperGroup

from .errors import BudgetExceeded, FalAssetsError, InvalidInput, Problem

USER_ERROR = 2
MAX_COUNT = 100_000  # pricing.MAX_COUNT, without importing pricing at start-up


class OneLineErrors(TyperGroup):
    """Click's usage errors (a bad option value, a missing argument, an unknown option)
    as one line, ``command: --option: what is wrong`` and exit 2, like every other
    user error, instead of a usage box. ``--help`` and bare commands still show help."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.TyperException as exc:  # click's errors, as Typer vendors them
            if type(exc).__name__ == "NoArgsIsHelpError" and getattr(exc, "ctx", None) is not None:
                typer.echo(exc.ctx.get_help(), err=True)  # a bare command shows its help
            else:
                typer.echo(usage_line(exc), err=True)
            sys.exit(USER_ERROR)
        except typer.Abort:
            typer.echo("aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def usage_line(exc: Exception) -> str:
    """One line for a click error: the command, the option and click's own message."""
    ctx = getattr(exc, "ctx", None)
    where = ctx.command_path if ctx is not None else "fal-assets"
    message = " ".join(exc.format_message().split()) if hasattr(exc, "format_message") else str(exc)
    param = getattr(exc, "param", None)
    if isinstance(exc, typer.BadParameter) and param is not None and type(exc).__name__ == "BadParameter":
        name = max(param.opts, key=len) if param.opts else param.human_readable_name
        return f"{where}: {name}: {' '.join(exc.message.split())} (see --help)"
    return f"{where}: {message} (see --help)"


app = typer.Typer(cls=OneLineErrors, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help=__doc__.splitlines()[0])


def fail(lines: list[str], code: int = USER_ERROR) -> None:
    for line in lines:
        typer.echo(line, err=True)
    raise typer.Exit(code)


def parse_value(key: str, text: str) -> Any:
    """``--arg KEY=VALUE``: JSON when it parses, else the string; ``image_size`` takes WxH."""
    if key == "image_size":
        from .catalog import parse_size

        try:
            return parse_size(text)
        except (InvalidInput, ValueError):
            pass
    from . import bounded

    if bounded.json_depth(text) > bounded.MAX_DEPTH:
        raise InvalidInput([Problem("--arg", key, f"nests deeper than {bounded.MAX_DEPTH} levels of lists and objects")])
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_args(pairs: list[str]) -> dict[str, Any]:
    arguments: dict[str, Any] = {}
    problems = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            problems.append(Problem("--arg", pair, "expected KEY=VALUE (VALUE is JSON when it parses, else a string)"))
            continue
        arguments[key.strip()] = parse_value(key.strip(), value)
    if problems:
        raise InvalidInput(problems)
    return arguments


def parse_sizes(sizes: list[str]) -> list[tuple[int, int]]:
    from .media import MAX_INPUT_SIDE

    out, problems = [], []
    for text in sizes:
        width, sep, height = text.lower().partition("x")
        if not (sep and width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0):
            problems.append(Problem("--input-size", text, "expected WIDTHxHEIGHT in pixels, e.g. 1024x768"))
        elif max(len(width), len(height)) > 6 or max(int(width), int(height)) > MAX_INPUT_SIDE:
            problems.append(Problem("--input-size", text, f"an input image is at most {MAX_INPUT_SIDE} px a side"))
        else:
            out.append((int(width), int(height)))
    if problems:
        raise InvalidInput(problems)
    return out


def guarded(func):
    """Turn the library's user errors into one line each and exit 2."""
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except InvalidInput as exc:
            fail(exc.lines())
        except BudgetExceeded as exc:
            fail([str(exc)], code=3)
        except FalAssetsError as exc:
            fail([f"error: {exc}"], code=1)

    return wrapper


@app.command()
@guarded
def estimate(
    endpoint: str,
    arg: list[str] = typer.Option([], "--arg", help="KEY=VALUE request argument (repeatable)"),
    count: int = typer.Option(1, "--count", min=1, max=MAX_COUNT, help=f"how many such requests (1 to {MAX_COUNT:,})"),
    input_size: list[str] = typer.Option([], "--input-size", help="WxH of each input image (edits)"),
    prices: Optional[Path] = typer.Option(None, "--prices", help="a YAML file overriding the price table"),
    as_json: bool = typer.Option(False, "--json", help="print a JSON object"),
) -> None:
    """What a request would cost on fal, with its breakdown. Sends nothing."""
    from .pricing import estimate as price, load_prices

    result = price(endpoint, parse_args(arg), input_sizes=parse_sizes(input_size) or None, count=count, prices=load_prices(prices))
    if as_json:
        typer.echo(json.dumps(result.to_dict(), sort_keys=True))
    else:
        typer.echo(result.describe())


@app.command("validate")
@guarded
def validate_files(
    paths: list[Path] = typer.Argument(..., help="character specs (YAML) or requests (JSON)"),
    allow_references_outside: bool = typer.Option(
        False, "--allow-references-outside",
        help="accept a references_dir outside the spec's folder (as the characters resource's allow_references_outside)"),
) -> None:
    """Check character specs (their reference images too) and request files; exit 2 with one line per problem."""
    from .input_files import check_file

    problems: list[Problem] = []
    for path in paths:
        found, notes = check_file(path, allow_references_outside=allow_references_outside)
        problems.extend(found)
        for note in notes:
            typer.echo(f"warning: {note}", err=True)
        if not found:
            typer.echo(f"ok: {path}")
    if problems:
        fail([str(p) for p in problems])


@app.command()
@guarded
def prompt(
    character_file: Path,
    pose: str,
    lora: bool = typer.Option(True, "--lora/--no-lora", help="prompt for LoRA inference (trigger word first)"),
    structured: bool = typer.Option(False, "--structured", help="FLUX.2 JSON prompt"),
) -> None:
    """The exact prompt that would be sent for CHARACTER_FILE and POSE."""
    from .prompts import pose_prompt
    from .spec import load_spec

    spec = load_spec(character_file)
    if pose not in spec.poses:
        fail([str(Problem(str(character_file), "poses", f"no pose {pose!r}; the spec has: {', '.join(spec.poses)}"))])
    typer.echo(pose_prompt(spec, pose, lora=lora, structured=structured))


@app.command()
@guarded
def generate(
    endpoint: str,
    arg: list[str] = typer.Option([], "--arg", help="KEY=VALUE request argument (repeatable)"),
    file: list[str] = typer.Option([], "--file", help="ARGPATH=LOCALFILE to upload, e.g. image_urls.0=ref.png"),
    backend: str = typer.Option("auto", "--backend", help="local, fal, or auto (fal when FAL_KEY is set)"),
    out: Path = typer.Option(Path(".fal-assets"), "--out", help="folder for the store and the journal"),
    journal: Optional[str] = typer.Option(None, "--journal", help="database URL (default: a SQLite file in --out)"),
    concurrency: int = typer.Option(2, "--concurrency", min=1, max=40),
    as_json: bool = typer.Option(False, "--json", help="print a JSON object"),
) -> None:
    """Validate, estimate, generate and download one request. Twice costs $0 the second time."""
    from .generate import Request, Settings, generate_one
    from .backends.fal import key_from_env

    from .generate import check_arg_path
    from .media import read_input

    files = {}
    for pair in file:
        path, sep, local = pair.partition("=")
        if not sep or not local:
            fail([str(Problem("--file", pair, "expected ARGPATH=LOCALFILE, e.g. image_urls.0=ref.png"))])
        check_arg_path(path, "--file")
        read_input(path, local)  # a file that is missing, unreadable or not an image: one line now
        files[path] = Path(local)
    chosen = backend if backend != "auto" else ("fal" if key_from_env() else "local")
    settings = Settings(backend=chosen, store_root=out / "store", journal_url=journal, concurrency=concurrency)
    result = generate_one(
        Request(endpoint, parse_args(arg), files=files),
        settings,
        on_event=lambda line: typer.echo(line, err=True),
    )
    summary = result.summary()
    if as_json:
        typer.echo(json.dumps(summary, sort_keys=True))
    else:
        for path in summary["files"]:
            typer.echo(path)
        typer.echo(
            f"seed={summary['seed']} request_id={summary['request_id']} backend={summary['backend']} "
            f"cache_hit={summary['cache_hit']} cost_usd={summary['cost_usd']:.4f}",
            err=True,
        )


@app.command()
@guarded
def prices(
    as_json: bool = typer.Option(False, "--json", help="print JSON rows instead of a table"),
    prices_file: Optional[Path] = typer.Option(None, "--prices", help="a prices file that overrides the shipped table"),
) -> None:
    """Print the price table: endpoint, price rule, source and the date it was checked."""
    from .pricing import load_prices, price_rows

    rows = price_rows(load_prices(prices_file))
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    columns = ("endpoint", "price", "checked", "source")
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns[:-1]}
    typer.echo("  ".join(c.ljust(widths[c]) for c in columns[:-1]) + "  source")
    for row in rows:
        typer.echo("  ".join(str(row[c]).ljust(widths[c]) for c in columns[:-1]) + "  " + row["source"])


@app.command()
@guarded
def emulate(
    port: int = typer.Option(..., "--port", min=0, max=65535),
    latency: float = typer.Option(0.0, "--latency", min=0.0, help="seconds each job runs"),
    concurrency: int = typer.Option(2, "--concurrency", min=1, help="jobs in progress at once"),
    faults: str = typer.Option("", "--faults", help="e.g. 429=0.3,503=0.05,drop=0.02,hang=0.01,nsfw=0.01"),
    seed: Optional[int] = typer.Option(None, "--seed", help="seed for fault draws"),
    cert_dir: Optional[Path] = typer.Option(None, "--cert-dir", help="where to write the CA"),
    reject_at: str = typer.Option("result", "--reject-at", help="an invalid request's 422: result (as fal) or submit"),
) -> None:
    """Run a fal queue emulator over HTTPS on 127.0.0.1 in the foreground."""
    from .emulator import parse_faults, run_emulator

    run_emulator(port, latency=latency, concurrency=concurrency, faults=parse_faults(faults), seed=seed, cert_dir=cert_dir,
                 reject_at=reject_at)


journal_app = typer.Typer(no_args_is_help=True, help="Settle requests the journal is in doubt about.")
app.add_typer(journal_app, name="journal")


def _open_journal(out: Path, journal: Optional[str]):
    from .generate import Settings

    settings = Settings(backend="fal", store_root=out / "store", journal_url=journal)
    return settings, settings.journal()


@journal_app.command("doubt")
@guarded
def journal_doubt(
    out: Path = typer.Option(Path(".fal-assets"), "--out", help="folder of the store and the journal"),
    journal: Optional[str] = typer.Option(None, "--journal", help="database URL (default: a SQLite file in --out)"),
) -> None:
    """List requests sent without a recorded answer (key, endpoint, estimate, what is known)."""
    from .journal import State

    settings, jr = _open_journal(out, journal)
    log = settings.accepted_log()
    try:
        for entry in jr.entries(state=State.IN_DOUBT):
            mark = log.last(entry.key)
            known = f"accepted as {mark.request_id}" if mark and mark.request_id else (mark.event if mark else "never sent")
            typer.echo(f"{entry.key} {entry.endpoint} ${entry.estimate_usd:.2f} {known}")
    finally:
        jr.close()


@journal_app.command("adopt")
@guarded
def journal_adopt(
    key: str,
    request_id: str,
    out: Path = typer.Option(Path(".fal-assets"), "--out", help="folder of the store and the journal"),
    journal: Optional[str] = typer.Option(None, "--journal", help="database URL (default: a SQLite file in --out)"),
) -> None:
    """Follow REQUEST_ID (from fal's dashboard or a webhook) for KEY instead of sending it again."""
    from .journal import JournalStateError

    _, jr = _open_journal(out, journal)
    try:
        entry = jr.adopt(key, request_id)
    except JournalStateError as exc:
        fail([str(exc)])
    finally:
        jr.close()
    typer.echo(f"{entry.key} {entry.endpoint}: adopted {request_id}; the next run follows it (no second submit)")


@journal_app.command("resend")
@guarded
def journal_resend(
    key: str,
    out: Path = typer.Option(Path(".fal-assets"), "--out", help="folder of the store and the journal"),
    journal: Optional[str] = typer.Option(None, "--journal", help="database URL (default: a SQLite file in --out)"),
) -> None:
    """Send KEY again on the next run, on purpose (fal may bill the lost attempt too)."""
    from .journal import JournalStateError

    settings, jr = _open_journal(out, journal)
    try:
        entry = jr.allow_resend(key)
    except JournalStateError as exc:
        fail([str(exc)])
    finally:
        jr.close()
    settings.accepted_log().resend(key, entry.endpoint)
    typer.echo(f"{entry.key} {entry.endpoint}: the next run sends it again")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
