"""The README's shell blocks run top to bottom, as written, in one empty folder.

Every ```bash block of authctl commands and every ```console block's ``$`` lines are
run in order by one bash (so ``export`` carries over, as in a reader's shell); a
command commented ``# exit N`` must exit N, every other one 0.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_BLOCK = re.compile(r"^```(bash|console)\n(.*?)^```", re.S | re.M)
_EXIT = re.compile(r"#\s*exit (\d)\b")


def readme_commands(text: str) -> list[tuple[str, int]]:
    """(command, expected exit code) for each command of the README's shell blocks, in order."""
    commands: list[tuple[str, int]] = []
    for kind, body in _BLOCK.findall(text):
        lines = body.splitlines()
        if kind == "bash" and not all(line.startswith("authctl") for line in lines if line.strip()):
            continue  # the install blocks (venv, pip): not part of the flow
        index = 0
        while index < len(lines):
            line = lines[index]
            index += 1
            if kind == "console":
                if not line.startswith("$ "):
                    continue  # output shown in the README
                line = line[2:]
            while line.rstrip().endswith("\\") and index < len(lines):
                line = line.rstrip()[:-1] + " " + lines[index].strip()
                index += 1
            if line.strip():
                found = _EXIT.search(line)
                commands.append((line.strip(), int(found.group(1)) if found else 0))
    return commands


def test_readme_commands_are_found_in_order() -> None:
    commands = [command for command, _ in readme_commands((ROOT / "README.md").read_text(encoding="utf-8"))]
    assert commands[0].startswith("authctl init ")
    first_demo = next(i for i, c in enumerate(commands) if c.startswith("authctl init --demo"))
    assert "export AUTHCTL_DB=demo.db" in commands[first_demo - 1]
    assert any(c.startswith("authctl target add shop") and "--user-scopes suman" in c for c in commands)


def test_the_readme_flow_runs_top_to_bottom_as_written(tmp_path: Path) -> None:
    commands = readme_commands((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(commands) >= 15
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "authctl"
    shim.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m authctl \"$@\"\n")
    shim.chmod(0o755)
    script = ["set -u"]
    for number, (command, expected) in enumerate(commands):
        script.append(f"{command}\nrc=$?\n"
                      f"if [ $rc -ne {expected} ]; then echo {shlex.quote(f'README command {number}: {command}')}"
                      f" \"exited $rc, expected {expected}\" >&2; exit 99; fi")
    script.append("echo README-FLOW-DONE")
    folder = tmp_path / "work"
    folder.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("AUTHCTL_")}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", PYTHONPATH=str(ROOT), HOME=str(tmp_path),
               COLUMNS="100", NO_COLOR="1")
    done = subprocess.run(["bash", "-c", "\n".join(script)], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=600, stdin=subprocess.DEVNULL)
    assert done.returncode == 0 and done.stdout.rstrip().endswith("README-FLOW-DONE"), done.stderr[-3000:]
    assert (folder / "authctl.db").exists() and (folder / "demo.db").exists() and (folder / "shop.db").exists()
