"""The options model (hw2cli/common/options.py) is the one source of truth: every command's
advertised ranges and choices are what its library accepts, at both ends, and no flag is
declared twice with different meanings."""

from __future__ import annotations

import dataclasses
import math

import pytest
import typer.main
from typer.testing import CliRunner

from hw2cli.cli import app
from hw2cli.common.options import OptionError, Spec, check, check_value, flag_of, option, specs


def _commands(group=None, path=("hw2",)):
    """(command path, click command) for every leaf command of the app."""
    group = group or typer.main.get_command(app)
    for name, cmd in sorted(getattr(group, "commands", {}).items()):
        here = (*path, name)
        if getattr(cmd, "commands", None):
            if cmd.callback is not None and getattr(cmd.callback, "__hw2_options__", None):
                yield " ".join(here), cmd  # a group that is also a command (padding-bench)
            yield from _commands(cmd, here)
        else:
            yield " ".join(here), cmd


COMMANDS = dict(_commands())


def _options_class(cmd):
    fn = cmd.callback
    while fn is not None and not hasattr(fn, "__hw2_options__"):
        fn = getattr(fn, "__wrapped__", None)
    return None if fn is None else fn.__hw2_options__


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_takes_an_options_model(name):
    assert _options_class(COMMANDS[name]) is not None, f"{name} declares its options by hand"


def _field_params(name):
    cmd = COMMANDS[name]
    cls = _options_class(cmd)
    if cls is None:
        return []
    fields = specs(cls)
    return [(cls, p.name, fields[p.name], p) for p in cmd.params if p.name in fields]


RANGED = [
    (name, pname)
    for name in sorted(COMMANDS)
    for (_, pname, spec, _) in _field_params(name)
    if spec.min is not None
]


@pytest.mark.parametrize("name,field", RANGED)
def test_advertised_range_is_what_the_library_accepts(name, field):
    (cls, _, spec, param) = next(x for x in _field_params(name) if x[1] == field)
    assert (param.min, param.max) == (spec.min, spec.max)  # --help shows the Spec's range
    check_value(field, spec, spec.min)  # both ends accepted by the library
    if spec.max is not None:
        check_value(field, spec, spec.max)
    whole = isinstance(spec.min, int) and (spec.max is None or isinstance(spec.max, int))
    below = spec.min - 1 if whole else math.nextafter(spec.min, -math.inf)
    with pytest.raises(OptionError, match=field):
        check_value(field, spec, below)
    if spec.max is not None:
        above = spec.max + 1 if whole else math.nextafter(spec.max, math.inf)
        with pytest.raises(OptionError, match=field):
            check_value(field, spec, above)
    # and through the command line: the value just outside is refused in one line, exit 2
    flag = flag_of(cls, field)
    result = CliRunner().invoke(app, [*name.split()[1:], flag, str(below)])
    assert result.exit_code == 2, result.output


def _declarations():
    """flag -> set of (help, min, max) over every command."""
    seen: dict[str, set] = {}
    for cmd in COMMANDS.values():
        for p in cmd.params:
            for opt in getattr(p, "opts", []):
                if opt.startswith("--") and opt != "--help":
                    seen.setdefault(opt, set()).add(
                        (p.help, getattr(p, "min", None), getattr(p, "max", None))
                    )
    return seen


#: Flags whose meaning truly differs in one family, and the help that says so.
OWN_MEANING = {"--seed": "Seed of the box images"}  # padding-bench: the data, not the weights


def test_a_flag_means_the_same_everywhere():
    """A flag used by several commands comes from one shared Spec or alias: one help text,
    except where a family's flag means something else and its help says what."""
    differing = {flag: decl for flag, decl in _declarations().items() if len(decl) > 1}
    for flag, start in OWN_MEANING.items():
        helps = {decl[0] for decl in differing.pop(flag, ())}
        assert len(helps) == 2 and any(h.startswith(start) for h in helps), helps
    assert not differing, differing


def test_option_error_names_the_field_for_python_and_the_flag_on_the_command_line():
    @dataclasses.dataclass
    class Opts:
        max_power: int = option(2, "Highest power.", min=1, max=20)
        edges: str | None = option(None, Spec("Edges.", argument=True))

    with pytest.raises(OptionError) as info:
        check(Opts(max_power=21))
    assert str(info.value) == "max_power 21 is out of range; use 1 to 20"
    assert info.value.named(lambda f: flag_of(Opts, f)) == "--max-power 21 is out of range; use 1 to 20"
    assert flag_of(Opts, "edges") == "EDGES"
    check(Opts(max_power=20))


def test_non_finite_and_non_numbers_are_refused():
    spec = Spec("Rate.", min=0.0, max=1.0)
    for bad in (math.nan, math.inf, "0.5", True):
        with pytest.raises(OptionError):
            check_value("rate", spec, bad)
    check_value("rate", spec, None)  # an optional option left to its computed default


def test_library_errors_name_fields_not_flags():
    from hw2cli.graph.options import LaplacianOptions

    with pytest.raises(OptionError) as info:
        LaplacianOptions(edges="g.txt", directed=True, normalized=True)
    assert "--" not in str(info.value) and "normalized" in str(info.value)
