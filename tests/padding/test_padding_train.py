"""The training protocol: early stopping, kept weights, and the batched trainer following
each network's solo trajectory for every conv type."""

from __future__ import annotations

import math

import pytest
import torch

from hw2cli.padding.data import BoxData, make_data
from hw2cli.padding.model import CONV_TYPES, PaddingNetConfig, make_model
from hw2cli.padding.train import TrainSettings, evaluate, train_round, train_rounds_batched


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread, as in the worker processes; the caller's count restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny():
    """40 training images; the shifted test set doubles as validation set, so the validation
    loss soon stops improving and the rounds stop early, at different epochs."""
    d = make_data(seed=0, n_train=40, n_val=20, n_test=20)
    return BoxData(
        d.train_x, d.train_y, d.test_x, d.test_y, d.test_x, d.test_y, d.test_unshifted_x, d.test_unshifted_y
    )


SETTINGS = TrainSettings(epochs=8, batch_size=20, patience=1)


def expected_stop(val_losses: list[float], patience: int, epochs: int) -> tuple[int, int]:
    """(epochs trained, best epoch) by the course's rule, from the loss history alone."""
    best, best_epoch = math.inf, 0
    for epoch, loss in enumerate(val_losses, 1):
        if loss < best:
            best, best_epoch = loss, epoch
        if epoch - best_epoch > patience:
            return epoch, best_epoch
    return epochs, best_epoch


@pytest.fixture(scope="module")
def sequential(tiny):
    cfg = PaddingNetConfig("net1", "circular")
    return [train_round(cfg, seed, tiny, SETTINGS) for seed in range(3)]


def test_early_stopping_follows_the_course_rule(sequential, tiny):
    stops = set()
    for o in sequential:
        assert (o.epochs, o.best_epoch) == expected_stop(o.val_losses, SETTINGS.patience, SETTINGS.epochs)
        assert o.val_losses[o.best_epoch - 1] == min(o.val_losses)
        stops.add(o.epochs)
        if o.epochs < SETTINGS.epochs:
            assert o.epochs - o.best_epoch == SETTINGS.patience + 1  # patience 1 trains 2 bad epochs
    assert len(stops) > 1, "the rounds should stop at different epochs for this test to bite"


def test_kept_weights_are_tested(sequential, tiny):
    for o in sequential:
        model = make_model(PaddingNetConfig("net1", "circular", "builtin"), 99)
        model.load_state_dict(o.state)
        val_loss, val_acc = evaluate(model, tiny.val_x, tiny.val_y, SETTINGS)
        assert val_loss == pytest.approx(min(o.val_losses), rel=1e-5)
        assert val_acc == o.val_acc_kept
        assert evaluate(model, tiny.test_x, tiny.test_y, SETTINGS)[1] == o.test_acc
        assert (
            evaluate(model, tiny.test_unshifted_x, tiny.test_unshifted_y, SETTINGS)[1] == o.test_unshifted_acc
        )


def _assert_same_round(together, solo):
    """The batched trainer's outcome of a round against the sequential trainer's."""
    assert (together.conv_type, together.round) == (solo.conv_type, solo.round)
    assert (together.epochs, together.best_epoch) == (solo.epochs, solo.best_epoch)
    assert together.val_losses == pytest.approx(solo.val_losses, rel=1e-5)
    assert (together.val_acc, together.val_acc_kept, together.test_acc, together.test_unshifted_acc) == (
        solo.val_acc,
        solo.val_acc_kept,
        solo.test_acc,
        solo.test_unshifted_acc,
    )
    assert together.state.keys() == solo.state.keys()
    for k in solo.state:
        torch.testing.assert_close(together.state[k], solo.state[k], rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def every_type():
    """Rounds 0 and 1 of every conv type, trained alone and all in one batched call. With this
    data the rounds stop between epochs 3 and 8, and reflect round 1, which stops at epoch 4,
    would reach a lower validation loss later: a stack that kept anything a network does
    after its stop would differ."""
    data = make_data(seed=1, n_train=40, n_val=20, n_test=20, independent_val=True)
    configs = [PaddingNetConfig("net1", ct) for ct in CONV_TYPES]
    solo = {(c.conv_type, s): train_round(c, s, data, SETTINGS) for c in configs for s in (0, 1)}
    progress: list[int] = []
    together = list(train_rounds_batched(configs, [0, 1], data, SETTINGS, on_epoch=progress.append))
    return solo, together, progress


def test_batched_trainer_equals_sequential_for_every_conv_type(every_type):
    solo, together, _ = every_type
    assert sorted((o.conv_type, o.round) for o in together) == sorted(solo)
    for o in together:
        _assert_same_round(o, solo[o.conv_type, o.round])
    # fconv, circular, reflect and replicate train as one stack; its networks stop at different
    # epochs, so the stack goes on training networks that have stopped: that must not leak
    stops = {o.epochs for o in together if o.conv_type not in ("valid", "sconv")}
    assert len(stops) > 1 and min(stops) < SETTINGS.epochs


def test_batched_progress_counts_every_epoch_trained(every_type):
    _, together, progress = every_type
    assert all(n > 0 for n in progress)
    assert sum(progress) == sum(o.epochs for o in together)


def test_batched_trainer_equals_sequential_net2_in_small_stacks():
    d = make_data(seed=1, n_train=40, n_val=20, n_test=20)
    settings = TrainSettings(epochs=3, batch_size=20)
    configs = [PaddingNetConfig("net2", "fconv"), PaddingNetConfig("net2", "reflect")]
    solo = [train_round(cfg, s, d, settings) for cfg in configs for s in (0, 1)]
    # stacks of at most 3: (fconv 0, fconv 1, reflect 0), then (reflect 1)
    together = list(train_rounds_batched(configs, [0, 1], d, settings, stack_size=3))
    for a, b in zip(solo, together, strict=True):
        _assert_same_round(b, a)


def test_same_seed_same_numbers(sequential, tiny):
    again = train_round(PaddingNetConfig("net1", "circular"), 1, tiny, SETTINGS)
    assert again.val_losses == sequential[1].val_losses
    assert all(torch.equal(again.state[k], sequential[1].state[k]) for k in again.state)
