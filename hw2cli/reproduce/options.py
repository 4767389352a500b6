"""The options of `hw2 reproduce` (hw2cli.common.options): no torch here."""

from __future__ import annotations

from dataclasses import dataclass

from hw2cli.common.options import DEVICE, FORCE, OUT, OptionError, check, flag_of, option
from hw2cli.reproduce.parts import PART_NAMES, PROFILES


@dataclass
class ReproduceOptions:
    """`hw2 reproduce`: which parts, with which profile, on which device, into which folder."""

    profile: str = option(
        "quick",
        "quick: minutes on a 2-core CPU and offline (digits instead of CIFAR-10, a small GPT on "
        "hw2's own docstrings, one round per table, the probes' quick sizes); full: the report's settings "
        "(CIFAR-10 and Grimm's fairy tales are downloaded on first use).",
        choices=tuple(PROFILES),
    )
    out: str | None = option(None, OUT, show_default="reproduce-PROFILE")
    device: str = option("auto", DEVICE)
    parts: str | None = option(
        None,
        f"Run only these parts (comma-separated: {', '.join(PART_NAMES)}); the report lists the "
        "others as not run.",
        metavar="LIST",
        show_default="all",
    )
    force: bool = option(False, FORCE)

    def __post_init__(self) -> None:
        check(self)
        self.selected()

    def folder(self) -> str:
        """The reproduction folder: ``out``, else ``reproduce-PROFILE``."""
        return self.out if self.out is not None else f"reproduce-{self.profile}"

    def selected(self) -> tuple[str, ...]:
        """The parts to run, in the report's order."""
        if self.parts is None:
            return PART_NAMES
        names = [p.strip() for p in self.parts.split(",") if p.strip()]
        unknown = [p for p in names if p not in PART_NAMES]
        if unknown or not names:
            raise OptionError(
                f"{{parts}} {', '.join(unknown) or repr(self.parts)} is not a part; use a "
                f"comma-separated list of {', '.join(PART_NAMES)}"
            )
        return tuple(p for p in PART_NAMES if p in names)


def flags(**values: object) -> str:
    """These options as typed on the command line (True: the flag alone), for the messages that
    say what to run: the flags come from the options model, not from the library's text."""
    return " ".join(flag_of(ReproduceOptions, k) + ("" if v is True else f" {v}") for k, v in values.items())
