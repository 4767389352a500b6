"""The options of `hw2 padding-bench` and `hw2 padding-bench preview` (hw2cli.common.options):
``run_padding_bench(PaddingOptions(net="net2", rounds=3))``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from hw2cli.common.options import DEVICE, EPOCHS, PRECISION, SEED, OptionError, check, option
from hw2cli.padding import CONV, NETS


def parse_conv_types(text: str | None) -> list[str]:
    """``"valid,replicate"`` -> the listed conv types in the report's row order (None or "": all)."""
    if not text:
        return list(CONV)
    names = [t.strip().lower() for t in text.split(",") if t.strip()]
    bad = [t for t in names if t not in CONV]
    if bad or not names:
        raise OptionError(
            f"{{conv_types}}: unknown conv type {{bad}}; use a comma-separated list of {', '.join(CONV)}",
            bad=", ".join(repr(t) for t in bad) or repr(text),
        )
    return [t for t in CONV if t in names]


#: Not the shared SEED: here the seed draws the images only; round m's weights come from m - 1.
DATA_SEED = dataclasses.replace(
    SEED,
    help="Seed of the box images (training, validation and test sets); round m's weights come "
    "from seed m - 1, whatever this is.",
)


@dataclass
class PaddingOptions:
    """`hw2 padding-bench`: ``rounds`` networks of each conv type of ``net``, trained with the
    course protocol (Adadelta, batches of 200, early stopping on the validation loss)."""

    net: str = option(
        "net1", "net1 (global max pool: Table 1) or net2 (flatten + linear: Table 2).", choices=NETS
    )
    conv_types: str | None = option(
        None,
        f"Comma-separated subset of {','.join(CONV)}.",
        show_default="all",
        metavar="LIST",
    )
    rounds: int = option(
        10, "Networks per conv type; round m is initialised with seed m - 1.", min=1, max=1000
    )
    epochs: int = option(50, EPOCHS)
    device: str = option("auto", DEVICE)
    precision: str = option("fp32", PRECISION.with_choices("fp32", "bf16"))
    seed: int = option(0, DATA_SEED)
    independent_val: bool = option(
        False,
        "Draw the validation set from its own seed. By default, as in the course code, it is the "
        "first 1,000 training images.",
    )
    workers: int = option(
        0, "CPU worker processes (0: one per core); the numbers do not depend on it.", min=0, max=1024
    )

    def __post_init__(self) -> None:
        check(self)
        self.types  # noqa: B018 -- a bad list refused before any work

    @property
    def types(self) -> list[str]:
        """The conv types to train, in the report's row order."""
        return parse_conv_types(self.conv_types)


@dataclass
class PreviewOptions:
    """`hw2 padding-bench preview`: enlarged PNG examples of each class and set."""

    out_dir: str = option(
        spec="Folder for the PNG files.", path=True, argument=True, show_default=False, metavar="OUT_DIR"
    )
    seed: int = option(0, DATA_SEED)
    per_class: int = option(4, "Examples per image.", min=1, max=32)

    def __post_init__(self) -> None:
        check(self)
