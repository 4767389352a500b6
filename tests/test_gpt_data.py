"""Character data for the GPT: Gutenberg cleaning, download into the cache, tokenizer,
train/validation split and random windows."""

from __future__ import annotations

import http.server
import socket
import threading

import pytest
import torch

from hw2cli.common.errors import Hw2Error
from hw2cli.gpt import data

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
        assert path == tmp_path / "cache" / data.GRIMM_FILE
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
    assert not (tmp_path / "empty" / data.GRIMM_FILE).exists()


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
    tok = data.CharTokenizer.from_text(BOOK)
    assert list(tok.chars) == sorted(set(BOOK))
    ids = tok.encode("a king")
    assert ids == [tok.chars.index(c) for c in "a king"]
    assert tok.decode(ids) == "a king"
    assert data.CharTokenizer.from_json(tok.to_json()) == tok
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
    with pytest.raises(Hw2Error, match="val_fraction 1.0 is outside"):
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
