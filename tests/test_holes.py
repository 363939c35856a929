"""metrics.holes, the share of a song's loud content a conversion wipes out, on a real clip's spectrogram."""

from __future__ import annotations

import pytest

from pop2jazz.metrics import holes
from pop2jazz.spectrogram import Representation, audio_to_image, image_units_per_db, load_audio

REP = Representation()


@pytest.fixture(scope="module")
def image(gtzan_mini):
    return audio_to_image(load_audio(gtzan_mini / "pop" / "pop.00004.wav", REP.sample_rate)[: 10 * REP.sample_rate],
                          REP)


def lowered(image, decibels: float):
    """The image with every bin `decibels` lower, at the floor at most."""
    return (image - decibels * image_units_per_db(REP)).clamp(min=-1.0)


def test_a_conversion_that_keeps_the_song_punches_no_holes(image):
    kept = holes(image, image, REP)
    assert kept["loud_cells_dropped"] == 0.0 and kept["frames_losing"] == 0.0
    assert kept["loud_cells"] > 0.05 * image.shape[0] * image.shape[1]  # a real mix has plenty of loud cells


@pytest.mark.parametrize("decibels, dropped, losing", [(6, 0.0, 0.0), (20, 0.0, 1.0), (40, 1.0, 1.0)])
def test_holes_count_cells_lowered_past_30_db_and_frames_past_12_db(image, decibels, dropped, losing):
    measured = holes(image, lowered(image, decibels), REP)
    assert measured["loud_cells_dropped"] == pytest.approx(dropped, abs=0.01)
    assert measured["frames_losing"] == pytest.approx(losing, abs=0.01)


def test_a_hole_in_one_band_counts_that_bands_share_of_the_loud_cells(image):
    """The band 1-2 kHz wiped out: the holes are that band's loud cells, a part of the whole, not all or none."""
    bins = slice(int(1000 * REP.n_fft / REP.sample_rate), int(2000 * REP.n_fft / REP.sample_rate))
    wiped = image.clone()
    wiped[bins] = -1.0
    measured = holes(image, wiped, REP)
    assert 0.05 < measured["loud_cells_dropped"] < 0.6
