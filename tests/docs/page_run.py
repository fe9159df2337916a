"""Run the code blocks of one documentation page, in order, the way a reader would.

Each page gets a fresh working directory holding a copy of ``examples/``, an environment with no
``PYSTATOR_*`` settings (so the defaults the docs describe apply: a SQLite file there, the
in-process broker), one Python interpreter for all its Python blocks and one ``bash`` for all
its shell blocks (so ``export`` and background jobs carry over from block to block, as in a
terminal). What each kind of block does:

=============================  ================================================================
``python``                     executed (:mod:`tests.docs.python_child`); literal comments checked
``bash`` / ``sh`` / ``shell``  executed; any failing command fails the block
``console``                    each ``$ command`` executed; the lines after it are its expected
                               output (``…`` matches anything)
``yaml`` / ``json`` / ``ini``  parsed; a YAML mapping with ``states`` is loaded as a machine
``text`` / ``mermaid``         shown only (output samples and diagrams)
=============================  ================================================================

A block after ``<!-- file: NAME -->`` is written to ``NAME`` instead. A block after
``<!-- not run: REASON -->`` is skipped. Any other block is an error: mark it.

Shell commands are checked against :data:`SAFE_COMMANDS` first, so nothing outside this
machine is touched; addresses on port 8000 are moved to a free loopback port, and pages that
``curl`` without starting ``pystator api`` themselves get one (SQLite) started for them.
"""

from __future__ import annotations

import configparser
import json
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

from pystator import StateMachine
from tests.docs.markdown_blocks import Block
from tests.support.ports import free_port, port_open
from tests.support.waiting import wait_until
from tests.support.worker_processes import ROOT

BLOCK_TIMEOUT_SECONDS = int(os.environ.get("PYSTATOR_DOCS_BLOCK_TIMEOUT", "180"))
DOCUMENTED_PORT = 8000
RUN = {"python", "bash", "sh", "shell", "console"}
PARSE = {"yaml", "yml", "json", "ini"}
SHOWN = {"text", "mermaid"}
#: The first word of every shell command the docs may run.
SAFE_COMMANDS = {
    "pystator",
    "curl",
    "export",
    "unset",
    "cat",
    "ls",
    "echo",
    "test",
    "cp",
    "mkdir",
    "touch",
    "sed",
    "rm",
    "grep",
    "head",
    "tail",
    "wc",
    "sleep",
    "until",
    "kill",
    "wait",
    "KEY=$(pystator",
    "python",
    ".venv/bin/python",
    ".venv/bin/pystator",
    "jq",
}
_PORT = re.compile(rf"(?<=localhost:){DOCUMENTED_PORT}\b|(?<=127\.0\.0\.1:){DOCUMENTED_PORT}\b")
_PORT_FLAG = re.compile(rf"--port {DOCUMENTED_PORT}\b")
DONE = "__DOCS_DONE__"
ERR = "__DOCS_ERR__"


@dataclass
class Tally:
    """What the docs tests did with the blocks of all pages (printed at the end of the run)."""

    pages: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    not_run: list[tuple[str, str]] = field(default_factory=list)


TALLY = Tally()


