"""`policyengine completion bash|zsh|fish`: shell completion written from the argument parser.

The script is generated from the very parser `main` runs, so a new command or option completes
the day it is added and a removed one never lingers; nothing is installed into the shell at
run time (no hook that imports Python on every Tab). Files complete wherever a path goes.
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass

SHELLS = ("bash", "zsh", "fish")
ZSH_PRELUDE = "autoload -U +X compinit && compinit\nautoload -U +X bashcompinit && bashcompinit\n"


@dataclass(frozen=True)
class _Option:
    flags: tuple[str, ...]
    help: str
    choices: tuple[str, ...]
    takes_value: bool


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse exposes no public walk of its commands
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> list[_Option]:
    out: list[_Option] = []
    for a in parser._actions:
        if not a.option_strings:
            continue
        choices = tuple(str(c) for c in a.choices) if a.choices else ()
        out.append(_Option(tuple(a.option_strings), a.help or "", choices, a.nargs != 0))
    return out


def _positional_choices(parser: argparse.ArgumentParser) -> tuple[str, ...]:
    return tuple(
        str(c) for a in parser._actions if not a.option_strings and a.choices for c in a.choices
    )


def _commands(
    parser: argparse.ArgumentParser,
) -> dict[str, tuple[str, list[_Option], tuple[str, ...]]]:
    helps: dict[str, str] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {c.dest: c.help or "" for c in action._choices_actions}
    return {
        name: (helps.get(name, ""), _options(p), _positional_choices(p))
        for name, p in _subparsers(parser).items()
    }


Commands = dict[str, tuple[str, list[_Option], tuple[str, ...]]]


def completion_script(parser: argparse.ArgumentParser, shell: str) -> str:
    prog = parser.prog
    commands = _commands(parser)
    top = _options(parser)
    if shell == "fish":
        return _fish(prog, commands)
    bash = _bash(prog, commands, top)
    if shell == "zsh":  # zsh runs the bash function through its bashcompinit layer
        return ZSH_PRELUDE + bash
    return bash


def _words(items: list[str] | tuple[str, ...]) -> str:
    return shlex.quote(" ".join(items))


def _bash(prog: str, commands: Commands, top: list[_Option]) -> str:
    fn = "_" + prog.replace("-", "_")
    cases: list[str] = []
    values: list[str] = []
    for name, (_, opts, words) in commands.items():
        flags = [f for o in opts for f in o.flags]
        cases.append(f"        {name}) opts={_words(flags)} words={_words(words)} ;;")
        for o in opts:
            if o.choices:
                keys = "|".join(f"{name}:{f}" for f in o.flags)
                values.append(f"        {keys}) choices={_words(o.choices)} ;;")
    top_flags = [f for o in top for f in o.flags]
    return "\n".join(
        [
            f"# {prog} completion for bash: source it, or save it in bash-completion's folder",
            f"{fn}() {{",
            '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"',
            "    local opts='' words='' choices=''",
            "    if [[ $COMP_CWORD -eq 1 ]]; then",
            f"        COMPREPLY=($(compgen -W {_words([*commands, *top_flags])} -- \"$cur\"))",
            "        return",
            "    fi",
            '    case "${COMP_WORDS[1]}:$prev" in',
            *values,
            "    esac",
            '    if [[ -n "$choices" ]]; then',
            '        COMPREPLY=($(compgen -W "$choices" -- "$cur"))',
            "        return",
            "    fi",
            '    case "${COMP_WORDS[1]}" in',
            *cases,
            "    esac",
            '    if [[ "$cur" == -* ]]; then',
            '        COMPREPLY=($(compgen -W "$opts" -- "$cur"))',
            '    elif [[ -n "$words" ]]; then',
            '        COMPREPLY=($(compgen -W "$words" -- "$cur"))',
            "    else",
            '        COMPREPLY=($(compgen -f -- "$cur"))',
            "    fi",
            "}",
            f"complete -o filenames -F {fn} {prog}",
            "",
        ]
    )


def _fish(prog: str, commands: Commands) -> str:
    lines = [f"# {prog} completion for fish: save as ~/.config/fish/completions/{prog}.fish"]
    for name, (help_, _, words) in commands.items():
        lines.append(
            f"complete -c {prog} -f -n __fish_use_subcommand -a {name} -d {shlex.quote(help_)}"
        )
        if words:
            lines.append(
                f"complete -c {prog} -f -n '__fish_seen_subcommand_from {name}'"
                f" -a {_words(words)}"
            )
    for name, (_, opts, _) in commands.items():
        for o in opts:
            spec = " ".join(
                f"-l {f[2:]}" if f.startswith("--") else f"-s {f[1:]}" for f in o.flags
            )
            extra = f" -x -a {shlex.quote(' '.join(o.choices))}" if o.choices else ""
            extra += " -r" if o.takes_value and not o.choices else ""
            lines.append(
                f"complete -c {prog} -n '__fish_seen_subcommand_from {name}' {spec}"
                f" -d {shlex.quote(o.help)}{extra}"
            )
    return "\n".join(lines) + "\n"
