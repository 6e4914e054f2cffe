"""Commands and flags the way Ollama's CLI (cobra + pflag) reads and describes them.

argparse differs where users notice: pflag reads `--think` alone as `--think=true` and never takes the next
word as its value (so `run MODEL --think "a prompt"` keeps the prompt), accepts `--truncate=false` for a
boolean, and cobra prints its own usage and error texts. This module reproduces those rules; a command is
a `Command` value, so adding one (e.g. `pollama rpc`) is one entry in `server/cli/app.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_GO_BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
             "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}


class UsageError(Exception):
    """A command line cobra would refuse: printed as `Error: <text>`, exit status 1."""


@dataclass(frozen=True)
class Flag:
    name: str
    help: str
    kind: type = bool  # bool, str or int
    short: str = ""
    default: Any = None
    no_opt_default: str = ""  # the value of a non-boolean flag given without `=value` (pflag NoOptDefVal)

    def initial(self) -> Any:
        if self.default is not None:
            return self.default
        return {bool: False, str: "", int: 0}[self.kind]

    def convert(self, text: str, spelled: str) -> Any:
        if self.kind is bool:
            if text not in _GO_BOOLS:
                raise UsageError(f'invalid argument "{text}" for "{spelled}" flag: '
                                 f'strconv.ParseBool: parsing "{text}": invalid syntax')
            return _GO_BOOLS[text]
        if self.kind is int:
            try:
                return int(text, 0) if text.strip() == text else int("x")
            except ValueError:
                raise UsageError(f'invalid argument "{text}" for "{spelled}" flag: '
                                 f'strconv.ParseInt: parsing "{text}": invalid syntax') from None
        return text

    def spelled(self) -> str:
        return f"-{self.short}, --{self.name}" if self.short else f"--{self.name}"


HELP = Flag("help", "", short="h")


@dataclass
class Parsed:
    args: list[str]
    values: dict[str, Any]
    changed: set[str] = field(default_factory=set)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]


@dataclass
class Command:
    use: str  # "run MODEL [PROMPT]": the name, then the arguments as help shows them
    short: str
    handler: Callable[[Parsed], int | None] | None = None
    flags: list[Flag] = field(default_factory=list)
    aliases: tuple[str, ...] = ()
    exact_args: int | None = None
    min_args: int | None = None
    needs_server: bool = True  # checked with a heartbeat first, as cobra's PreRunE does
    env: tuple[tuple[str, str], ...] = ()
    hidden: bool = False

    @property
    def name(self) -> str:
        return self.use.split()[0]

    def all_flags(self) -> list[Flag]:
        return [*self.flags, HELP]

    def check_args(self, args: list[str]) -> None:
        if self.exact_args is not None and len(args) != self.exact_args:
            raise UsageError(f"accepts {self.exact_args} arg(s), received {len(args)}")
        if self.min_args is not None and len(args) < self.min_args:
            raise UsageError(f"requires at least {self.min_args} arg(s), only received {len(args)}")


def parse(flags: list[Flag], argv: list[str]) -> Parsed:
    """pflag's reading of `argv`: flags anywhere, `--` ends them, `-` is an argument."""
    by_name = {f.name: f for f in flags}
    by_short = {f.short: f for f in flags if f.short}
    parsed = Parsed([], {f.name: f.initial() for f in flags})

    def take(flag: Flag, value: str, spelled: str) -> None:
        parsed.values[flag.name] = flag.convert(value, spelled)
        parsed.changed.add(flag.name)

    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            parsed.args += argv[i:]
            break
        if arg.startswith("--"):
            name, has_value, value = arg[2:].partition("=")
            flag = by_name.get(name)
            if flag is None:
                raise UsageError(f"unknown flag: --{name}")
            if not has_value:
                if flag.kind is bool:
                    value = "true"
                elif flag.no_opt_default:
                    value = flag.no_opt_default
                elif i < len(argv):
                    value = argv[i]
                    i += 1
                else:
                    raise UsageError(f"flag needs an argument: --{name}")
            take(flag, value, flag.spelled())
        elif arg.startswith("-") and arg != "-":
            shorts = arg[1:]
            while shorts:
                letter, shorts = shorts[0], shorts[1:]
                flag = by_short.get(letter)
                if flag is None:
                    raise UsageError(f"unknown shorthand flag: '{letter}' in {arg}")
                if shorts.startswith("="):
                    take(flag, shorts[1:], flag.spelled())
                    break
                if flag.kind is bool:
                    take(flag, "true", flag.spelled())
                elif flag.no_opt_default:
                    take(flag, flag.no_opt_default, flag.spelled())
                elif shorts:
                    take(flag, shorts, flag.spelled())
                    break
                elif i < len(argv):
                    take(flag, argv[i], flag.spelled())
                    i += 1
                else:
                    raise UsageError(f"flag needs an argument: '{letter}' in {arg}")
        else:
            parsed.args.append(arg)
    return parsed


# --- help, in cobra's layout -----------------------------------------------------------------------


def flag_usages(flags: list[Flag], command_name: str) -> str:
    """pflag's FlagUsages: sorted by name, descriptions aligned after the longest flag."""
    lines = []
    for flag in sorted(flags, key=lambda f: f.name):
        text = f"  -{flag.short}, --{flag.name}" if flag.short else f"      --{flag.name}"
        if flag.kind is not bool:
            text += " " + {str: "string", int: "int"}[flag.kind]
        if flag.no_opt_default:
            text += f'[="{flag.no_opt_default}"]'
        description = flag.help or f"help for {command_name}"
        if flag.default not in (None, "", 0, False):
            description += f' (default "{flag.default}")' if flag.kind is str else f" (default {flag.default})"
        lines.append((text, description))
    width = max(len(text) for text, _ in lines)
    return "".join(f"{text}{' ' * (width - len(text))}   {description}\n" for text, description in lines)


def command_help(program: str, command: Command) -> str:
    out = [f"{command.short}\n\nUsage:\n  {program} {command.use} [flags]\n"]
    if command.aliases:
        out.append(f"\nAliases:\n  {', '.join((command.name, *command.aliases))}\n")
    out.append(f"\nFlags:\n{flag_usages(command.all_flags(), command.name)}")
    if command.env:
        out.append("\nEnvironment Variables:\n")
        out += [f"      {name:<27s}   {description}\n" for name, description in command.env]
    return "".join(out)


def root_help(program: str, short: str, commands: list[Command], flags: list[Flag]) -> str:
    shown = [c for c in commands if not c.hidden] + [Command("help", "Help about any command")]
    pad = max(11, *(len(c.name) for c in shown))
    listing = "".join(f"  {c.name:<{pad}s} {c.short}\n" for c in shown)
    return (f"{short}\n\nUsage:\n  {program} [flags]\n  {program} [command]\n\nAvailable Commands:\n{listing}\n"
            f"Flags:\n{flag_usages([*flags, HELP], program)}\n"
            f'Use "{program} [command] --help" for more information about a command.\n')