class PageRun:
    """One page's working directory, interpreter and shell."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        shutil.copytree(ROOT / "examples", workdir / "examples")
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PYSTATOR_")}
        self.env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), self.env["PATH"]])
        self.env["PYSTATOR_API_PORT"] = str(self.port)
        self.env["PYTHONPATH"] = str(ROOT)
        self.env["PYTHONUNBUFFERED"] = "1"
        self._python: subprocess.Popen[str] | None = None
        self._answers: IO[str] | None = None
        self._python_log = workdir / ".python-blocks.log"
        self._shell: subprocess.Popen[str] | None = None
        self._shell_lines: queue.Queue[str | None] = queue.Queue()
        self._api: subprocess.Popen[bytes] | None = None
        self._api_log: IO[bytes] | None = None

    # --- the page ----------------------------------------------------------------------------

    def run(self, blocks: list[Block], before: Callable[[Block], None] | None = None) -> None:
        """Run every block in order; raise ``AssertionError`` naming the first that fails.

        ``before(block)`` is called before each block runs (the browser tests take the pages'
        screenshots there, at the point of the page they illustrate)."""
        starts_api = any(
            "pystator api" in b.code for b in blocks if b.lang in RUN and b.not_run is None
        )
        for block in blocks:
            if block.not_run is not None:
                TALLY.not_run.append((block.where, block.not_run))
                continue
            if before is not None:
                before(block)
            if block.file is not None:
                self._write_file(block)
                continue
            if "curl " in block.code and not starts_api:
                self._ensure_api()
            self._run_block(block)

    def shell(self, command: str) -> str:
        """Run ``command`` in the page's shell (its variables, its jobs) and return its output."""
        output, errors = self._shell_run(
            Block(page=Path("<test>"), line=0, lang="bash", code=command), command
        )
        if errors:
            raise AssertionError(f"{command!r} failed: {errors}\n{output}")
        return output

    def close(self) -> None:
        """Stop the interpreter, the shell and everything the shell left running."""
        for process in (self._python, self._shell, self._api):
            if process is not None:
                _stop(process)
                for stream in (process.stdin, process.stdout):
                    if stream is not None:
                        stream.close()
        if self._answers is not None:
            self._answers.close()
        if self._api_log is not None:
            self._api_log.close()

    # --- blocks ------------------------------------------------------------------------------

    def _run_block(self, block: Block) -> None:
        lang = block.lang
        if lang == "python":
            self._python_block(block)
        elif lang in {"bash", "sh", "shell"}:
            self._check_safe(block, _commands(block.code))
            output, errors = self._shell_run(block, _retarget(block.code, self.port))
            if errors:
                raise AssertionError(
                    f"{block.where}: shell block failed:\n{errors}\n--- output ---\n{output}"
                )
        elif lang == "console":
            self._console_block(block)
        elif lang in PARSE:
            _parse_block(block)
        elif lang in SHOWN:
            TALLY.kinds["shown"] += 1
            return
        else:
            raise AssertionError(
                f"{block.where}: no runner for a {lang or 'plain'!r} block; run it with a known "
                "language or mark it <!-- not run: REASON -->"
            )
        TALLY.kinds["parsed" if lang in PARSE else "run"] += 1

    def _write_file(self, block: Block) -> None:
        target = (self.workdir / block.file).resolve() if block.file else None
        if target is None or self.workdir.resolve() not in target.parents:
            raise AssertionError(f"{block.where}: file marker outside the page's directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(block.code)
        if block.lang in PARSE:  # syntax only: a file may be a broken machine on purpose
            _parse_block(block, load_machine=False)
        TALLY.kinds["written"] += 1

    def _check_safe(self, block: Block, commands: list[str]) -> None:
        for command in commands:
            words = command.split()
            first = words[0] if words else ""
            while "=" in first and not first.startswith(("KEY=$(",)) and len(words) > 1:
                words = words[1:]  # VAR=value command …
                first = words[0]
            if first not in SAFE_COMMANDS:
                raise AssertionError(
                    f"{block.where}: {command!r} is not on the docs tests' list of safe commands "
                    "(tests/docs/page_run.py SAFE_COMMANDS); mark the block <!-- not run: REASON -->"
                )

    # --- python ------------------------------------------------------------------------------

    def _python_block(self, block: Block) -> None:
        if self._python is None:
            read_fd, write_fd = os.pipe()
            with self._python_log.open("w") as log:
                self._python = subprocess.Popen(
                    [sys.executable, "-m", "tests.docs.python_child", str(write_fd)],
                    cwd=self.workdir,
                    env={**self.env, "PYTHONPATH": os.pathsep.join([str(self.workdir), str(ROOT)])},
                    stdin=subprocess.PIPE,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    text=True,
                    pass_fds=(write_fd,),
                    start_new_session=True,
                )
            os.close(write_fd)
            self._answers = os.fdopen(read_fd)
        assert self._python.stdin is not None and self._answers is not None
        request = {"code": block.code, "filename": str(block.page), "line": block.line}
        self._python.stdin.write(json.dumps(request) + "\n")
        self._python.stdin.flush()
        answer = _readline(self._answers, BLOCK_TIMEOUT_SECONDS)
        if answer is None:
            raise AssertionError(
                f"{block.where}: python block gave no answer within {BLOCK_TIMEOUT_SECONDS}s "
                f"(or its interpreter died)\n{self._python_log.read_text()[-3000:]}"
            )
        result = json.loads(answer)
        if not result["ok"]:
            raise AssertionError(
                f"{block.where}: python block failed\n{result['error']}\n--- printed ---\n"
                f"{self._python_log.read_text()[-3000:]}"
            )

    # --- shell -------------------------------------------------------------------------------

    def _shell_run(self, block: Block, script: str) -> tuple[str, str]:
        """Run ``script`` in the page's bash; returns (output, failed commands)."""
        if self._shell is None:
            self._shell = subprocess.Popen(
                ["bash", "--noprofile", "--norc"],
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
            threading.Thread(target=self._pump, daemon=True).start()
            self._send(f"trap 'echo \"{ERR} exit $? from: $BASH_COMMAND\"' ERR\n")
        self._send(f"{script}\necho {DONE}\n")
        deadline = time.monotonic() + BLOCK_TIMEOUT_SECONDS
        output: list[str] = []
        errors: list[str] = []
        while True:
            try:
                line = self._shell_lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"{block.where}: shell block still running after {BLOCK_TIMEOUT_SECONDS}s\n"
                    + "".join(output)
                ) from None
            if line is None:
                raise AssertionError(f"{block.where}: the shell exited\n" + "".join(output))
            if line.rstrip("\n").endswith(DONE):  # after output that did not end its line
                output.append(line.rstrip("\n")[: -len(DONE)])
                return "".join(output), "".join(errors)
            (errors if line.startswith(ERR) else output).append(line)

    def _send(self, text: str) -> None:
        assert self._shell is not None and self._shell.stdin is not None
        self._shell.stdin.write(text)
        self._shell.stdin.flush()

    def _pump(self) -> None:
        assert self._shell is not None and self._shell.stdout is not None
        for line in self._shell.stdout:
            self._shell_lines.put(line)
        self._shell_lines.put(None)

    def _console_block(self, block: Block) -> None:
        steps = _console_steps(block.code)
        self._check_safe(block, [command for command, _ in steps])
        for command, expected in steps:
            output, _errors = self._shell_run(block, _retarget(command, self.port))
            if expected and not _matches(expected, output):
                raise AssertionError(
                    f"{block.where}: `{command}` printed\n{output}\n--- the page shows ---\n"
                    f"{expected}"
                )

    # --- an API for curl examples ------------------------------------------------------------

    def _ensure_api(self) -> None:
        if self._api is not None:
            return
        self._api_log = (self.workdir / ".api.log").open("wb")
        self._api = subprocess.Popen(
            ["pystator", "api", "--port", str(self.port)],
            cwd=self.workdir,
            env=self.env,
            stdout=self._api_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(lambda: port_open(self.port), timeout=60, message="pystator api listening")


# --- helpers ---------------------------------------------------------------------------------


def _stop(process: subprocess.Popen[Any]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


def _readline(stream: IO[str], timeout: float) -> str | None:
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return box[0] if box and box[0] else None


def _retarget(script: str, port: int) -> str:
    """Move the documented port 8000 to the page's free port (also inside quotes)."""
    return _PORT_FLAG.sub(f"--port {port}", _PORT.sub(str(port), script))


def _commands(script: str) -> list[str]:
    """The commands of a shell script, one per logical line (continuations, quoted newlines and
    comments handled the way the shell does)."""
    commands = []
    pending = ""
    for line in re.sub(r"\\\n", " ", script).splitlines():
        pending = f"{pending}\n{line}" if pending else line
        try:
            words = shlex.split(pending, comments=True)
        except ValueError:  # an open quote: the command goes on on the next line
            continue
        pending = ""
        if words:
            commands.append(" ".join(words))
    if pending:
        commands.append(pending)
    return commands


def _console_steps(text: str) -> list[tuple[str, str]]:
    steps: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps:
            steps[-1][1].append(line)
        elif line.strip():
            raise AssertionError(f"console block output before any '$ ' command: {line!r}")
    return [(command, "\n".join(lines).strip()) for command, lines in steps]


def _matches(expected: str, output: str) -> bool:
    """``output`` is ``expected`` line for line (trailing spaces aside), ``…`` matching anything."""
    pattern = ".*?".join(re.escape(part) for part in _normal(expected).split("…"))
    return re.fullmatch(pattern, _normal(output), re.S) is not None


def _normal(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def _parse_block(block: Block, *, load_machine: bool = True) -> None:
    try:
        if block.lang in {"yaml", "yml"}:
            document = yaml.safe_load(block.code)
            if load_machine and isinstance(document, dict) and "states" in document:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    StateMachine.from_dict(document)
        elif block.lang == "json":
            json.loads(block.code)
        elif block.lang == "ini":
            configparser.ConfigParser().read_string(block.code)
    except Exception as exc:
        raise AssertionError(f"{block.where}: {block.lang} block does not load: {exc}") from exc
