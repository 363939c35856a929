"""app.py without a browser: the page's conversion is convert.py's, sample for sample, and every failure is one line
of text (the browser itself: tests/test_browser.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import app
import convert
from conftest import CORRUPT_WAV, add_tiny_run, sine, write_wav
from pop2jazz.checkpoint import BUNDLED_MODEL
from pop2jazz.output_files import provenance_of


@pytest.fixture
def place(tmp_path, monkeypatch) -> dict[str, Path]:
    """A working folder with one train.py run, checkpoints/tiny/latest.pt, and the app's temporary folder."""
    monkeypatch.chdir(tmp_path)
    checkpoint = add_tiny_run(tmp_path)
    (tmp_path / "work").mkdir()
    return {"root": tmp_path, "checkpoint": checkpoint, "work": tmp_path / "work"}


def settings(work: Path) -> argparse.Namespace:
    return argparse.Namespace(work=work, griffin_lim_iters=4, device="cpu")


def test_the_page_converts_exactly_as_convert_py_does(place):
    song = write_wav(place["root"] / "songs" / "tone.wav", np.stack([sine(3.0, 44100)] * 2, axis=1), 44100)
    offered = dict(app.model_choices())
    assert offered["run tiny (checkpoints/tiny/latest.pt)"] == str(place["checkpoint"])
    stages = []
    text, audio, picture, download = app.convert_song(str(song), "pop2jazz", str(place["checkpoint"]), False,
                                                      settings(place["work"]),
                                                      lambda fraction, desc: stages.append((fraction, desc)))
    assert [desc for _, desc in stages] == ["loading the model", "converting", "drawing the spectrograms"]
    assert 'class="status done"' in text and "tone.wav -&gt; tone_jazz.wav: 3.0 s at 44100 Hz stereo" in text
    assert "using checkpoints/tiny/latest.pt (resnet generator" in text
    assert str(place["work"]) not in text  # files named as the user knows them, not by their temporary folders
    assert audio == download and Path(audio).name == "tone_jazz.wav" and Path(audio).is_relative_to(place["work"])
    assert Path(picture).suffix == ".png" and Path(picture).stat().st_size > 20_000
    assert provenance_of(Path(audio))["tool"] == "app.py"

    # convert.py on the same song with the same checkpoint writes the same samples: one pipeline, not two
    assert convert.main([str(song), "-o", str(place["root"] / "cli.wav"), "--checkpoint", str(place["checkpoint"]),
                         "--griffin-lim-iters", "4"]) == 0
    page, cli = sf.read(audio, dtype="int16")[0], sf.read(str(place["root"] / "cli.wav"), dtype="int16")[0]
    assert page.shape == (132300, 2) and np.array_equal(page, cli)  # the song's own rate and channels


def test_every_failure_is_one_line_on_the_page(place):
    songs = place["root"] / "songs"
    empty, broken = songs / "empty.wav", songs / "broken.wav"
    songs.mkdir()
    empty.write_bytes(b"")
    broken.write_bytes(CORRUPT_WAV)
    ours = write_wav(songs / "tone.wav", sine(2.0), 22050)
    model = str(place["checkpoint"])

    def error_of(song, model=model, allow_converted=False) -> str:
        text, *outputs = app.convert_song(song, "jazz2pop", model, allow_converted, settings(place["work"]))
        assert outputs == [None, None, None] and 'class="status error"' in text, text
        assert "Traceback" not in text and text.count("<br>") == 0  # one line
        return text

    assert "error: no song: drop an audio file on the song box" in error_of(None)
    assert "error: empty.wav: empty file (0 bytes)" in error_of(str(empty))
    assert "error: broken.wav: not a readable audio file" in error_of(str(broken))
    assert "error: no such model: /etc/passwd" in error_of(str(ours), "/etc/passwd")  # only the models offered

    converted = Path(app.convert_song(str(ours), "jazz2pop", model, False, settings(place["work"]))[1])
    assert f"error: {converted.name} was written by pop2jazz (app.py" in error_of(str(converted))
    text, audio, *_ = app.convert_song(str(converted), "jazz2pop", model, True, settings(place["work"]))
    assert audio is not None and "tone_pop_pop.wav" in text  # --allow-converted's box ticked: converted again
    assert sorted(path.name for path in songs.iterdir()) == ["broken.wav", "empty.wav", "tone.wav"]  # nothing beside


def test_help_explains_and_a_missing_gradio_is_one_line(monkeypatch, capsys):
    with pytest.raises(SystemExit) as stop:
        app.parse_args(["--help"])
    assert stop.value.code == 0
    shown = capsys.readouterr().out
    for flag in ("--host", "--port", "--max-upload-mb", "--griffin-lim-iters", "--device", "127.0.0.1"):
        assert flag in shown
    monkeypatch.setenv("GRADIO_TEMP_DIR", "")  # serve sets it; monkeypatch puts it back
    monkeypatch.setattr(app.importlib.util, "find_spec", lambda name: None)
    assert app.main(["--port", "7999"]) == 1
    assert "uv run --extra web app.py" in capsys.readouterr().err


def test_the_page_starts_on_the_bundled_model_else_on_a_run(place, monkeypatch):
    from pop2jazz import runs
    bundled = app.BUNDLED_MODEL
    if bundled.is_file():
        assert app.default_model() == str(bundled)
    for module in (app, runs):  # a checkout without the bundled model: the page must still pick a model that exists
        monkeypatch.setattr(module, "BUNDLED_MODEL", place["root"] / "pretrained" / "pop2jazz.pt")
    assert app.default_model() == str(place["checkpoint"]) == app.model_choices()[0][1]
    (place["checkpoint"]).unlink()
    assert app.default_model() is None and app.model_choices() == []


def test_the_level_match_box_and_the_strength_slider_reach_the_conversion(place):
    """The box is convert.py --level-match (the bundled model's recorded reference level, named on the page), the
    slider --strength (written into the output's metadata); a model that records no reference level is one line."""
    song = write_wav(place["root"] / "songs" / "tone.wav", sine(2.0), 22050)
    bundled = str(BUNDLED_MODEL)
    text, audio, *_ = app.convert_song(str(song), "pop2jazz", bundled, False, settings(place["work"]), None, 0.6, True)
    assert "every window at its reference level (-47.7 dB)" in text, text
    assert provenance_of(Path(audio))["strength"] == 0.6
    text, audio, *_ = app.convert_song(str(song), "pop2jazz", bundled, False, settings(place["work"]))
    assert audio is not None and "reference level" not in text  # unticked: as the bundled model was trained
    assert "strength" not in provenance_of(Path(audio))
    text, audio, *_ = app.convert_song(str(song), "pop2jazz", str(place["checkpoint"]), False,
                                       settings(place["work"]), None, 1.0, True)
    assert audio is None and 'class="status error"' in text and "reference level" in text
    assert text.count("<br>") == 0
