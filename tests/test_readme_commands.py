"""README commands: every smtpdiag command in the READMEs' shell blocks is valid for the CLI.

The checker reads the fenced code blocks of README.md and README.ru.md and takes each shell
command whose program is smtpdiag. It checks the command against the Typer app itself. The
subcommand must exist, and every option must be an option of that subcommand or a global
option before it. An option that takes a value needs one, a value of a fixed set must be in
the set, and the number of positional arguments must fit. Click's own parser checks each
command a second time.

Shell syntax is read the way a shell splits a line: line continuations, comments, quotes,
pipes, `&&` and `;` lists, redirections, and `sudo -u USER` and `NAME=value` prefixes. A word
in angle brackets, such as `<config_file>`, is a placeholder and is accepted wherever a value
or argument is expected.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer

from smtpdiag.cli import app

ROOT = Path(__file__).resolve().parent.parent
READMES = ("README.md", "README.ru.md")

SHELL_LANGUAGES = frozenset({"", "sh", "bash", "shell", "console", "zsh"})
"""Info strings of the fenced blocks that contain shell commands. Blocks with other info
strings, such as toml or text, are skipped."""

CONTROL_OPERATORS = frozenset({"&&", "||", ";", "|", "|&", "&", "(", ")", ";;"})
REDIRECTIONS = frozenset({"<", ">", ">>", "<<", "<<<", ">&", "<&", "&>", "&>>", ">|", "<>"})
PLACEHOLDER = re.compile(r"<[^\s<>]+>")
PLACEHOLDER_WORD = "PLACEHOLDER"
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
SUDO_OPTIONS_WITH_VALUE = frozenset({"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U"})


# Reading the Markdown


@dataclass(frozen=True)
class ShellLine:
    """One logical shell line of a fenced block, with continuation lines joined."""

    source: str
    """File and line number where the logical line starts, such as ``README.md:42``."""
    text: str


def fenced_blocks(markdown: str) -> list[tuple[str, int, list[str]]]:
    """Return the fenced code blocks as (info string, line number of the first content line,
    content lines)."""
    blocks: list[tuple[str, int, list[str]]] = []
    lines = markdown.splitlines()
    index = 0
    while index < len(lines):
        opening = re.match(r" {0,3}(`{3,}|~{3,})\s*([^`\s]*)", lines[index])
        index += 1
        if opening is None:
            continue
        fence, info = opening.group(1), opening.group(2).lower()
        start = index + 1
        content: list[str] = []
        while index < len(lines):
            closing = re.match(r" {0,3}(`{3,}|~{3,})\s*$", lines[index])
            index += 1
            if closing and closing.group(1)[0] == fence[0] and len(closing.group(1)) >= len(fence):
                break
            content.append(lines[index - 1])
        blocks.append((info, start, content))
    return blocks


def shell_lines(markdown: str, name: str) -> list[ShellLine]:
    """Return the logical lines of the shell blocks, joining lines that end with a backslash."""
    result: list[ShellLine] = []
    for info, start, content in fenced_blocks(markdown):
        if info not in SHELL_LANGUAGES:
            continue
        pending: list[str] = []
        pending_start = start
        for offset, raw in enumerate(content):
            line = raw[2:] if info == "console" and raw.startswith("$ ") else raw
            if not pending:
                pending_start = start + offset
            stripped = line.rstrip()
            trailing_backslashes = len(stripped) - len(stripped.rstrip("\\"))
            if trailing_backslashes % 2 == 1:
                pending.append(stripped[:-1])
                continue
            pending.append(line)
            result.append(ShellLine(f"{name}:{pending_start}", " ".join(pending)))
            pending = []
        if pending:
            result.append(ShellLine(f"{name}:{pending_start}", " ".join(pending)))
    return result


# Reading shell syntax


def strip_comment(line: str) -> str:
    """Remove the comment from a shell line. A comment starts at a ``#`` that begins a word
    outside quotes."""
    quote = ""
    escaped = False
    for position, char in enumerate(line):
        if escaped:
            escaped = False
        elif char == "\\" and quote != "'":
            escaped = True
        elif quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "#" and (position == 0 or line[position - 1] in " \t;&|()"):
            return line[:position]
    return line


def simple_commands(line: str) -> list[list[str]]:
    """Split a shell line into simple commands and drop their redirections."""
    text = PLACEHOLDER.sub(PLACEHOLDER_WORD, strip_comment(line))
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    tokens = list(lexer)

    commands: list[list[str]] = []
    words: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token in CONTROL_OPERATORS:
            commands.append(words)
            words = []
        elif token in REDIRECTIONS:
            # "2>&1" and "2>/dev/null" arrive as "2", ">&", "1": the digit is the descriptor.
            if words and words[-1].isdigit():
                words.pop()
            index += 1  # the redirection's target
        else:
            words.append(token)
        index += 1
    commands.append(words)
    return [command for command in commands if command]


def skip_assignments(words: list[str], index: int) -> int:
    while index < len(words) and ASSIGNMENT.match(words[index]):
        index += 1
    return index


def smtpdiag_arguments(words: list[str]) -> list[str] | None:
    """Return the arguments after the program when a simple command runs smtpdiag, else None.

    Leading ``NAME=value`` assignments and ``sudo`` with its options are skipped, and a path
    such as ``.venv/bin/smtpdiag`` counts as smtpdiag.
    """
    index = skip_assignments(words, 0)
    if index < len(words) and words[index] == "sudo":
        index += 1
        while index < len(words) and words[index].startswith("-"):
            index += 2 if words[index] in SUDO_OPTIONS_WITH_VALUE else 1
        index = skip_assignments(words, index)
    if index >= len(words) or words[index].rsplit("/", 1)[-1] != "smtpdiag":
        return None
    return words[index + 1 :]


# Reading the CLI


@dataclass(frozen=True)
class OptionSpec:
    """What the CLI accepts for one option name."""

    takes_value: bool
    choices: tuple[str, ...] | None
    """Allowed values of an option with a fixed set, else None."""


@dataclass(frozen=True)
class CommandSpec:
    """Options and positional-argument limits of one command."""

    options: dict[str, OptionSpec]
    min_arguments: int
    max_arguments: int | None
    """None when an argument takes any number of values."""


def describe(command: Any, context: typer.Context) -> CommandSpec:
    """Collect the options (with the help option) and argument limits of a Click command."""
    options: dict[str, OptionSpec] = {}
    min_arguments = 0
    max_arguments: int | None = 0
    for parameter in command.get_params(context):
        if parameter.param_type_name == "option":
            takes_value = not (parameter.is_flag or parameter.count)
            choices = getattr(parameter.type, "choices", None)
            spec = OptionSpec(takes_value, tuple(str(c) for c in choices) if choices else None)
            for name in [*parameter.opts, *parameter.secondary_opts]:
                options[name] = spec
        elif parameter.param_type_name == "argument":
            if parameter.nargs < 0:
                max_arguments = None
            elif max_arguments is not None:
                max_arguments += parameter.nargs
            if parameter.required:
                min_arguments += max(parameter.nargs, 1)
    return CommandSpec(options, min_arguments, max_arguments)


@cache
def cli_specs() -> tuple[CommandSpec, dict[str, CommandSpec]]:
    """Return the global options and the spec of every subcommand of the smtpdiag app."""
    group: Any = typer.main.get_command(app)
    root_context = typer.Context(group, info_name="smtpdiag", **group.context_settings)
    subcommands = {
        name: describe(command, typer.Context(command, info_name=name, parent=root_context))
        for name, command in group.commands.items()
    }
    return describe(group, root_context), subcommands


# Checking one command


def parse_options(
    arguments: list[str], spec: CommandSpec, where: str, stop_at_positional: bool
) -> tuple[list[str], list[str], int]:
    """Walk ``arguments`` as Click does and return (problems, positional arguments, index of
    the first argument not consumed)."""
    problems: list[str] = []
    positional: list[str] = []
    index = 0
    while index < len(arguments):
        token = arguments[index]
        index += 1
        if token == "--":
            positional.extend(arguments[index:])
            return problems, positional, len(arguments)
        if not token.startswith("-") or token == "-":
            if stop_at_positional:
                return problems, positional, index - 1
            positional.append(token)
            continue

        if token.startswith("--"):
            name, has_inline, inline = token.partition("=")
            option = spec.options.get(name)
            if option is None:
                problems.append(f"{name} is not an option of {where}")
            elif option.takes_value and not has_inline:
                if index >= len(arguments):
                    problems.append(f"{name} of {where} needs a value")
                else:
                    problems.extend(check_value(name, arguments[index], option, where))
                    index += 1
            elif option.takes_value:
                problems.extend(check_value(name, inline, option, where))
            elif has_inline:
                problems.append(f"{name} of {where} is a flag and takes no value")
            continue

        # A cluster of short options, such as -vv, or -fjson with its value attached.
        for position in range(1, len(token)):
            name = "-" + token[position]
            option = spec.options.get(name)
            if option is None:
                problems.append(f"{name} is not an option of {where}")
                break
            if option.takes_value:
                attached = token[position + 1 :]
                if attached:
                    problems.extend(check_value(name, attached, option, where))
                elif index >= len(arguments):
                    problems.append(f"{name} of {where} needs a value")
                else:
                    problems.extend(check_value(name, arguments[index], option, where))
                    index += 1
                break
    return problems, positional, len(arguments)


def check_value(name: str, value: str, option: OptionSpec, where: str) -> list[str]:
    if option.choices is None or PLACEHOLDER_WORD in value or value in option.choices:
        return []
    return [f"{value!r} is not a value of {name} of {where} ({', '.join(option.choices)})"]


def check_invocation(arguments: list[str]) -> list[str]:
    """Return what the smtpdiag CLI would reject in ``arguments``, the words after the
    program. An empty list means that the command line is valid."""
    global_spec, subcommands = cli_specs()
    problems, _, index = parse_options(arguments, global_spec, "smtpdiag", True)
    if index >= len(arguments):
        return problems
    name = arguments[index]
    if name not in subcommands:
        known = ", ".join(sorted(subcommands))
        return [*problems, f"{name!r} is not a subcommand of smtpdiag ({known})"]

    spec = subcommands[name]
    where = f"smtpdiag {name}"
    more, positional, _ = parse_options(arguments[index + 1 :], spec, where, False)
    problems.extend(more)
    if len(positional) < spec.min_arguments:
        problems.append(
            f"{where} got {len(positional)} positional arguments; it needs at least "
            f"{spec.min_arguments}"
        )
    if spec.max_arguments is not None and len(positional) > spec.max_arguments:
        problems.append(
            f"{where} got {len(positional)} positional arguments {positional!r}; it accepts "
            f"at most {spec.max_arguments}"
        )
    return problems


def click_problem(arguments: list[str]) -> str | None:
    """Parse ``arguments`` with Click's own parser, as ``smtpdiag`` would before running the
    command, and return its error message, or None when Click accepts them."""
    group: Any = typer.main.get_command(app)
    root_context = typer.Context(group, info_name="smtpdiag", **group.context_settings)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # --help prints the help page
            _, rest, _ = group.make_parser(root_context).parse_args(args=list(arguments))
            if not rest:
                return None
            name, *more = rest
            command = group.get_command(root_context, name)
            if command is None:
                return f"No such command {name!r}."
            command.make_context(name, more, parent=root_context)
    except typer.Exit:  # --help and --version end parsing early
        return None
    except typer._click.exceptions.ClickException as error:  # typer vendors click
        return error.format_message()
    return None


def invocations(line: str) -> list[list[str]]:
    """Return the argument lists of every smtpdiag command on a shell line."""
    found = []
    for words in simple_commands(line):
        arguments = smtpdiag_arguments(words)
        if arguments is not None:
            found.append(arguments)
    return found


def readme_invocations(name: str) -> list[tuple[ShellLine, list[str]]]:
    text = (ROOT / name).read_text(encoding="utf-8")
    return [(line, args) for line in shell_lines(text, name) for args in invocations(line.text)]


# The READMEs


@pytest.mark.parametrize("name", READMES)
def test_readme_has_smtpdiag_commands(name: str) -> None:
    assert len(readme_invocations(name)) >= 5


def readme_cases() -> list[Any]:
    return [
        pytest.param(line, arguments, id=line.source)
        for name in READMES
        for line, arguments in readme_invocations(name)
    ]


@pytest.mark.parametrize(("line", "arguments"), readme_cases())
def test_readme_command_is_valid(line: ShellLine, arguments: list[str]) -> None:
    assert check_invocation(arguments) == [], line.text
    assert click_problem(arguments) is None, line.text


def subcommands_shown(name: str) -> set[str]:
    _, subcommands = cli_specs()
    return {word for _, arguments in readme_invocations(name) for word in arguments[:1]} & set(
        subcommands
    )


def test_russian_readme_shows_every_subcommand() -> None:
    assert subcommands_shown("README.md") - subcommands_shown("README.ru.md") == set()


def section_blocks(markdown: str, heading: str) -> list[str]:
    """Return the fenced blocks of one ``##`` section, each as its joined content."""
    parts = markdown.split(f"\n## {heading}\n", 1)
    if len(parts) < 2:
        return []
    section = parts[1].split("\n## ", 1)[0]
    return ["\n".join(content) for _, _, content in fenced_blocks(section)]


