"""The shared helpers of hw2cli.common: cache folder, seeding, figure saving."""

from __future__ import annotations

from pathlib import Path

import pytest

from hw2cli.common.cache import cache_dir


def test_cache_dir_prefers_hw2_cache_dir_then_xdg_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HW2_CACHE_DIR", "~/mine")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "home" / "mine"  # `~` expanded
    monkeypatch.delenv("HW2_CACHE_DIR")
    assert cache_dir() == tmp_path / "xdg" / "hw2"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == tmp_path / "home" / ".cache" / "hw2"


def test_gpt_and_rotation_use_the_same_cache_folder(tmp_path, monkeypatch):
    from hw2cli.gpt.corpus import cache_dir as gpt_cache_dir
    from hw2cli.rotation.data import default_data_dir

    monkeypatch.setenv("HW2_CACHE_DIR", str(tmp_path / "c"))
    assert gpt_cache_dir() == default_data_dir() == tmp_path / "c"


def test_seeded_gives_the_seed_numbers_and_restores_the_global_generator():
    torch = pytest.importorskip("torch")
    from hw2cli.common.seeding import seeded

    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    with seeded(7):
        inside = torch.rand(3)
    assert torch.equal(inside, torch.rand(3, generator=torch.Generator().manual_seed(7)))
    assert torch.equal(torch.rand(3), expected_next)  # the caller's stream went on untouched


def test_make_model_is_a_function_of_the_seed_only():
    torch = pytest.importorskip("torch")
    from hw2cli.padding.model import PaddingNetConfig, make_model

    config = PaddingNetConfig(net="net1", conv_type="valid")
    a = make_model(config, seed=3)
    torch.rand(10)  # unrelated use of the global generator in between
    b = make_model(config, seed=3)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_save_figure_writes_the_image_pixels(tmp_path):
    import matplotlib.image
    import numpy as np

    from hw2cli.common.figure import new_figure, save_figure

    image = np.zeros((4, 6, 3), dtype=np.float32)
    image[1, 2] = (1.0, 0.0, 0.0)
    fig = new_figure(dpi=100, frameon=False)
    fig.figimage(image, resize=True)
    path = save_figure(fig, tmp_path / "sub" / "f.png", dpi=100)
    assert path == Path(tmp_path / "sub" / "f.png")
    back = matplotlib.image.imread(path)
    assert back.shape[:2] == (4, 6)
    assert np.allclose(back[..., :3], image)
    assert [p.name for p in path.parent.iterdir()] == ["f.png"]  # no temporary file left


def test_builtin_corpus_is_offline_prose_and_the_same_every_time(tmp_path):
    from hw2cli.common.corpus import builtin_corpus, write_builtin_corpus

    text = builtin_corpus()
    assert len(text) > 50_000 and text == builtin_corpus()
    assert "padding" in text and "Laplacian" in text  # the docstrings of several families
    assert not any(0x2500 <= ord(c) < 0x2580 for c in text)  # no table-drawing characters
    assert write_builtin_corpus(tmp_path / "c.txt").read_text(encoding="utf-8") == text


def test_estimates_are_announced_only_when_long_and_warned_about_past_an_hour():
    from hw2cli.common.estimate import Estimate, duration

    assert Estimate(60, "the run", "a timed warm-up").message is None
    line = Estimate(600, "the run", "a timed warm-up").message
    assert line == "estimated wall time of the run: about 10.0 min (a timed warm-up)"
    warned = Estimate(7200, "the run", "a timed warm-up", shorter="use --max-steps 100").message
    assert warned.startswith("warning: ") and warned.endswith("for a shorter run use --max-steps 100")
    assert [duration(s) for s in (45, 600, 7200, 6 * 86400)] == ["45 s", "10.0 min", "2.0 h", "6.0 days"]


def test_notes_reach_stderr_without_a_terminal_unless_quiet(capsys):
    from hw2cli.common.progress import RichReporter

    with RichReporter(quiet=False) as reporter:
        reporter.note("estimated wall time: about 3 min")
    with RichReporter(quiet=True) as reporter:
        reporter.note("not shown")
    err = capsys.readouterr().err
    assert "about 3 min" in err and "not shown" not in err
