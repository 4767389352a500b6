"""The CLI side of the options model (hw2cli/common/options.py): :func:`takes` replaces a
command's ``opts`` parameter by one Typer option per field of the options dataclass, builds the
dataclass from what was parsed and names flags in its OptionErrors; and the shared aliases of
the flags that are no family's options (outputs, ``--quiet``, ``--threads``)."""

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
from hw2cli.common.options import OptionError, Spec, default_flag, flag_of, spec_of

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
Threads = Annotated[
    int,
    typer.Option(
        "--threads",
        min=0,
        max=4096,
        help="Intra-op CPU threads (0: one per core that other processes leave free when the command starts; "
        "same numbers need the same count).",
    ),
]


@functools.cache
def choice_enum(field: str, choices: tuple[str, ...]) -> type[enum.Enum]:
    """One str Enum per choice list: --help and shell completion list the values."""
    return enum.Enum(field.title().replace("_", ""), {c: c for c in choices}, type=str)  # type: ignore[misc]


def typer_option(name: str, spec: Spec, annotation: Any) -> Any:
    """The ``Annotated[type, typer.Option(...)]`` (or ``typer.Argument``) that parses field ``name``."""
    args = typing.get_args(annotation)
    optional = typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args
    base = next(a for a in args if a is not type(None)) if optional else annotation
    if spec.choices is not None:
        base = choice_enum(name, spec.choices)
    elif spec.path:
        base = Path
    shown = {"help": spec.help, "show_default": spec.show_default}
    if spec.argument:
        info = typer.Argument(**shown, metavar=spec.metavar or name.upper())
    else:
        decls = [spec.flag or default_flag(name), *([spec.short] if spec.short else [])]
        info = typer.Option(*decls, **shown, min=spec.min, max=spec.max, metavar=spec.metavar)
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
            default = choice_enum(field.name, spec.choices)(default)
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
    """Decorate a command whose parameter ``param`` is an instance of options dataclass ``cls``."""

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
        command.__hw2_options__ = cls  # type: ignore[attr-defined]  # for tests/common/test_options.py
        return command

    return decorate


def flag_notes(cls: type) -> Callable[[bool], Any]:
    """``run_command``'s ``progress`` for a library whose notes name options as ``{field}``:
    Rich bars whose notes name the flags of options dataclass ``cls``."""
    from hw2cli.common.progress import RichReporter

    return functools.partial(RichReporter, options=cls)