def test_russian_readme_has_fresh_machine_commands() -> None:
    english = section_blocks(
        (ROOT / "README.md").read_text(encoding="utf-8"), "Try it on a fresh machine"
    )
    russian = {
        "\n".join(content)
        for _, _, content in fenced_blocks((ROOT / "README.ru.md").read_text(encoding="utf-8"))
    }
    assert len(english) == 2
    for block in english:
        assert block in russian


# The shell reader


SHELL_CASES = [
    pytest.param("smtpdiag check host", [["check", "host"]], id="plain"),
    pytest.param(
        "smtpdiag check --msmtprc auto   # ~/.msmtprc, /etc/msmtprc",
        [["check", "--msmtprc", "auto"]],
        id="comment",
    ),
    pytest.param(
        "smtpdiag check --token-command 'get-token #1' x#y",
        [["check", "--token-command", "get-token #1", "x#y"]],
        id="hash-inside-words",
    ),
    pytest.param(
        "smtpdiag rules > /etc/prometheus/rules/smtpdiag.rules.yml 2>&1",
        [["rules"]],
        id="redirections",
    ),
    pytest.param("smtpdiag decode - < transcript.txt", [["decode", "-"]], id="stdin"),
    pytest.param(
        "smtpdiag check -c <config_file> -t lab | grep auth",
        [["check", "-c", PLACEHOLDER_WORD, "-t", "lab"]],
        id="placeholder-and-pipe",
    ),
    pytest.param(
        "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/smtpdiag demo",
        [["demo"]],
        id="and-list-with-path",
    ),
    pytest.param(
        "sudo -u msmtp SMTPDIAG_TIMEOUT=5 smtpdiag check --msmtprc /etc/msmtprc",
        [["check", "--msmtprc", "/etc/msmtprc"]],
        id="sudo",
    ),
    pytest.param("echo smtpdiag check; smtpdiag findings", [["findings"]], id="echo-is-not-run"),
]


