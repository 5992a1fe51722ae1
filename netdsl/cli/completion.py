"""``netdsl --completion bash|zsh``: a completion script written from the argparse parser
itself (so it never lists a command or option that does not exist). Specs complete as files
and as the names of the bundled zoo; zsh runs the bash function through ``bashcompinit``."""

from __future__ import annotations

import argparse
import shlex

SHELLS = ("bash", "zsh")


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return [o for action in parser._actions for o in action.option_strings]


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    """The completion script for ``shell`` (eval it, or save it where the shell looks)."""
    from ..api import zoo_names

    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    commands = list(sub.choices)
    cases = [f"        {name}) opts={shlex.quote(' '.join(_options(p)))} ;;"
             for name, p in sub.choices.items()]
    lines = [
        "# netdsl completion: eval \"$(netdsl --completion " + shell + ")\"",
        *(["autoload -U +X bashcompinit && bashcompinit"] if shell == "zsh" else []),
        "_netdsl() {",
        '    local cur="${COMP_WORDS[COMP_CWORD]}" opts=""',
        "    if [[ $COMP_CWORD -eq 1 ]]; then",
        f"        COMPREPLY=($(compgen -W {shlex.quote(' '.join([*commands, *_options(parser)]))}"
        ' -- "$cur"))',
        "        return",
        "    fi",
        '    case "${COMP_WORDS[1]}" in',
        *cases,
        "    esac",
        '    if [[ "$cur" == -* ]]; then',
        '        COMPREPLY=($(compgen -W "$opts" -- "$cur"))',
        "    else",
        f"        COMPREPLY=($(compgen -W {shlex.quote(' '.join(zoo_names()))} -- \"$cur\")"
        ' $(compgen -f -- "$cur"))',
        "    fi",
        "}",
        "complete -o filenames -F _netdsl netdsl",
    ]
    return "\n".join(lines) + "\n"


class CompletionAction(argparse.Action):
    """``--completion SHELL``: prints the script and exits, like ``--version``."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(script(parser, values), end="")
        parser.exit()
