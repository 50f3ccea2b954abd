"""Drive ``python -m repg2 shell`` processes through a pseudo-terminal, as a person would.

Used by ``test_shell.py`` (two shells on 127.0.0.1), ``test_netns.py``
(one shell in each network namespace) and ``test_preflight.py``
(:class:`Preflight`: ``python -m repg2 preflight`` read check by check).
Each :class:`Shell` is a real OS process on a pty (``pexpect``), so
readline, the numbered prompt and the lines other processes print while
the prompt waits are all exercised.

Reading a value back: :meth:`Shell.eval` prints ``'=' + '=>'`` and the repr
of an expression; the echoed input line contains ``'=' + '=>'``, never the
marker ``==>`` itself, so only the output matches.
"""

from __future__ import annotations

import ast
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pexpect
import pytest
from support import DEADLINE, wait_until

ROOT = Path(__file__).resolve().parent.parent
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
RESULT = re.compile(r"^==> (.*)$", re.MULTILINE)


CHECKS = ("python", "address", "port mapper", "listen port", "teacher", "cookie", "connect back")


HOST = "127.0.0.1"  # where the tests' nodes run
NEEDS_PTY = pytest.mark.skipif(sys.platform == "win32", reason="pexpect.spawn needs a POSIX pty")


def unique_node(base: str, host: str = HOST) -> str:
    """A node name no other test run on this machine uses: ``base``, this process's pid and a random suffix."""
    return f"{base}{os.getpid()}_{os.urandom(2).hex()}@{host}"


def _env(home: Path) -> dict[str, str]:
    """The environment of a child: this checkout first on the path, HOME in the test's directory."""
    env = dict(os.environ)
    env.update(
        TERM="dumb",  # no colours or bracketed paste from readline
        HOME=str(home),  # the history and cookie files go to the test's own directory
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p),
    )
    return env


def clean(text: str) -> str:
    """Drop terminal escapes and carriage returns from pty output."""
    return ANSI.sub("", text).replace("\r", "")


class Shell:
    """One ``python -m repg2 shell`` on a pty, optionally inside a network namespace."""

    def __init__(
        self,
        name: str,
        cookie: str,
        *args: str,
        home: Path,
        netns: str | None = None,
        timeout: float = DEADLINE,
    ) -> None:
        argv = [sys.executable, "-m", "repg2", "shell", "--name", name, "--cookie", cookie, *args]
        if netns is not None:
            argv = ["ip", "netns", "exec", netns, *argv]
        env = _env(home)
        self.name = name
        self.seen = ""  # everything read so far, cleaned
        self.count = 1
        self.child = pexpect.spawn(
            argv[0], argv[1:], env=env, cwd=str(ROOT), encoding="utf-8", timeout=timeout, dimensions=(60, 400)
        )
        self._expect(self._prompt(1), timeout)

    def _prompt(self, n: int) -> str:
        """The regex of prompt number ``n``."""
        return re.escape(f"({self.name}){n}> ")

    def _expect(self, pattern: Any, timeout: float) -> None:
        """Wait for ``pattern``; keep what was read in ``seen``; name the shell on failure."""
        try:
            self.child.expect(pattern, timeout=timeout)
        except (pexpect.TIMEOUT, pexpect.EOF) as exc:
            self.seen += clean(self.child.before or "")
            raise AssertionError(
                f"{self.name}: {type(exc).__name__} waiting for {pattern!r}; output so far:\n{self.seen[-3000:]}"
            ) from None
        after = self.child.after if isinstance(self.child.after, str) else ""
        self.seen += clean(self.child.before + after)

    def run(self, line: str, timeout: float = DEADLINE) -> str:
        """Type one complete input line and return what it printed before the next prompt."""
        self.child.sendline(line)
        self.count += 1
        start = len(self.seen)
        self._expect(self._prompt(self.count), timeout)
        return self.seen[start:]

    def eval(self, expr: str, timeout: float = DEADLINE) -> Any:
        """Evaluate a Python expression in the shell and return its value (a literal)."""
        # One write of the whole line: a line another process prints cannot land inside it.
        out = self.run(f"print('=' + '=> ' + repr({expr}) + '\\n', end='')", timeout)
        found = RESULT.findall(out)
        assert found, f"{self.name}: no result for {expr!r} in:\n{out}"
        return ast.literal_eval(found[-1].strip())

    def wait_eval(self, expr: str, expected: Any, timeout: float = DEADLINE) -> Any:
        """Evaluate ``expr`` until it equals ``expected``; fail with the last value after ``timeout``."""
        last: list[Any] = []

        def equal() -> bool:
            last[:] = [self.eval(expr)]
            return bool(last[0] == expected)

        wait_until(equal, lambda: f"{self.name}: {expr} to be {expected!r} (it is {last[0]!r})", timeout)
        return expected

    def mark(self) -> int:
        """Return a position in the output, for :meth:`wait_output`."""
        return len(self.seen)

    def wait_output(self, pattern: str, since: int = 0, timeout: float = DEADLINE) -> str:
        """Wait until ``pattern`` (a regex) appears in the output after ``since``; return the match."""
        found = re.search(pattern, self.seen[since:])
        if found:
            return found.group(0)
        self._expect(pattern, timeout)
        found = re.search(pattern, self.seen[since:])
        assert found, pattern
        return found.group(0)

    def quit(self, how: str = "q()", timeout: float = DEADLINE) -> int:
        """Leave the shell with ``q()`` or Ctrl-D (``how='eof'``); return the exit status."""
        if how == "eof":
            self.child.sendeof()
        else:
            self.child.sendline(how)
        self._expect(pexpect.EOF, timeout)
        self.child.close()
        return int(self.child.exitstatus if self.child.exitstatus is not None else -1)

    def close(self) -> None:
        """Kill the shell if it still runs (teardown after a failure) and reap it."""
        if self.child.isalive():
            self.child.close(force=True)
        else:
            self.child.close()