@pytest.mark.parametrize(("line", "expected"), SHELL_CASES)
def test_invocations_read_shell_syntax(line: str, expected: list[list[str]]) -> None:
    assert invocations(line) == expected


def test_shell_lines_join_continuations() -> None:
    markdown = (
        "```sh\n"
        "smtpdiag check --provider microsoft \\\n"
        "    --client-id ID --refresh-token-file rt.txt\n"
        "```\n"
        "```toml\n"
        "smtpdiag = 1\n"
        "```\n"
    )
    lines = shell_lines(markdown, "X.md")
    assert [line.source for line in lines] == ["X.md:2"]
    assert invocations(lines[0].text) == [
        ["check", "--provider", "microsoft", "--client-id", "ID", "--refresh-token-file", "rt.txt"]
    ]


# The checker accepts what the CLI accepts


VALID = [
    pytest.param(["check", "--format=json", "smtp.example.com:587"], id="inline-value"),
    pytest.param(["check", "-fjson", "host"], id="attached-short-value"),
    pytest.param(["check", "--verify", "host"], id="secondary-flag"),
    pytest.param(["-vv", "check", "host"], id="global-count-option"),
    pytest.param(["--log-level", "debug", "logs", "a.log", "b.log.gz"], id="global-choice"),
    pytest.param(["check", "--help"], id="help"),
    pytest.param(["decode", "-"], id="dash-argument"),
    pytest.param(["--version"], id="version-alone"),
]


