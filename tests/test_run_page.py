"""The run's page, samples/NAME/index.html: what it lists, in which order, with which links (the browser's view of
it: tests/test_browser.py)."""

from __future__ import annotations

import html.parser
from pathlib import Path

import pytest

from pop2jazz.epoch_outputs import PAGE, write_run_page


class PageReader(html.parser.HTMLParser):
    """The parts of a page the tests read: the section ids in order, every src, and the text."""

    def __init__(self, text: str):
        super().__init__()
        self.sections, self.sources, self.text = [], [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.sections.append(attrs["id"])
        if "src" in attrs:
            self.sources.append((tag, attrs["src"]))

    def handle_data(self, data):
        self.text.append(data)


def test_the_page_lists_every_epoch_newest_first_with_what_is_there(tmp_path):
    history = [{"epoch": epoch, "loss_cycle": 1.0 / epoch, "lr": 2e-4} for epoch in (1, 2, 3)]
    for name in ("epoch_001.wav", "epoch_001.png", "epoch_003.wav", "epoch_003.png", "losses.png"):
        (tmp_path / name).write_bytes(b"x")  # epoch 2's sample failed; no transfer rate was logged
    write_run_page(tmp_path, "run <b>&", ["epoch 3 of 10"], history)
    text = (tmp_path / PAGE).read_text()
    page = PageReader(text)
    assert page.sections == ["epoch_003", "epoch_002", "epoch_001"]
    assert page.sources == [("img", "losses.png?epoch=3"), ("audio", "epoch_003.wav"), ("img", "epoch_003.png"),
                            ("audio", "epoch_001.wav"), ("img", "epoch_001.png")]  # relative: opens from file://
    words = " ".join(page.text)
    assert "run <b>&" in words and "<b>" not in text  # escaped, shown as written
    assert "loss_cycle 0.3333 · lr 0.0002" in words and "no sample this epoch" in words
    assert "transfer_rate.png" not in text  # the curve only with --eval-every

    (tmp_path / "transfer_rate.png").write_bytes(b"x")
    (tmp_path / "transfer_rate.csv").write_text("epoch,transfer_rate,pop_baseline\n2,0.25,0.0\n")
    write_run_page(tmp_path, "run", [], history)
    page = PageReader((tmp_path / PAGE).read_text())
    assert ("img", "transfer_rate.png?epoch=3") in page.sources
    assert "lr 0.0002 · transfer_rate 0.25 · pop_baseline 0" in " ".join(page.text)  # epoch 2's row
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith(".")) == []  # no temporary left


@pytest.mark.slow
def test_training_keeps_the_page_up_to_date(eval_run):
    """The 4-epoch tiny run with --eval-every 2: every epoch's sample on the page, both curves, links to files that
    are there."""
    samples = eval_run["samples"]
    page = PageReader((samples / PAGE).read_text())
    assert page.sections == ["epoch_004", "epoch_003", "epoch_002", "epoch_001"]
    for _, source in page.sources:
        assert (samples / source.split("?")[0]).is_file() and not Path(source).is_absolute()
    assert [source for tag, source in page.sources if tag == "img"][:2] == ["losses.png?epoch=4",
                                                                           "transfer_rate.png?epoch=4"]
    words = " ".join(page.text)
    assert words.count("transfer_rate ") == 2 and "epoch 4 of 4; resnet generators of width 4, 1 block, " in words
