"""Character data for the GPT: Gutenberg cleaning, download into the cache, tokenizer,
train/validation split and random windows."""

from __future__ import annotations

import http.server
import socket
import threading

import pytest
import torch

from hw2cli.common.errors import Hw2Error
from hw2cli.gpt import corpus, data
from hw2cli.gpt.tokens import CharTokenizer

BOOK = "Once upon a time there lived a king.\nHe had three daughters.\n"
GUTENBERG = (
    "\ufeffThe Project Gutenberg EBook of Grimms' Fairy Tales\r\n\r\nLicence blah\r\n"
    "*** START OF THIS PROJECT GUTENBERG EBOOK GRIMMS' FAIRY TALES ***\r\n\r\n\r\n"
    + BOOK.replace("\n", "\r\n")
    + "\r\n*** END OF THIS PROJECT GUTENBERG EBOOK GRIMMS' FAIRY TALES ***\r\n\r\nMore licence text\r\n"
)


def test_strip_gutenberg_keeps_only_the_book():
    assert data.strip_gutenberg(GUTENBERG) == BOOK
    assert data.strip_gutenberg("\ufeffplain text\n") == "plain text\n"  # no markers: only the BOM goes


class _Server:
    """A local HTTP server that serves one body and counts requests."""

    def __init__(self, body: bytes):
        self.hits = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server API)
                outer.hits += 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/pg2591.txt"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/pg2591.txt"


def test_download_cleans_and_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("HW2_CACHE_DIR", str(tmp_path / "cache"))
    with _Server(GUTENBERG.encode("utf-8")) as server:
        monkeypatch.setenv("HW2_GRIMM_URL", server.url)
        text, path = data.load_text(None)
        assert text == BOOK
        assert path == tmp_path / "cache" / corpus.GRIMM_FILE
        assert path.read_text(encoding="utf-8") == BOOK
        data.load_text(None)  # second use: read from the cache, no new request
        assert server.hits == 1
    monkeypatch.setenv("HW2_GRIMM_URL", _closed_port_url())
    assert data.load_text(None)[0] == BOOK  # cached: works offline


