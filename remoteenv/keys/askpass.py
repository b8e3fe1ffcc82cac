"""Questions whose answers are secrets (passwords, one-time codes, passphrases).

Asked on the terminal with echo off, or, for scripts and tests without a terminal, answered by the
program named in REMOTEENV_ASKPASS (as OpenSSH's SSH_ASKPASS): it is run with the prompt as its only
argument and prints the answer on stdout; a non-zero exit means "no answer". An answer is never an
argument of any process, never logged, and never kept longer than the sign-in needs it.
"""

from __future__ import annotations

import os
import subprocess
import sys

from remoteenv.errors import ConfigError

ASKPASS_VARIABLE = "REMOTEENV_ASKPASS"


class NoAnswer(ConfigError):
    """A question could not be asked (no terminal, no askpass) or was not answered."""


def uses_program() -> bool:
    """Are answers given by a REMOTEENV_ASKPASS program (which would give the same answer again)?"""
    return bool(os.environ.get(ASKPASS_VARIABLE))


def ask(prompt: str, echo: bool = False) -> str:
    """The person's answer to `prompt`: REMOTEENV_ASKPASS's when set, else the terminal's."""
    program = os.environ.get(ASKPASS_VARIABLE)
    if program:
        return _ask_program(program, prompt)
    if not _has_terminal():
        raise NoAnswer(f"no terminal to ask {prompt.strip().rstrip(':')!r} on",
                       f"run it in a terminal, or set {ASKPASS_VARIABLE} to a program that prints the answer")
    if echo:
        # getpass reads /dev/tty; input() would read a pipe given as stdin, which is not the person.
        try:
            with open("/dev/tty", "r+", encoding="utf-8") as tty:
                tty.write(prompt)
                tty.flush()
                return tty.readline().rstrip("\n")
        except OSError:
            return input(prompt)  # Windows: no /dev/tty, and the console is stdin
    import getpass

    try:
        return getpass.getpass(prompt)
    except EOFError:
        raise NoAnswer(f"no answer to {prompt.strip()!r}", "type the answer, or press Ctrl-C to stop") from None


def _ask_program(program: str, prompt: str) -> str:
    try:
        proc = subprocess.run([program, prompt], stdin=subprocess.DEVNULL, capture_output=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NoAnswer(f"{ASKPASS_VARIABLE} program {program!r} failed: {exc}",
                       f"check {ASKPASS_VARIABLE}: a program that prints the answer to the prompt it gets") from None
    if proc.returncode != 0:
        raise NoAnswer(f"{ASKPASS_VARIABLE} program gave no answer to {prompt.strip()!r} (exit {proc.returncode})",
                       "the sign-in was cancelled; nothing was changed")
    answer = proc.stdout.decode("utf-8", "replace")
    # One line, as SSH_ASKPASS programs print it.
    return answer[:-1] if answer.endswith("\n") else answer


def _has_terminal() -> bool:
    if not sys.stdin or not hasattr(os, "ctermid"):
        return sys.stdin is not None and sys.stdin.isatty()
    try:
        with open(os.ctermid(), "rb"):
            return True
    except OSError:
        return False
