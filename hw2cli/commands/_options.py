"""The CLI side of the options model (hw2cli/common/options.py): Typer options derived from a
family's options dataclass, and the shared aliases of the flags that are not part of any
family's options (outputs, ``--quiet``, ``--threads``).

A command takes its family's options as one parameter::

    @app.command("train")
    @user_errors
    @takes(TrainOptions)
    def gpt_train(opts: TrainOptions, json_path: JsonOut = None, quiet: Quiet = False) -> None: ...

:func:`takes` replaces ``opts`` in the signature Typer reads by one option per field (help,
range, choices and shown default from the field's Spec), builds the dataclass from what was
parsed, and turns an OptionError about a field into a message that names its flag.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import inspect
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from hw2cli.common.errors import Hw2Error
from hw2cli.common.options import OptionError, Spec, flag_of, spec_of

# ----------------------------------------------------------------------------- shared aliases

JsonOut = Annotated[
    Path | None,
    typer.Option(
        "--json",
        metavar="PATH",
        help="Also write the results as JSON to this file ('-': standard output, tables then on stderr).",
        show_default=False,
    ),
]
PlotOut = Annotated[
    Path | None,
    typer.Option("--plot", metavar="PNG", help="Write the figure to this PNG.", show_default=False),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
THREADS_HELP = (
    "Intra-op CPU threads (0: one per core that other processes leave free when the command starts; "
    "same numbers need the same count)."
)
Threads = Annotated[int, typer.Option("--threads", min=0, max=4096, help=THREADS_HELP)]


# ----------------------------------------------------------------------------- derivation

_ENUMS: dict[tuple[str, tuple[str, ...]], type[enum.Enum]] = {}


def choice_enum(name: str, choices: tuple[str, ...]) -> type[enum.Enum]:
    """One str Enum per choice list, so that --help and shell completion list the values."""
    key = (name, choices)
    if key not in _ENUMS:
        _ENUMS[key] = enum.Enum(name, {c: c for c in choices}, type=str)  # type: ignore[misc]
    return _ENUMS[key]


def _base_type(annotation: Any) -> tuple[Any, bool]:
    """``int | None`` -> (int, True); ``float`` -> (float, False)."""
    if isinstance(annotation, str):
        annotation = eval(annotation, {"__builtins__": __builtins__}, {})  # noqa: S307 -- builtins only
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return annotation, False


def typer_option(name: str, spec: Spec, annotation: Any) -> Any:
    """The ``Annotated[type, typer.Option(...)]`` that parses field ``name``."""
    base, optional = _base_type(annotation)
    if spec.choices is not None:
        base = choice_enum(name.title().replace("_", ""), spec.choices)
    elif spec.path:
        base = Path
    if spec.argument:
        info = typer.Argument(
            help=spec.help, show_default=spec.show_default, metavar=spec.metavar or name.upper()
        )
        return Annotated[(base | None) if optional else base, info]
    decls = [spec.flag or "--" + name.replace("_", "-")]
    if spec.short:
        decls.append(spec.short)
    info = typer.Option(
        *decls,
        help=spec.help,
        min=spec.min,
        max=spec.max,
        show_default=spec.show_default,
        metavar=spec.metavar,
    )
    return Annotated[(base | None) if optional else base, info]


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    return str(value) if isinstance(value, Path) else value


def cli_parameters(cls: type) -> list[inspect.Parameter]:
    """One keyword parameter per field of ``cls`` that has a Spec with ``cli`` set."""
    hints = typing.get_type_hints(cls)
    params = []
    for field in dataclasses.fields(cls):
        spec = spec_of(field)
        if spec is None or not spec.cli:
            continue
        default = field.default
        if default is dataclasses.MISSING:
            default = inspect.Parameter.empty
        elif spec.choices is not None and default is not None:
            default = choice_enum(field.name.title().replace("_", ""), spec.choices)(default)
        elif spec.path and default is not None:
            default = Path(default)
        params.append(
            inspect.Parameter(
                field.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=default,
                annotation=typer_option(field.name, spec, hints[field.name]),
            )
        )
    return params


def takes(cls: type, param: str = "opts") -> Callable[[Callable], Callable]:
    """Decorate a command whose parameter ``param`` is an instance of options dataclass ``cls``
    (see the module docstring). The command's other parameters keep their own declarations."""

    def decorate(fn: Callable) -> Callable:
        own = [p for p in inspect.signature(fn, eval_str=True).parameters.values() if p.name != param]
        fields = cli_parameters(cls)
        names = {p.name for p in fields}
        clash = names & {p.name for p in own}
        if clash:
            raise TypeError(f"{fn.__name__}: parameters {sorted(clash)} are already fields of {cls.__name__}")

        @functools.wraps(fn)
        def command(*args: Any, **kwargs: Any) -> Any:
            values = {name: _plain(kwargs.pop(name)) for name in names if name in kwargs}
            try:
                opts = cls(**values)
                return fn(*args, **{param: opts}, **kwargs)
            except OptionError as exc:  # the one place where a field becomes its flag
                message = exc.named(lambda field: flag_of(cls, field) if field in names else field)
                raise Hw2Error(message) from None

        new = [*fields, *(p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own)]
        command.__signature__ = inspect.Signature(new)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in new}
        del command.__wrapped__  # Typer must read the derived signature, not fn's
        command.__hw2_options__ = cls  # type: ignore[attr-defined]  # for tests/test_options.py
        return command

    return decorate


def flag_notes(cls: type) -> Callable[[bool], Any]:
    """The ``progress`` of :func:`hw2cli.commands._runner.run_command` for a library whose notes
    (an estimate's advice) name options as ``{field}``, like OptionError: Rich bars whose notes
    name the flags of options dataclass ``cls`` instead."""
    from hw2cli.common.progress import RichReporter

    class FlagNotes(RichReporter):
        def note(self, message: str) -> None:
            super().note(OptionError(message).named(lambda field: flag_of(cls, field)))

    return FlagNotes
