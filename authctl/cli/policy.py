"""``authctl policy export|apply|diff|test``: the whole policy as one reviewable TOML file."""

from __future__ import annotations

import sys
from enum import Enum
from typing import Annotated, Optional

import typer

from .. import render
from ..errors import Mismatch
from .common import Yes, confirm, state

app = typer.Typer(no_args_is_help=True)

File = Annotated[str, typer.Argument(help="The policy file (TOML).", metavar="FILE", show_default=False)]


class ReportFormat(str, Enum):
    text = "text"
    json = "json"
    junit = "junit"

Prune = Annotated[bool, typer.Option("--prune", help="Also remove what the database has and the file does not.")]


@app.command("export")
def export(
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Write to FILE (replaced atomically) instead of stdout.")] = None,
) -> None:
    """Print the database's policy: settings, roles, users (no passwords or hashes), expectations.

    Examples:
      authctl policy export > policy.toml
      authctl policy export -o policy.toml
      authctl policy export --json
    """
    import tomllib

    from .. import policyfile

    with state.open_store() as store:
        policy = policyfile.export(store)
    text = policyfile.dump(policy)
    if output is None or output == "-":
        render.emit(tomllib.loads(text), lambda data: sys.stdout.write(text))
        return
    _write(output, text)
    render.emit({"output": output}, lambda data: render.success(f"wrote {output}"))


def _write(path: str, text: str) -> None:
    import os
    import tempfile
    from pathlib import Path

    from ..errors import InvalidInput

    target = Path(path)
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
    except OSError as exc:
        raise InvalidInput(f"cannot write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise InvalidInput(f"cannot write {path}: {exc.strerror}") from None


def _plan_out(result, *, prune: bool) -> None:
    render.emit({**result.plan.as_dict(), "applied": result.applied,
                 "generated": [{"username": u, "password": p} for u, p in result.generated.items()]},
                lambda data: render.policy_plan(result.plan, applied=result.applied, prune=prune,
                                                generated=result.generated))


@app.command("apply")
def apply(
    file: File,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change; write nothing (exit 7 if anything would).")] = False,
    prune: Prune = False,
    generate: Annotated[bool, typer.Option("--generate", help="Users without a password get a generated one (printed once) and the file's status.")] = False,
    target_secret: Annotated[Optional[list[str]], typer.Option("--target-secret", help="NAME=FILE: a target's signing key, or its username:password lines, from a private file (never in the policy file; repeatable).", show_default=False)] = None,
    yes: Yes = False,
) -> None:
    """Make the database match the file: all or nothing, in one transaction, audit-logged.

    New users are created disabled without a password, unless --generate. Nothing is
    removed unless --prune. A new target needs its secret from --target-secret (or
    `authctl target add` first): the file never holds one. With --dry-run: exit 0 when
    nothing would change, 7 when something would. --prune asks first when it would
    remove something (--yes without a terminal).

    Examples:
      authctl policy apply policy.toml --dry-run
      authctl policy apply policy.toml --generate
      authctl policy apply policy.toml --prune --yes --json
    """
    from .. import policyfile

    policy = policyfile.load(file)
    secrets = _target_secrets(target_secret or [])
    with state.open_store() as store:
        if prune and not dry_run:
            plan = policyfile.apply(store, policy, prune=True, dry_run=True, source=file, secrets=secrets).plan
            removals = [change for change in plan.changes if change.action == "removed"]
            if removals:
                confirm(f"apply {file} and remove {len(removals)} thing(s) the file does not have?", yes)
        result = policyfile.apply(store, policy, prune=prune, generate=generate, dry_run=dry_run, source=file,
                                  secrets=secrets)
    del secrets
    _plan_out(result, prune=prune)
    raise typer.Exit(policyfile.DRIFT_EXIT if dry_run and result.changed else 0)


def _target_secrets(pairs: list[str]) -> dict[str, bytes]:
    """``NAME=FILE`` pairs: each file private (readable by its owner alone), as ``target add`` requires."""
    from .. import targets
    from ..errors import InvalidInput

    found: dict[str, bytes] = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name.strip() or not path:
            raise InvalidInput(f"--target-secret takes NAME=FILE, got {pair[:40]!r}")
        if name.strip() in found:
            raise InvalidInput(f"--target-secret {name.strip()} given twice")
        found[name.strip()] = targets.read_private_file(path, "secret file")
    return found


@app.command("diff")
def diff(file: File, prune: Prune = False) -> None:
    """What `policy apply FILE` would change (read-only). Exit 0: nothing; 7: something would.

    Examples:
      authctl policy diff policy.toml
      authctl policy diff policy.toml --prune --json
    """
    from .. import policyfile

    policy = policyfile.load(file)
    with state.open_store() as store:
        result = policyfile.apply(store, policy, prune=prune, dry_run=True, source=file)
    _plan_out(result, prune=prune)
    raise typer.Exit(policyfile.DRIFT_EXIT if result.changed else 0)


@app.command("test")
def test(
    file: File,
    app_spec: Annotated[Optional[str], typer.Option("--app", help="module:attr of your FastAPI app (default: the bundled demo).")] = None,
    live: Annotated[bool, typer.Option("--live", help="Also send every expected cell to the app in-process.")] = False,
    unsafe: Annotated[bool, typer.Option("--unsafe", help="With --live and --app: also send mutating methods.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Fail on every route that has no expectation.")] = False,
    params: Annotated[Optional[list[str]], typer.Option("--param", help="Path parameter value, name=value (repeatable).")] = None,
    fmt: Annotated[ReportFormat, typer.Option("--format", help="Report format.")] = ReportFormat.text,
) -> None:
    """Run the file's expectations on a throwaway database built from the file alone.

    No database is read or written. Each unmet expectation shows the two-phase trace
    (authentication, authorization). Exit 0 when all are met, 6 otherwise.

    Examples:
      authctl policy test policy.toml
      authctl policy test policy.toml --app myapp.main:app --live --format junit > policy.xml
    """
    import tempfile

    from .. import matrix, policyfile, testing

    chosen = render.output.format(fmt.value)
    policy = policyfile.load(file)
    with tempfile.TemporaryDirectory(prefix="authctl-policy-test-") as directory:
        # the bundled app runs on the throwaway database alone: nothing real to protect
        report = testing.policy_test(policy, app_spec, directory, live=live, unsafe=unsafe or app_spec is None,
                                     strict=strict, params=matrix.parse_params(params or []))
    writers = {"junit": lambda data: sys.stdout.write(testing.to_junit(report)),
               "text": lambda data: render.policy_report(report)}
    render.emit(report.as_dict(), writers.get(chosen))  # json: the data itself
    raise typer.Exit(0 if report.ok else Mismatch.exit_code)