class Shells:
    """The shells a test started, all killed and reaped at its end, even when a step fails."""

    def __init__(self, home: Path) -> None:
        self.home = home  # where the shells' history files go
        self.started: list[Shell] = []

    def start(self, name: str, cookie: str, *args: str, netns: str | None = None) -> Shell:
        """Start one shell and wait for its first prompt."""
        shell = Shell(name, cookie, *args, home=self.home, netns=netns)
        self.started.append(shell)
        return shell

    def __enter__(self) -> Shells:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for shell in reversed(self.started):
            shell.close()


@dataclass
class Preflight:
    """One run of ``python -m repg2 preflight ARGS`` on a pty, read check by check as it prints them.

    ``checks`` maps each check's name to ``(status, detail, fix)``;
    ``status`` is the exit status.
    """

    args: tuple[str, ...]
    home: Path
    netns: str | None = None
    timeout: float = DEADLINE
    checks: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    text: str = ""
    status: int = -1

    def run(self) -> Preflight:
        """Run the pre-flight to its end; expect each check's line in order; return self."""
        argv = [sys.executable, "-m", "repg2", "preflight", *self.args]
        if self.netns is not None:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        child = pexpect.spawn(
            argv[0], argv[1:], env=_env(self.home), cwd=str(ROOT), encoding="utf-8", dimensions=(60, 400)
        )
        try:
            for name in CHECKS:
                pattern = rf"(OK|FAIL|SKIP) +{re.escape(name)} +([^\r\n]*)\r?\n"
                try:
                    child.expect(pattern, timeout=self.timeout)
                except (pexpect.TIMEOUT, pexpect.EOF) as exc:
                    self.text += clean(child.before or "")
                    raise AssertionError(f"no line for check {name!r} ({type(exc).__name__}):\n{self.text}") from None
                self.text += clean(child.before + child.after)
            child.expect(pexpect.EOF, timeout=self.timeout)
            self.text += clean(child.before)
        finally:
            child.close(force=True)
        self.status = int(child.exitstatus if child.exitstatus is not None else -1)
        lines = self.text.splitlines()
        for i, line in enumerate(lines):
            found = re.match(r"(OK|FAIL|SKIP) +(\S+(?: \S+)?) {2,}(.*)$", line)
            if found is None or found.group(2) not in CHECKS:
                continue
            fix = lines[i + 1].strip() if i + 1 < len(lines) else ""
            fix = fix[len("fix: ") :] if fix.startswith("fix: ") else ""
            self.checks[found.group(2)] = (found.group(1), found.group(3), fix)
        return self

    def status_of(self, name: str) -> str:
        """Return ``OK``, ``FAIL`` or ``SKIP`` for one check."""
        return self.checks[name][0]