@pytest.mark.parametrize("arguments", VALID)
def test_checker_accepts(arguments: list[str]) -> None:
    assert check_invocation(arguments) == []


@pytest.mark.parametrize("arguments", VALID)
def test_click_accepts(arguments: list[str]) -> None:
    assert click_problem(arguments) is None


# The checker rejects what the CLI rejects


INVALID = [
    pytest.param(
        ["check", "--no-such-option", "host"],
        "--no-such-option is not an option of smtpdiag check",
        id="made-up-option",
    ),
    pytest.param(["diagnose", "host"], "'diagnose' is not a subcommand", id="made-up-subcommand"),
    pytest.param(
        ["rules", "--msmtprc", "/etc/msmtprc"],
        "--msmtprc is not an option of smtpdiag rules",
        id="option-of-another-subcommand",
    ),
    pytest.param(
        ["check", "-v", "host"], "-v is not an option of smtpdiag check", id="global-after-command"
    ),
    pytest.param(
        ["check", "-x", "host"], "-x is not an option of smtpdiag check", id="made-up-short-option"
    ),
    pytest.param(
        ["check", "host", "--format", "xml"], "'xml' is not a value of --format", id="bad-choice"
    ),
    pytest.param(["check", "--config"], "--config of smtpdiag check needs a value", id="no-value"),
    pytest.param(
        ["lab", "--list-scenarios=yes"], "is a flag and takes no value", id="value-for-flag"
    ),
    pytest.param(["demo", "extra"], "accepts at most 0", id="extra-argument"),
    pytest.param(["check", "a", "b"], "accepts at most 1", id="two-targets"),
]


@pytest.mark.parametrize(("arguments", "message"), INVALID)
def test_checker_rejects(arguments: list[str], message: str) -> None:
    problems = check_invocation(arguments)
    assert problems != []
    assert message in problems[0]


@pytest.mark.parametrize(("arguments", "message"), INVALID)
def test_click_rejects(arguments: list[str], message: str) -> None:
    assert click_problem(arguments) is not None


def test_checker_rejects_made_up_option_in_markdown() -> None:
    markdown = "```sh\nsmtpdiag check --msmtprc auto \\\n    --acount work  # typo\n```\n"
    (line,) = shell_lines(markdown, "X.md")
    (arguments,) = invocations(line.text)
    assert check_invocation(arguments) == ["--acount is not an option of smtpdiag check"]