def test_offline_without_cache_names_txt_file(tmp_path, monkeypatch):
    monkeypatch.setenv("HW2_CACHE_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("HW2_GRIMM_URL", _closed_port_url())
    with pytest.raises(Hw2Error, match="give a local UTF-8 text with txt_file"):  # the field, in Python
        data.load_text(None)
    assert not (tmp_path / "empty" / corpus.GRIMM_FILE).exists()


def test_load_text_rejects_missing_binary_and_empty_files(tmp_path):
    with pytest.raises(Hw2Error, match="does not exist"):
        data.load_text(tmp_path / "nope.txt")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(Hw2Error, match="not UTF-8"):
        data.load_text(tmp_path / "latin1.txt")
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(Hw2Error, match="empty"):
        data.load_text(tmp_path / "empty.txt")


def test_tokenizer_roundtrip_and_unknown_characters():
    tok = CharTokenizer.from_text(BOOK)
    assert list(tok.chars) == sorted(set(BOOK))
    ids = tok.encode("a king")
    assert ids == [tok.chars.index(c) for c in "a king"]
    assert tok.decode(ids) == "a king"
    assert CharTokenizer.from_json(tok.to_json()) == tok
    with pytest.raises(Hw2Error) as err:
        tok.encode("A zebra!", what="prompt")
    message = str(err.value)
    assert "prompt" in message and "'A'" in message and "'z'" in message and "'!'" in message
    assert "'e'" not in message


def test_split_holds_out_the_last_fraction():
    ids = torch.arange(1000)
    train, val = data.split_data(ids, 0.1, block_size=8)
    assert torch.equal(train, ids[:900]) and torch.equal(val, ids[900:])
    train, val = data.split_data(ids, 0.0, block_size=8)
    assert len(train) == 1000 and len(val) == 0
    with pytest.raises(Hw2Error, match="validation split"):
        data.split_data(ids, 0.005, block_size=8)
    with pytest.raises(Hw2Error, match="smaller block_size"):
        data.split_data(ids[:8], 0.0, block_size=8)
    with pytest.raises(Hw2Error, match="training split has 0 characters"):
        data.split_data(ids, 1.0, block_size=8)


def test_batches_are_shifted_windows_drawn_uniformly():
    ids = torch.arange(50)
    gen = torch.Generator().manual_seed(0)
    x, y = data.get_batch(ids, block_size=8, batch_size=4000, generator=gen)
    assert x.shape == y.shape == (4000, 8)
    assert torch.equal(x[:, 1:], y[:, :-1])  # targets are the next characters
    assert torch.equal(x - x[:, :1], torch.arange(8).expand(4000, 8))  # consecutive windows
    starts = x[:, 0]
    # every start 0 .. len - block_size - 1 occurs (the last window ends on the last id)
    assert set(starts.tolist()) == set(range(50 - 8))
    assert y.max().item() == 49
    again = data.get_batch(ids, 8, 4000, torch.Generator().manual_seed(0))
    assert torch.equal(again[0], x)


def _per_step_batch(ids, block_size, batch_size, seed, step):
    """The batch of ``step`` as the trainer drew it before issue 24: its own generator from
    (seed, rank 0, step), then get_batch."""
    gen = torch.Generator().manual_seed(data.step_seeds(seed, 0, step)[0])
    return data.get_batch(ids, block_size, batch_size, gen)


def test_training_batches_of_one_process_are_the_per_step_draws_in_any_order():
    ids = torch.randint(50, (300,))
    batches = data.Batches(ids, block_size=8, batch_size=5, seed=3, chunk=4)
    for step in [0, 1, 2, 3, 4, 9, 7, 8, 2]:  # across chunks, forward, back (a resumed run)
        x, y = batches(step)
        ex, ey = _per_step_batch(ids, 8, 5, 3, step)
        assert torch.equal(x, ex) and torch.equal(y, ey), step
    assert not torch.equal(batches(0)[0], batches(1)[0])


def test_validation_batches_are_one_stream_drawn_again_at_every_evaluation():
    ids = torch.randint(50, (300,))
    batches = data.Batches(ids, 8, 5, seed=3, count=7, chunk=3)
    gen = torch.Generator().manual_seed(data.step_seeds(3, 0, 0, purpose=1)[0])
    expected = [data.get_batch(ids, 8, 5, gen) for _ in range(7)]  # the old evaluation's draws
    for _ in range(2):  # two evaluations, the same batches
        for i, (ex, ey) in enumerate(expected):
            x, y = batches(i)
            assert torch.equal(x, ex) and torch.equal(y, ey), i
    batches(0)
    batches(1)
    batches(0)  # an evaluation cut short (Ctrl-C): the next one starts again from batch 0
    assert torch.equal(batches(1)[0], expected[1][0])
    with pytest.raises(ValueError, match="out of order"):
        batches(5)


@pytest.mark.parametrize("count", [None, 6])
def test_processes_share_out_the_global_batch(count):
    """Rank r of W processes with batch B gets rows r*B .. (r+1)*B - 1 of the batch one
    process with batch W*B gets: what makes N processes train what one process does."""
    ids = torch.randint(50, (300,))
    one = data.Batches(ids, 8, 6, seed=1, count=count, chunk=4)
    ranks = [data.Batches(ids, 8, 2, seed=1, rank=r, world_size=3, count=count, chunk=4) for r in range(3)]
    for i in range(6):
        x, y = one(i)
        parts = [b(i) for b in ranks]
        assert torch.equal(torch.cat([p[0] for p in parts]), x) and torch.equal(
            torch.cat([p[1] for p in parts]), y
        )


def test_memory_mapped_ids_give_the_batches_of_a_tensor(tmp_path):
    import numpy as np

    ids = torch.randint(50_000, (300,))
    path = tmp_path / "ids.bin"
    ids.numpy().astype(np.uint16).tofile(path)
    mapped = np.memmap(path, dtype=np.uint16, mode="r")
    a, b = data.Batches(mapped, 8, 5, seed=2), data.Batches(ids, 8, 5, seed=2)
    for step in range(3):
        (xa, ya), (xb, yb) = a(step), b(step)
        assert xa.dtype == torch.int64 and torch.equal(xa, xb) and torch.equal(ya, yb)
