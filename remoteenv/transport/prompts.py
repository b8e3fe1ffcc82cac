"""Keyboard-interactive answers (a host's one-time code): typed on the terminal, or given by the
program in REMOTEENV_ASKPASS (remoteenv.keys.askpass). No paramiko.

Prompts are answered one at a time across threads (a fleet signs in to many hosts at once), each
prefixed with its host's name. Without a terminal or an askpass program there is nobody to ask: the
sign-in fails with a hint, it never blocks.
"""

from __future__ import annotations

import sys
import threading

from remoteenv.errors import AuthFailed

_ONE_AT_A_TIME = threading.Lock()


def terminal_prompt(host: str, title: str, instructions: str, prompts: list[tuple[str, bool]]) -> list[str]:
    from remoteenv.keys import askpass

    answers: list[str] = []
    with _ONE_AT_A_TIME:
        try:
            for line in (title, instructions):
                if line.strip() and not askpass.uses_program():
                    sys.stderr.write(f"{host}: {line.strip()}\n")
            for prompt, echo in prompts:
                answers.append(askpass.ask(f"{host}: {prompt.strip() or 'Code:'} ", echo=echo))
        except askpass.NoAnswer as exc:
            raise AuthFailed(host, f"the host asks for a code (keyboard-interactive): {exc.message}",
                             "run the command once in a terminal (or set REMOTEENV_ASKPASS): the keeper "
                             "then holds the connection for later commands") from None
        except (EOFError, KeyboardInterrupt):
            raise AuthFailed(host, "no answer to the host's prompt",
                             "run the command again and type the code") from None
    return answers
